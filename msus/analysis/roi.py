"""Inputs of the analysis and the region of interest: validated once, grey crops (views) of
every frame cut once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from msus.calibration import Calibration
from msus.cine import to_grey
from msus.errors import AnalysisError

#: Default ROI: a textured pixel whose grey level varies less than this (std over the sampled
#: frames, grey levels) never changes: screen furniture, not tissue (when the tissue moves).
STATIC_GREY_STD = 0.75


@dataclass(frozen=True)
class Inputs:
    """Validated arguments of :func:`msus.analysis.analyze`."""

    n: int
    roi: tuple[int, int, int, int] | None
    rest_frame: int | None
    contraction_frame: int | None
    calibration: Calibration
    keyframes: dict = field(default_factory=dict)


def frame_index(v, n: int, what: str) -> int | None:
    """``v`` as a frame index of an ``n``-frame loop (None stays None)."""
    if v is None:
        return None
    try:
        i = int(v)
    except (TypeError, ValueError):
        raise AnalysisError(f"the {what} frame must be a whole number") from None
    if not 0 <= i < n:
        raise AnalysisError(f"the {what} frame {i} is outside the loop (frames 0..{n - 1})")
    return i


def checked_inputs(cine, roi, rest_frame, contraction_frame, mm_per_px, keyframes) -> Inputs:
    """Validate the arguments of an analysis (one-line :class:`AnalysisError` when bad)."""
    n = int(cine.n_frames)
    if n < 2:
        raise AnalysisError("analysis needs a loop of at least two frames (this source has one)")
    r = frame_index(rest_frame, n, "rest")
    c = frame_index(contraction_frame, n, "contraction")
    if r is not None and r == c:
        raise AnalysisError("the rest and contraction frames must differ")
    if mm_per_px is not None:
        try:
            mm_per_px = float(mm_per_px)
        except (TypeError, ValueError):
            raise AnalysisError("mm per px must be a number") from None
        if not (math.isfinite(mm_per_px) and mm_per_px > 0):
            raise AnalysisError("mm per px must be a positive number")
    cal = cine.calibration.with_fallback_manual(mm_per_px)
    if roi is not None:
        roi = check_roi(roi, (cine.rows, cine.columns))
    keys = {frame_index(f, n, "keyframe"): p for f, p in (keyframes or {}).items()}
    return Inputs(n, roi, r, c, cal, keys)


def grey_crops(cine, roi, calibration: Calibration, report=None):
    """Grey ROI crops of every frame (views into the decoded frames) and the ROI used.

    Without an ROI, the tissue region of up to 12 frames spread over the loop.  Raises
    :class:`AnalysisError` when the loop is blank in the region.
    """
    n = int(cine.n_frames)
    greys = []
    for i in range(n):
        greys.append(to_grey(cine.frame(i)))
        if report is not None and i % 25 == 0:
            report(i / n, f"reading frame {i + 1} of {n}")
    if roi is None:
        pick = np.unique(np.linspace(0, n - 1, min(n, 12)).round().astype(int))
        roi = tissue_roi(np.stack([greys[i] for i in pick]), calibration)
    x0, y0, x1, y1 = roi
    crops = [g[y0 : y1 + 1, x0 : x1 + 1] for g in greys]
    sample = crops[:: max(1, n // 16)]
    # per crop, as cv2.meanStdDev gives it (no float64 copy of the stack)
    spread = max(float(cv2.meanStdDev(c)[1][0, 0]) for c in sample)
    if spread < 2.0 or max(int(c.max()) for c in sample) < 8:
        raise AnalysisError("the loop is blank in the region analysed (no echo texture on any frame)")
    return crops, tuple(int(v) for v in roi)


def mm_per_px_at_centre(calibration: Calibration, roi) -> float | None:
    """Mean mm per px at the ROI's centre (None uncalibrated)."""
    x0, y0, x1, y1 = roi
    mm = calibration.mm_per_px_at((x0 + x1) / 2, (y0 + y1) / 2)
    return None if mm is None else float(np.mean(mm))


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
