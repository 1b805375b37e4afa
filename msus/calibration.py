"""Pixel-to-millimetre calibration with provenance.

A length is reported in mm only when its calibration is known; otherwise in px, marked
uncalibrated.  Sources, in order of preference:

``us_region``
    The DICOM Sequence of Ultrasound Regions (0018,6011).  Each region has its own bounds and
    physical deltas; a length is in mm only when both ends lie in the *same* 2D region whose X and
    Y units are cm (code 3).  Non-square pixels use ΔX and ΔY separately; negative deltas are
    taken by magnitude; M-mode, spectral and waveform regions are never used for 2D distances.
``pixel_spacing``
    PixelSpacing / ImagerPixelSpacing (row spacing, column spacing in mm).
``manual``
    Two points a known distance apart (e.g. on the depth scale), or a typed mm/px.
``none``
    Lengths in px only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Iterable

from msus.errors import CalibrationError, MeasurementError
from msus.terms import CalibrationSource, length_label

logger = logging.getLogger(__name__)

SOURCES = tuple(CalibrationSource)

# (0018,6012) RegionSpatialFormat
SPATIAL_FORMATS = {0: "none", 1: "2D", 2: "M-mode", 3: "spectral", 4: "waveform", 5: "graphics"}
# (0018,6024) PhysicalUnitsXDirection codes
UNIT_CM = 3


#: mm per px an ultrasound image can have (a 1000 px image from 0.1 mm to 50 m deep); outside it a
#: calibration is a damaged or hostile value: refused with a warning, lengths stay in px.
PLAUSIBLE_MM_PER_PX = (1e-4, 50.0)


def plausible_mm_per_px(v) -> bool:
    """True for a finite mm/px inside :data:`PLAUSIBLE_MM_PER_PX`."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and PLAUSIBLE_MM_PER_PX[0] <= v <= PLAUSIBLE_MM_PER_PX[1]


@dataclass(frozen=True)
class Region:
    """One ultrasound region, bounds inclusive in 0-based pixel coordinates (x = column).

    ``index`` is the 0-based position in the Sequence of Ultrasound Regions (JSON ``index`` and
    ``region_index``); messages and badges show it 1-based (``#1`` is the first item).
    """

    index: int
    x0: int
    y0: int
    x1: int
    y1: int
    spatial_format: int = 1
    data_type: int = 1
    units_x: int = UNIT_CM
    units_y: int = UNIT_CM
    delta_x: float = 0.0  # as stored in the file (cm per px when units are cm)
    delta_y: float = 0.0

    @property
    def mm_per_px_x(self) -> float | None:
        if self.units_x != UNIT_CM or not self.delta_x:
            return None
        v = abs(float(self.delta_x)) * 10.0
        return v if plausible_mm_per_px(v) else None

    @property
    def mm_per_px_y(self) -> float | None:
        if self.units_y != UNIT_CM or not self.delta_y:
            return None
        v = abs(float(self.delta_y)) * 10.0
        return v if plausible_mm_per_px(v) else None

    @property
    def is_2d(self) -> bool:
        return self.spatial_format == 1

    @property
    def is_calibrated_2d(self) -> bool:
        return self.is_2d and self.mm_per_px_x is not None and self.mm_per_px_y is not None

    @property
    def spatial_format_name(self) -> str:
        return SPATIAL_FORMATS.get(self.spatial_format, str(self.spatial_format))

    @property
    def area(self) -> int:
        return (self.x1 - self.x0 + 1) * (self.y1 - self.y0 + 1)

    def contains(self, x: float, y: float) -> bool:
        return self.x0 - 0.5 <= x <= self.x1 + 0.5 and self.y0 - 0.5 <= y <= self.y1 + 0.5

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "x0": self.x0,
            "y0": self.y0,
            "x1": self.x1,
            "y1": self.y1,
            "mm_per_px_x": self.mm_per_px_x,
            "mm_per_px_y": self.mm_per_px_y,
            "spatial_format": self.spatial_format_name,
            "data_type": self.data_type,
        }


