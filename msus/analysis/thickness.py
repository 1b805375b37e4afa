"""Muscle thickness on every frame: the perpendicular distance between the fascia mid-lines.

The two fasciae bounding the muscle (found by the echo step on the rest frame) are followed frame
by frame: on each frame the ridge map of the bright bands (−∂²I/∂y², the same filter the fasciae
were found with) is computed on a working copy of the ROI, and each fascia is re-fitted to the
ridge maxima in a narrow band around its position on the previous frame.  The ridge maxima are
the **mid-lines** of the bright bands (the convention of aponeurosis-tracking tools).  The
thickness is measured at the ROI's centre column, perpendicular to the mean of the two lines,
in px and (through the calibration) in mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from msus.analysis.detect import RIDGE_SIGMA_PX, WORK_SIDE_PX, FasciaLine, _refine_line, _ridge
from msus.calibration import Calibration

#: Half-width (working px) of the band a fascia is re-fitted in from one frame to the next.
FOLLOW_BAND_PX = 4.0


@dataclass(frozen=True)
class Thickness:
    """Muscle thickness per frame (None where the fasciae were not followed).

    Attributes
    ----------
    thickness_px, thickness_mm
        Per frame, perpendicular fascia mid-line distance at the ROI centre (mm None uncalibrated).
    centre_px
        (x, y) full-frame point on the superficial mid-line where it is measured (rest frame).
    """

    thickness_px: tuple[float | None, ...]
    thickness_mm: tuple[float | None, ...]
    centre_px: tuple[float, float] | None = None

    def at(self, i: int) -> float | None:
        return self.thickness_mm[i] if self.thickness_mm[i] is not None else None


def _to_work(line: FasciaLine, roi, sx: float, sy: float, w: int) -> tuple[float, float]:
    """(angle in working px (rad), y at the working centre column) of a full-frame line."""
    x0, y0 = roi[0], roi[1]
    xc_w = (w - 1) / 2.0
    xc_full = x0 + (xc_w + 0.5) / sx - 0.5
    yc = (float(line.y_at(xc_full)) - y0 + 0.5) * sy - 0.5
    slope = (line.y1 - line.y0) / (line.x1 - line.x0) if line.x1 != line.x0 else 0.0
    return math.atan(slope * sy / sx), yc


def ridge_map(crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Ridge response of bright bands on a working copy (``size`` = (w, h)) of a grey crop."""
    gw = cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA)
    gs = cv2.GaussianBlur(cv2.medianBlur(gw, 5).astype(np.float32), (0, 0), 1.5)
    return _ridge(gs, RIDGE_SIGMA_PX)


def measure_thickness(top: tuple, bottom: tuple, roi, sx: float, sy: float, w: int,
                      calibration: Calibration) -> tuple[float, float | None, tuple[float, float]]:
    """Perpendicular distance between two fitted lines ``(a, b, c)`` (working px) at the centre.

    Returns (px, mm or None, the superficial point in full-frame px)."""
    x0, y0 = roi[0], roi[1]
    xc = x0 + ((w - 1) / 2.0 + 0.5) / sx - 0.5
    yt = y0 + (top[0] + 0.5) / sy - 0.5
    yb = y0 + (bottom[0] + 0.5) / sy - 0.5
    m = 0.5 * (top[1] + bottom[1]) * sx / sy  # slope in full-frame px
    norm = math.hypot(1.0, m)
    d = (yb - yt) / norm
    p1 = (float(xc), float(yt))
    p2 = (float(xc - m * d / norm), float(yt + d / norm))
    dist = calibration.measure(p1, p2)
    return float(dist.distance_px), dist.distance_mm, p1


def follow_thickness(crops, superficial: FasciaLine | None, deep: FasciaLine | None, roi,
                     calibration: Calibration, anchor: int) -> Thickness:
    """Thickness on every frame of ROI crops, following the fasciae from frame ``anchor``.

    Parameters
    ----------
    crops
        Grey ROI crops (views), one per frame.
    superficial, deep
        The fasciae found on the anchor frame (full-frame px); None gives no thickness.
    roi
        (x0, y0, x1, y1) of the crops.
    """
    n = len(crops)
    if superficial is None or deep is None or n == 0:
        return Thickness((None,) * n, (None,) * n)
    h0, w0 = crops[0].shape[:2]
    s = min(1.0, WORK_SIDE_PX / max(h0, w0))
    w, h = max(17, round(w0 * s)), max(17, round(h0 * s))
    sx, sy = w / w0, h / h0
    start = [_to_work(superficial, roi, sx, sy, w), _to_work(deep, roi, sx, sy, w)]
    px: list[float | None] = [None] * n
    mm: list[float | None] = [None] * n
    centre = None
    for order in (range(anchor, n), range(anchor - 1, -1, -1)):
        lines = list(start)
        for i in order:
            r = ridge_map(crops[i], (w, h))
            fits = [_refine_line(r, ang, yc, band=FOLLOW_BAND_PX) for ang, yc in lines]
            if not (0 < fits[1][0] - fits[0][0] < h):
                break
            lines = [(math.atan(f[1]), f[0]) for f in fits]
            px[i], mm[i], p = measure_thickness(fits[0], fits[1], roi, sx, sy, w, calibration)
            if i == anchor:
                centre = p
    return Thickness(tuple(px), tuple(mm), centre)
