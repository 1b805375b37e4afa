"""The rules the app's panels call, tested without Streamlit: autosave of a review's calipers
(msus.store.autosave), the analysis saved as a draft once (Store.save_analysis), a suggested gap
accepted through Review, and the Export panel never running the analysis by itself."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from msus.calibration import Calibration
from msus.cine import Cine
from msus.errors import FindingLocked, MeasurementError
from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement
from msus.store import open_store
from msus.store.autosave import CaliperSync, lock_reason, saved_marks
from msus.ui.review import Review

CAL = Calibration.manual(0.2)


def _cine(seed: int = 7) -> Cine:
    rng = np.random.default_rng(seed)
    return Cine.from_frames(rng.integers(0, 255, (6, 40, 60), dtype=np.uint8), fps=10, calibration=CAL)


def _result(**kw):
    """An analysis result as Review.accept_gap and Store.save_analysis read it (left stumps at three
    depths, then right stumps at the same depths)."""
    stumps = {1: [(10, 5), (10, 10), (10, 15), (30, 5), (30, 10), (30, 15)],
              4: [(8, 5), (8, 10), (8, 15), (40, 5), (40, 10), (40, 15)]}
    d = dict(rest_frame=1, contraction_frame=4, gap_rest_mm=4.0, gap_contraction_mm=6.4, retraction_mm=2.4,
             gap_rest_px=20.0, gap_contraction_px=32.0, defect_thickness_fraction=1.0, calibration_source="manual",
             classification="suspected_full_thickness", reasons=("defect spans 100 % of the muscle thickness",),
             finding=None, defect_rest=None, defect_contraction=None, defect_found=True,
             stumps_at=lambda i: stumps.get(i, []))
    d.update(kw)
    return SimpleNamespace(**d)


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'msus.sqlite3'}")
    yield s
    s.close()


def test_accept_gap_adds_the_middle_depth_caliper_through_the_review():
    cine = _cine()
    rv = Review.for_cine(cine, "loop")
    seen = []
    rv.on_measurement_changed(lambda action, m, r: seen.append((action, m.id)))
    m = rv.accept_gap(_result(), "rest")
    assert (m.frame_index, m.role, m.kind) == (1, LABEL_REST, "automatic")
    assert ((m.x1, m.y1), (m.x2, m.y2)) == ((10, 10), (30, 10))  # the middle tracked depth
    assert m.length_mm == pytest.approx(4.0)
    assert seen == [("added", m.id)] and rv.measurements == [m]
    c = rv.accept_gap(_result(), "contraction")
    assert (c.frame_index, c.role, c.length_px) == (4, LABEL_CONTRACTION, pytest.approx(32.0))
    with pytest.raises(MeasurementError, match="no stump positions"):
        rv.accept_gap(_result(contraction_frame=3), "contraction")
    rv.locked = "signed"
    with pytest.raises(FindingLocked):
        rv.accept_gap(_result(), "rest")
    assert len(rv.measurements) == 2 and len(seen) == 2


def test_listeners_belong_to_one_review():
    cine = _cine()
    a, b = Review.for_cine(cine, "a"), Review.for_cine(cine, "b")
    seen = []
    a.on_measurement_changed(lambda action, m, r: seen.append(r.loop_key))
    b.add_caliper(0, (1, 1), (11, 1))
    a.add_caliper(0, (1, 1), (11, 1))
    assert seen == ["a"]


def test_caliper_sync_saves_every_change_with_its_version(store):
    cine = _cine()
    ref = store.register_loop(cine)
    rv = Review.for_cine(cine, "loop")
    early = rv.add_caliper(1, (5, 5), (25, 5), label=LABEL_REST)  # before the reviewer was chosen
    sync = CaliperSync(store, ref.key, "Dr Ada")
    assert sync.restore(rv.measurements) == []
    assert sync.save_missing(rv.measurements) == [] and sync.saved_count(rv.measurements) == 1
    rv.on_measurement_changed(sync)
    m = rv.add_caliper(4, (5, 5), (45, 5), label=LABEL_CONTRACTION)
    rv.move_caliper(m.id, (5, 5), (40, 5))
    rv.delete(early.id)
    assert not rv.messages, rv.messages
    (saved,) = store.measurements(ref, reviewer="Dr Ada")
    assert saved.id == m.id and saved.version == 2 and saved.measurement.length_mm == pytest.approx(7.0)
    # someone changed it meanwhile: the write is refused (one line), nothing overwritten
    store.update_measurement(saved.measurement.moved(CAL, (5, 5), (30, 5)), expected_version=2, reviewer="Dr Ada")
    rv.move_caliper(m.id, (5, 5), (50, 5))
    assert [lvl for lvl, _ in rv.messages] == ["error"] and "saving the measurement failed" in rv.messages[0][1]
    assert store.measurements(ref)[0].measurement.length_mm == pytest.approx(5.0)
    # another day: a fresh review gets the saved caliper back, and the frames it points at
    fresh = Review.for_cine(cine, "loop")
    back = CaliperSync(store, ref.key, "Dr Ada").restore(fresh.measurements)
    assert [s.id for s in back] == [m.id]
    assert saved_marks(back, None, fresh.n_frames) == {"contraction": 4}


def test_the_analysis_is_saved_once_and_a_signed_finding_stands(store):
    cine = _cine()
    ref = store.register_loop(cine)
    assert store.save_analysis(ref, _result(classification=None), reviewer="Dr Ada") is None
    first = store.save_analysis(ref, _result(), reviewer="Dr Ada")
    assert first is not None and first.kind == "automatic" and first.extra["analysis_digest"]
    assert store.save_analysis(ref, _result(), reviewer="Dr Ada") is None  # the same result: once
    other = store.save_analysis(ref, _result(gap_contraction_mm=7.0), reviewer="Dr Ada")
    assert other is not None and len(store.findings(ref)) == 2
    signed = store.finalize_finding(other.id, expected_version=other.version, reviewer="Dr Ada")
    assert store.save_analysis(ref, _result(gap_contraction_mm=9.0), reviewer="Dr Ada") is None
    assert len(store.findings(ref)) == 2
    assert "signed by Dr Ada" in lock_reason(signed, "Dr Ada") and lock_reason(signed, "Dr Bo") is None
    assert saved_marks((), signed, 6) == {"rest": 1, "contraction": 4}
    assert saved_marks((), signed, 3) == {"rest": 1}  # a frame outside the loop is not marked


def test_the_export_panel_exports_the_saved_record_and_never_runs_the_analysis(tmp_path, monkeypatch):
    import json

    import msus.analysis
    from msus.ui import export_panel

    monkeypatch.setenv("MSUS_DATABASE_URL", f"sqlite:///{tmp_path / 'team.sqlite3'}")

    def boom(*a, **k):
        raise AssertionError("the export panel ran the analysis")

    monkeypatch.setattr(msus.analysis, "analyze", boom)
    cine = _cine(seed=11)
    blob, name, automatic = export_panel.build("json", cine, tmp_path / "loop.dcm")
    doc = json.loads(blob)
    assert not automatic and name == "loop-json.json" and not doc["measurements"]
    blob, _, automatic = export_panel.build("json", cine, tmp_path / "loop.dcm", analysis=_result())
    assert automatic and json.loads(blob)["finding"]["classification"] == "suspected_full_thickness"
    # once saved, the store's finding is what is exported (the analysis on the page is not)
    from msus.ui.store_panels import get_store

    store = get_store()
    ref = store.register_loop(cine)
    store.save_analysis(ref, _result(), reviewer="Dr Ada")
    blob, _, automatic = export_panel.build("json", cine, tmp_path / "loop.dcm", analysis=_result(classification="partial"))
    doc = json.loads(blob)
    assert not automatic and doc["finding"]["classification"] == "suspected_full_thickness"
    assert doc["finding"]["reviewer"] == "Dr Ada"


def test_the_retraction_card_reads_the_finding_else_the_own_calipers():
    from msus.record import finding_values, other_readers, retraction, second_reads_line

    rest = make_measurement(CAL, 1, (5, 5), (25, 5), label=LABEL_REST, reviewer="Dr Ada")
    con = make_measurement(CAL, 4, (5, 5), (45, 5), label=LABEL_CONTRACTION, reviewer="Dr Ada")
    bo = make_measurement(CAL, 4, (5, 5), (40, 5), label=LABEL_CONTRACTION, reviewer="Dr Bo")
    own = finding_values([rest, con])
    assert retraction(None, finding_values([rest])) is None
    r = retraction(None, own)
    assert (r.rest, r.contraction, r.delta, r.calibrated) == ("4.00 mm", "8.00 mm", "+4.00 mm", True)
    assert r.whose == "your calipers (no finding saved)"
    saved = {"gap_rest_mm": None, "gap_rest_px": 20.0, "gap_contraction_mm": None, "gap_contraction_px": 44.0,
             "retraction_mm": None, "rest_frame": 1, "contraction_frame": 4, "reviewer": "Dr Cy", "status": "final"}
    r = retraction(saved, own)  # the saved finding wins over the calipers on screen
    assert (r.delta, r.calibrated, r.whose) == ("+24.0 px (uncalibrated)", False, "the finding of Dr Cy (final)")
    assert other_readers([rest, con, bo], "Dr Ada") == {"Dr Bo": [bo]}
    assert other_readers([rest, con, bo], "Dr Bo", mine=[rest.id]) == {"Dr Ada": [con]}
    assert second_reads_line([rest, con, bo], "Dr Ada") == "Dr Bo: gap at contraction 7.00 mm (frame 5)"