@dataclass(frozen=True)
class Distance:
    """A length between two points with the calibration it was computed with."""

    distance_px: float
    distance_mm: float | None
    calibration_source: str
    region_index: int | None = None
    mm_per_px_x: float | None = None
    mm_per_px_y: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def calibrated(self) -> bool:
        return self.distance_mm is not None

    @property
    def label(self) -> str:
        return length_label(self.distance_mm, self.distance_px)

    def to_dict(self) -> dict:
        return {
            "distance_mm": self.distance_mm,
            "distance_px": self.distance_px,
            "calibration_source": self.calibration_source,
            "region_index": self.region_index,
            "mm_per_px_x": self.mm_per_px_x,
            "mm_per_px_y": self.mm_per_px_y,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Calibration:
    """Where mm come from for one image (or one frame)."""

    source: str = "none"
    regions: tuple[Region, ...] = ()
    mm_per_px_x: float | None = None  # global spacing for pixel_spacing / manual
    mm_per_px_y: float | None = None
    detail: str = ""  # human-readable provenance, e.g. "PixelSpacing (0028,0030)"
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if self.source not in SOURCES:
            raise CalibrationError(f"unknown calibration source {self.source!r}")
        for v in (self.mm_per_px_x, self.mm_per_px_y):
            if v is not None and not (math.isfinite(v) and v > 0):
                raise CalibrationError(f"mm per pixel must be a positive number, got {v}")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def none(cls, warnings: Iterable[str] = ()) -> "Calibration":
        return cls(source="none", warnings=tuple(warnings))

    @classmethod
    def manual(cls, mm_per_px_x: float, mm_per_px_y: float | None = None, detail: str = "") -> "Calibration":
        mm_per_px_y = mm_per_px_x if mm_per_px_y is None else mm_per_px_y
        if not (plausible_mm_per_px(mm_per_px_x) and plausible_mm_per_px(mm_per_px_y)):
            lo, hi = PLAUSIBLE_MM_PER_PX
            raise CalibrationError(f"a manual calibration must be between {lo:g} and {hi:g} mm/px, "
                                   f"got {mm_per_px_x!r} × {mm_per_px_y!r}")
        return cls(
            source="manual",
            mm_per_px_x=float(mm_per_px_x),
            mm_per_px_y=float(mm_per_px_y),
            detail=detail or f"manual {float(mm_per_px_x):.5g} mm/px",
        )

    @classmethod
    def from_two_points(cls, p1, p2, distance_mm: float) -> "Calibration":
        """Manual calibration from two points a known distance apart (isotropic pixels)."""
        try:
            distance_mm = float(distance_mm)
        except (TypeError, ValueError):
            raise CalibrationError("the known distance must be a number of mm") from None
        if not (math.isfinite(distance_mm) and distance_mm > 0):
            raise CalibrationError("the known distance must be a positive number of mm")
        px = math.dist(tuple(map(float, p1)), tuple(map(float, p2)))
        if px < 2:
            raise CalibrationError("calibration points must be at least 2 px apart")
        mmpp = distance_mm / px
        return cls.manual(mmpp, detail=f"manual: {distance_mm:g} mm over {px:.1f} px")

    # ---- queries --------------------------------------------------------------------------
    @property
    def calibrated(self) -> bool:
        if self.source == "us_region":
            return any(r.is_calibrated_2d for r in self.regions)
        return self.mm_per_px_x is not None and self.mm_per_px_y is not None

    def region_at(self, x: float, y: float) -> Region | None:
        """The 2D region under a point (the smallest if regions nest), else None."""
        hits = [r for r in self.regions if r.is_2d and r.contains(x, y)]
        if not hits:
            return None
        return min(hits, key=lambda r: r.area)

    def mm_per_px_at(self, x: float, y: float) -> tuple[float, float] | None:
        """(mm/px in x, mm/px in y) at a point, or None where uncalibrated."""
        if self.source == "us_region":
            r = self.region_at(x, y)
            if r is None or not r.is_calibrated_2d:
                return None
            return (r.mm_per_px_x, r.mm_per_px_y)
        if self.mm_per_px_x is None or self.mm_per_px_y is None:
            return None
        return (self.mm_per_px_x, self.mm_per_px_y)

    def measure(self, p1, p2) -> Distance:
        """Length between two (x, y) points; mm only when both ends share one calibration."""
        try:
            x1, y1 = (float(v) for v in p1)
            x2, y2 = (float(v) for v in p2)
        except (TypeError, ValueError):
            raise MeasurementError("points must be pairs of numbers (x, y)") from None
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise MeasurementError("points must be finite numbers")
        dx, dy = x2 - x1, y2 - y1
        px = math.hypot(dx, dy)
        warnings = list(self.warnings)
        if self.source == "us_region":
            r1, r2 = self.region_at(x1, y1), self.region_at(x2, y2)
            if r1 is None or r2 is None:
                warnings.append("a caliper end lies outside every 2D ultrasound region; length in px")
                return Distance(px, None, self.source, None, warnings=tuple(warnings))
            if r1.index != r2.index:
                warnings.append(
                    f"caliper ends lie in different ultrasound regions (#{r1.index + 1} and #{r2.index + 1}); "
                    "no mm length across regions"
                )
                return Distance(px, None, self.source, None, warnings=tuple(warnings))
            if not r1.is_calibrated_2d:
                warnings.append(f"ultrasound region #{r1.index + 1} carries no cm calibration; length in px")
                return Distance(px, None, self.source, r1.index, warnings=tuple(warnings))
            mx, my = r1.mm_per_px_x, r1.mm_per_px_y
            return Distance(px, math.hypot(dx * mx, dy * my), self.source, r1.index, mx, my, tuple(warnings))
        if self.mm_per_px_x is None or self.mm_per_px_y is None:
            return Distance(px, None, "none", None, warnings=tuple(warnings))
        mx, my = self.mm_per_px_x, self.mm_per_px_y
        return Distance(px, math.hypot(dx * mx, dy * my), self.source, None, mx, my, tuple(warnings))

    def with_fallback_manual(self, mm_per_px: float | None) -> "Calibration":
        """Use a manual mm/px only where the file carries no calibration."""
        if mm_per_px is None or self.calibrated:
            return self
        if not plausible_mm_per_px(mm_per_px):
            lo, hi = PLAUSIBLE_MM_PER_PX
            return replace(self, warnings=tuple(self.warnings) + (
                f"manual calibration {mm_per_px!r} mm/px ignored: not a number between {lo:g} and {hi:g}; lengths in px",))
        return replace(Calibration.manual(mm_per_px), warnings=self.warnings)

    def badge(self, x: float | None = None, y: float | None = None) -> str:
        """Short provenance text for the UI: source, region, mm/px."""
        if self.source == "us_region":
            r = self.region_at(x, y) if x is not None else next((r for r in self.regions if r.is_calibrated_2d), None)
            if r is None or not r.is_calibrated_2d:
                return "uncalibrated (no calibrated ultrasound region here)"
            return f"US region #{r.index + 1}: {r.mm_per_px_x:.4f} × {r.mm_per_px_y:.4f} mm/px"
        if self.source in ("pixel_spacing", "manual"):
            return f"{self.detail or self.source}: {self.mm_per_px_x:.4f} × {self.mm_per_px_y:.4f} mm/px"
        return "uncalibrated (px)"

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "regions": [r.to_dict() for r in self.regions],
            "mm_per_px_x": self.mm_per_px_x,
            "mm_per_px_y": self.mm_per_px_y,
            "detail": self.detail,
            "warnings": list(self.warnings),
        }


