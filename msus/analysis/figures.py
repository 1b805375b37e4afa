"""Pictures of the motion evidence (RGB uint8 arrays, drawn with OpenCV), for the app and exports.

* :func:`displacement_overlay`: the contraction frame with the along-axis displacement of the
  muscle (rest → contraction) as a colour map (blue: towards the left end of the axis, red:
  towards the right; white ≈ still) and arrows, the stump ends found from motion marked;
* :func:`separation_plot`: the separation of the two sides across the depth (superficial at the
  top), with the threshold a depth must pass to count as separating;
* :func:`thickness_plot`: the muscle thickness on every frame (``AnalysisResult.thickness``) as
  a line chart, frames without a measurement left out.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Arrow grid (rows × columns) drawn over the colour map.
ARROW_ROWS, ARROW_COLS = 5, 14


def _rgb(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame, np.uint8)
    return cv2.cvtColor(f, cv2.COLOR_GRAY2RGB) if f.ndim == 2 else np.array(f[..., :3], copy=True)


def _colours(d: np.ndarray, span: float) -> np.ndarray:
    """Diverging blue–white–red colours (N×3 RGB uint8) of displacements within ±span."""
    t = np.clip(d / max(span, 1e-6), -1.0, 1.0)
    r = np.where(t >= 0, 1.0, 1.0 + t)
    b = np.where(t <= 0, 1.0, 1.0 - t)
    g = 1.0 - np.abs(t)
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def displacement_overlay(frame: np.ndarray, result, alpha: float = 0.45) -> np.ndarray:
    """The frame (normally the contraction frame) with the displacement colour map and arrows.

    ``result`` is an :class:`msus.analysis.AnalysisResult`; without motion evidence the frame is
    returned unchanged (as RGB)."""
    img = _rgb(frame)
    d, grid = result.displacement_px, result.grid
    if d is None or grid is None:
        return img
    ux, uy = grid.axis
    xs = grid.map_x + d * ux
    ys = grid.map_y + d * uy
    span = float(np.percentile(np.abs(d), 98)) or 1.0
    cols = _colours(d, span)
    layer = img.copy()
    nv, nu = d.shape
    for v in range(nv - 1):
        for u in range(nu - 1):
            quad = np.array([[xs[v, u], ys[v, u]], [xs[v, u + 1], ys[v, u + 1]],
                             [xs[v + 1, u + 1], ys[v + 1, u + 1]], [xs[v + 1, u], ys[v + 1, u]]])
            cv2.fillConvexPoly(layer, np.round(quad).astype(np.int32), tuple(int(c) for c in cols[v, u]))
    out = cv2.addWeighted(layer, alpha, img, 1.0 - alpha, 0.0)
    gain = max(1.0, 0.04 * nu * grid.du_px / span)  # arrows long enough to see
    for v in np.linspace(0, nv - 1, ARROW_ROWS).round().astype(int):
        for u in np.linspace(0, nu - 1, ARROW_COLS).round().astype(int):
            x0, y0 = float(grid.map_x[v, u]), float(grid.map_y[v, u])
            x1, y1 = x0 + gain * d[v, u] * ux, y0 + gain * d[v, u] * uy
            cv2.arrowedLine(out, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))),
                            (255, 255, 0), 1, cv2.LINE_AA, tipLength=0.3)
    md = result.motion_defect
    if md is not None and md.found:
        for a, b in md.stump_rows_contraction_px:
            for p in (a, b):
                cv2.circle(out, (int(round(p[0])), int(round(p[1]))), 3, (255, 213, 79), -1, cv2.LINE_AA)
    return out


def separation_plot(motion_defect, min_step: float | None = None, size: tuple[int, int] = (300, 240)) -> np.ndarray:
    """Separation of the two sides across the depth as a small bar chart (RGB, ``size`` = (w, h)).

    Bars run to the right for sides that move apart, to the left for sides that come together;
    ``min_step`` (same unit) is drawn as a dashed line."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    if motion_defect is None:
        cv2.putText(img, "motion not assessed", (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (60, 60, 60), 1)
        return img
    mm = all(v is not None for v in motion_defect.separation_profile_mm)
    prof = np.array(motion_defect.separation_profile_mm if mm else motion_defect.separation_profile_px, float)
    unit = "mm" if mm else "px"
    left, top, bottom = 70, 22, h - 28
    x_zero = left + 10
    span = max(float(np.abs(prof).max()), min_step or 0.0, 1e-6) * 1.1
    scale = (w - x_zero - 10) / span
    n = prof.size
    bh = (bottom - top) / max(n, 1)
    for k, v in enumerate(prof):
        y0, y1 = int(top + k * bh + 1), int(top + (k + 1) * bh - 1)
        x1 = int(round(x_zero + v * scale))
        colour = (214, 39, 40) if v >= (min_step or 0.0) and v > 0 else (120, 120, 120)
        cv2.rectangle(img, (min(x_zero, x1), y0), (max(x_zero, x1), y1), colour, -1)
    cv2.line(img, (x_zero, top), (x_zero, bottom), (0, 0, 0), 1)
    if min_step:
        xt = int(round(x_zero + min_step * scale))
        for y in range(top, bottom, 6):
            cv2.line(img, (xt, y), (xt, min(bottom, y + 3)), (0, 0, 0), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "superficial", (4, top + 8), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "deep", (4, bottom - 2), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"separation ({unit})  max {span / 1.1:.1f}", (left - 60, h - 8), font, 0.38, (0, 0, 0), 1,
                cv2.LINE_AA)
    frac = motion_defect.separating_fraction
    cv2.putText(img, f"separating: {frac * 100:.0f} % of the thickness", (4, 14), font, 0.38, (0, 0, 0), 1,
                cv2.LINE_AA)
    return img


def motion_figures(frame: np.ndarray, result, thresholds=None) -> tuple[np.ndarray, np.ndarray]:
    """(displacement overlay on ``frame``, separation-across-depth plot) of an analysis result,
    the plot's threshold in the result's unit (mm when calibrated)."""
    from msus.analysis.thresholds import as_thresholds

    md = result.motion_defect
    th = as_thresholds(thresholds).motion
    calibrated = md is not None and all(v is not None for v in md.separation_profile_mm)
    return displacement_overlay(frame, result), separation_plot(md, th.min_step_mm if calibrated else th.min_step_px)


def _ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round tick values covering lo..hi (steps of 1, 2 or 5 × a power of ten)."""
    raw = max(hi - lo, 1e-9) / max(n - 1, 1)
    mag = 10.0 ** np.floor(np.log10(raw))
    step = mag * min((m for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw), default=10.0)
    return np.arange(np.floor(lo / step) * step, hi + 0.5 * step, step)


def thickness_plot(thickness_mm, title: str = "muscle thickness per frame", size: tuple[int, int] = (640, 320),
                   unit: str = "mm") -> np.ndarray:
    """Muscle thickness per frame as a line chart (RGB, ``size`` = (w, h)): frame number (1-based)
    across, thickness up, a marker on every measured frame and its value printed above it;
    frames without a value (None) are left out.  The y axis spans the values ± 1 ``unit`` at
    least, so a flat series is not magnified into noise."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    vals = np.array([np.nan if v is None else float(v) for v in thickness_mm], float)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.putText(img, title, (8, 18), font, 0.45, black, 1, cv2.LINE_AA)
    ok = np.isfinite(vals)
    if not ok.any():
        cv2.putText(img, "not measured", (w // 3, h // 2), font, 0.5, (60, 60, 60), 1, cv2.LINE_AA)
        return img
    lo, hi = float(vals[ok].min()), float(vals[ok].max())
    mid = 0.5 * (lo + hi)
    lo, hi = min(lo - 0.1 * (hi - lo), mid - 1.0), max(hi + 0.1 * (hi - lo), mid + 1.0)
    left, right, top, bottom = 56, w - 16, 40, h - 40
    n = vals.size

    def xy(i, v):
        x = left + (right - left) * (i / max(n - 1, 1))
        return int(round(x)), int(round(bottom - (bottom - top) * (v - lo) / (hi - lo)))

    for t in _ticks(lo, hi, 8):
        if lo <= t <= hi:
            y = xy(0, t)[1]
            cv2.line(img, (left, y), (right, y), (225, 225, 225), 1)
            cv2.putText(img, f"{t:g}", (6, y + 4), font, 0.38, black, 1, cv2.LINE_AA)
    cv2.line(img, (left, top), (left, bottom), black, 1)
    cv2.line(img, (left, bottom), (right, bottom), black, 1)
    for i in range(0, n, max(1, int(np.ceil(n / 12)))):
        x = xy(i, lo)[0]
        cv2.line(img, (x, bottom), (x, bottom + 4), black, 1)
        cv2.putText(img, str(i + 1), (x - 6, bottom + 17), font, 0.38, black, 1, cv2.LINE_AA)
    cv2.putText(img, "frame", ((left + right) // 2 - 18, h - 6), font, 0.42, black, 1, cv2.LINE_AA)
    cv2.putText(img, unit, (6, top - 8), font, 0.38, black, 1, cv2.LINE_AA)
    pts = [xy(i, vals[i]) for i in np.flatnonzero(ok)]
    blue = (40, 60, 200)
    if len(pts) > 1:
        cv2.polylines(img, [np.array(pts, np.int32)], False, blue, 2, cv2.LINE_AA)
    for (x, y), i in zip(pts, np.flatnonzero(ok)):
        cv2.circle(img, (x, y), 3, blue, -1, cv2.LINE_AA)
        cv2.putText(img, f"{vals[i]:.1f}", (x - 10, y - 7 - 10 * (i % 2)), font, 0.3, (80, 80, 80), 1, cv2.LINE_AA)
    return img
