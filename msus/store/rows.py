"""Rows ↔ values: the store's table rows as the frozen values it returns, and back.

Also the one Loop → Series → Study join (:func:`loop_select`) every loop lookup uses.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from msus.calibration import Distance
from msus.measure import Measurement
from msus.store.models import FindingRow, Loop, MeasurementRow, Series, Study
from msus.store.values import FINDING_FIELDS, LoopRef, StoredFinding, StoredMeasurement, _opt_float

SIGN_FIELDS = ("signed_by", "signed_at", "supersedes", "superseded_by", "amendment_no", "amendment_reason")
BASELINE = ("rest_frame", "contraction_frame", "gap_rest_mm", "gap_contraction_mm", "gap_rest_px",
            "gap_contraction_px", "retraction_mm", "classification", "reasons")


# ---- loops ----------------------------------------------------------------------------------------
def loop_select():
    """``SELECT loop, series.key, study.key`` over the loop's series and study (add a ``where``)."""
    return (select(Loop, Series.key, Study.key)
            .join(Series, Loop.series_id == Series.id)
            .join(Study, Series.study_id == Study.id))


def loop_ref(row) -> LoopRef:
    """A :class:`LoopRef` from one row of :func:`loop_select`."""
    lp, series_key, study_key = row
    return LoopRef(lp.id, lp.key, series_key, study_key, lp.kind, lp.source_name, lp.n_frames, lp.rows, lp.columns,
                   lp.fps)


# ---- measurements ---------------------------------------------------------------------------------
def m_snapshot(r: MeasurementRow) -> dict:
    """A measurement row as the audit log records it."""
    keys = ("frame_index", "x1", "y1", "x2", "y2", "length_px", "length_mm", "calibration_source", "region_index",
            "label", "role", "note", "kind", "version")
    return {k: getattr(r, k) for k in keys}


def m_columns(m: Measurement) -> dict:
    """The ``measurements`` columns that come from the caliper itself (ends, length, calibration, label)."""
    d = m.distance
    return dict(
        frame_index=int(m.frame_index), x1=float(m.x1), y1=float(m.y1), x2=float(m.x2), y2=float(m.y2),
        length_px=float(d.distance_px), length_mm=_opt_float(d.distance_mm),
        calibration_source=d.calibration_source, region_index=d.region_index,
        mm_per_px_x=_opt_float(d.mm_per_px_x), mm_per_px_y=_opt_float(d.mm_per_px_y),
        warnings=json.dumps(list(d.warnings)), label=m.label, role=m.role, note=m.note, kind=m.kind,
    )


def m_live_at(measurement_id: str, expected_version: int) -> tuple:
    """WHERE conditions of an optimistic write: this caliper, still at that version, not deleted."""
    return (
        MeasurementRow.id == measurement_id,
        MeasurementRow.version == int(expected_version),
        MeasurementRow.deleted_at.is_(None),
    )


def to_stored_measurement(r: MeasurementRow, reviewer: str, loop_key: str) -> StoredMeasurement:
    dist = Distance(r.length_px, r.length_mm, r.calibration_source, r.region_index, r.mm_per_px_x, r.mm_per_px_y,
                    tuple(json.loads(r.warnings or "[]")))
    m = Measurement(r.frame_index, r.x1, r.y1, r.x2, r.y2, dist, r.label, r.kind, reviewer, r.id, r.created_at,
                    role=r.role or "", note=r.note or "")
    return StoredMeasurement(m, r.version, loop_key, r.updated_at)


# ---- findings -------------------------------------------------------------------------------------
def f_snapshot(r: FindingRow) -> dict:
    """A finding row as the audit log records it."""
    d = {k: getattr(r, k) for k in FINDING_FIELDS if k != "reasons"}
    d.update(reasons=json.loads(r.reasons), status=r.status, kind=r.kind, version=r.version)
    d.update({k: getattr(r, k, None) for k in SIGN_FIELDS})
    return d


def baseline(cols: dict) -> dict:
    """The values a finding was saved with (the analysis'), kept for :func:`msus.record.finding_values`."""
    return {k: cols.get(k) for k in BASELINE}


def locked_text(row) -> str:
    return (f"this finding is {row.status} (signed by {row.signed_by or 'a reviewer'}) and can no longer be changed; "
            "amend it to record a change")


def to_finding(r: FindingRow, reviewer: str, loop_key: str) -> StoredFinding:
    same = ("id", "classification", "status", "kind", "version", "created_at", "updated_at", "rest_frame",
            "contraction_frame", "gap_rest_mm", "gap_contraction_mm", "gap_rest_px", "gap_contraction_px",
            "retraction_mm", "defect_thickness_fraction", "calibration_source", "signed_by", "signed_at",
            "supersedes", "superseded_by", "amendment_reason")
    return StoredFinding(
        loop_key=loop_key,
        reviewer=reviewer,
        reasons=tuple(json.loads(r.reasons or "[]")),
        extra=json.loads(r.extra or "{}"),
        amendment_no=int(r.amendment_no or 0),
        **{k: getattr(r, k) for k in same},
    )
