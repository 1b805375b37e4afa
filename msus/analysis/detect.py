"""The hypoechoic defect between the fasciae of a muscle: stumps, gap, thickness fraction.

``defect(frame, roi, calibration) -> Defect``.  Method (all in a downscaled working copy of the
ROI, longer side :data:`WORK_SIDE_PX` px; results are mapped back to full-frame px), one small
step per function or module:

1. **Despeckle** (:func:`working_copy`): 5×5 median then a Gaussian (σ 1.5 px); a 9×9 median for
   echo levels; linear echo power (a nominal :data:`NOMINAL_DR_DB` dB log compression undone,
   then averaged down to the working size: no grey-level median or average before it).
2. **Fasciae** (:mod:`msus.analysis.fascia`): lines of a ridge map, refined one by one; every
   pair of consecutive lines bounds a compartment unless the two converge (a wedge).
3. **Straighten** (:func:`straighten`): the muscle between the fascia edges is resampled column
   by column into a rectangle (rows = depth from superficial 0 to deep 1).  A row of the
   rectangle is parallel to the fasciae, i.e. along the muscle's long axis, so distances along a
   row are distances along the axis, whatever the tilt.
4. **Troughs** (:mod:`msus.analysis.troughs`): dark troughs of depth-band profiles along the
   axis, bounded by muscle, outlined at half depth, free of bright fibres inside.
5. **Extent** (:mod:`msus.analysis.extent`): the depth extent (thickness fraction) and the two
   ends, at the sub-pixel half-level crossings of averaged linear-power profiles.
6. **Measure** (:func:`measure`): gap calipers on five rows of the central half of the torn
   depth, gap in mm via the calibration when both ends lie in one calibrated region (else px
   only), the outline, a confidence; the power ratio (defect vs muscle) must stay below
   ``max_power_ratio``: fluid keeps little echo power, a dark patch of muscle keeps more.
7. **Compartments** (:func:`defect_in_crop`): each muscle between consecutive fasciae is
   searched; the clearest defect wins.

Thresholds come from ``msus/analysis/thresholds.toml`` (section ``[defect]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from msus.analysis.extent import Extent, fascia_tail_rows, profile_extent
from msus.analysis.fascia import (
    RIDGE_SIGMA_PX,
    Compartment,
    FasciaLine,
    compartment_pairs,
    fascia_candidates,
    inner_offset,
    ridge,
)
from msus.analysis.roi import check_roi, tissue_roi
from msus.analysis.troughs import Outlined, find_troughs, refine_trough
from msus.calibration import Calibration
from msus.cine import to_grey
from msus.errors import AnalysisError

__all__ = ["Defect", "FasciaLine", "check_roi", "defect", "defect_in_crop", "tissue_roi"]

#: Longer side (px) of the working copy of the ROI.
WORK_SIDE_PX = 320
#: Median window (working px) for the echo level used to segment the defect.
DARK_MEDIAN_PX = 9
#: Dynamic range (dB) assumed for the grey-level display when converting back to echo power.
NOMINAL_DR_DB = 60.0
#: Confidence from echo power: a defect keeping POWER_CONFIDENT − POWER_SPAN (0.1) of the
#: muscle's echo power stands out fully, one keeping POWER_CONFIDENT (0.4) not at all.
POWER_CONFIDENT = 0.4
POWER_SPAN = 0.3

Point = tuple[float, float]


@dataclass(frozen=True)
class Defect:
    """Result of :func:`defect` on one frame.  Points are (x, y) full-frame px.

    Attributes
    ----------
    found
        A defect passed every test of ``[defect]`` in the thresholds.
    frame_index
        The frame analysed (None when not given).
    roi
        (x0, y0, x1, y1) inclusive px searched.
    superficial_fascia, deep_fascia
        The fasciae bounding the muscle (None when not found).
    muscle_thickness_px, muscle_thickness_mm
        Fascia-to-fascia inner thickness at the defect (or the ROI centre), px / mm.
    axis_angle_deg
        Tilt of the muscle's long axis (mean of the fasciae), degrees, positive = deeper to the right.
    stump_left_px, stump_right_px
        Mean stump-end positions over the central half of the torn depth.
    stump_rows_px
        Per measured row, ((x_left, y_left), (x_right, y_right)) — the gap calipers to draw.
    gap_px, gap_mm
        Mean gap along the muscle's long axis over those rows; gap_mm None when uncalibrated.
    thickness_fraction
        Share of the muscle thickness the defect spans at its widest point (0 when none).
    depth_extent
        (top, bottom) of the defect as fractions of the muscle thickness (0 = superficial).
    contrast
        1 − defect median echo / muscle median echo (grey levels).
    power_ratio
        Defect echo power relative to the muscle's (linear, after undoing a nominal log
        compression): the larger of the along-axis and across-depth profile levels.
    confidence
        0..1, how clearly the evidence stands out (see docs/analysis.md).
    outline_px
        Closed polygon of the defect outline.
    calibration_source
        Where mm came from (``none`` when gap_mm is None).
    notes
        Human-readable remarks (why nothing was found, warnings).
    """

    found: bool
    frame_index: int | None
    roi: tuple[int, int, int, int]
    superficial_fascia: FasciaLine | None = None
    deep_fascia: FasciaLine | None = None
    muscle_thickness_px: float | None = None
    muscle_thickness_mm: float | None = None
    axis_angle_deg: float | None = None
    stump_left_px: Point | None = None
    stump_right_px: Point | None = None
    stump_rows_px: tuple[tuple[Point, Point], ...] = ()
    gap_px: float | None = None
    gap_mm: float | None = None
    thickness_fraction: float = 0.0
    depth_extent: tuple[float, float] | None = None
    contrast: float = 0.0
    power_ratio: float | None = None
    confidence: float = 0.0
    outline_px: tuple[Point, ...] = ()
    calibration_source: str = "none"
    notes: tuple[str, ...] = field(default=())

    def overlay(self) -> dict:
        """Plain shapes for a player to draw (full-frame px, (x, y))."""
        shapes = {
            "stumps": [list(p) for p in (self.stump_left_px, self.stump_right_px) if p is not None],
            "outline": [list(p) for p in self.outline_px],
            "calipers": [[list(a), list(b)] for a, b in self.stump_rows_px],
            "fasciae": [],
        }
        for f in (self.superficial_fascia, self.deep_fascia):
            if f is not None:
                shapes["fasciae"].append([[f.x0, f.y0], [f.x1, f.y1]])
        return shapes

    def to_dict(self) -> dict:
        return {
            "found": self.found,
            "frame_index": self.frame_index,
            "roi": list(self.roi),
            "superficial_fascia": None if self.superficial_fascia is None else self.superficial_fascia.to_dict(),
            "deep_fascia": None if self.deep_fascia is None else self.deep_fascia.to_dict(),
            "muscle_thickness_px": self.muscle_thickness_px,
            "muscle_thickness_mm": self.muscle_thickness_mm,
            "axis_angle_deg": self.axis_angle_deg,
            "stump_left_px": None if self.stump_left_px is None else list(self.stump_left_px),
            "stump_right_px": None if self.stump_right_px is None else list(self.stump_right_px),
            "gap_px": self.gap_px,
            "gap_mm": self.gap_mm,
            "thickness_fraction": self.thickness_fraction,
            "depth_extent": None if self.depth_extent is None else list(self.depth_extent),
            "contrast": self.contrast,
            "power_ratio": self.power_ratio,
            "confidence": self.confidence,
            "calibration_source": self.calibration_source,
            "notes": list(self.notes),
            "overlay": self.overlay(),
        }



# ---------------------------------------------------------------------------------------------
# the working copy and the straightened muscle


@dataclass(frozen=True)
class Work:
    """The downscaled working copy of a ROI crop: ``gs`` despeckled grey, ``gd`` wide-median
    grey (echo levels), ``has_data`` (1 where the image holds data), ``gs_lin`` linear echo
    power (log compression undone before the downscale, not median-filtered); ``sx``, ``sy``
    working px per crop px, (``x0``, ``y0``) the crop's place in the frame."""

    gs: np.ndarray
    gd: np.ndarray
    has_data: np.ndarray
    gs_lin: np.ndarray
    x0: int
    y0: int
    sx: float
    sy: float

    def to_full(self, xw, yw) -> Point:
        """Working (x, y) -> full-frame (x, y) px."""
        return (float(self.x0 + (xw + 0.5) / self.sx - 0.5), float(self.y0 + (yw + 0.5) / self.sy - 0.5))


