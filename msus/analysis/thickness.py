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

from msus.analysis.detect import WORK_SIDE_PX
from msus.analysis.fascia import RIDGE_SIGMA_PX, FasciaLine
from msus.analysis.fascia import ridge as _ridge
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




def follow_line(work: np.ndarray, line: tuple[float, float], band: float = FOLLOW_BAND_PX) -> tuple | None:
    """Re-fit a fascia (``(a, b)``: y = a + b·(x − xc), working px) to the ridge maxima of the
    working frame ``work`` within ``band`` px of it: one weighted least-squares line, computed on
    the horizontal strip the line crosses only.  Returns ``(a, b, 0.0)`` or None."""
    h, w = work.shape
    xc = (w - 1) / 2.0
    a, b = line
    pad = int(band + 4 * RIDGE_SIGMA_PX)
    ys = a + b * (np.array([0.0, w - 1.0]) - xc)
    y0, y1 = int(max(0, np.floor(ys.min()) - pad)), int(min(h, np.ceil(ys.max()) + pad + 1))
    if y1 - y0 < pad:
        return None
    strip = _ridge(cv2.GaussianBlur(work[y0:y1].astype(np.float32), (0, 0), 1.5), RIDGE_SIGMA_PX)
    cols = np.arange(0, w, 2)
    xr = cols - xc
    yl = a + b * xr - y0
    offs = np.arange(-int(band), int(band) + 1)
    rows = np.clip(np.round(yl)[:, None] + offs[None, :], 0, y1 - y0 - 1).astype(int)
    vals = strip[rows, cols[:, None]]
    k = np.argmax(vals, axis=1)
    ym = rows[np.arange(cols.size), k].astype(float)
    wgt = vals[np.arange(cols.size), k]
    ok = (wgt > 0) & (ym > 0) & (ym < y1 - y0 - 1)
    if ok.sum() < 8:
        return None
    X = np.stack([np.ones(ok.sum()), xr[ok]], 1)
    A = X.T @ (X * wgt[ok][:, None])
    if abs(np.linalg.det(A)) < 1e-9:
        return None
    a1, b1 = np.linalg.solve(A, X.T @ (wgt[ok] * ym[ok]))
    return float(a1 + y0), float(np.clip(b1, -0.6, 0.6)), 0.0


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
        lines = [(yc, math.tan(ang)) for ang, yc in start]
        for i in order:
            work = cv2.medianBlur(cv2.resize(crops[i], (w, h), interpolation=cv2.INTER_AREA), 5)
            fits = [follow_line(work, ln) for ln in lines]
            if fits[0] is None or fits[1] is None or not (0 < fits[1][0] - fits[0][0] < h):
                break
            lines = [(f[0], f[1]) for f in fits]
            px[i], mm[i], p = measure_thickness(fits[0], fits[1], roi, sx, sy, w, calibration)
            if i == anchor:
                centre = p
    return Thickness(tuple(px), tuple(mm), centre)
