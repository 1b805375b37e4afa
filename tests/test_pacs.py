"""The DICOMweb archive client, outbox and CLI against a real Orthanc (tests/orthanc.py).

The session's Orthanc receives the real test files and the project's samples through STOW-RS;
tests then search, open loops frame by frame, fetch files and send SRs.  Outage tests run
their own Orthanc so they can kill and restart it.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests

import msus
from msus.errors import PacsError, PacsRejected, PacsUnavailable
from msus.pacs.client import Archive
from msus.pacs.outbox import Outbox, default_engine, send
from msus.pacs.config import PacsConfig
from orthanc import CuttingProxy, OrthancServer, SilentServer, make_sr

pytestmark = pytest.mark.orthanc

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
#: Samples larger than this are left out of the upload (keeps the suite fast).
MAX_SAMPLE_BYTES = 40 * 2**20


def _local_files() -> list[Path]:
    files = sorted(DATA.glob("*.dcm"))
    have = {p.name for p in files}
    samples = sorted(
        (p for p in SAMPLES.glob("*.dcm") if p.name not in have and p.stat().st_size <= MAX_SAMPLE_BYTES),
        key=lambda p: (not p.name.startswith("phantom"), p.name),
    )
    return files + samples[:3]


def _archivable(path: Path) -> bytes:
    """The file's bytes; a file Orthanc refuses as malformed is re-encoded by pydicom first."""
    data = path.read_bytes()
    if path.name.startswith("fodicom_DIRW0007"):
        # A stray top-level sequence delimiter (FFFE,E0DD) makes DCMTK refuse the file; the
        # element carries nothing, so drop it and keep every other byte of meaning.
        ds = pydicom.dcmread(io.BytesIO(data))
        if 0xFFFEE0DD in ds:
            del ds[0xFFFEE0DD]
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        data = buf.getvalue()
    return data


