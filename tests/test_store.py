"""The findings store on SQLite (always) and PostgreSQL (when Debian postgresql is installed)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid

import numpy as np
import pytest
from sqlalchemy import text

from msus.calibration import Calibration, Region
from msus.cine import Cine
from msus.errors import MsusError, StoreError
from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement
from msus.store import StoreConflict, data_dir, identify, open_store
from msus.store.migrate import current_revision, head_revision
from conftest import ROOT, require

CAL = Calibration.manual(0.1)


def _cine(seed: int = 0, n: int = 6, **kw) -> Cine:
    rng = np.random.default_rng(seed)
    kw.setdefault("calibration", CAL)
    return Cine.from_frames(rng.integers(0, 255, (n, 24, 32), dtype=np.uint8), fps=20, **kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'msus.sqlite3'}"
    pg = request.getfixturevalue("pg_server")
    return pg.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


# ---- where it lives ----------------------------------------------------------------------------------
def test_default_sqlite_file_in_data_dir_wal_and_migrated(tmp_path, monkeypatch):
    monkeypatch.setenv("MSUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MSUS_DATABASE_URL", raising=False)
    assert data_dir() == tmp_path / "data"
    s = open_store()
    s.reviewer_id("Dr A")
    db = tmp_path / "data" / "msus.sqlite3"
    assert db.exists()
    assert current_revision(s.engine) == head_revision()
    with s.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    s.close()
    assert not str(db).startswith(str(ROOT))


def test_default_data_dir_is_per_user(monkeypatch, tmp_path):
    monkeypatch.delenv("MSUS_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert data_dir() == tmp_path / "xdg" / "msus"


def test_schema_from_migrations_matches_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from msus.store.models import Base

    assert "pacs_outbox" in Base.metadata.tables  # the PACS outbox is part of the schema (0002)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_outbox_on_a_bare_engine_migrates_and_queues_once(store_url):
    from pydicom.dataset import Dataset

    from msus.pacs.outbox import Outbox
    from msus.store.engine import make_engine

    engine = make_engine(store_url)  # nothing created yet: the outbox runs the store's migrations
    ob = Outbox(engine)
    assert current_revision(engine) == head_revision()
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID = "1.2.840.10008.5.1.4.1.1.88.34", "1.2.3.4.5", "1.2.3"
    ds.file_meta = Dataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    first = ob.enqueue(ds, "http://pacs.invalid/dicom-web", kind="sr")
    again = ob.enqueue(ds, "http://pacs.invalid/dicom-web", kind="sr")
    assert first.id == again.id and first.status == "queued" and ob.pending() == 1
    s = open_store(store_url)  # the store sees the same migrated schema
    assert current_revision(s.engine) == head_revision()
    s.close()
    engine.dispose()


def test_outbox_table_made_before_migration_0002_is_kept(tmp_path):
    from msus.pacs.outbox import Outbox
    from msus.store.engine import make_engine
    from msus.store.migrate import upgrade
    from msus.store.models import OutboxRow

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0001")
    OutboxRow.__table__.create(engine)  # what the outbox used to do itself
    with engine.begin() as c:
        c.execute(OutboxRow.__table__.insert().values(
            archive_url="u", sop_instance_uid="1.2", study_instance_uid="", series_instance_uid="",
            sop_class_uid="", kind="sr", label="", payload=b"x", size_bytes=1, status="queued",
            attempts=0, posts=0, last_error="", note="", created_at="t", updated_at="t"))
    ob = Outbox(engine)
    assert current_revision(engine) == head_revision()
    assert [i.sop_instance_uid for i in ob.items()] == ["1.2"]
    engine.dispose()


def test_reopen_is_a_noop_and_keeps_data(store_url):
    s = open_store(store_url)
    s.add_measurement(_cine(), make_measurement(CAL, 0, (1, 1), (5, 1)), reviewer="Dr A")
    s.close()
    s2 = open_store(store_url)
    assert len(s2.measurements(identify(_cine()).loop_key)) == 1
    s2.close()


def test_unreachable_database_is_one_line_store_error():
    with pytest.raises(StoreError) as e:
        open_store("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    assert "\n" not in str(e.value)


# ---- identity ----------------------------------------------------------------------------------------
def test_identity_dicom_uids_and_content_hash():
    c = _cine(uid="1.2.3.4", meta={"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3"})
    assert identify(c) == identify(c)
    i = identify(c)
    assert (i.loop_key, i.series_key, i.study_key) == ("1.2.3.4", "1.2.3", "1.2")
    a, b = identify(_cine(1)), identify(_cine(1))
    assert a.loop_key == b.loop_key and a.loop_key.startswith("sha256:")
    assert identify(_cine(2)).loop_key != a.loop_key


# ---- measurements -----------------------------------------------------------------------------------
def test_measurement_round_trip_keeps_provenance(store):
    regions = Calibration(
        source="us_region",
        regions=(
            Region(1, 0, 0, 31, 23, delta_x=0.02, delta_y=0.03),
        ),
    )
    c = _cine(3, calibration=regions)
    m = make_measurement(regions, 2, (1.5, 2.25), (20.0, 10.0), label=LABEL_REST, reviewer="Dr A")
    u = make_measurement(Calibration.none(), 3, (0, 0), (3, 4), label="free", reviewer="Dr A")
    saved = store.add_measurement(c, m)
    store.add_measurement(c, u)
    assert saved.version == 1
    got = {s.id: s for s in store.measurements(c)}
    back = got[m.id].measurement
    assert back == m
    assert back.distance.region_index == 1 and back.distance.mm_per_px_y == pytest.approx(0.3)
    assert got[u.id].measurement.length_mm is None and got[u.id].measurement.length_px == pytest.approx(5.0)
    assert got[u.id].measurement.calibration_source == "none"


def test_optimistic_concurrency_refuses_stale_writes(store):
    c = _cine(4)
    m = make_measurement(CAL, 1, (1, 1), (11, 1), label=LABEL_CONTRACTION)
    s1 = store.add_measurement(c, m, reviewer="Dr A")
    moved = m.moved(CAL, (2, 1))
    s2 = store.update_measurement(moved, expected_version=s1.version, reviewer="Dr A")
    assert s2.version == 2 and s2.measurement.length_mm == pytest.approx(0.9)
    with pytest.raises(StoreConflict) as e:  # a second tab still holding version 1
        store.update_measurement(m.moved(CAL, (3, 1)), expected_version=1, reviewer="Dr A")
    assert e.value.current_version == 2
    with pytest.raises(StoreConflict):
        store.delete_measurement(m.id, expected_version=1, reviewer="Dr A")
    with pytest.raises(StoreError, match="belongs to Dr A"):
        store.update_measurement(moved, expected_version=2, reviewer="Dr B")
    with pytest.raises(StoreConflict):
        store.add_measurement(c, m, reviewer="Dr A")  # same id twice
    store.delete_measurement(m.id, expected_version=2, reviewer="Dr A")
    assert store.measurements(c) == []
    assert len(store.measurements(c, include_deleted=True)) == 1
    with pytest.raises(StoreConflict, match="deleted"):
        store.update_measurement(moved, expected_version=3, reviewer="Dr A")


def test_bad_inputs_are_store_errors(store):
    c = _cine(5, n=3)
    with pytest.raises(StoreError, match="reviewer"):
        store.add_measurement(c, make_measurement(CAL, 0, (0, 0), (1, 1)), reviewer="  ")
    with pytest.raises(StoreError, match="outside the loop"):
        store.add_measurement(c, make_measurement(CAL, 7, (0, 0), (1, 1)), reviewer="A")
    with pytest.raises(StoreError, match="classification"):
        store.save_finding(c, {"classification": "torn"}, reviewer="A")
    with pytest.raises(StoreError, match="no stored loop"):
        store.measurements("1.2.999")


# ---- findings and audit -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _FakeFinding:  # shaped like msus.analysis.classify's result
    rest_frame: int
    contraction_frame: int
    gap_rest_mm: float | None
    gap_contraction_mm: float | None
    retraction_mm: float | None
    defect_thickness_fraction: float
    classification: str
    reasons: tuple
    calibration_source: str = "us_region"
    confidence: float = 0.8
    gap_curve_mm: tuple = (1.0, None, 2.0)


def test_findings_draft_to_final_and_audit(store):
    c = _cine(6)
    f = _FakeFinding(1, 4, 2.0, 6.1, 4.1, 1.0, "suspected_full_thickness", ("defect spans 100 % of the muscle thickness",))
    sf = store.save_finding(c, f, reviewer="Sono", kind="automatic")
    assert (sf.status, sf.kind, sf.version) == ("draft", "automatic", 1)
    assert sf.retraction_mm == pytest.approx(4.1) and sf.reasons == f.reasons
    assert sf.extra["confidence"] == 0.8 and sf.extra["gap_curve_mm"] == [1.0, None, 2.0]
    edited = store.update_finding(sf.id, dataclasses.replace(f, gap_rest_mm=2.3, retraction_mm=3.8), expected_version=1, reviewer="Sono", kind="automatic-edited")
    assert edited.gap_rest_mm == pytest.approx(2.3) and edited.kind == "automatic-edited"
    final = store.finalize_finding(sf.id, expected_version=2, reviewer="Dr Phys")
    assert final.status == "final" and final.reviewer == "Sono"
    with pytest.raises(StoreError, match="final"):
        store.update_finding(sf.id, {"classification": "partial"}, expected_version=3, reviewer="Sono")
    with pytest.raises(StoreConflict):
        store.finalize_finding(sf.id, expected_version=2, reviewer="Sono")
    log = store.audit(c)
    assert [(e.reviewer, e.action, e.entity) for e in log] == [
        ("Sono", "create", "finding"),
        ("Sono", "update", "finding"),
        ("Dr Phys", "finalize", "finding"),
    ]
    assert log[1].before["gap_rest_mm"] == 2.0 and log[1].after["gap_rest_mm"] == pytest.approx(2.3)
    assert store.latest_finding(c).id == sf.id
    rows = {r.loop_key: r for r in store.study_list()}
    row = rows[identify(c).loop_key]
    assert (row.status, row.classification, row.reviewers) == ("final", "suspected_full_thickness", ("Sono",))


def test_audit_log_is_append_only_in_the_database(store):
    c = _cine(7)
    store.add_measurement(c, make_measurement(CAL, 0, (0, 0), (3, 0)), reviewer="A")
    with pytest.raises(Exception, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET reviewer = 'someone else'"))
    with pytest.raises(Exception, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
    assert [e.reviewer for e in store.audit(c)] == ["A"]


# ---- concurrency --------------------------------------------------------------------------------------
_WORKER = textwrap.dedent(
    """
    import sys
    from msus.calibration import Calibration, Region
    from msus.measure import make_measurement
    from msus.store import StoreConflict, open_store
    url, loop_key, mid, n, who = sys.argv[1:6]
    cal = Calibration.manual(0.1)
    s = open_store(url)
    conflicts = 0
    for i in range(int(n)):
        s.add_measurement(loop_key, make_measurement(cal, 0, (i, 0), (i, 5), label=who + str(i)), reviewer=who)
        while True:
            cur = next(m for m in s.measurements(loop_key) if m.id == mid)
            m = cur.measurement
            new = make_measurement(cal, m.frame_index, (m.x1 + 1, m.y1), (m.x2, m.y2), label=m.label)
            try:
                s.update_measurement(__import__("dataclasses").replace(new, id=m.id), expected_version=cur.version, reviewer="Owner")
                break
            except StoreConflict:
                conflicts += 1
    print(conflicts, flush=True)
    """
)


def _shared_counter(store):
    c = _cine(8, n=2)
    m = make_measurement(CAL, 1, (0, 0), (100, 0), label="counter")
    store.add_measurement(c, m, reviewer="Owner")
    return identify(c).loop_key, m.id


def _check_counter(store, loop_key, mid, expected_increments, expected_new):
    ms = store.measurements(loop_key)
    counter = next(s for s in ms if s.id == mid)
    # no lost update: every successful increment is there, versions count them exactly
    assert counter.measurement.x1 == expected_increments
    assert counter.version == expected_increments + 1
    assert len(ms) == expected_new + 1
    assert len([e for e in store.audit(loop_key) if e.action == "update"]) == expected_increments


def test_concurrent_writer_processes_never_lose_work(store, store_url):
    loop_key, mid = _shared_counter(store)
    procs, n = 3, 6
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ps = [
        subprocess.Popen([sys.executable, "-c", _WORKER, store_url, loop_key, mid, str(n), f"R{k}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for k in range(procs)
    ]
    outs = [p.communicate(timeout=120) for p in ps]
    assert all(p.returncode == 0 for p in ps), [o[1][-500:] for o in outs]
    _check_counter(store, loop_key, mid, procs * n, procs * n)


def test_concurrent_writer_threads_never_lose_work(store):
    loop_key, mid = _shared_counter(store)
    threads, n = 6, 6
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(k):
        try:
            barrier.wait()
            for i in range(n):
                store.add_measurement(loop_key, make_measurement(CAL, 0, (i, 0), (i, 5), label=f"T{k}-{i}"), reviewer=f"T{k}")
                while True:
                    cur = next(s for s in store.measurements(loop_key) if s.id == mid)
                    m = cur.measurement
                    new = dataclasses.replace(make_measurement(CAL, 1, (m.x1 + 1, 0), (m.x2, 0), label="counter"), id=mid)
                    try:
                        store.update_measurement(new, expected_version=cur.version, reviewer="Owner")
                        break
                    except StoreConflict:
                        continue
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    _check_counter(store, loop_key, mid, threads * n, threads * n)
    names = {s.measurement.reviewer for s in store.measurements(loop_key)}
    assert names == {"Owner"} | {f"T{k}" for k in range(threads)}


# ---- crash safety -------------------------------------------------------------------------------------
_CRASHER = textwrap.dedent(
    """
    import sys, time
    from msus.calibration import Calibration, Region
    from msus.measure import make_measurement
    from msus.store import open_store
    url, loop_key = sys.argv[1:3]
    s = open_store(url)
    cal = Calibration.manual(0.1)
    i = 0
    while True:
        m = make_measurement(cal, 0, (i % 30, 0), (i % 30, 9), label="c%d" % i)
        s.add_measurement(loop_key, m, reviewer="Crash")
        print(m.id, flush=True)   # shown as saved
        i += 1
    """
)


def test_killed_mid_session_loses_nothing_saved(store, store_url):
    c = _cine(9)
    store.register_loop(c)
    loop_key = identify(c).loop_key
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", _CRASHER, store_url, loop_key], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    shown = []
    try:
        while len(shown) < 25:
            line = p.stdout.readline()
            assert line, p.stderr.read()[-500:]
            shown.append(line.strip())
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
    assert p.returncode == -signal.SIGKILL
    again = open_store(store_url)
    saved = {s.id for s in again.measurements(loop_key)}
    assert set(shown) <= saved
    assert len([e for e in again.audit(loop_key) if e.action == "create"]) == len(saved)
    if again.dialect == "sqlite":
        db = again.engine.url.database
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again.close()


def test_store_errors_are_msus_errors():
    assert issubclass(StoreConflict, MsusError)
    json.dumps(dataclasses.asdict(identify(_cine())))
