"""The smaller contract breaks of issue 12 (items 4 and 6), each with its reproduction."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap

import pydicom
import pytest

from conftest import DATA, ROOT, SAMPLES

EPIQ = DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm"
ACUSON = DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"
J2K = DATA / "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm"  # no calibration


def _msus(*args, env=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "msus", *map(str, args)], capture_output=True, env=e)


def _one_error(r) -> str:
    err = r.stderr.decode("utf-8", "replace").strip().splitlines()
    assert r.returncode == 1 and len(err) == 1 and err[0].startswith("msus: error: "), err
    return err[0]


# ---- item 4: --out ------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "bundle"])
def test_out_refuses_a_fifo_and_a_device(tmp_path, fmt):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for out in (fifo, "/dev/full"):
        msg = _one_error(_msus("export", EPIQ, "--format", fmt, "--no-store", "--out", out))
        assert "refused" in msg and ("FIFO" in msg or "device" in msg)
    assert fifo.exists() and not fifo.is_file() and os.path.exists("/dev/full")  # left as they were


# ---- item 6 ---------------------------------------------------------------------------------------
def test_non_utf8_file_name_exports_json(tmp_path):
    src = tmp_path / os.fsdecode(b"loop\xff.dcm")
    src.write_bytes((SAMPLES / "phantom_full_tear.dcm").read_bytes())
    r = _msus("export", src, "--format", "json", "--no-store", "--out", tmp_path / "o.json")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "o.json").read_text("utf-8"))
    assert doc["loop"]["source_name"] == "loop\ufffd.dcm"


@pytest.mark.parametrize("value", ["1e308", "1e-300"])
def test_absurd_manual_calibration_falls_back_to_px_with_a_warning(value):
    r = _msus("measure", J2K, "--p1", "10,10", "--p2", "50,10", "--mm-per-px", value, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["distance_mm"] is None and out["calibration_source"] == "none"
    assert any("ignored" in w and "px" in w for w in out["warnings"])


@pytest.mark.parametrize("delta", [1e308, -1e308, float("nan"), 0.0])
def test_absurd_region_delta_is_px_with_a_warning(tmp_path, delta):
    import msus

    ds = pydicom.dcmread(EPIQ)
    r = ds.SequenceOfUltrasoundRegions[0]
    r.PhysicalDeltaX = delta
    src = tmp_path / "delta.dcm"
    ds.save_as(src)
    with msus.load(src) as c:
        d = c.calibration.measure((100, 100), (200, 100))
        assert d.distance_mm is None and "inf" not in d.label
        if delta != 0.0:
            assert any("PhysicalDeltaX" in w for w in c.calibration.warnings + tuple(c.warnings))
    # and the exports that cannot encode non-finite floats now succeed
    assert _msus("export", src, "--format", "bundle", "--no-store", "--out", tmp_path / "b.zip").returncode == 0


def test_symlink_loop_is_one_line_in_export_and_the_server_path_opener(tmp_path):
    from msus.errors import LoadError
    from msus.ui.sources import resolve_under

    loop = tmp_path / "loop.dcm"
    os.symlink(loop.name, loop)
    assert "symbolic link" in _one_error(_msus("export", loop, "--format", "json", "--out", tmp_path / "x.json"))
    assert "symbolic link" in _one_error(_msus("info", loop))
    with pytest.raises(LoadError, match="symbolic link"):
        resolve_under(tmp_path, "loop.dcm")


def test_truncated_dicom_is_reported_as_truncated(tmp_path):
    for src in (EPIQ, ACUSON):
        cut = tmp_path / ("cut_" + src.name)
        cut.write_bytes(src.read_bytes()[:5000])
        msg = _one_error(_msus("info", cut))
        assert "truncated" in msg and "no pixel data" not in msg


def test_damaged_jpeg_keeps_stderr_to_one_line(tmp_path):
    import attack_corpus

    files = attack_corpus.build(tmp_path / "c")
    for name in ("jpeg_damaged.jpg", "acuson_zeroed_jpeg.dcm"):
        f = next(p for p in files if p.name == name)
        r = _msus("export", f, "--format", "json", "--no-store", "--out", tmp_path / "j.json")
        lines = [ln for ln in r.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        assert len(lines) <= 1, lines
        assert not any(w in "".join(lines) for w in ("Corrupt JPEG", "Premature end", "object at 0x", ".cpp"))


def test_outbox_takes_over_a_report_whose_sender_was_killed(tmp_path, monkeypatch):
    from msus.pacs.outbox import Outbox, default_engine

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MSUS_DATA_DIR=str(tmp_path))
    monkeypatch.setenv("MSUS_DATA_DIR", env["MSUS_DATA_DIR"])
    ob = Outbox(default_engine(url))
    item = ob.enqueue(SAMPLES / "phantom_full_tear.dcm", "http://pacs.example/dicom-web")
    sender = textwrap.dedent(f"""
        import sys, time
        from msus.pacs.lock import SenderLock
        from msus.pacs.outbox import Outbox, default_engine
        ob = Outbox(default_engine({url!r}))
        lock = SenderLock(ob.engine, {item.id})
        assert lock.acquire() and ob._claim({item.id}) is not None
        print("claimed", flush=True)
        time.sleep(600)
    """)
    p = subprocess.Popen([sys.executable, "-c", sender], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert p.stdout.readline().strip() == "claimed"
        assert [i.status for i in ob.items()] == ["sending"]

        class Archive:  # records what it is asked; the real archive's de-duplication is tested in test_pacs
            config = type("C", (), {"url": "http://pacs.example/dicom-web"})()
            stored = []

            def has_instance(self, sop, study=None):
                return False

            def store(self, payloads):
                self.stored.extend(payloads)

        live = ob.flush(Archive())
        assert live.sent == () and Archive.stored == []  # a live sender keeps its claim
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        res = ob.flush(Archive())  # at once, not after the 5-minute stale claim
        assert res.sent == (item.sop_instance_uid,) and len(Archive.stored) == 1
    finally:
        if p.poll() is None:
            p.kill()
        ob.engine.dispose()


def test_messages_are_in_the_users_words(tmp_path):
    from msus.errors import LoadError

    ds = pydicom.dcmread(EPIQ)
    ds.file_meta.TransferSyntaxUID = "1.2.3.4"
    bad = tmp_path / "badts.dcm"
    ds.save_as(bad, enforce_file_format=False)
    msg = _one_error(_msus("info", bad))
    assert "unknown transfer syntax" in msg and "ValueError" not in msg
    text = str(LoadError("x: <msus.io._source._MmapReader object at 0x7f3a12> ended; OpenCV(4.10.0) "
                         "/io/opencv/modules/imgcodecs/src/loadsave.cpp:798: error: (-215:Assertion failed) "
                         "!buf.empty(); Invalid data found: '/srv/ultra/sound/loop.mp4'"))
    assert "0x" not in text and ".cpp" not in text and "/srv/" not in text and "'loop.mp4'" in text
