"""Values the store returns, and the mapping of an analysis finding onto the store's columns.

Frozen dataclasses: :class:`LoopRef`, :class:`StoredMeasurement`, :class:`StoredFinding`,
:class:`AuditEntry`, :class:`StudyListRow`; and :class:`StoreConflict`, the one-line error of a
stale write.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from msus.errors import StoreConflict, StoreError  # noqa: F401 (StoreConflict importable here)
from msus.measure import Measurement, now_iso  # noqa: F401 (now_iso: the store's time stamps)
from msus.numbers import opt_float, opt_int
from msus.terms import Classification, FindingStatus

CLASSIFICATIONS = tuple(Classification)
STATUSES = tuple(FindingStatus)  # amended: a signed amendment of a final finding
SIGNED = (FindingStatus.FINAL, FindingStatus.AMENDED)



# ---- values returned to callers ----------------------------------------------------------------
@dataclass(frozen=True)
class LoopRef:
    id: int
    key: str
    series_key: str
    study_key: str
    kind: str
    source_name: str
    n_frames: int
    rows: int
    columns: int
    fps: float | None


@dataclass(frozen=True)
class StoredMeasurement:
    """A saved caliper: the :class:`~msus.measure.Measurement` plus its row version."""

    measurement: Measurement
    version: int
    loop_key: str
    updated_at: str

    @property
    def id(self) -> str:
        return self.measurement.id

    def to_dict(self) -> dict:
        d = self.measurement.to_dict()
        d.update(version=self.version, loop_key=self.loop_key, updated_at=self.updated_at)
        return d


FINDING_FIELDS = (
    "rest_frame",
    "contraction_frame",
    "gap_rest_mm",
    "gap_contraction_mm",
    "gap_rest_px",
    "gap_contraction_px",
    "retraction_mm",
    "defect_thickness_fraction",
    "classification",
    "reasons",
    "calibration_source",
)


@dataclass(frozen=True)
class StoredFinding:
    id: str
    loop_key: str
    reviewer: str
    classification: str
    reasons: tuple[str, ...]
    status: str
    kind: str
    version: int
    created_at: str
    updated_at: str
    rest_frame: int | None = None
    contraction_frame: int | None = None
    gap_rest_mm: float | None = None
    gap_contraction_mm: float | None = None
    gap_rest_px: float | None = None
    gap_contraction_px: float | None = None
    retraction_mm: float | None = None
    defect_thickness_fraction: float | None = None
    calibration_source: str = "none"
    extra: dict = field(default_factory=dict, compare=False)
    signed_by: str | None = None
    signed_at: str | None = None
    supersedes: str | None = None
    superseded_by: str | None = None
    amendment_no: int = 0
    amendment_reason: str | None = None

    @property
    def signed(self) -> bool:
        """Final or amended: read-only, with its calipers (change it by :meth:`Store.amend_finding`)."""
        return self.status in SIGNED

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["reasons"] = list(self.reasons)
        return d


def head_of(findings):
    """The loop's current finding among ``findings`` (oldest first): the newest one not amended
    since, preferring signed findings and amendments over plain drafts; None when empty."""
    live = [f for f in findings if not f.superseded_by]
    chain = [f for f in live if f.status in SIGNED or f.supersedes]
    return (chain or live or [None])[-1]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    reviewer: str
    action: str
    entity: str
    entity_id: str
    loop_id: int | None
    before: dict | None
    after: dict | None


@dataclass(frozen=True)
class StudyListRow:
    """One line of the study list: a loop and what has been measured on it."""

    loop_key: str
    study_key: str
    series_key: str
    source_name: str
    kind: str
    n_frames: int
    n_measurements: int
    reviewers: tuple[str, ...]
    status: str  # "final", "amended", "draft", "measured" (calipers, no finding) or "new"
    classification: str | None
    last_change_at: str | None
    gap_rest_mm: float | None = None  # the current finding's values (msus.record)
    gap_contraction_mm: float | None = None
    retraction_mm: float | None = None
    signed_by: str | None = None
    amendment_no: int = 0
    origin: str = ""  # who or what made the shown finding: "manual", "automatic, batch of 2026-01-31"...


def finding_origin(kind: str | None, extra: dict | None) -> str:
    """How a finding came to be, for lists: its kind, plus the batch date of a batch finding
    (``"automatic, batch of 2026-01-31"``)."""
    batch = (extra or {}).get("batch")
    date = batch.get("date") if isinstance(batch, dict) else None
    kind = kind or ""
    return f"{kind}, batch of {date}" if date else kind


def analysis_finding(result) -> dict:
    """The store's finding fields from an analysis result (:class:`msus.analysis.AnalysisResult`),
    with the defect outlines for the exports."""
    d = {}
    for k in ("rest_frame", "contraction_frame", "gap_rest_mm", "gap_contraction_mm", "gap_rest_px",
              "gap_contraction_px", "retraction_mm", "defect_thickness_fraction", "calibration_source"):
        d[k] = getattr(result, k, None)
    fnd = getattr(result, "finding", None)
    d["classification"] = getattr(result, "classification", None) or getattr(fnd, "classification", None)
    d["reasons"] = list(getattr(result, "reasons", None) or getattr(fnd, "reasons", ()) or ())
    outlines = {}
    for fk, dk in (("rest_frame", "defect_rest"), ("contraction_frame", "defect_contraction")):
        defect = getattr(result, dk, None)
        if defect is not None and getattr(defect, "outline_px", None) and getattr(result, "defect_found", True):
            outlines[str(getattr(result, fk))] = [list(map(float, p)) for p in defect.outline_px]
    d["outlines_px"] = outlines
    for k in ("peetrons", "bamic"):
        v = getattr(fnd, k, None)
        if v:
            d[k] = v
    return d


# ---- helpers ---------------------------------------------------------------------------------------
def _jsonable(v, depth: int = 0):
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 10000 else None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if v is None or isinstance(v, (str, int, bool)):
        return v
    if isinstance(v, dict) and depth < 4:
        return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)) and depth < 4:
        return [_jsonable(x, depth + 1) for x in v]
    if dataclasses.is_dataclass(v) and not isinstance(v, type) and depth < 4:
        return _jsonable(_as_dict(v), depth + 1)
    if hasattr(v, "to_dict") and depth < 4:
        return _jsonable(v.to_dict(), depth + 1)
    return None  # masks, images and other non-portable objects are not stored


def _as_dict(obj) -> dict:
    if isinstance(obj, dict):
        return dict(obj)
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    raise StoreError(f"cannot store a finding of type {type(obj).__name__}")


def _opt_float(v) -> float | None:
    return opt_float(v, StoreError)


def _opt_int(v) -> int | None:
    return opt_int(v, StoreError)


def finding_columns(finding) -> tuple[dict, dict]:
    """Split a finding (dataclass or dict) into known columns and the JSON ``extra``."""
    d = _as_dict(finding)
    cols = {
        "rest_frame": _opt_int(d.get("rest_frame")),
        "contraction_frame": _opt_int(d.get("contraction_frame")),
        "gap_rest_mm": _opt_float(d.get("gap_rest_mm")),
        "gap_contraction_mm": _opt_float(d.get("gap_contraction_mm")),
        "gap_rest_px": _opt_float(d.get("gap_rest_px")),
        "gap_contraction_px": _opt_float(d.get("gap_contraction_px")),
        "retraction_mm": _opt_float(d.get("retraction_mm")),
        "defect_thickness_fraction": _opt_float(d.get("defect_thickness_fraction")),
        "classification": str(d.get("classification") or ""),
        "reasons": [str(r) for r in (d.get("reasons") or ())],
        "calibration_source": str(d.get("calibration_source") or "none"),
    }
    if cols["retraction_mm"] is None and None not in (cols["gap_rest_mm"], cols["gap_contraction_mm"]):
        cols["retraction_mm"] = cols["gap_contraction_mm"] - cols["gap_rest_mm"]
    if cols["classification"] not in CLASSIFICATIONS:
        raise StoreError(
            f"unknown classification {cols['classification']!r} (expected one of {', '.join(CLASSIFICATIONS)})"
        )
    skip = set(FINDING_FIELDS) | {"status", "kind", "id", "reviewer", "version", "loop_key", "created_at", "updated_at", "extra"}
    extra = {k: _jsonable(v) for k, v in d.items() if k not in skip}
    extra = {k: v for k, v in extra.items() if v is not None}
    if isinstance(d.get("extra"), dict):
        extra.update({k: v for k, v in _jsonable(d["extra"]).items() if v is not None})
    return cols, extra
