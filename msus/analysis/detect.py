"""The hypoechoic defect between the fasciae of a muscle: stumps, gap, thickness fraction.

``defect(frame, roi, calibration) -> Defect``.  Method (all in a downscaled working copy of the
ROI, longer side :data:`WORK_SIDE_PX` px; results are mapped back to full-frame px):

1. **Despeckle**: 5×5 median then a Gaussian (σ 1.5 px); a 9×9 median for echo levels.
2. **Fasciae**: a ridge response (bright bands: −∂²I/∂y² at σ 3 px, ≥ 0) is projected along every
   orientation from −30° to +30° (1° steps) — a Hough transform of lines restricted to
   near-horizontal muscles.  Lines weaker than :data:`FASCIA_MIN_SHARE` of the strongest are
   not fasciae.  Each line is refined separately (weighted least squares on the ridge maxima in a
   band around it, with outlier rejection), so two fasciae may have different tilts.  The
   muscle's edge below (above) a fascia is where the echo falls half-way to the muscle's level.
3. **Compartments**: each muscle between consecutive fasciae is searched; the clearest defect
   wins.
4. **Straighten**: the muscle between the fascia edges is resampled column by column into a
   rectangle (rows = depth from superficial 0 to deep 1).  A row of the rectangle is parallel to
   the fasciae, i.e. along the muscle's long axis, so distances along a row are distances along
   the axis, whatever the tilt.
5. **Troughs**: in depth bands, the median echo per column is a profile along the axis
   (oblique fascicles average out); a defect crossing the band is a trough.  Troughs deep enough,
   long enough, bounded by muscle on both sides and with both stumps inside the ROI are outlined
   at half depth and must be free of bright fibres inside.
6. **Measure** in linear echo power (a nominal :data:`NOMINAL_DR_DB` dB log compression undone),
   where a blurred edge lies half-way between the two levels: the depth extent (thickness
   fraction) from the profile across the depth over the defect's central columns; the two ends
   from the profile along the axis over the rows of the central half of the torn depth (25–75 %
   of fascia to fascia for a full-thickness defect, of the defect's depth extent otherwise), at
   the sub-pixel half-level crossings.  Gap in mm via the calibration when both ends lie in one
   calibrated region, else px only.  The power ratio (defect vs muscle) must stay below
   ``max_power_ratio``: fluid keeps little echo power, a dark patch of muscle keeps more.

Thresholds come from ``msus/analysis/thresholds.toml`` (section ``[defect]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from msus.calibration import Calibration
from msus.cine import to_grey
from msus.errors import AnalysisError

#: Longer side (px) of the working copy of the ROI.
WORK_SIDE_PX = 320
#: Orientations (deg) searched for the fasciae.
ANGLES_DEG = np.arange(-30, 31, 1.0)

#: Median window (working px) for the echo level used to segment the defect.
DARK_MEDIAN_PX = 9
#: A trough is bounded by muscle when, within max(stump margin, BOUND_REACH × its width) beyond
#: each half-depth edge, the echo recovers this share of the way back to the muscle's level.
BOUND_REACH = 1.0
BOUND_RECOVERY = 0.75
#: Dark runs across the depth separated by at most this share of the thickness are one defect.
BRIDGE_ROWS = 0.3
#: Scale (working px) of the ridge filter that finds the fasciae (bright bands ~1 mm thick).
RIDGE_SIGMA_PX = 3.0
#: Dynamic range (dB) assumed for the grey-level display when converting back to echo power.
NOMINAL_DR_DB = 60.0
#: A line weaker than this share of the strongest one is not taken for a fascia.
FASCIA_MIN_SHARE = 0.2
#: A trough this many grey levels deep counts even when shallower than ``min_contrast`` (about
#: 5.5 dB at the nominal 60 dB display range, the spread of fully developed speckle).
MIN_TROUGH_LEVELS = 24.0
#: Default ROI: a textured pixel whose grey level varies less than this (std over the sampled
#: frames, grey levels) never changes: screen furniture, not tissue (when the tissue moves).
STATIC_GREY_STD = 0.75
#: Confidence from echo power: a defect keeping POWER_CONFIDENT − POWER_SPAN (0.1) of the
#: muscle's echo power stands out fully, one keeping POWER_CONFIDENT (0.4) not at all.
POWER_CONFIDENT = 0.4
POWER_SPAN = 0.3
#: ... and at least this multiple of the typical line strength (the median projection of the
#: ridge map over every orientation and position: speckle ridges averaged along a line).
FASCIA_MIN_NOISE = 3.0

Point = tuple[float, float]


@dataclass(frozen=True)
class FasciaLine:
    """A fascia as a straight line across the ROI, full-frame px (x = column)."""

    x0: float
    y0: float
    x1: float
    y1: float
    inner_offset_px: float = 0.0  # distance from the line to the muscle's edge, px (vertical)

    @property
    def angle_deg(self) -> float:
        return math.degrees(math.atan2(self.y1 - self.y0, self.x1 - self.x0))

    def y_at(self, x):
        if self.x1 == self.x0:
            return np.full_like(np.asarray(x, float), self.y0)
        return self.y0 + (np.asarray(x, float) - self.x0) * (self.y1 - self.y0) / (self.x1 - self.x0)

    def to_dict(self) -> dict:
        return {
            "points_px": [[self.x0, self.y0], [self.x1, self.y1]],
            "angle_deg": self.angle_deg,
            "inner_offset_px": self.inner_offset_px,
        }


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
# regions


def check_roi(roi, shape) -> tuple[int, int, int, int]:
    """Validate an (x0, y0, x1, y1) inclusive ROI against an image shape (rows, cols)."""
    rows, cols = shape[:2]
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in roi)
    except (TypeError, ValueError):
        raise AnalysisError("the ROI must be four numbers X0,Y0,X1,Y1") from None
    if x1 < x0:
        x0, x1 = x1, x0
    if y1 < y0:
        y0, y1 = y1, y0
    if x0 < 0 or y0 < 0 or x1 > cols - 1 or y1 > rows - 1:
        raise AnalysisError(f"the ROI {x0},{y0},{x1},{y1} lies outside the {cols}×{rows} image")
    if x1 - x0 < 16 or y1 - y0 < 16:
        raise AnalysisError(f"the ROI {x0},{y0},{x1},{y1} is too small (at least 17×17 px)")
    return (x0, y0, x1, y1)


def tissue_roi(grey: np.ndarray, calibration: Calibration | None = None) -> tuple[int, int, int, int]:
    """Default ROI: the image area holding tissue.

    Parameters
    ----------
    grey
        One H×W uint8 frame, or an N×H×W stack of frames of the loop (better: tissue that is
        dark on one frame is textured on another, and tissue moves while scanner UI does not).
    calibration
        When it has a calibrated 2D ultrasound region, the largest such region is the ROI.

    Without a region: the largest rectangle of textured pixels (speckle has local contrast,
    screen-capture backgrounds and borders are flat; text is too sparse to fill rows), found
    from the longest runs of mostly-textured columns and rows.  Excludes scanner UI around a
    screen capture.
    """
    stack = np.asarray(grey)
    if stack.ndim == 2:
        stack = stack[None]
    rows, cols = stack.shape[1:3]
    if calibration is not None and calibration.source == "us_region":
        regs = [r for r in calibration.regions if r.is_calibrated_2d]
        if regs:
            r = max(regs, key=lambda r: r.area)
            x0, y0 = max(0, r.x0), max(0, r.y0)
            x1, y1 = min(cols - 1, r.x1), min(rows - 1, r.y1)
            if x1 - x0 >= 16 and y1 - y0 >= 16:
                return (x0, y0, x1, y1)
    s = min(1.0, 200.0 / max(rows, cols))
    pick = np.unique(np.linspace(0, stack.shape[0] - 1, min(12, stack.shape[0])).round().astype(int))
    mask = None
    smalls = []
    for i in pick:
        small = cv2.resize(stack[i], None, fx=s, fy=s, interpolation=cv2.INTER_AREA).astype(np.float32)
        smalls.append(small)
        m = cv2.blur(small, (5, 5))
        sd = np.sqrt(np.maximum(cv2.blur(small * small, (5, 5)) - m * m, 0))
        mk = (sd > 4.0) & (m > 6.0)
        mask = mk if mask is None else (mask | mk)
    if len(smalls) >= 3:
        tstd = np.std(np.stack(smalls), axis=0)
        # tissue moves, scanner UI does not: when most of the textured area changes over the
        # loop, textured pixels that never change (depth scale, burned-in text, logo) are UI
        static = tstd < STATIC_GREY_STD
        if mask.any() and float(static[mask].mean()) < 0.5:
            mask &= ~cv2.dilate(static.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) | (tstd > 3.0)
        mask |= tstd > 3.0
    hs, ws = mask.shape
    r0, r1, c0, c1 = 0, hs - 1, 0, ws - 1
    for _ in range(3):
        c0, c1 = _longest_run(mask[r0 : r1 + 1].mean(axis=0) >= 0.6)
        r0, r1 = _longest_run(mask[:, c0 : c1 + 1].mean(axis=1) >= 0.5, max_hole=3)
    if (c1 - c0 + 1) * (r1 - r0 + 1) < 0.1 * mask.size:
        return (0, 0, cols - 1, rows - 1)
    # shrink by the filter half-width (texture measured over 5×5 small px) and a little more
    x0 = int(np.clip(np.ceil((c0 + 2) / s), 0, cols - 1))
    y0 = int(np.clip(np.ceil((r0 + 2) / s), 0, rows - 1))
    x1 = int(np.clip(np.floor((c1 - 1) / s), 0, cols - 1))
    y1 = int(np.clip(np.floor((r1 - 1) / s), 0, rows - 1))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return (0, 0, cols - 1, rows - 1)
    return (x0, y0, x1, y1)


def _longest_run(flags: np.ndarray, max_hole: int = 2) -> tuple[int, int]:
    """(first, last) index of the longest run of True, bridging holes of ≤ max_hole."""
    f = flags.copy()
    idx = np.flatnonzero(f)
    if idx.size == 0:
        return (0, f.size - 1)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_hole + 1:
            f[a:b] = True
    best, start = (0, 0, -1), None
    for i, v in enumerate(np.append(f, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start > best[0]:
                best = (i - start, start, i - 1)
            start = None
    return (best[1], best[2])


# ---------------------------------------------------------------------------------------------
# fasciae


def _ridge(gs: np.ndarray, sigma: float) -> np.ndarray:
    g = cv2.GaussianBlur(gs, (0, 0), sigma)
    d2 = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3)
    return np.maximum(-d2, 0)


def _line_candidates(r: np.ndarray, min_sep: float, n_best: int = 4):
    """Strongest near-horizontal lines of a ridge map: ([(strength, angle_rad, y_at_centre)],
    typical strength of a line anywhere (median over all orientations and positions)).

    The projection is made over the whole width and over the central half; a line's strength is
    the larger of the two, so a curved fascia (straight enough over half the width) still stands
    out while a straight one scores as before.
    """
    h, w = r.shape
    yy, xx = np.mgrid[0:h, 0:w]
    xc = (w - 1) / 2.0
    xs = (xx - xc).ravel().astype(np.float32)
    ys = yy.ravel().astype(np.float32)
    rv = r.ravel()
    central = (np.abs(xs) <= w / 4.0)
    best = []
    for ang in np.radians(ANGLES_DEG):
        # y at the centre column of the line through each pixel with this slope
        yc = ys - xs * math.tan(ang)
        b = np.round(yc).astype(np.int64)
        ok = (b >= 0) & (b < h)
        sums = np.bincount(b[ok], weights=rv[ok], minlength=h)
        cnt = np.bincount(b[ok], minlength=h)
        prof = np.where(cnt >= 0.6 * w, sums / np.maximum(cnt, 1), 0.0)
        okc = ok & central
        sums_c = np.bincount(b[okc], weights=rv[okc], minlength=h)
        cnt_c = np.bincount(b[okc], minlength=h)
        prof_c = np.where(cnt_c >= 0.3 * w, sums_c / np.maximum(cnt_c, 1), 0.0)
        prof = np.maximum(prof, prof_c)
        prof = np.convolve(prof, [1 / 9, 2 / 9, 3 / 9, 2 / 9, 1 / 9], mode="same")
        best.append(prof)
    prof = np.stack(best)  # angles × h
    valid = prof[prof > 0]
    noise = float(np.median(valid)) if valid.size else 0.0
    found = []
    p = prof.copy()
    for _ in range(n_best):
        i = int(np.argmax(p))
        ai, yi = divmod(i, h)
        s = p[ai, yi]
        if s <= 0:
            break
        found.append((float(s), float(np.radians(ANGLES_DEG[ai])), float(yi)))
        lo, hi = int(max(0, yi - min_sep)), int(min(h, yi + min_sep + 1))
        p[:, lo:hi] = 0
    return found, noise


def _refine_line(r: np.ndarray, ang: float, yc: float, band: float):
    """Robust weighted LS fit of a fascia to the ridge maxima near a candidate line.

    Returns ``(a, b, c)`` of ``y = a + b·(x − xc) + c·(x − xc)²`` (working px): a straight line
    first, then a gentle curvature (muscles bow; the bow at the edges is limited to 8 % of the
    width) when it fits the ridge clearly better.
    """
    h, w = r.shape
    xc = (w - 1) / 2.0
    cols = np.arange(0, w, 2)
    a, b, c = yc, math.tan(ang), 0.0
    xr = cols - xc
    c_max = 0.08 * w / max(1.0, (w / 2.0) ** 2)
    for it in range(5):
        yl = a + b * xr + c * xr * xr
        lo = np.clip(np.floor(yl - band), 0, h - 1).astype(int)
        offs = np.arange(int(2 * band) + 1)
        rows = np.clip(lo[:, None] + offs[None, :], 0, h - 1)
        vals = r[rows, cols[:, None]]
        k = np.argmax(vals, axis=1)
        ymax = rows[np.arange(len(cols)), k].astype(float)
        wgt = vals[np.arange(len(cols)), k]
        keep = (wgt > 0) & (ymax > 0) & (ymax < h - 1)
        if it > 0:
            res = np.abs(ymax - yl)
            keep &= res <= max(1.5, 2.5 * np.median(res[keep]) if keep.any() else 1.5)
        if keep.sum() < 8:
            break
        W = wgt[keep]
        X = np.stack([np.ones(keep.sum()), xr[keep]], 1)
        A = X.T @ (X * W[:, None])
        if abs(np.linalg.det(A)) < 1e-9:
            break
        a1, b1 = np.linalg.solve(A, X.T @ (W * ymax[keep]))
        a, b, c = float(a1), float(np.clip(b1, -0.6, 0.6)), 0.0
        if it >= 2:  # curvature, once the straight line has settled
            X3 = np.stack([np.ones(keep.sum()), xr[keep], xr[keep] ** 2], 1)
            A3 = X3.T @ (X3 * W[:, None])
            if abs(np.linalg.det(A3)) > 1e-12:
                a3, b3, c3 = np.linalg.solve(A3, X3.T @ (W * ymax[keep]))
                r1 = float(np.average(np.abs(ymax[keep] - (a + b * xr[keep])), weights=W))
                r3 = float(np.average(np.abs(ymax[keep] - (a3 + b3 * xr[keep] + c3 * xr[keep] ** 2)), weights=W))
                if r3 < 0.8 * r1 and abs(c3) <= c_max:
                    a, b, c = float(a3), float(np.clip(b3, -0.6, 0.6)), float(c3)
        band = max(3.0, band * 0.6)
    return float(a), float(b), float(c)


def _inner_offset(gs: np.ndarray, yline: np.ndarray, direction: int, muscle_level: float) -> float:
    """Distance (px, vertical) from a fascia (y per column) to where the echo falls half-way to the muscle."""
    h, w = gs.shape
    cols = np.arange(0, w, 2)
    prof = []
    offs = np.arange(0, 16)
    for o in offs:
        y = yline[cols] + direction * o
        ok = (y >= 0) & (y <= h - 1)
        if not ok.any():
            prof.append(np.nan)
            continue
        yi = np.round(y[ok]).astype(int)
        prof.append(float(np.median(gs[yi, cols[ok]])))
    prof = np.array(prof)
    peak = np.nanmax(prof[:4]) if np.isfinite(prof[:4]).any() else np.nan
    if not np.isfinite(peak) or peak <= muscle_level:
        return 2.0
    half = (peak + muscle_level) / 2.0
    start = int(np.nanargmax(prof[:4]))
    for o in range(start, len(prof)):
        if np.isfinite(prof[o]) and prof[o] <= half:
            return float(max(1.0, o))
    return float(len(prof) - 1)


def _half_crossing(p: np.ndarray, start: int, step: int, level: float, stop: int) -> float | None:
    """First sub-pixel position from ``start`` moving by ``step`` where ``p`` rises to ``level``."""
    i = start
    while 0 <= i + step < p.size and (i + step - stop) * step <= 0:
        j = i + step
        if p[j] >= level:
            a_, b_ = float(p[i]), float(p[j])
            t = 0.0 if b_ == a_ else (level - a_) / (b_ - a_)
            return float(i + step * np.clip(t, 0.0, 1.0))
        i = j
    return None




def _column_level(block: np.ndarray) -> np.ndarray:
    """Echo power level of each column of a block of rows (median: frayed ends and floating
    echoes count by their typical, not their extreme, value)."""
    return np.median(block, axis=0)


def _profile_extent(P: np.ndarray, mask: np.ndarray, margin: float, trough):
    """Ends and depth extent of a defect from averaged echo-power profiles.

    ``P`` is the straightened muscle in linear echo power (rows = depth 0..1, columns along the
    axis), ``mask`` the segmented defect.  Each row is normalised by the muscle's level in that
    row (median outside the defect's columns).  The depth extent comes from the median over the
    defect's central columns, the ends from the median over the rows of the central half of the
    torn depth; edges are the half-level crossings between the defect's own level and the
    muscle's level just beyond each end.  Medians across rows/columns make frayed ends and
    floating echoes count by their typical, not their extreme, position.

    Returns (x_left, x_right, v_top, v_bottom, thickness_fraction, power ratio along the axis,
    power ratio across the depth, shear) in straightened px, or None; the ends are those of the
    middle measured row, ``shear[v]`` (columns) moves them to row ``v`` of an oblique defect.
    """
    nv, nc = P.shape
    c0, c1, tb0, tb1 = (int(v) for v in trough)
    pad = max(3, int(round(margin)))
    outside = np.ones(nc, bool)
    outside[max(0, c0 - 2) : c1 + 3] = False
    if outside.sum() < 4:
        return None
    row_level = np.median(P[:, outside], axis=1)
    Pn = P / np.maximum(row_level[:, None], 1e-6)
    # depth profile over the central half of the defect's columns
    # ... following the defect row by row (at most one column per row, ≤ 45° from the normal to
    # the axis), so an oblique tear plane is measured across its whole depth
    hw = max(1, int(round(0.25 * (c1 - c0))))
    Pr = cv2.blur(Pn.astype(np.float32), (3, 5))  # local mean: 3 columns, 5 rows
    d_est = float(np.median(Pn[max(0, tb0) : max(tb0 + 1, min(nv, tb1)), c0 : c1 + 1]))
    half_c = 0.5 * (1.0 + d_est)
    centre = np.full(nv, 0.5 * (c0 + c1))
    inside = np.zeros(nv, bool)
    reach_c = 2 * (c1 - c0 + 1)
    for rng_ in (range(max(0, tb0), nv), range(max(0, tb0) - 1, -1, -1)):
        prev = 0.5 * (c0 + c1)
        for v in rng_:
            row = Pr[v]
            x = int(np.clip(round(prev), 0, nc - 1))
            if row[x] < half_c:  # inside the dark run: its middle, moving ≤ 1 column per row
                a_ = x
                while a_ > 0 and row[a_ - 1] < half_c and x - a_ < reach_c:
                    a_ -= 1
                b_ = x
                while b_ < nc - 1 and row[b_ + 1] < half_c and b_ - x < reach_c:
                    b_ += 1
                # only a run as wide as the defect (bounded on both sides) steers the centre
                if 0.6 * (c1 - c0 + 1) <= b_ - a_ + 1 <= 1.5 * (c1 - c0 + 1):
                    prev = float(np.clip(0.5 * (a_ + b_), prev - 1.0, prev + 1.0))
                    inside[v] = True
            centre[v] = prev
    # a tear plane is a plane: the centre line is the straight fit through the rows inside the
    # defect (fraying is noise around it and must not shear the rows)
    iv = np.flatnonzero(inside)
    if iv.size >= 5:
        slope, icpt = np.polyfit(iv.astype(float), centre[iv], 1)
        centre = icpt + slope * np.arange(nv, dtype=float)
    else:
        centre[:] = 0.5 * (c0 + c1)
    q = np.array([np.median(Pn[v, max(0, int(round(centre[v])) - hw) : int(round(centre[v])) + hw + 1])
                  for v in range(nv)])
    q = cv2.GaussianBlur(q.astype(np.float32)[:, None], (1, 0), sigmaX=0.1, sigmaY=1.5)[:, 0]
    rows_m = np.arange(tb0, min(nv, tb1))
    d_level = float(np.median(q[rows_m]))
    half_v = (d_level + 1.0) / 2.0
    tol = 2.0
    # dark rows, in runs; runs separated by brighter rows (floating echoes, clots) belong to one
    # defect, so the extent is from the first to the last substantial run
    dark = q < half_v
    runs = []
    start = None
    for i, dv in enumerate(np.append(dark, False)):
        if dv and start is None:
            start = i
        elif not dv and start is not None:
            if i - start >= max(3, 0.05 * nv):
                runs.append((start, i - 1))
            start = None
    if not runs:
        return None
    # start from the run nearest the band where the trough was found, and join neighbouring
    # runs across short brighter interruptions only
    mid_band = 0.5 * (tb0 + tb1 - 1)
    m = min(range(len(runs)), key=lambda j: 0 if runs[j][0] <= mid_band <= runs[j][1]
            else min(abs(runs[j][0] - mid_band), abs(runs[j][1] - mid_band)))
    lo_j = hi_j = m
    max_gap = BRIDGE_ROWS * nv
    while lo_j > 0 and runs[lo_j][0] - runs[lo_j - 1][1] - 1 <= max_gap:
        lo_j -= 1
    while hi_j < len(runs) - 1 and runs[hi_j + 1][0] - runs[hi_j][1] - 1 <= max_gap:
        hi_j += 1
    first_run, last_run = runs[lo_j], runs[hi_j]
    up = _half_crossing(q, first_run[0], -1, half_v, 0) if first_run[0] > 0 else None
    dn = _half_crossing(q, last_run[1], +1, half_v, nv - 1) if last_run[1] < nv - 1 else None
    v_top = 0.0 if up is None or up <= tol else up
    v_bot = float(nv - 1) if dn is None or dn >= nv - 1 - tol else dn
    if v_bot - v_top < 2:
        return None
    frac = float(np.clip((v_bot - v_top) / (nv - 1), 0.0, 1.0))
    if v_top == 0.0 and v_bot == nv - 1:
        frac = 1.0
    # along-axis profile over the central half of the torn depth
    r0 = int(round(v_top + 0.25 * (v_bot - v_top)))
    r1 = max(r0 + 1, int(round(v_top + 0.75 * (v_bot - v_top))) + 1)
    # the rows are re-aligned on the defect's centre line first (an oblique tear plane), so the
    # ends are measured along the axis in every row; positions are those of the middle row
    vm = int(round(0.5 * (r0 + r1 - 1)))
    shear = np.round(centre - centre[vm]).astype(int)
    cols_all = np.arange(nc)
    rows_al = np.stack([Pn[v, np.clip(cols_all + shear[v], 0, nc - 1)] for v in range(r0, r1)])
    p = _column_level(rows_al)
    off = int(round(centre[vm] - 0.5 * (c0 + c1)))
    c0, c1 = int(np.clip(c0 + off, 0, nc - 1)), int(np.clip(c1 + off, 0, nc - 1))
    core = np.arange(c0, c1 + 1)
    xc = int(core[np.argmin(p[core])])
    span_c = max(pad, c1 - c0 + 1)
    a0, b0 = c0 - 2, c1 + 2
    d_x = float(np.median(p[core]))
    win = max(4, pad)
    lm = p[max(0, a0 - 2 * win) : a0 + 1]
    rm = p[b0 : b0 + 2 * win + 1]
    if lm.size < 2 or rm.size < 2:
        return None
    m_l, m_r = float(np.mean(lm)), float(np.mean(rm))
    xl = _half_crossing(p, xc, -1, (d_x + m_l) / 2.0, max(0, a0 - span_c))
    xr = _half_crossing(p, xc, +1, (d_x + m_r) / 2.0, min(nc - 1, b0 + span_c))
    if xl is None or xr is None or xr - xl < 1:
        return None
    return xl, xr, v_top, v_bot, frac, d_x, d_level, shear.astype(float)


# ---------------------------------------------------------------------------------------------
# the defect


def _thresholds(thresholds):
    from msus.analysis.thresholds import as_thresholds

    return as_thresholds(thresholds).defect


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
    its place in the frame (results are full-frame px)."""
    th = thresholds if hasattr(thresholds, "min_contrast") else _thresholds(thresholds)
    x0, y0, x1, y1 = roi
    if float(g.std()) < 2.0:
        raise AnalysisError("the frame is blank inside the region of interest (no echo texture)")
    h0, w0 = g.shape
    s = min(1.0, WORK_SIDE_PX / max(h0, w0))
    gw = cv2.resize(g, (max(17, round(w0 * s)), max(17, round(h0 * s))), interpolation=cv2.INTER_AREA)
    sx, sy = gw.shape[1] / w0, gw.shape[0] / h0
    gs = cv2.GaussianBlur(cv2.medianBlur(gw, 5).astype(np.float32), (0, 0), 1.5)
    # a wider median for the echo level: ignores floating echoes and speckle grains in a defect
    gd = cv2.medianBlur(gw, DARK_MEDIAN_PX).astype(np.float32)
    # where the image holds data: outside a sector fan or under a flat overlay the grey level is
    # constant; even anechoic fluid shows some noise
    gwf = gw.astype(np.float32)
    mu = cv2.blur(gwf, (5, 5))
    has_data = ((np.sqrt(np.maximum(cv2.blur(gwf * gwf, (5, 5)) - mu * mu, 0)) > 0.75) | (gwf > 4)).astype(np.float32)
    gs_lin = np.power(10.0, cv2.medianBlur(gw, 5).astype(np.float32) * (NOMINAL_DR_DB / 2550.0)).astype(np.float32)
    h, w = gs.shape

    def to_full(xw, yw):
        return (float(x0 + (xw + 0.5) / sx - 0.5), float(y0 + (yw + 0.5) / sy - 0.5))

    base = dict(frame_index=frame_index, roi=roi)

    # --- fasciae
    r = _ridge(gs, RIDGE_SIGMA_PX)
    cands, line_noise = _line_candidates(r, min_sep=max(6.0, 0.06 * h), n_best=8)
    # fasciae are the strong lines; weaker ones (fascicles, septa) do not bound a compartment
    if cands:
        # a ridge hugging the ROI's top or bottom edge (skin line, image border) does not set the
        # scale: it is not a fascia and is often the strongest line
        inner = [c for c in cands if RIDGE_SIGMA_PX < c[2] < h - 1 - RIDGE_SIGMA_PX] or cands
        top_strength = max(c[0] for c in inner)
        # ... and a fascia stands out from the speckle's own ridges (a thin or faint fascia is
        # much weaker than a thick one or a bone line, but still far above speckle)
        cands = [c for c in cands if c[0] >= max(FASCIA_MIN_SHARE * top_strength, FASCIA_MIN_NOISE * line_noise)]
    def analyse_pair(top, bot) -> Defect:
        """Search the muscle between two fascia candidates for a defect."""
        base = dict(frame_index=frame_index, roi=roi)
        a_t, b_t, c_t = _refine_line(r, top[1], top[2], band=6.0)
        a_b, b_b, c_b = _refine_line(r, bot[1], bot[2], band=6.0)
        xc = (w - 1) / 2.0
        cols = np.arange(w, dtype=np.float32)
        yt = a_t + b_t * (cols - xc) + c_t * (cols - xc) ** 2
        yb = a_b + b_b * (cols - xc) + c_b * (cols - xc) ** 2
        between = (yb - yt) > 8
        if between.sum() < 0.5 * w:
            return Defect(found=False, notes=("the fasciae found do not bound a muscle",), **base)
        # provisional muscle level: median of the band between the lines
        yy = np.arange(h)[:, None]
        band = (yy > yt[None, :] + 3) & (yy < yb[None, :] - 3)
        muscle_level0 = float(np.median(gs[band])) if band.any() else float(np.median(gs))
        off_t = _inner_offset(gs, yt, +1, muscle_level0)
        off_b = _inner_offset(gs, yb, -1, muscle_level0)
        et, eb = yt + off_t, yb - off_b
        thick = eb - et
        valid_cols = np.flatnonzero((thick > 6) & (et >= 0) & (eb <= h - 1))
        if valid_cols.size < 0.4 * w:
            return Defect(found=False, notes=("the muscle between the fasciae is too thin to analyse",), **base)
        cx0, cx1 = int(valid_cols[0]), int(valid_cols[-1])
        ncols = cx1 - cx0 + 1
        nv = int(max(12, round(float(np.median(thick[valid_cols])))))
        vs = np.linspace(0.0, 1.0, nv, dtype=np.float32)
        map_x = np.broadcast_to(cols[cx0 : cx1 + 1][None, :], (nv, ncols)).astype(np.float32)
        map_y = (et[None, cx0 : cx1 + 1] + vs[:, None] * thick[None, cx0 : cx1 + 1]).astype(np.float32)
        S = cv2.remap(gs, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        S2 = cv2.GaussianBlur(
            cv2.remap(gd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), (0, 0), 1.5
        )
        P = cv2.remap(gs_lin, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        DATA = cv2.remap(has_data, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

        sup_line = FasciaLine(*to_full(0, yt[0]), *to_full(w - 1, yt[-1]), inner_offset_px=off_t / sy)
        deep_line = FasciaLine(*to_full(0, yb[0]), *to_full(w - 1, yb[-1]), inner_offset_px=off_b / sy)
        ang = math.degrees(math.atan((b_t + b_b) / 2.0 * sx / sy)) if sx and sy else 0.0
        base.update(superficial_fascia=sup_line, deep_fascia=deep_line, axis_angle_deg=ang)

        def thickness_at(xw: float) -> tuple[float, float | None]:
            xi = int(np.clip(round(xw), cx0, cx1))
            p1, p2 = to_full(xi, et[xi]), to_full(xi, eb[xi])
            d = calibration.measure(p1, p2)
            return d.distance_px, d.distance_mm

        m = float(np.median(S2))
        if m <= 1:
            return Defect(found=False, notes=("the muscle shows no echo",), **base)
        px_per_mm = None
        mmpp = calibration.mm_per_px_at(*to_full(w / 2, h / 2))
        if mmpp is not None:
            px_per_mm = 1.0 / mmpp[0]
        min_len_work = (th["min_length_mm"] * px_per_mm if px_per_mm else th["min_length_px"]) * sx
        # both stumps must be visible: some muscle beyond each end of the defect
        end_margin = max(3.0, (th["stump_margin_mm"] * px_per_mm if px_per_mm else th["stump_margin_px"]) * sx)

        # --- troughs: in depth bands of the straightened muscle, the median echo per column along
        # the axis; fascicle lines average out, a defect crossing the band is a trough.
        bands = [(0, nv)]
        bh = max(4, int(round(0.3 * nv)))
        for k in range(6):
            b0 = int(round(k * (nv - bh) / 5))
            bands.append((b0, b0 + bh))
        found_t = []
        for b0, b1 in bands:
            prof = cv2.GaussianBlur(np.median(S[b0:b1], axis=0)[None, :], (0, 0), 1.5)[0]
            level = float(np.median(prof))
            if level <= 1:
                continue
            r_ = prof / level
            lo_ok = np.ones(ncols, bool)
            for _ in range(3):  # the three deepest troughs of the band
                cand_x = np.flatnonzero(lo_ok)
                if cand_x.size == 0:
                    break
                xm_ = int(cand_x[np.argmin(r_[cand_x])])
                depth = 1.0 - float(r_[xm_])
                # deep enough relative to the muscle (grey ratio), or by a fixed number of grey
                # levels (≈ dB on the display): on a bright display a fluid gap is many levels
                # darker yet a smaller share of the muscle's grey level
                if depth < th["min_contrast"] and depth * level < MIN_TROUGH_LEVELS:
                    break
                halfr = 1.0 - depth / 2.0
                xa = xm_
                while xa > 0 and r_[xa - 1] < halfr:
                    xa -= 1
                xb = xm_
                while xb < ncols - 1 and r_[xb + 1] < halfr:
                    xb += 1
                lo_ok[max(0, xa - 2) : xb + 3] = False
                width = xb - xa + 1
                # bounded by muscle: within a short reach beyond each half-depth edge the echo
                # recovers three quarters of the way back to the muscle's level
                reach = int(round(max(end_margin, BOUND_REACH * width)))
                rec = 1.0 - (1.0 - BOUND_RECOVERY) * depth
                left_ok = (r_[max(0, xa - reach) : xa] >= rec).any()
                right_ok = (r_[xb + 1 : xb + 1 + reach] >= rec).any()
                if width < min_len_work or xa < end_margin or xb > ncols - 1 - end_margin or not (left_ok and right_ok):
                    continue
                found_t.append((depth, width, b0, b1, xa, xb, level))
        found_t.sort(key=lambda t: (round(t[0], 2), t[1]), reverse=True)

        def refine(t):
            """Outline of a trough at half depth; None when it fails the stricter tests."""
            depth, width, b0, b1, xa, xb, level = t
            if float(DATA[b0:b1, max(0, xa - 3) : xb + 4].mean()) < 0.9:
                return None  # no image data there (outside the fan, under an overlay)
            d_lev = level * (1.0 - depth)
            half_g = (d_lev + level) / 2.0
            low = (S2 < half_g).astype(np.uint8)
            _, lab2 = cv2.connectedComponents(low, connectivity=8)
            core = np.zeros_like(low, bool)
            core[b0:b1, xa : xb + 1] = True
            ids, counts = np.unique(lab2[core & (low > 0)], return_counts=True)
            if not ids.size:
                return None
            mask = lab2 == ids[np.argmax(counts)]
            # keep the outline to the trough's neighbourhood (dark muscle may connect to it)
            keep = np.zeros_like(mask)
            pad = max(3, int(round(0.5 * width)))
            keep[:, max(0, xa - pad) : xb + pad + 1] = True
            mask &= keep
            mask_u = mask.astype(np.uint8)
            contours, _ = cv2.findContours(mask_u, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            filled = np.zeros_like(mask_u)
            cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
            mask = filled.astype(bool) | core
            # no fibres cross a tear: bright structure inside means a dark patch of muscle
            inner = np.zeros_like(mask)
            inner[b0:b1, xa : xb + 1] = True
            v90 = float(np.percentile(S[inner], 90)) if inner.sum() >= 10 else 0.0
            if v90 > th["max_inside_level"] * level:
                return None
            frac_b = float(mask[:, xa : xb + 1].any(axis=1).mean())
            if frac_b < th["min_thickness_fraction"]:
                return None
            return mask, d_lev, level, half_g, (xa, xb, b0, b1)

        chosen = None
        for t in found_t:
            chosen = refine(t)
            if chosen is not None:
                break
        if chosen is None:
            t_px, t_mm = thickness_at(w / 2)
            note = (
                f"no region between the fasciae is ≥ {th['min_contrast'] * 100:.0f} % darker than the muscle "
                f"over ≥ {th['min_thickness_fraction'] * 100:.0f} % of its thickness, bounded by muscle on both "
                "sides and free of fibres"
            )
            return Defect(found=False, muscle_thickness_px=t_px, muscle_thickness_mm=t_mm, notes=(note,), **base)
        mask, d_level, m_loc, half, trough = chosen
        contrast = 1.0 - d_level / m_loc
        ext = _profile_extent(P, mask, end_margin, trough)
        if ext is None:
            t_px, t_mm = thickness_at(w / 2)
            return Defect(found=False, muscle_thickness_px=t_px, muscle_thickness_mm=t_mm,
                          notes=("the dark region has no measurable ends",), **base)
        xl, xr, v_top, v_bot, frac, power_ratio_x, power_ratio_v, shear = ext
        colsi = np.arange(int(math.floor(xl)), int(math.ceil(xr)) + 1)

        def img_pt(xs_: float, v_: float):
            """Straightened (column, row) -> full-frame (x, y)."""
            xw = xs_ + cx0
            yw = float(np.interp(xw, cols, et + (v_ / (nv - 1)) * thick))
            return to_full(xw, yw)

        pairs = []
        for q in (0.25, 0.375, 0.5, 0.625, 0.75):
            v_ = v_top + q * (v_bot - v_top)
            sh = float(np.interp(v_, np.arange(nv), shear))  # oblique tear plane
            pairs.append((img_pt(xl + sh, v_), img_pt(xr + sh, v_)))
        mid = pairs[2]
        dist = calibration.measure(*mid)
        gap_px, gap_mm = dist.distance_px, dist.distance_mm
        left, right = mid
        # outline: the segmented region, kept within the measured ends and depth extent (with a
        # little slack for frayed ends) so that what is drawn agrees with what is measured
        slack = max(2, int(round(0.25 * (xr - xl))))
        keep = np.zeros_like(mask)
        keep[max(0, int(math.floor(v_top)) - 1) : int(math.ceil(v_bot)) + 2,
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
                xx = xi + cx0
                outline.append(to_full(xx, float(map_y[vi, xi])))
        xm = float(colsi.mean()) + cx0 if colsi.size else w / 2
        t_px, t_mm = thickness_at(xm)
        # how clearly it stands out: in grey levels (depends on the display's gain) or in echo
        # power (a fluid gap on a bright or low-contrast display keeps little power even when
        # its grey-level contrast is modest); whichever is clearer
        stand_out = max(float(np.clip((contrast - 0.15) / 0.35, 0.0, 1.0)),
                        float(np.clip((POWER_CONFIDENT - power_ratio_x) / POWER_SPAN, 0.0, 1.0)))
        confidence = float(stand_out * np.clip(frac / 0.3, 0.0, 1.0))
        notes = []
        if gap_mm is None and calibration.calibrated:
            notes.append("the stump ends are not inside one calibrated ultrasound region; gap in px")
        found = confidence >= th["min_confidence"]
        if not found:
            notes.append("the dark region is faint (low confidence)")
        if power_ratio_x > th["max_power_ratio"]:
            found = False
            notes.append(
                f"the dark region keeps {power_ratio_x * 100:.0f} % of the muscle's echo power "
                f"(a fluid-filled gap keeps ≤ {th['max_power_ratio'] * 100:.0f} %)"
            )
        return Defect(
            found=found,
            muscle_thickness_px=t_px,
            muscle_thickness_mm=t_mm,
            stump_left_px=left,
            stump_right_px=right,
            stump_rows_px=tuple(pairs),
            gap_px=gap_px,
            gap_mm=gap_mm,
            thickness_fraction=frac,
            depth_extent=(v_top / (nv - 1), v_bot / (nv - 1)),
            contrast=float(contrast),
            power_ratio=float(power_ratio_x),
            confidence=confidence,
            outline_px=tuple(outline),
            calibration_source=calibration.source if gap_mm is not None else "none",
            notes=tuple(notes),
            **base,
        )

    min_gap = max(12.0, 0.12 * h)
    lines = sorted(cands, key=lambda c: c[2])
    pairs = []
    for i, top in enumerate(lines):
        nxt = [c for c in lines[i + 1 :] if c[2] - top[2] >= min_gap]
        if nxt:
            pairs.append((top, nxt[0]))
    if not pairs:
        return Defect(found=False, notes=("no pair of fasciae found bounding a muscle",), **base)
    # every muscle compartment between consecutive fasciae is searched; the clearest defect
    # wins, else the compartment between the strongest fasciae is reported
    results = []
    for top, bot in pairs:
        res = analyse_pair(top, bot)
        results.append((res.found, res.confidence * (res.thickness_fraction + 0.2), top[0] + bot[0], res))
    hits = [t for t in results if t[0]]
    if hits:
        return max(hits, key=lambda t: t[1])[3]
    # nothing found: report the shallowest compartment of substantial thickness (the muscle
    # under the probe is usually the one imaged)
    thick_of = [t[3].muscle_thickness_px or 0.0 for t in results]
    big = max(thick_of)
    for t, th_px in zip(results, thick_of):
        if th_px >= 0.5 * big:
            return t[3]
    return results[0][3]

