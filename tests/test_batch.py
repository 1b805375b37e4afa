"""``msus batch`` on a real Dask LocalCluster of 2 worker processes, the test Orthanc and PostgreSQL.

The loops are small phantoms (tests/batch_loops.py) so a batch takes seconds: a folder mixes
multi-frame DICOM loops, a video, a folder of still frames, a single-frame DICOM series folder, a
broken file and notes that are not loops.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import uuid
from contextlib import redirect_stdout
from pathlib import Path

import pyarrow.parquet as pq
import pydicom
import pytest

from batch_loops import broken_copy, split_into_series, write_loop
from msus.batch import (BASE_COLUMNS, REVIEWER, BatchItem, BatchSettings, batch_items, cluster, folder_items,
                        memory_per_worker, native_threads, parse_pacs_query, process_loop, run_batch)
from msus.cli import main
from msus.errors import PacsError
from msus.io.tree import find_loops
from msus.store import open_store

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A folder tree of every kind of loop, a broken file and files that are not loops."""
    root = tmp_path_factory.mktemp("cohort")
    (root / "week1").mkdir()
    full = write_loop(root / "week1", "b_full", "full", seed=11)
    write_loop(root / "week1", "b_partial", "partial", seed=12)
    write_loop(root, "b_intact", "none", seed=13)
    split_into_series(full, root / "week2" / "series_a")
    shutil.copy(SAMPLES / "phantom_full_tear_tilted.mp4", root / "week2" / "tilted.mp4")
    shutil.copytree(DATA / "gastroc_jumping_frames", root / "frames")
    broken_copy(full, root / "week1" / "broken.dcm")
    (root / "notes.txt").write_text("not a loop")
    (root / "week1" / "b_full.truth.json").write_text("{}")
    return root


EXPECTED = ["b_intact.dcm", "frames/", "week1/b_full.dcm", "week1/b_partial.dcm", "week1/broken.dcm",
            "week2/series_a/", "week2/tilted.mp4"]