class Counting(requests.Session):
    """A requests session that records (method, path) of every request."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, str]] = []

    def request(self, method, url, *a, **kw):
        self.log.append((method.upper(), url.split("?")[0]))
        return super().request(method, url, *a, **kw)

    def count(self, method: str, contains: str = "") -> int:
        return sum(1 for m, u in self.log if m == method and contains in u)


@pytest.fixture(scope="session")
def archive_config(orthanc) -> PacsConfig:
    return PacsConfig(url=orthanc.dicomweb_url, timeout_s=10)


@pytest.fixture(scope="session")
def uploaded(orthanc, archive_config) -> dict[str, dict]:
    """SOPInstanceUID → {path, study, series, frames} of every file stored in the archive."""
    out = {}
    with Archive(archive_config) as a:
        for path in _local_files():
            data = _archivable(path)
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            res = a.store([data])
            assert res.ok and str(ds.SOPInstanceUID) in res.stored, path.name
            out[str(ds.SOPInstanceUID)] = {
                "path": path,
                "study": str(ds.StudyInstanceUID),
                "series": str(ds.SeriesInstanceUID),
                "frames": int(ds.get("NumberOfFrames", 1) or 1),
                "ds": ds,
            }
    assert len(out) >= 6
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox(request, tmp_path):
    """The outbox in the store database, on SQLite and on PostgreSQL (schema from the store's migrations)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_server").create_database(f"ob_{uuid.uuid4().hex[:12]}")
    ob = Outbox(default_engine(url))
    yield ob
    ob.engine.dispose()  # close its pooled connections (the temporary server is shared)


# ---- search and listing ------------------------------------------------------------------------
def test_search_finds_every_uploaded_study(archive_config, uploaded):
    with Archive(archive_config) as a:
        studies = {s.study_uid: s for s in a.search_studies()}
    for info in uploaded.values():
        assert info["study"] in studies, info["path"].name
        assert "US" in studies[info["study"]].modalities


def test_search_filters(archive_config, uploaded):
    info = next(v for v in uploaded.values() if v["path"].name.startswith("pydicom_examples_ybr"))
    ds = info["ds"]
    with Archive(archive_config) as a:
        by_id = a.search_studies(patient_id=str(ds.PatientID))
        assert [s.study_uid for s in by_id] == [info["study"]]
        name = str(ds.PatientName)
        by_name = a.search_studies(patient_name=name[:2])
        assert info["study"] in {s.study_uid for s in by_name}
        day = str(ds.StudyDate)
        same_day = a.search_studies(date_from=day, date_to=day)
        assert info["study"] in {s.study_uid for s in same_day}
        assert all(s.study_date == day for s in same_day)
        later = a.search_studies(date_from=str(int(day) + 1))
        assert info["study"] not in {s.study_uid for s in later}
        assert a.search_studies(patient_id="no-such-patient-xyz") == []
        acc = next(v for v in uploaded.values() if str(v["ds"].get("AccessionNumber", "") or ""))
        by_acc = a.search_studies(accession_number=str(acc["ds"].AccessionNumber))
        assert acc["study"] in {s.study_uid for s in by_acc}
        assert a.search_studies(modality="MR") == []


def test_search_refuses_bad_dates(archive_config):
    with Archive(archive_config) as a:
        with pytest.raises(PacsError, match="YYYYMMDD"):
            a.search_studies(date_from="2020-01-01")
        with pytest.raises(PacsError, match="empty"):
            a.search_studies(date_from="20200102", date_to="20200101")


def test_instances_carry_frame_counts(archive_config, uploaded):
    with Archive(archive_config) as a:
        for sop, info in uploaded.items():
            insts = {i.sop_uid: i for i in a.list_instances(info["study"])}
            assert insts[sop].n_frames == info["frames"], info["path"].name
            assert insts[sop].is_image
        series = a.list_series(info["study"])
        assert info["series"] in {s.series_uid for s in series}


# ---- opening loops -----------------------------------------------------------------------------
def test_open_cine_matches_the_local_file(archive_config, uploaded):
    with Archive(archive_config) as a:
        for sop, info in uploaded.items():
            local = msus.load(info["path"])
            remote = a.open_cine(info["study"], info["series"], sop)
            try:
                assert len(remote) == len(local) == info["frames"]
                assert remote.shape == local.shape
                for i in range(len(local)):
                    np.testing.assert_array_equal(remote.frame(i), local.frame(i), err_msg=f"{info['path'].name} frame {i}")
                np.testing.assert_allclose(remote.frame_times_ms, local.frame_times_ms)
                assert remote.calibration == local.calibration
            finally:
                remote.close()
                local.close()


def test_frames_come_on_demand(orthanc, archive_config, uploaded):
    sop, info = max(uploaded.items(), key=lambda kv: kv[1]["frames"])
    assert info["frames"] >= 20
    session = Counting()
    with Archive(archive_config, session=session) as a:
        cine = a.open_cine(info["study"], info["series"], sop, prefetch=False)
        # The header and frame 1 only — not the loop.
        assert session.count("GET", "/frames/") == 1
        assert session.log[-1][1].endswith("/frames/1")
        assert session.count("GET", "/metadata") == 1
        cine.frame(9)
        assert session.count("GET", "/frames/") == 2 and session.log[-1][1].endswith("/frames/10")
        cine.frame(9)  # cached
        assert session.count("GET", "/frames/") == 2
        cine.close()


def test_prefetch_fills_a_bounded_cache(archive_config, uploaded):
    sop, info = max(uploaded.items(), key=lambda kv: kv[1]["frames"] * kv[1]["ds"].Rows * kv[1]["ds"].Columns)
    small = PacsConfig(url=archive_config.url, timeout_s=10, cache_mb=1)
    local = msus.load(info["path"])
    with Archive(small) as a:
        cine = a.open_cine(info["study"], info["series"], sop, prefetch=True)
        remote = cine.remote_frames
        assert remote.wait(30)
        assert remote.error is None
        biggest = max(len(remote.get(i)) for i in (0, len(cine) - 1))
        assert remote.cache.nbytes <= remote.cache.max_bytes + biggest
        # Frames beyond the cache still arrive, correctly.
        for i in (0, len(cine) // 2, len(cine) - 1):
            np.testing.assert_array_equal(cine.frame(i), local.frame(i))
        cine.close()
    local.close()


def test_open_refuses_non_images_and_unknown_instances(archive_config, uploaded, outbox):
    sop, info = next(iter(uploaded.items()))
    with Archive(archive_config) as a:
        with pytest.raises(PacsRejected, match="not found"):
            a.open_cine(info["study"], info["series"], "1.2.3.4.5.6.7.8.9")
        with pytest.raises(PacsError, match="not a DICOM UID"):
            a.open_cine(info["study"], info["series"], "../../etc")
        sr = make_sr(info["ds"], "not an image")
        assert send(sr, a, outbox=outbox).delivered
        with pytest.raises(PacsRejected, match="no image"):
            a.open_cine(str(sr.StudyInstanceUID), str(sr.SeriesInstanceUID), str(sr.SOPInstanceUID))


# ---- fetch -------------------------------------------------------------------------------------
def test_fetch_study_series_and_instance(archive_config, uploaded, tmp_path):
    sop, info = next((k, v) for k, v in uploaded.items() if v["path"].name.startswith("pydicomdata_OBXXXX1A"))
    with Archive(archive_config) as a:
        files = a.fetch(info["study"], out_dir=tmp_path / "study")
        assert sop in {p.stem for p in files}
        one = a.fetch(info["study"], info["series"], sop, out_dir=tmp_path / "one")
        assert [p.name for p in one] == [f"{sop}.dcm"]
    got = msus.load(one[0])
    ref = msus.load(info["path"])
    for i in range(len(ref)):
        np.testing.assert_array_equal(got.frame(i), ref.frame(i))
    assert pydicom.dcmread(one[0]).file_meta.TransferSyntaxUID == pydicom.dcmread(info["path"]).file_meta.TransferSyntaxUID
    assert not list((tmp_path / "one").glob("*.part"))


# ---- STOW-RS and the outbox --------------------------------------------------------------------
def test_store_sr_and_find_it_again(orthanc, archive_config, uploaded, outbox):
    sop, info = next(iter(uploaded.items()))
    sr = make_sr(info["ds"], "gap 4.1 mm")
    session = Counting()
    with Archive(archive_config, session=session) as a:
        res = send(sr, a, outbox=outbox, kind="sr")
        assert res.status == "sent", res.message
        found = a.find_instance(str(sr.SOPInstanceUID))
        assert found is not None and found.study_uid == info["study"]
        studies = {s.study_uid: s for s in a.search_studies(modality=None, patient_id=str(info["ds"].get("PatientID", "")) or None)}
        assert "SR" in studies[info["study"]].modalities
        back = a.retrieve_instance(info["study"], str(sr.SeriesInstanceUID), str(sr.SOPInstanceUID))
        assert back.SOPClassUID == sr.SOPClassUID
        assert "gap 4.1 mm" in str(back.ContentSequence[0].TextValue)
        # Sending again never posts again.
        again = send(sr, a, outbox=outbox, kind="sr")
        assert again.status == "already_in_archive"
        assert session.count("POST", "/studies") == 1
        assert outbox.get(str(sr.SOPInstanceUID), a.config.url).posts == 1
        assert outbox.flush(a).sent == ()
    assert session.count("POST") == 1


def test_already_archived_is_not_sent(orthanc, archive_config, uploaded, outbox):
    sop, info = next(iter(uploaded.items()))
    sr = make_sr(info["ds"], "stored behind our back")
    buf = io.BytesIO()
    sr.save_as(buf, enforce_file_format=True)
    requests.post(f"{orthanc.url}/instances", data=buf.getvalue(), timeout=10).raise_for_status()
    session = Counting()
    with Archive(archive_config, session=session) as a:
        res = send(buf.getvalue(), a, outbox=outbox)
    assert res.status == "already_in_archive"
    assert session.count("POST") == 0


def _fresh_uid_copy(path: Path) -> bytes:
    """``path``'s bytes with a fresh SOP Instance UID of the same length (no other byte changed)."""
    data = path.read_bytes()
    uid = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID).encode()
    fresh = str(uuid.uuid4().int).encode()[: min(8, len(uid) - 4)]
    return data.replace(uid, uid[: len(uid) - len(fresh)] + fresh)


def test_archive_refusal_is_kept_not_lost(archive_config, uploaded, outbox):
    acuson = _fresh_uid_copy(DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm")
    with Archive(archive_config) as a:
        with pytest.raises(PacsRejected) as exc:
            a.store([acuson])  # Archive.store posts bytes unchanged: DCMTK refuses the stray delimiter
        assert "\n" not in str(exc.value)
    # A genuinely invalid object (no Study Instance UID: Orthanc cannot file it) goes through
    # the outbox: the stray-delimiter file would now be sent repaired (test below).
    ds = pydicom.dcmread(io.BytesIO(_archivable(DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm")))
    del ds.StudyInstanceUID
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    bad = buf.getvalue()
    with Archive(archive_config) as a:
        res = send(bad, a, outbox=outbox)
    assert res.status == "rejected"
    with Archive(archive_config) as a:
        again = send(bad, a, outbox=outbox)  # not retried blindly: the reason and the way out
    assert again.status == "rejected" and "--requeue" in again.message
    item = outbox.items()[0]
    assert item.status == "rejected" and item.last_error
    assert outbox.requeue(item.sop_instance_uid, archive_config.url).status == "queued"


def test_send_repairs_stray_delimiter_in_memory(archive_config, uploaded, outbox, tmp_path):
    """The real Acuson file (stray top-level (FFFE,E0DD)) is sent as a repaired copy; the file is untouched."""
    import hashlib

    src = tmp_path / "acuson.dcm"
    src.write_bytes(_fresh_uid_copy(DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"))
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    ds = pydicom.dcmread(src)
    assert 0xFFFEE0DD in ds._dict  # the stray element is really there
    with Archive(archive_config) as a:
        res = send(src, a, outbox=outbox)
        assert res.status == "sent", res.message
        assert any("(FFFE,E0DD)" in w for w in res.warnings)
        assert str(ds.PatientName) not in " ".join(res.warnings) + res.item.note
        assert "(FFFE,E0DD)" in res.item.note
        got = a.fetch(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), tmp_path / "got")
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    local, remote = msus.load(src), msus.load(got[0])
    assert remote.n_frames == local.n_frames
    np.testing.assert_array_equal(remote.frame(0), local.frame(0))


def test_send_refuses_non_dicom(archive_config, outbox, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not dicom")
    with Archive(archive_config) as a:
        with pytest.raises(PacsError, match="not a DICOM"):
            send(junk, a, outbox=outbox)
    assert outbox.items() == []


# ---- failures: unreachable, slow, cut mid-transfer, killed -------------------------------------
def test_unreachable_archive_is_one_clean_line(outbox, uploaded):
    from orthanc import free_port

    cfg = PacsConfig(url=f"http://127.0.0.1:{free_port()}/dicom-web", timeout_s=2)
    with Archive(cfg) as a:
        with pytest.raises(PacsUnavailable, match="cannot reach") as exc:
            a.search_studies()
        assert "\n" not in str(exc.value)
        sop, info = next(iter(uploaded.items()))
        res = send(make_sr(info["ds"]), a, outbox=outbox)
    assert res.status == "queued" and "queued" in res.message
    assert outbox.pending(cfg.url) == 1


def test_hung_archive_times_out(outbox):
    silent = SilentServer()
    try:
        cfg = PacsConfig(url=silent.url, timeout_s=1)
        t0 = time.monotonic()
        with Archive(cfg) as a:
            with pytest.raises(PacsUnavailable, match="did not answer within 1 s"):
                a.search_studies()
        assert time.monotonic() - t0 < 15  # bounded (1 s configured; generous for a busy machine)
    finally:
        silent.close()


def test_answer_lost_after_store_is_not_sent_twice(orthanc, uploaded, outbox):
    """The archive stores the SR but the connection dies before its answer: resend must not POST."""
    sop, info = next(iter(uploaded.items()))
    sr = make_sr(info["ds"], "answer lost")
    proxy = CuttingProxy(orthanc.port, cut_response_after=0, methods=("POST",))
    try:
        session = Counting()
        with Archive(PacsConfig(url=proxy.url, timeout_s=5), session=session) as a:
            res = send(sr, a, outbox=outbox)
            assert res.status == "queued", res.message
            assert session.count("POST") == 1
            assert orthanc.find_instance(str(sr.SOPInstanceUID))  # it did arrive
            result = outbox.flush(a)
            assert result.already_in_archive == (str(sr.SOPInstanceUID),)
            assert session.count("POST") == 1
        item = outbox.get(str(sr.SOPInstanceUID), a.config.url)
        assert item.status == "sent" and item.posts == 1 and "already" in item.note
    finally:
        proxy.close()


def test_transfer_cut_mid_frame_is_clean(orthanc, uploaded):
    sop, info = max(uploaded.items(), key=lambda kv: kv[1]["path"].stat().st_size)
    proxy = CuttingProxy(orthanc.port, cut_response_after=30_000)
    try:
        with Archive(PacsConfig(url=proxy.url, timeout_s=5)) as a:
            with pytest.raises(PacsUnavailable) as exc:
                a.retrieve_instance(info["study"], info["series"], sop)
            assert "\n" not in str(exc.value)
    finally:
        proxy.close()


@pytest.fixture()
def own_orthanc(tmp_path):
    from conftest import require
    from orthanc import dicomweb_plugin, orthanc_binary

    require(orthanc_binary() is not None and dicomweb_plugin() is not None, "Orthanc with its DICOMweb plugin")
    server = OrthancServer(tmp_path / "orthanc").start()
    yield server
    server.stop(kill=True)


def test_server_killed_mid_loop_then_queued_report_goes_once(own_orthanc, uploaded, outbox):
    server = own_orthanc
    sop, info = max(uploaded.items(), key=lambda kv: kv[1]["frames"])
    server.upload(info["path"]) if not info["path"].name.startswith("fodicom") else requests.post(
        f"{server.url}/instances", data=_archivable(info["path"]), timeout=30
    ).raise_for_status()
    cfg = PacsConfig(url=server.dicomweb_url, timeout_s=3)
    session = Counting()
    with Archive(cfg, session=session) as a:
        cine = a.open_cine(info["study"], info["series"], sop, prefetch=False)
        cine.frame(0)
        server.stop(kill=True)  # the archive dies while the loop is being read
        with pytest.raises(PacsUnavailable) as exc:
            cine.frame(info["frames"] - 1)
        assert "\n" not in str(exc.value)
        cine.close()

        sr = make_sr(info["ds"], "sent after the outage")
        res = send(sr, a, outbox=outbox, kind="sr")
        assert res.status == "queued"
        assert outbox.pending(cfg.url) == 1
        before = session.count("POST")

        server.start()
        n0 = server.instance_count()
        result = outbox.flush(a)
        assert result.sent == (str(sr.SOPInstanceUID),)
        assert server.instance_count() == n0 + 1
        assert outbox.flush(a).sent == ()
        assert send(sr, a, outbox=outbox).status == "already_in_archive"
        assert session.count("POST") - before == 1
    item = outbox.get(str(sr.SOPInstanceUID), cfg.url)
    assert item.status == "sent" and item.posts == 1 and item.attempts == 2


# ---- authentication ----------------------------------------------------------------------------
def test_basic_auth(tmp_path, uploaded):
    from conftest import require
    from orthanc import dicomweb_plugin, orthanc_binary

    require(orthanc_binary() is not None and dicomweb_plugin() is not None, "Orthanc with its DICOMweb plugin")
    with OrthancServer(tmp_path / "auth", users={"alice": "s3cret"}) as server:
        good = PacsConfig(url=server.dicomweb_url, auth="basic", user="alice", password="s3cret", timeout_s=5)
        with Archive(good) as a:
            assert a.search_studies(modality=None) == []
        for cfg in (
            PacsConfig(url=server.dicomweb_url, auth="basic", user="alice", password="wrong", timeout_s=5),
            PacsConfig(url=server.dicomweb_url, timeout_s=5),
        ):
            with Archive(cfg) as a:
                with pytest.raises(PacsRejected, match="refused the credentials") as exc:
                    a.search_studies()
                assert "wrong" not in str(exc.value) and "s3cret" not in str(exc.value)


# ---- CLI ---------------------------------------------------------------------------------------
def _cli(monkeypatch, capsys, url, *argv):
    from msus.cli import main

    monkeypatch.setenv("MSUS_PACS_URL", url)
    monkeypatch.setenv("MSUS_PACS_TIMEOUT_S", "5")
    code = main(["pacs", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_search_fetch_send_outbox(monkeypatch, capsys, archive_config, uploaded, tmp_path):
    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path / "data"))
    sop, info = next((k, v) for k, v in uploaded.items() if v["path"].name.startswith("pydicom_examples_ybr"))
    code, out, err = _cli(monkeypatch, capsys, archive_config.url, "search", "--patient-id", str(info["ds"].PatientID), "--json")
    assert code == 0, err
    studies = json.loads(out)["studies"]
    assert [s["study_uid"] for s in studies] == [info["study"]]

    code, out, err = _cli(monkeypatch, capsys, archive_config.url, "instances", info["study"], "--json")
    assert code == 0 and json.loads(out)["instances"][0]["n_frames"] == info["frames"]

    code, out, err = _cli(monkeypatch, capsys, archive_config.url, "fetch", info["study"], info["series"], sop, "--out", str(tmp_path / "got"))
    assert code == 0, err
    assert (tmp_path / "got" / f"{sop}.dcm").exists()

    sr_path = tmp_path / "report.dcm"
    make_sr(info["ds"], "cli").save_as(sr_path, enforce_file_format=True)
    code, out, err = _cli(monkeypatch, capsys, archive_config.url, "send", str(sr_path), "--kind", "sr", "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["status"] == "sent"
    assert json.loads(out)["results"][0]["warnings"] == []
    code, out, err = _cli(monkeypatch, capsys, archive_config.url, "outbox", "--json")
    assert code == 0 and json.loads(out)["items"][0]["status"] == "sent"
    acuson = tmp_path / "acuson.dcm"  # stray (FFFE,E0DD): sent repaired, with a warning line
    acuson.write_bytes(_fresh_uid_copy(DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"))
    code, out, err = _cli(monkeypatch, capsys, archive_config.url, "send", str(acuson))
    assert code == 0, err
    assert ": sent" in out and "warning: dropped" in out and "(FFFE,E0DD)" in out
    code, out, err = _cli(monkeypatch, capsys, archive_config.url, "outbox", "--flush")
    assert code == 0 and "sent 0" in out


def test_cli_errors_are_one_line(monkeypatch, capsys, tmp_path, uploaded):
    from orthanc import free_port

    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path / "data"))
    dead = f"http://127.0.0.1:{free_port()}/dicom-web"
    code, out, err = _cli(monkeypatch, capsys, dead, "search")
    assert code == 1 and err.startswith("msus: error: ") and err.count("\n") == 1 and "Traceback" not in err
    sr_path = tmp_path / "report.dcm"
    make_sr(next(iter(uploaded.values()))["ds"]).save_as(sr_path, enforce_file_format=True)
    code, out, err = _cli(monkeypatch, capsys, dead, "send", str(sr_path))
    assert code == 1 and "queued" in err
    code, out, err = _cli(monkeypatch, capsys, dead, "outbox", "--json")
    assert code == 0 and json.loads(out)["pending"] == 1
    monkeypatch.delenv("MSUS_PACS_URL")
    from msus.cli import main

    assert main(["pacs", "search"]) == 1
    assert "no archive configured" in capsys.readouterr().err


def test_annotated_loop_goes_as_a_new_series(archive_config, uploaded, outbox):
    from msus.export.secondary_capture import annotated_loop_dataset

    sop, info = max(uploaded.items(), key=lambda kv: kv[1]["frames"])
    local = msus.load(info["path"])
    n = min(len(local), 12)
    frames = []
    for i in range(n):
        f = local.frame(i)
        f = np.repeat(f[:, :, None], 3, axis=2) if f.ndim == 2 else f.copy()
        f[10:20, 10:60] = (255, 255, 0)  # a burned-in "annotation"
        frames.append(f)
    ds = annotated_loop_dataset(frames, local.frame_times_ms[:n], info["ds"])
    with Archive(archive_config) as a:
        res = send(ds, a, outbox=outbox, kind="video")
        assert res.status == "sent", res.message
        series = {s.series_uid: s for s in a.list_series(info["study"])}
        assert str(ds.SeriesInstanceUID) in series and str(ds.SeriesInstanceUID) != info["series"]
        back = a.open_cine(info["study"], str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
        assert len(back) == n
        np.testing.assert_allclose(back.frame_times_ms, local.frame_times_ms[:n] - local.frame_times_ms[0], atol=1e-3)
        for i in (0, n - 1):
            diff = np.abs(back.frame(i).astype(int) - frames[i].astype(int))
            assert diff.mean() < 3  # lossy JPEG, flagged as such
        assert back.frame(0)[15, 30].tolist()[:2] == pytest.approx([255, 255], abs=12)
        back.close()
    local.close()


def test_tls_is_verified_by_default(tmp_path):
    import shutil

    from conftest import require
    from orthanc import TlsQidoServer, self_signed_cert

    require(shutil.which("openssl") is not None, "'openssl' (Debian package openssl)")
    cert, key = self_signed_cert(tmp_path)
    server = TlsQidoServer(cert, key)
    try:
        with Archive(PacsConfig(url=server.url, timeout_s=5)) as a:  # self-signed: refused
            with pytest.raises(PacsRejected, match="TLS certificate") as exc:
                a.search_studies()
            assert "\n" not in str(exc.value)
        with Archive(PacsConfig(url=server.url, timeout_s=5, verify_tls=str(cert))) as a:  # trusted bundle
            assert a.search_studies() == []
    finally:
        server.close()


def test_report_sr_for_an_archived_loop(archive_config, uploaded, outbox):
    """The export's SR built on the archive's header goes back to that study and references the loop."""
    from msus import export
    from msus.export.sr import build_sr
    from msus.measure import make_measurement

    sop, info = next((k, v) for k, v in uploaded.items() if v["path"].name.startswith("pydicomdata_OBXXXX1A"))
    with Archive(archive_config) as a:
        cine = a.open_cine(info["study"], info["series"], sop)
        cal = cine.calibration_for(1)
        m = make_measurement(cal, 1, (459.5, 290.5), (498.5, 301.5), label="gap at rest")
        assert m.length_mm == pytest.approx(10.6, rel=0.01)  # the scanner's own caliper, via the archive
        sr = build_sr(export.from_cine(cine, measurements=(m,)), cine.pacs_header)
        res = send(sr, a, outbox=outbox, kind="sr")
        assert res.status == "sent", res.message
        back = a.retrieve_instance(info["study"], str(sr.SeriesInstanceUID), str(sr.SOPInstanceUID))
        cine.close()
    assert back.StudyInstanceUID == info["study"]
    assert sop in {str(x.ReferencedSOPInstanceUID) for s in back.CurrentRequestedProcedureEvidenceSequence
                   for se in s.ReferencedSeriesSequence for x in se.ReferencedSOPSequence}
