"""The words msus writes into JSON, the store and exports, as string enums (values unchanged).

Each member *is* its string (:class:`enum.StrEnum`): ``Classification.PARTIAL == "partial"``,
``json.dumps`` writes ``"partial"`` and a database column stores ``partial``; code compares with
the members instead of retyping the strings.  :func:`length_label` is the one way a length is
written for people ("mm else px (uncalibrated)"), :data:`CLASSIFICATION_LABELS` the one way a
classification is.
"""

from __future__ import annotations

from enum import StrEnum


class Classification(StrEnum):
    """The tear flag (a flag for review, never a diagnosis)."""

    SUSPECTED_FULL_THICKNESS = "suspected_full_thickness"
    PARTIAL = "partial"
    NO_DEFECT = "no_defect"

    @property
    def label(self) -> str:
        return CLASSIFICATION_LABELS[self]


#: How people read a classification (app, teaching, report, burned-in overlays).
CLASSIFICATION_LABELS = {
    Classification.SUSPECTED_FULL_THICKNESS: "Suspected full-thickness tear",
    Classification.PARTIAL: "Partial tear",
    Classification.NO_DEFECT: "No defect",
}


class CalibrationSource(StrEnum):
    """Where a px → mm scale came from (most trusted first)."""

    US_REGION = "us_region"
    PIXEL_SPACING = "pixel_spacing"
    MANUAL = "manual"
    NONE = "none"


class MeasurementKind(StrEnum):
    """Who placed a caliper."""

    MANUAL = "manual"
    AUTOMATIC = "automatic"
    AUTOMATIC_EDITED = "automatic-edited"


class FindingStatus(StrEnum):
    """A stored finding's state; ``amended`` is a signed amendment of a final finding."""

    DRAFT = "draft"
    FINAL = "final"
    AMENDED = "amended"


def length_label(mm: float | None, px: float | None, *, signed: bool = False, unit_px: str = "px") -> str:
    """'4.72 mm', '39.3 px (uncalibrated)' or '—' (``signed``: '+5.40 mm', '+12.0 px …').

    mm when the calibration is known, else px said to be uncalibrated; every view, export and
    the CLI write lengths through this one function.
    """
    sign = "+" if signed else ""
    if mm is not None:
        return f"{mm:{sign}.2f} mm"
    if px is not None:
        return f"{px:{sign}.1f} {unit_px} (uncalibrated)"
    return "—"
