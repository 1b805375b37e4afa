"""Pictures of the motion evidence (RGB uint8 arrays, drawn with OpenCV), for the app and exports.

* :func:`displacement_overlay`: the contraction frame with the along-axis displacement of the
  muscle (rest → contraction) as a colour map (blue: towards the left end of the axis, red:
  towards the right; white ≈ still) and arrows, the stump ends found from motion marked;
* :func:`separation_plot`: the separation of the two sides across the depth (superficial at the
  top), with the threshold a depth must pass to count as separating.
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