# ---------------------------------------------------------------------------------------------
# Reading calibration from a DICOM header
# ---------------------------------------------------------------------------------------------
#: A region overshooting the image by at most this many px is taken for an exclusive bound (some
#: scanners store one past the last column/row): it still warns, but as a bound, not a stale region.
REGION_BOUNDS_TOLERANCE_PX = 1
#: Relative difference between a region's mm/px and PixelSpacing that raises a warning.
SPACING_DISAGREEMENT = 0.05


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def regions_from_dataset(ds) -> tuple[tuple[Region, ...], list[str]]:
    """Every item of the Sequence of Ultrasound Regions (0018,6011) as a :class:`Region`.

    ``index`` is the item's 0-based position in the sequence (messages show it 1-based).
    Items missing their bounds are skipped with a warning.
    """
    regions: list[Region] = []
    warnings: list[str] = []
    try:
        seq = ds.get("SequenceOfUltrasoundRegions") or []
        items = list(seq)
    except Exception:  # damaged sequence
        logger.debug("regions_from_dataset: damaged sequence", exc_info=True)
        return (), ["the Sequence of Ultrasound Regions cannot be read; ignored"]
    for i, item in enumerate(items):
        try:
            b = [_num(item.get(k)) for k in ("RegionLocationMinX0", "RegionLocationMinY0",
                                            "RegionLocationMaxX1", "RegionLocationMaxY1")]
            if any(v is None for v in b):
                warnings.append(f"ultrasound region #{i + 1} has no bounds; ignored")
                continue
            x0, y0, x1, y1 = (int(v) for v in b)
            if x1 < x0 or y1 < y0:
                warnings.append(f"ultrasound region #{i + 1} has inverted bounds; ignored")
                continue
            for axis in ("X", "Y"):
                raw = item.get(f"PhysicalDelta{axis}")
                if raw is not None and int(_num(item.get(f"PhysicalUnits{axis}Direction")) or 0) == UNIT_CM \
                        and not plausible_mm_per_px(abs(_num(raw) or 0.0) * 10.0):
                    warnings.append(f"ultrasound region #{i + 1}: PhysicalDelta{axis} {raw!r} cm is not a usable "
                                    "calibration; lengths there in px")
            regions.append(
                Region(
                    index=i,
                    x0=x0, y0=y0, x1=x1, y1=y1,
                    spatial_format=int(_num(item.get("RegionSpatialFormat")) or 0),
                    data_type=int(_num(item.get("RegionDataType")) or 0),
                    units_x=int(_num(item.get("PhysicalUnitsXDirection")) or 0),
                    units_y=int(_num(item.get("PhysicalUnitsYDirection")) or 0),
                    delta_x=_num(item.get("PhysicalDeltaX")) or 0.0,
                    delta_y=_num(item.get("PhysicalDeltaY")) or 0.0,
                )
            )
        except Exception:
            logger.debug("regions_from_dataset: an unreadable region, skipped", exc_info=True)
            warnings.append(f"ultrasound region #{i + 1} cannot be read; ignored")
    return tuple(regions), warnings


