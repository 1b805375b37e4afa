"""One value per gap, signing, locks and amendments in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import text

from msus.errors import FindingLocked, MeasurementError, StoreError
from msus.measure import LABEL_CONTRACTION, LABEL_REST, LABEL_THICKNESS, ROLE_OTHER, make_measurement
from msus.record import finding_values, headline
from msus.store import StoreConflict, identify, open_store
from msus.store.migrate import current_revision, head_revision, upgrade
from test_store import CAL, _cine, store, store_url  # noqa: F401 (fixtures)

AUTO = {"classification": "suspected_full_thickness", "rest_frame": 1, "contraction_frame": 4,
        "gap_rest_mm": 4.72, "gap_contraction_mm": 9.64, "gap_rest_px": 47.2, "gap_contraction_px": 96.4,
        "defect_thickness_fraction": 1.0,
        "reasons": ["defect spans 100 % of the muscle thickness", "defect is 60 % darker than the surrounding muscle",
                    "gap widens 4.9 mm on contraction"]}


def _caliper(frame, length_px, role="", note="", y=10):
    return make_measurement(CAL, frame, (0, y), (length_px, y), role=role, note=note)


def test_role_and_note_are_separate():
    m = _caliper(4, 20, role=LABEL_CONTRACTION)
    assert (m.role, m.label, m.note) == (LABEL_CONTRACTION, LABEL_CONTRACTION, "")
    noted = m.relabel("fibre end to fibre end")  # free text is a note: the role stays
    assert (noted.role, noted.label, noted.note) == (LABEL_CONTRACTION, LABEL_CONTRACTION, "fibre end to fibre end")
    assert noted.with_role(LABEL_THICKNESS).note == "fibre end to fibre end"
    assert noted.relabel("").role == ROLE_OTHER and noted.relabel("").label == ""
    legacy = make_measurement(CAL, 0, (0, 0), (3, 0), label="proximal stump")  # an old free-text label
    assert (legacy.role, legacy.label) == (ROLE_OTHER, "proximal stump")
    with pytest.raises(MeasurementError, match="role"):
        _caliper(0, 5, role="gap at lunch")
    assert finding_values([noted]).contraction.length_mm == pytest.approx(2.0)


def test_finding_reads_the_readers_calipers_and_never_second_reads(store):
    c = _cine(21)
    sf = store.save_finding(c, AUTO, reviewer="Ana", kind="automatic")
    assert (sf.gap_rest_mm, sf.gap_contraction_mm) == (4.72, 9.64)  # automatic until edited
    rest = store.add_measurement(c, _caliper(1, 47.2, LABEL_REST), reviewer="Ana")
    con = store.add_measurement(c, _caliper(4, 96.4, LABEL_CONTRACTION), reviewer="Ana")
    moved = make_measurement(CAL, 4, (0, 10), (101.2, 10), role=LABEL_CONTRACTION)
    store.update_measurement(dataclasses.replace(moved, id=con.id), expected_version=1, reviewer="Ana")
    store.add_measurement(c, _caliper(4, 97.2, LABEL_CONTRACTION), reviewer="Dr Bo")  # a second read
    f = store.latest_finding(c)
    assert f.gap_rest_mm == pytest.approx(4.72) and f.gap_contraction_mm == pytest.approx(10.12)
    assert f.retraction_mm == pytest.approx(5.40) and f.kind == "automatic-edited"  # a reader caliper replaced one
    assert f.extra["sources"][LABEL_CONTRACTION]["measurement_id"] == con.id
    assert "gap widens 5.4 mm on contraction" in f.reasons and any("darker" in r for r in f.reasons)
    assert headline(f.to_dict()) == ("Gap 4.72 mm at rest (frame 2) → 10.12 mm at contraction (frame 5), "
                                     "Δgap +5.40 mm")
    row = {r.loop_key: r for r in store.study_list()}[identify(c).loop_key]
    assert (row.gap_contraction_mm, row.retraction_mm) == pytest.approx((10.12, 5.40))
    store.delete_measurement(rest.id, expected_version=1, reviewer="Ana")  # back to the automatic rest gap
    assert store.latest_finding(c).gap_rest_mm == pytest.approx(4.72)
    assert "recompute" in [e.action for e in store.audit(c)]


def test_signed_finding_is_locked_and_changes_only_by_amendment(store):
    c = _cine(22)
    sf = store.save_finding(c, AUTO, reviewer="Ana", kind="automatic")
    con = store.add_measurement(c, _caliper(4, 96.4, LABEL_CONTRACTION), reviewer="Ana")
    f = store.latest_finding(c)
    final = store.finalize_finding(f.id, expected_version=f.version, reviewer="Dr Bo")
    assert (final.status, final.signed_by, final.reviewer) == ("final", "Dr Bo", "Ana") and final.signed_at
    moved = dataclasses.replace(make_measurement(CAL, 4, (0, 10), (110, 10), role=LABEL_CONTRACTION), id=con.id)
    with pytest.raises(FindingLocked, match="amend"):
        store.update_measurement(moved, expected_version=1, reviewer="Ana")
    with pytest.raises(FindingLocked):
        store.add_measurement(c, _caliper(1, 50, LABEL_REST), reviewer="Ana")
    with pytest.raises(FindingLocked):
        store.delete_measurement(con.id, expected_version=1, reviewer="Ana")
    with pytest.raises(FindingLocked, match="final"):
        store.update_finding(sf.id, {"classification": "partial"}, expected_version=final.version, reviewer="Ana")
    with pytest.raises(FindingLocked):
        store.save_finding(c, AUTO, reviewer="Ana")
    store.add_measurement(c, _caliper(4, 97.0, LABEL_CONTRACTION), reviewer="Dr Bo")  # second reads stay open
    assert store.latest_finding(c).gap_contraction_mm == pytest.approx(9.64)
    with pytest.raises(StoreError, match="reason"):
        store.amend_finding(final.id, reason="  ", expected_version=final.version, reviewer="Ana")
    with pytest.raises(StoreConflict):
        store.amend_finding(final.id, reason="x", expected_version=final.version - 1, reviewer="Ana")
    v2 = store.amend_finding(final.id, reason="contraction caliper to the fibre end", expected_version=final.version,
                             reviewer="Ana")
    assert (v2.status, v2.supersedes, v2.amendment_no, v2.reviewer) == ("draft", final.id, 1, "Ana")
    assert store.latest_finding(c).id == v2.id
    with pytest.raises(FindingLocked, match="already amended"):
        store.amend_finding(final.id, reason="again", expected_version=final.version + 1, reviewer="Ana")
    store.update_measurement(moved, expected_version=1, reviewer="Ana")  # unlocked by the amendment
    v2 = store.latest_finding(c)
    assert v2.gap_contraction_mm == pytest.approx(11.0)
    signed = store.finalize_finding(v2.id, expected_version=v2.version, reviewer="Dr Bo")
    assert (signed.status, signed.signed_by) == ("amended", "Dr Bo")
    with pytest.raises(FindingLocked):
        store.update_measurement(dataclasses.replace(moved, x2=120.0), expected_version=2, reviewer="Ana")
    old = store.finding_chain(signed.id)
    assert [f.id for f in old] == [final.id, signed.id] and old[0].superseded_by == signed.id
    assert old[0].gap_contraction_mm == pytest.approx(9.64) and old[0].status == "final"  # the record as signed
    log = [e for e in store.audit(c) if e.entity == "finding"]
    assert [e.action for e in log if e.action != "recompute"] == ["create", "finalize", "amend", "finalize"]
    amend = next(e for e in log if e.action == "amend")
    assert (amend.entity_id, amend.before["id"], amend.after["supersedes"]) == (signed.id, final.id, final.id)
    assert amend.after["amendment_reason"] == "contraction caliper to the fibre end" and amend.reviewer == "Ana"
    row = {r.loop_key: r for r in store.study_list()}[identify(c).loop_key]
    assert (row.status, row.signed_by, row.amendment_no) == ("amended", "Dr Bo", 1)


def _raw_0002(engine) -> None:
    """Rows as a store at revision 0002 wrote them (a final finding, a free-text and a role label)."""
    ts = "2026-11-30T10:00:00.000+00:00"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO studies (id, key, created_at) VALUES (1, 'st', :t)"), {"t": ts})
        conn.execute(text("INSERT INTO series (id, study_id, key, created_at) VALUES (1, 1, 'se', :t)"), {"t": ts})
        conn.execute(text("INSERT INTO loops (id, series_id, key, kind, source_name, n_frames, rows, columns, fps, "
                          "created_at) VALUES (1, 1, 'lp', 'dicom', 'old.dcm', 6, 24, 32, 20, :t)"), {"t": ts})
        conn.execute(text("INSERT INTO reviewers (id, name, created_at) VALUES (1, 'Ana', :t), (2, 'Dr Bo', :t)"), {"t": ts})
        for mid, label in (("m1", "gap at rest"), ("m2", "fibre end to fibre end")):
            conn.execute(text(
                "INSERT INTO measurements (id, loop_id, reviewer_id, frame_index, x1, y1, x2, y2, length_px, "
                "length_mm, calibration_source, warnings, label, kind, created_at, updated_at, version) VALUES "
                "(:id, 1, 1, 1, 0, 0, 47, 0, 47, 4.7, 'manual', '[]', :label, 'manual', :t, :t, 1)"),
                {"id": mid, "label": label, "t": ts})
        conn.execute(text(
            "INSERT INTO findings (id, loop_id, reviewer_id, rest_frame, contraction_frame, gap_rest_mm, "
            "gap_contraction_mm, retraction_mm, classification, reasons, calibration_source, kind, status, extra, "
            "created_at, updated_at, version) VALUES ('f1', 1, 1, 1, 4, 4.7, 9.6, 4.9, 'suspected_full_thickness', "
            "'[\"defect spans 100 % of the muscle thickness\"]', 'manual', 'automatic', 'final', '{}', :t, :t, 2)"),
            {"t": ts})
        conn.execute(text("INSERT INTO audit_log (at, reviewer, action, entity, entity_id, loop_id) VALUES "
                          "(:t, 'Ana', 'create', 'finding', 'f1', 1), ('2026-11-30T11:00:00.000+00:00', 'Dr Bo', "
                          "'finalize', 'finding', 'f1', 1)"), {"t": ts})


def test_migration_0003_keeps_old_findings_open(store_url):
    from msus.store.engine import make_engine

    engine = make_engine(store_url)
    upgrade(engine, "0002")
    assert current_revision(engine) == "0002"
    _raw_0002(engine)
    engine.dispose()
    s = open_store(store_url)  # migrates to head on open
    try:
        assert current_revision(s.engine) == head_revision() == "0003"
        ms = {m.id: m.measurement for m in s.measurements("lp")}
        assert (ms["m1"].role, ms["m1"].note) == (LABEL_REST, "")
        assert (ms["m2"].role, ms["m2"].note, ms["m2"].label) == (ROLE_OTHER, "fibre end to fibre end",
                                                                  "fibre end to fibre end")
        f = s.latest_finding("lp")
        assert (f.id, f.status, f.signed_by, f.amendment_no) == ("f1", "final", "Dr Bo", 0)
        assert f.signed_at.startswith("2026-11-30T11:00") and f.gap_contraction_mm == pytest.approx(9.6)
        with pytest.raises(FindingLocked):  # an old final finding is locked too
            s.update_finding("f1", {"classification": "partial"}, expected_version=f.version, reviewer="Ana")
        v2 = s.amend_finding("f1", reason="re-read", expected_version=f.version, reviewer="Dr Bo")
        assert s.latest_finding("lp").id == v2.id and json.loads(json.dumps(v2.to_dict()))["supersedes"] == "f1"
    finally:
        s.close()


def test_an_edited_gap_keeps_what_the_echo_and_the_motion_found():
    from msus.record import reclassify

    motion = ("motion: the ends separate 1.9 mm and 2.4 mm on contraction across 100 % of the thickness; "
              "the region between them moves with neither")
    auto = dict(AUTO, reasons=["defect spans 100 % of the muscle thickness", "echo: defect is 60 % darker than "
                               "the surrounding muscle", "gap widens 4.9 mm on contraction", motion])
    rest = _caliper(1, 47.2, LABEL_REST)
    con = _caliper(4, 101.2, LABEL_CONTRACTION)
    cls, reasons = reclassify(auto, finding_values([rest, con], automatic=auto))
    assert cls == "suspected_full_thickness"
    assert motion in reasons and any(r.startswith("echo:") for r in reasons)
    assert "gap widens 5.4 mm on contraction" in reasons and "gap widens 4.9 mm on contraction" not in reasons