def _cli(argv) -> tuple[int, list[dict]]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(argv)
    return code, [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


# ---- finding the loops -----------------------------------------------------------------------------
def test_tree_lists_each_loop_once(cohort):
    assert sorted(i.source for i in folder_items(cohort)) == EXPECTED
    loops = {lp.relative_to(cohort): lp for lp in find_loops(cohort)}
    assert loops["week2/series_a/"].what == "dicom-series" and loops["week2/series_a/"].series
    assert loops["frames/"].what == "image-sequence"
    assert find_loops(cohort / "b_intact.dcm")[0].path == cohort / "b_intact.dcm"


def test_pacs_query_syntax():
    q = parse_pacs_query("pacs:modality=US&date=20250101-20250131&body_part=THIGH&patient_id=P1,P2")
    assert q == {"modality": "US", "date_from": "20250101", "date_to": "20250131", "body_part": "THIGH",
                 "patient_id": ["P1", "P2"]}
    assert parse_pacs_query("pacs:")["modality"] == "US"
    assert parse_pacs_query("pacs:modality=any&date=20250105")["modality"] is None
    assert parse_pacs_query("pacs:date=20250105")["date_to"] == "20250105"
    with pytest.raises(PacsError, match="key=value"):
        parse_pacs_query("pacs:colour=red")
    with pytest.raises(PacsError, match="whole number"):
        parse_pacs_query("pacs:limit=lots")


# ---- the CLI on a local cluster --------------------------------------------------------------------
def test_cli_batch_over_a_mixed_folder(cohort, tmp_path, monkeypatch):
    db = tmp_path / "store.sqlite3"
    monkeypatch.setenv("MSUS_DATABASE_URL", f"sqlite:///{db}")
    out = tmp_path / "table"
    code, events = _cli(["batch", str(cohort), "--workers", "2", "--out", str(out), "--json"])
    assert code == 0
    start, loops, summ = events[0], events[1:-1], events[-1]
    assert start["event"] == "start" and start["loops"] == len(EXPECTED) and start["workers"] == 2
    assert start["dashboard"] is None or start["dashboard"].startswith("http")
    assert [e["done"] for e in loops] == list(range(1, len(EXPECTED) + 1))
    assert summ["event"] == "summary" and summ["failed"] == 1 and summ["analysed"] == len(EXPECTED) - 1
    assert summ["failures"][0]["source"] == "week1/broken.dcm"
    assert sum(summ["classifications"].values()) == len(EXPECTED) - 1 and summ["loops_per_minute"] > 0

    with open(out.with_suffix(".csv"), newline="") as fh:
        rows = {r["source"]: r for r in csv.DictReader(fh)}
    table = pq.read_table(out.with_suffix(".parquet")).to_pylist()
    assert sorted(rows) == EXPECTED and sorted(r["source"] for r in table) == EXPECTED
    assert list(pq.read_schema(out.with_suffix(".parquet")).names[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    by = {r["source"]: r for r in table}
    broken = by["week1/broken.dcm"]
    assert broken["status"] == "failed" and "truncated" in broken["error"] and "\n" not in broken["error"]
    assert by["week2/series_a/"]["n_frames"] == 16 and by["week2/series_a/"]["series"]
    assert by["week1/b_full.dcm"]["classification"] == "suspected_full_thickness"
    assert by["week1/b_full.dcm"]["gap_rest_mm"] > 0 and by["week2/tilted.mp4"]["gap_rest_mm"] is None
    assert by["b_intact.dcm"]["classification"] == "no_defect"
    for r in table:
        if r["status"] != "failed":
            assert r["digest"].startswith("sha256:") and r["finding_id"] and r["analyze_s"] > 0 and r["total_s"] > 0

    store = open_store(f"sqlite:///{db}")
    listed = {r.source_name: r for r in store.study_list()}
    assert len(listed) == len(EXPECTED) - 1
    for r in listed.values():
        assert r.status == "draft" and r.reviewers == (REVIEWER,)
        assert r.origin == f"automatic, batch of {start['date']}"
    f = store.latest_finding(by["week1/b_full.dcm"]["loop_key"])
    assert f.kind == "automatic" and f.extra["batch"]["digest"] == by["week1/b_full.dcm"]["digest"]
    assert f.gap_rest_mm == pytest.approx(by["week1/b_full.dcm"]["gap_rest_mm"])

    # again: everything done is skipped (the broken file fails again), nothing is written twice
    code, events = _cli(["batch", str(cohort), "--workers", "2", "--out", str(tmp_path / "again"), "--json"])
    summ2 = events[-1]
    assert code == 0 and summ2["skipped"] == len(EXPECTED) - 1 and summ2["failed"] == 1 and summ2["analysed"] == 0
    again = {r["source"]: r for r in pq.read_table(tmp_path / "again.parquet").to_pylist()}
    for src, r in by.items():
        if r["status"] != "failed":
            assert again[src]["status"] == "skipped" and again[src]["finding_id"] == r["finding_id"]
            assert again[src]["classification"] == r["classification"]
            assert again[src]["fb_error_px"] == pytest.approx(r["fb_error_px"])
    assert all(len(store.findings(r["loop_key"])) == 1 for r in by.values() if r["loop_key"])

    # --redo analyses again and adds one new finding per loop
    code, events = _cli(["batch", str(cohort), "--workers", "2", "--out", str(tmp_path / "redo"), "--json", "--redo"])
    assert code == 0 and events[-1]["analysed"] == len(EXPECTED) - 1
    assert all(len(store.findings(r["loop_key"])) == 2 for r in by.values() if r["loop_key"])
    store.close()


def test_cli_text_summary_and_bad_source(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MSUS_DATABASE_URL", f"sqlite:///{tmp_path / 's.sqlite3'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["batch", str(empty), "--out", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "loops: 0" in out and "t.csv" in out
    assert (tmp_path / "t.parquet").exists()
    assert main(["batch", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("msus: error:") and "no such file" in err and "Traceback" not in err


# ---- the engine ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    with cluster(workers=2) as c:
        yield c


def test_local_cluster_is_sized_per_worker(client):
    workers = client.scheduler_info()["workers"].values()
    assert len(workers) == 2
    for w in workers:
        assert w["nthreads"] == 1 and w["memory_limit"] == memory_per_worker(2)
    assert len(set(client.run(os.getpid).values())) == 2  # processes, not threads


def test_each_worker_runs_native_code_in_one_thread(client):
    """The BLAS and OpenCV pools of both worker processes are limited to their one Dask thread."""
    def ask() -> dict:  # nested: pickled by value to the workers
        import cv2
        import scipy.linalg  # noqa: F401  (SciPy's own BLAS, loaded by the analysis)
        from threadpoolctl import threadpool_info

        info = threadpool_info()
        return {"blas_libs": len(info), "blas": sorted({i["num_threads"] for i in info}), "opencv": cv2.getNumThreads()}

    got = client.run(ask)
    assert len(got) == 2
    for info in got.values():
        assert info["blas_libs"] >= 1 and info["blas"] == [1] and info["opencv"] == 1, info


def test_on_an_existing_scheduler_native_pools_follow_the_workers_threads():
    """A worker of someone else's cluster with 3 Dask threads gets pools of 3 (not one per core)."""
    from distributed import LocalCluster

    def ask() -> dict:
        import cv2
        from threadpoolctl import threadpool_info

        return {"blas": sorted({i["num_threads"] for i in threadpool_info()}), "opencv": cv2.getNumThreads()}

    with LocalCluster(n_workers=1, threads_per_worker=3, processes=True, dashboard_address=None) as lc:
        with cluster(scheduler=lc.scheduler_address, workers=1) as c:
            (got,) = c.run(ask).values()
    assert got == {"blas": [3], "opencv": 3}


def test_the_plain_run_can_use_one_thread_and_gives_them_back():
    import cv2
    import scipy.linalg  # noqa: F401  (loaded first, so that "before" sees every pool)
    from threadpoolctl import threadpool_info

    before = (cv2.getNumThreads(), [i["num_threads"] for i in threadpool_info()])
    with native_threads(1):
        assert cv2.getNumThreads() == 1 and {i["num_threads"] for i in threadpool_info()} == {1}
    assert (cv2.getNumThreads(), [i["num_threads"] for i in threadpool_info()]) == before


def test_a_killed_worker_loses_nothing_and_writes_nothing_twice(client, tmp_path):
    for k in range(10):
        write_loop(tmp_path / "loops", f"k_{k}", ("full", "partial", "none")[k % 3], n_frames=24, seed=100 + k)
    items = folder_items(tmp_path / "loops")
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    settings = BatchSettings.local(store_url=url)
    killed: dict = {}

    def kill_a_busy_worker(row, done):
        if killed:
            return
        busy = {addr: keys for addr, keys in client.processing().items() if keys}
        addr = next(iter(busy))
        pid = client.run(os.getpid, workers=[addr])[addr]
        killed.update(addr=addr, keys=set(busy[addr]), pid=pid)
        os.kill(pid, signal.SIGKILL)

    rows = run_batch(items, client, settings, on_row=kill_a_busy_worker)
    assert killed, "no worker was killed"
    assert [r["source"] for r in rows] == [i.source for i in items]
    assert all(r["status"] == "analysed" for r in rows), [r.get("error") for r in rows]
    # the killed worker's loops ran again on another worker
    rerun = [r for i, r in enumerate(rows) if f"msus-loop-{settings.batch_id[:12]}-{i}" in killed["keys"]]
    assert rerun and any(r["worker"] != killed["addr"] for r in rerun)
    assert killed["pid"] not in client.run(os.getpid).values()
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed one: it gets the plugin too
    assert set(client.run(lambda: __import__("cv2").getNumThreads()).values()) == {1}
    store = open_store(url)
    for r in rows:
        assert len(store.findings(r["loop_key"])) == 1, r["source"]
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("pg_server").create_database(f"batch_{uuid.uuid4().hex[:12]}")


def test_a_retried_task_writes_its_finding_once(tmp_path, store_url):
    """A task re-run after its worker died (it may have written already) adds no second finding."""
    path = write_loop(tmp_path, "once", "full", seed=21)
    item = BatchItem("once.dcm", path=str(path))
    settings = BatchSettings.local(store_url=store_url, redo=True)
    first, second = process_loop(item, settings), process_loop(item, settings)
    assert first["status"] == second["status"] == "analysed" and first["finding_id"] == second["finding_id"]
    store = open_store(store_url)
    assert len(store.findings(first["loop_key"])) == 1
    process_loop(item, BatchSettings.local(store_url=store_url, redo=True))  # another batch, --redo
    assert len(store.findings(first["loop_key"])) == 2
    skipped = process_loop(item, BatchSettings.local(store_url=store_url))
    assert skipped["status"] == "skipped" and len(store.findings(first["loop_key"])) == 2
    store.close()


def test_a_signed_finding_stands_over_a_batch_redo(tmp_path, store_url):
    """A loop whose finding a reviewer signed is skipped (with the reason), even with --redo."""
    path = write_loop(tmp_path, "signed", "full", seed=22)
    item = BatchItem("signed.dcm", path=str(path))
    first = process_loop(item, BatchSettings.local(store_url=store_url))
    store = open_store(store_url)
    (f,) = store.findings(first["loop_key"])
    store.finalize_finding(f.id, expected_version=f.version, reviewer="Dr Bo")
    again = process_loop(item, BatchSettings.local(store_url=store_url, redo=True))
    assert again["status"] == "skipped" and "signed by Dr Bo" in again["error"]
    assert again["finding_id"] == f.id and len(store.findings(first["loop_key"])) == 1
    store.close()


# ---- a PACS query ----------------------------------------------------------------------------------
@pytest.mark.orthanc
def test_pacs_query_batch(orthanc, client, tmp_path, pg_server):
    from msus.pacs.client import Archive
    from msus.pacs.config import PacsConfig

    pid = f"MSUS-BATCH-{uuid.uuid4().hex[:8]}"
    a = write_loop(tmp_path, "p_full", "full", seed=41, PatientID=pid, StudyDate="20240510")
    b = write_loop(tmp_path, "p_none", "none", seed=32, PatientID=pid, StudyDate="20240510")
    c = write_loop(tmp_path, "p_shoulder", "full", seed=33, body_part="SHOULDER", PatientID=pid, StudyDate="20240510")
    files = [a, b, c, *split_into_series(a, tmp_path / "series")]
    for p in files[3:]:  # the single-frame series belongs to the same patient
        ds = pydicom.dcmread(p)
        ds.PatientID = pid
        ds.save_as(p, enforce_file_format=True)
    config = PacsConfig(url=orthanc.dicomweb_url, timeout_s=10)
    with Archive(config) as archive:
        assert archive.store(files).ok
        items = batch_items(f"pacs:patient_id={pid}&body_part=THIGH&date=20240501-20240531", archive)
        none_in_may = batch_items(f"pacs:patient_id={pid}&date=20240601-20240630", archive)
    assert none_in_may == []
    assert len(items) == 3  # two multi-frame loops and the single-frame series; the shoulder is filtered out
    assert sum(1 for i in items if i.sop_uid is None) == 1
    url = pg_server.create_database(f"batchpacs_{uuid.uuid4().hex[:12]}")
    settings = BatchSettings.local(store_url=url, pacs_config=config)
    rows = run_batch(items, client, settings)
    assert all(r["status"] == "analysed" for r in rows), [r.get("error") for r in rows]
    got = sorted(r["classification"] for r in rows)
    assert got == ["no_defect", "suspected_full_thickness", "suspected_full_thickness"]
    series_row = next(r for r, i in zip(rows, items) if i.sop_uid is None)
    assert series_row["n_frames"] == 16
    local = process_loop(BatchItem("p_full.dcm", path=str(a)), BatchSettings.local(store_url=f"sqlite:///{tmp_path / 'l.db'}"))
    remote = next(r for r in rows if r["loop_key"] == local["loop_key"])
    assert remote["digest"] == local["digest"] and remote["gap_rest_mm"] == pytest.approx(local["gap_rest_mm"])
    store = open_store(url)
    assert {r.origin for r in store.study_list()} == {f"automatic, batch of {settings.date}"}
    again = run_batch(items, client, BatchSettings.local(store_url=url, pacs_config=config))
    assert [r["status"] for r in again] == ["skipped"] * 3
    store.close()