def _power(grey: np.ndarray) -> np.ndarray:
    """Linear echo power of grey levels (a nominal :data:`NOMINAL_DR_DB` dB log compression undone)."""
    return np.power(10.0, np.asarray(grey, np.float32) * (NOMINAL_DR_DB / 2550.0)).astype(np.float32)


_POWER_OF_GREY = _power(np.arange(256))


def working_copy(g: np.ndarray, roi) -> Work:
    """The working copy of the grey ROI crop ``g`` (longer side :data:`WORK_SIDE_PX`)."""
    h0, w0 = g.shape
    s = min(1.0, WORK_SIDE_PX / max(h0, w0))
    gw = cv2.resize(g, (max(17, round(w0 * s)), max(17, round(h0 * s))), interpolation=cv2.INTER_AREA)
    gs = cv2.GaussianBlur(cv2.medianBlur(gw, 5).astype(np.float32), (0, 0), 1.5)
    # a wider median for the echo level: ignores floating echoes and speckle grains in a defect
    gd = cv2.medianBlur(gw, DARK_MEDIAN_PX).astype(np.float32)
    # where the image holds data: outside a sector fan or under a flat overlay the grey level is
    # constant; even anechoic fluid shows some noise
    gwf = gw.astype(np.float32)
    mu = cv2.blur(gwf, (5, 5))
    has_data = ((np.sqrt(np.maximum(cv2.blur(gwf * gwf, (5, 5)) - mu * mu, 0)) > 0.75) | (gwf > 4)).astype(np.float32)
    # echo power: the log compression undone first, then averaged down to the working size.  A
    # median or an average of grey levels (log units) shifts a dark defect's ends into the muscle:
    # a px half muscle, half fluid averages to the geometric, not the arithmetic, mean power, and a
    # median of a window partly over speckled muscle picks the speckle's dark tail
    lin = _POWER_OF_GREY[g] if g.dtype == np.uint8 else _power(g)
    gs_lin = cv2.resize(lin, (gw.shape[1], gw.shape[0]), interpolation=cv2.INTER_AREA)
    return Work(gs, gd, has_data, gs_lin, int(roi[0]), int(roi[1]), gw.shape[1] / w0, gw.shape[0] / h0)