def _spacing(value) -> tuple[float, float] | None:
    """(mm/px x, mm/px y) from a PixelSpacing-like (row spacing, column spacing) value."""
    try:
        vals = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(vals) != 2 or not all(math.isfinite(v) and v > 0 for v in vals):
        return None
    return (vals[1], vals[0])


def _functional_spacing(groups_item) -> tuple[float, float] | None:
    try:
        pm = groups_item.get("PixelMeasuresSequence")
        if pm:
            return _spacing(pm[0].get("PixelSpacing"))
    except Exception:
        logger.debug("_functional_spacing: unreadable PixelMeasuresSequence", exc_info=True)
        return None
    return None


def calibration_from_dataset(ds, rows: int | None = None, columns: int | None = None) -> Calibration:
    """The image's calibration with provenance and warnings.

    ``us_region`` when at least one 2D region carries cm deltas; else ``pixel_spacing`` from
    PixelSpacing, the shared functional groups' PixelMeasuresSequence, or ImagerPixelSpacing;
    else ``none``.  Warns when a region does not fit a ``rows`` × ``columns`` image or disagrees
    with PixelSpacing by more than :data:`SPACING_DISAGREEMENT`.
    """
    regions, warnings = regions_from_dataset(ds)
    rows = rows if rows is not None else int(_num(ds.get("Rows")) or 0)
    columns = columns if columns is not None else int(_num(ds.get("Columns")) or 0)
    tol = REGION_BOUNDS_TOLERANCE_PX
    if rows and columns:
        for r in regions:
            if r.x0 < 0 or r.y0 < 0 or r.x1 > columns - 1 + tol or r.y1 > rows - 1 + tol:
                warnings.append(
                    f"ultrasound region #{r.index + 1} (x {r.x0}–{r.x1}, y {r.y0}–{r.y1}) does not fit the "
                    f"{columns}×{rows} image: its calibration may be stale (image resized?)"
                )
            elif r.x1 > columns - 1 or r.y1 > rows - 1:
                past = [f"x {r.x1} (last column {columns - 1})"] if r.x1 > columns - 1 else []
                past += [f"y {r.y1} (last row {rows - 1})"] if r.y1 > rows - 1 else []
                warnings.append(
                    f"ultrasound region #{r.index + 1} ends past the {columns}×{rows} image at {' and '.join(past)}: "
                    "an exclusive bound, or stale after a resize; the region is used"
                )
    spacing, detail = None, ""
    for kw, label in (("PixelSpacing", "PixelSpacing (0028,0030)"),):
        spacing = _spacing(ds.get(kw)) if kw in ds else None
        if spacing:
            detail = label
    if spacing is None:
        try:
            shared = ds.get("SharedFunctionalGroupsSequence")
            if shared:
                spacing = _functional_spacing(shared[0])
                detail = "PixelMeasuresSequence (shared functional groups)" if spacing else ""
        except Exception:
            logger.debug("calibration_from_dataset: unreadable functional groups", exc_info=True)
            spacing = None
    if spacing is None and "ImagerPixelSpacing" in ds:
        spacing = _spacing(ds.get("ImagerPixelSpacing"))
        detail = "ImagerPixelSpacing (0018,1164)" if spacing else ""
    calibrated = [r for r in regions if r.is_calibrated_2d]
    if calibrated:
        if spacing:
            for r in calibrated:
                if (abs(r.mm_per_px_x - spacing[0]) > SPACING_DISAGREEMENT * spacing[0]
                        or abs(r.mm_per_px_y - spacing[1]) > SPACING_DISAGREEMENT * spacing[1]):
                    warnings.append(
                        f"ultrasound region #{r.index + 1} ({r.mm_per_px_x:.4g}×{r.mm_per_px_y:.4g} mm/px) "
                        f"disagrees with {detail.split(' ')[0]} ({spacing[0]:.4g}×{spacing[1]:.4g} mm/px); "
                        "the region is used"
                    )
        return Calibration(source="us_region", regions=regions, detail="Sequence of Ultrasound Regions (0018,6011)",
                           warnings=tuple(warnings))
    if spacing:
        return Calibration(source="pixel_spacing", regions=regions, mm_per_px_x=spacing[0], mm_per_px_y=spacing[1],
                           detail=detail, warnings=tuple(warnings))
    return Calibration(source="none", regions=regions, warnings=tuple(warnings))


