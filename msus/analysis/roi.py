"""Inputs of the analysis and the region of interest: validated once, grey crops (views) of
every frame cut once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from msus.analysis.detect import check_roi, tissue_roi
from msus.calibration import Calibration
from msus.cine import to_grey
from msus.errors import AnalysisError


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
    sample = np.stack(crops[:: max(1, n // 16)])
    if float(sample.std(axis=(1, 2)).max()) < 2.0 or float(sample.max()) < 8:
        raise AnalysisError("the loop is blank in the region analysed (no echo texture on any frame)")
    return crops, tuple(int(v) for v in roi)


def mm_per_px_at_centre(calibration: Calibration, roi) -> float | None:
    """Mean mm per px at the ROI's centre (None uncalibrated)."""
    x0, y0, x1, y1 = roi
    mm = calibration.mm_per_px_at((x0 + x1) / 2, (y0 + y1) / 2)
    return None if mm is None else float(np.mean(mm))