@dataclass(frozen=True)
class Muscle:
    """The muscle of one compartment, straightened: ``S`` grey, ``S2`` smoothed echo level,
    ``P`` linear power, ``DATA`` has-data (rows = depth 0..1 over ``nv`` rows, columns ``cx0``..
    ``cx1`` of the working copy); ``et``/``eb`` the muscle's edges per working column, ``map_y``
    the working row of every straightened px; ``fasciae`` the lines and the axis angle."""

    et: np.ndarray
    eb: np.ndarray
    cx0: int
    cx1: int
    nv: int
    map_y: np.ndarray
    S: np.ndarray
    S2: np.ndarray
    P: np.ndarray
    DATA: np.ndarray
    fasciae: dict

    @property
    def thick(self) -> np.ndarray:
        return self.eb - self.et


def _remap(img, map_x, map_y, interp=cv2.INTER_LINEAR, **kw):
    kw = kw or dict(borderMode=cv2.BORDER_REPLICATE)
    return cv2.remap(img, map_x, map_y, interp, **kw)


def straighten(work: Work, comp: Compartment) -> Muscle | str:
    """The muscle of a compartment, straightened; a note when there is none."""
    gs = work.gs
    h, w = gs.shape
    yt, yb = comp.yt, comp.yb
    b_t, b_b = comp.slope_top, comp.slope_bottom
    ang = math.degrees(math.atan((b_t + b_b) / 2.0 * work.sx / work.sy)) if work.sx and work.sy else 0.0
    if ((yb - yt) > 8).sum() < 0.5 * w:
        return "the fasciae found do not bound a muscle"
    # provisional muscle level: median of the band between the lines
    yy = np.arange(h)[:, None]
    band = (yy > yt[None, :] + 3) & (yy < yb[None, :] - 3)
    muscle_level0 = float(np.median(gs[band])) if band.any() else float(np.median(gs))
    off_t = inner_offset(gs, yt, +1, muscle_level0)
    off_b = inner_offset(gs, yb, -1, muscle_level0)
    et, eb = yt + off_t, yb - off_b
    thick = eb - et
    valid_cols = np.flatnonzero((thick > 6) & (et >= 0) & (eb <= h - 1))
    if valid_cols.size < 0.4 * w:
        return "the muscle between the fasciae is too thin to analyse"
    cx0, cx1 = int(valid_cols[0]), int(valid_cols[-1])
    ncols = cx1 - cx0 + 1
    nv = int(max(12, round(float(np.median(thick[valid_cols])))))
    vs = np.linspace(0.0, 1.0, nv, dtype=np.float32)
    cols = np.arange(w, dtype=np.float32)
    map_x = np.broadcast_to(cols[cx0 : cx1 + 1][None, :], (nv, ncols)).astype(np.float32)
    map_y = (et[None, cx0 : cx1 + 1] + vs[:, None] * thick[None, cx0 : cx1 + 1]).astype(np.float32)
    S2 = cv2.GaussianBlur(_remap(work.gd, map_x, map_y), (0, 0), 1.5)
    DATA = _remap(work.has_data, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    fasciae = dict(
        superficial_fascia=FasciaLine(*work.to_full(0, yt[0]), *work.to_full(w - 1, yt[-1]),
                                      inner_offset_px=off_t / work.sy),
        deep_fascia=FasciaLine(*work.to_full(0, yb[0]), *work.to_full(w - 1, yb[-1]),
                               inner_offset_px=off_b / work.sy),
        axis_angle_deg=ang)
    return Muscle(et, eb, cx0, cx1, nv, map_y, _remap(gs, map_x, map_y), S2,
                  _remap(work.gs_lin, map_x, map_y), DATA, fasciae)


def thickness_at(work: Work, mus: Muscle, xw: float, calibration: Calibration) -> tuple[float, float | None]:
    """Fascia-to-fascia inner thickness (px, mm) at working column ``xw``."""
    xi = int(np.clip(round(xw), mus.cx0, mus.cx1))
    d = calibration.measure(work.to_full(xi, mus.et[xi]), work.to_full(xi, mus.eb[xi]))
    return d.distance_px, d.distance_mm


def _img_pt(work: Work, mus: Muscle, xs_: float, v_: float) -> Point:
    """Straightened (column, row) -> full-frame (x, y)."""
    xw = xs_ + mus.cx0
    cols = np.arange(work.gs.shape[1], dtype=np.float32)
    yw = float(np.interp(xw, cols, mus.et + (v_ / (mus.nv - 1)) * mus.thick))
    return work.to_full(xw, yw)


def _scales(work: Work, calibration: Calibration, th) -> tuple[float, float]:
    """(shortest defect, stump margin) in working px along the axis."""
    h, w = work.gs.shape
    px_per_mm = None
    mmpp = calibration.mm_per_px_at(*work.to_full(w / 2, h / 2))
    if mmpp is not None:
        px_per_mm = 1.0 / mmpp[0]
    min_len = (th["min_length_mm"] * px_per_mm if px_per_mm else th["min_length_px"]) * work.sx
    # both stumps must be visible: some muscle beyond each end of the defect
    margin = max(3.0, (th["stump_margin_mm"] * px_per_mm if px_per_mm else th["stump_margin_px"]) * work.sx)
    return min_len, margin


# ---------------------------------------------------------------------------------------------
# measuring a defect


def _outline(work: Work, mus: Muscle, mask: np.ndarray, ext: Extent) -> tuple[Point, ...]:
    """The segmented region, kept within the measured ends and depth extent (with a little slack
    for frayed ends) so that what is drawn agrees with what is measured."""
    xl, xr = ext.x_left, ext.x_right
    slack = max(2, int(round(0.25 * (xr - xl))))
    keep = np.zeros_like(mask)
    keep[max(0, int(math.floor(ext.v_top)) - 1) : int(math.ceil(ext.v_bottom)) + 2,
         max(0, int(math.floor(xl)) - slack) : int(math.ceil(xr)) + slack + 1] = True
    draw_mask = (mask & keep).astype(np.uint8)
    draw_mask = cv2.morphologyEx(draw_mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    if not draw_mask.any():
        draw_mask = keep.astype(np.uint8)
    outline = []
    cs, _ = cv2.findContours(draw_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if cs:
        ctr = max(cs, key=cv2.contourArea).reshape(-1, 2)
        for xi, vi in ctr:
            outline.append(work.to_full(xi + mus.cx0, float(mus.map_y[vi, xi])))
    return tuple(outline)


def _confidence(contrast: float, power_ratio: float, frac: float) -> float:
    """How clearly the defect stands out: in grey levels (depends on the display's gain) or in
    echo power (a fluid gap on a bright or low-contrast display keeps little power even when its
    grey-level contrast is modest), whichever is clearer; times the depth it spans."""
    stand_out = max(float(np.clip((contrast - 0.15) / 0.35, 0.0, 1.0)),
                    float(np.clip((POWER_CONFIDENT - power_ratio) / POWER_SPAN, 0.0, 1.0)))
    return float(stand_out * np.clip(frac / 0.3, 0.0, 1.0))


def measure(work: Work, mus: Muscle, chosen: Outlined, ext: Extent, calibration: Calibration, th,
            base: dict) -> Defect:
    """The defect's calipers, gap, outline, confidence and verdict."""
    nv = mus.nv
    pairs = []
    for q in (0.25, 0.375, 0.5, 0.625, 0.75):
        v_ = ext.v_top + q * (ext.v_bottom - ext.v_top)
        sh = float(np.interp(v_, np.arange(nv), ext.shear))  # oblique tear plane
        pairs.append((_img_pt(work, mus, ext.x_left + sh, v_), _img_pt(work, mus, ext.x_right + sh, v_)))
    left, right = pairs[2]
    dist = calibration.measure(left, right)
    colsi = np.arange(int(math.floor(ext.x_left)), int(math.ceil(ext.x_right)) + 1)
    xm = float(colsi.mean()) + mus.cx0 if colsi.size else work.gs.shape[1] / 2
    t_px, t_mm = thickness_at(work, mus, xm, calibration)
    contrast = 1.0 - chosen.defect_level / chosen.muscle_level
    confidence = _confidence(contrast, ext.power_axis, ext.fraction)
    notes = []
    if dist.distance_mm is None and calibration.calibrated:
        notes.append("the stump ends are not inside one calibrated ultrasound region; gap in px")
    found = confidence >= th["min_confidence"]
    if not found:
        notes.append("the dark region is faint (low confidence)")
    if ext.power_axis > th["max_power_ratio"]:
        found = False
        notes.append(
            f"the dark region keeps {ext.power_axis * 100:.0f} % of the muscle's echo power "
            f"(a fluid-filled gap keeps ≤ {th['max_power_ratio'] * 100:.0f} %)"
        )
    return Defect(
        found=found, muscle_thickness_px=t_px, muscle_thickness_mm=t_mm, stump_left_px=left,
        stump_right_px=right, stump_rows_px=tuple(pairs), gap_px=dist.distance_px, gap_mm=dist.distance_mm,
        thickness_fraction=ext.fraction, depth_extent=(ext.v_top / (nv - 1), ext.v_bottom / (nv - 1)),
        contrast=float(contrast), power_ratio=float(ext.power_axis), confidence=confidence,
        outline_px=_outline(work, mus, chosen.mask, ext),
        calibration_source=calibration.source if dist.distance_mm is not None else "none",
        notes=tuple(notes), **base,
    )


# ---------------------------------------------------------------------------------------------
# the defect


def _thresholds(thresholds):
    from msus.analysis.thresholds import as_thresholds

    return as_thresholds(thresholds).defect


def analyse_compartment(work: Work, comp: Compartment, calibration: Calibration, th,
                        frame_index: int | None, roi) -> Defect:
    """Search the muscle of one compartment for a defect."""
    base = dict(frame_index=frame_index, roi=roi)
    mus = straighten(work, comp)
    if isinstance(mus, str):
        return Defect(found=False, notes=(mus,), **base)
    base.update(mus.fasciae)
    if float(np.median(mus.S2)) <= 1:
        return Defect(found=False, notes=("the muscle shows no echo",), **base)
    min_len, end_margin = _scales(work, calibration, th)
    tail = fascia_tail_rows(mus.S, th["fascia_tail_level"], th["fascia_tail_max"])
    chosen = None
    for t in find_troughs(mus.S, th, min_len, end_margin):
        chosen = refine_trough(t, mus.S, mus.S2, mus.DATA, th, tail)
        if chosen is not None:
            break
    ext = None if chosen is None else profile_extent(mus.P, end_margin, chosen.box, chosen.tail)
    if ext is None:
        t_px, t_mm = thickness_at(work, mus, work.gs.shape[1] / 2, calibration)
        note = "the dark region has no measurable ends" if chosen is not None else (
            f"no region between the fasciae is ≥ {th['min_contrast'] * 100:.0f} % darker than the muscle "
            f"over ≥ {th['min_thickness_fraction'] * 100:.0f} % of its thickness, bounded by muscle on both "
            "sides and free of fibres")
        return Defect(found=False, muscle_thickness_px=t_px, muscle_thickness_mm=t_mm, notes=(note,), **base)
    return measure(work, mus, chosen, ext, calibration, th, base)


def _pick(results: list[Defect], bounded: list[bool]) -> Defect:
    """The clearest defect of the compartments; without one, the shallowest compartment of
    substantial thickness (the muscle under the probe is usually the one imaged) among those
    bounded by two fasciae (``bounded``: neither line hugs the region's top or bottom edge — the
    skin line or the image border bounds fat, not a muscle) when there is one."""
    hits = [(d.confidence * (d.thickness_fraction + 0.2), d) for d in results if d.found]
    if hits:
        return max(hits, key=lambda t: t[0])[1]
    if any(bounded) and not all(bounded):
        results = [d for d, b in zip(results, bounded) if b]
    thick_of = [d.muscle_thickness_px or 0.0 for d in results]
    big = max(thick_of)
    for d, th_px in zip(results, thick_of):
        if th_px >= 0.5 * big:
            return d
    return results[0]


def defect(
    frame: np.ndarray,
    roi=None,
    calibration: Calibration | None = None,
    *,
    frame_index: int | None = None,
    thresholds: dict | None = None,
) -> Defect:
    """Find the hypoechoic defect between the fasciae of the muscle in one frame.

    Parameters
    ----------
    frame
        H×W or H×W×3 uint8.
    roi
        (x0, y0, x1, y1) inclusive full-frame px (x = column), or None for the tissue region
        (:func:`tissue_roi`).
    calibration
        For mm; None or an uncalibrated one gives px only.
    frame_index
        Recorded in the result.
    thresholds
        Parsed thresholds (see :func:`msus.analysis.classify.load_thresholds`); default: the configured file.

    Returns
    -------
    Defect
        ``found`` False (with ``notes`` saying why) when no defect passes the thresholds.

    Raises
    ------
    AnalysisError
        ROI outside the image or too small, or a blank frame.
    """
    th = _thresholds(thresholds)
    grey = to_grey(frame)
    if grey.ndim != 2 or min(grey.shape) < 17:
        raise AnalysisError(f"frame of shape {grey.shape} is too small to analyse")
    calibration = calibration or Calibration.none()
    roi = check_roi(roi, grey.shape) if roi is not None else tissue_roi(grey, calibration)
    x0, y0, x1, y1 = roi
    return defect_in_crop(grey[y0 : y1 + 1, x0 : x1 + 1], roi, calibration, frame_index=frame_index, thresholds=th)


def defect_in_crop(g: np.ndarray, roi, calibration: Calibration, *, frame_index: int | None = None,
                   thresholds=None) -> Defect:
    """:func:`defect` on an already cut grey ROI crop ``g`` (a view) of a frame; ``roi`` gives
    its place in the frame (results are full-frame px).  Every muscle compartment between
    consecutive fasciae is searched; the clearest defect wins."""
    th = thresholds if hasattr(thresholds, "min_contrast") else _thresholds(thresholds)
    if float(g.std()) < 2.0:
        raise AnalysisError("the frame is blank inside the region of interest (no echo texture)")
    work = working_copy(g, roi)
    r = ridge(work.gs, RIDGE_SIGMA_PX)
    pairs = compartment_pairs(fascia_candidates(r), r, th["min_parallel_ratio"])
    if not pairs:
        return Defect(found=False, frame_index=frame_index, roi=roi,
                      notes=("no pair of fasciae found bounding a muscle",))
    h = work.gs.shape[0]
    bounded = [RIDGE_SIGMA_PX < c.top[2] and c.bottom[2] < h - 1 - RIDGE_SIGMA_PX for c in pairs]
    return _pick([analyse_compartment(work, comp, calibration, th, frame_index, roi) for comp in pairs], bounded)