def frame_calibrations_from_dataset(ds, n_frames: int, rows: int | None = None,
                                    columns: int | None = None) -> dict[int, Calibration]:
    """Per-frame calibrations from PerFrameFunctionalGroupsSequence → PixelMeasuresSequence.

    Only frames whose spacing is present are listed; ultrasound regions, when calibrated, apply
    to every frame and take precedence (nothing is returned then).
    """
    try:
        per = ds.get("PerFrameFunctionalGroupsSequence")
        if not per:
            return {}
        base = calibration_from_dataset(ds, rows, columns)
        if base.source == "us_region":
            return {}
        out: dict[int, Calibration] = {}
        for i, item in enumerate(list(per)[:n_frames]):
            sp = _functional_spacing(item)
            if sp is None:
                continue
            if base.source == "pixel_spacing" and (sp[0], sp[1]) == (base.mm_per_px_x, base.mm_per_px_y):
                continue
            out[i] = Calibration(source="pixel_spacing", regions=base.regions, mm_per_px_x=sp[0], mm_per_px_y=sp[1],
                                 detail=f"PixelMeasuresSequence (frame {i + 1})", warnings=base.warnings)
        return out
    except Exception:
        logger.debug("frame_calibrations_from_dataset: unreadable per-frame groups", exc_info=True)
        return {}
