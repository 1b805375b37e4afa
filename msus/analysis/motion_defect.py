"""Motion evidence: the tear found from how the muscle moves, not from how dark it is.

Between the rest and the contraction frame the displacement of every rest-frame pixel is
accumulated frame to frame (dense optical flow, OpenCV DIS *fast* preset, composed along the tissue's path),
sampled on the **straightened muscle** (rows = depth from the superficial to the deep fascia,
columns along the long axis) and resolved along the axis:

* intact muscle shortens smoothly: the along-axis displacement is a gradient with no step;
* a full-thickness tear is a **step**: the tissue on one side moves one way, on the other side the
  other way, and the step spans the whole thickness; the region between the two ends (the
  haematoma) moves with neither;
* a partial tear keeps its intact fibres moving as one piece: the rows through them show no step.

Per depth band the intact gradient (the median local slope) is removed and a piecewise-linear
step (plateau, ramp, plateau) is fitted by least squares near the tear column: the ramp's two
knees are the **stump ends** at rest, the plateaus' difference is the **separation** of that
depth.  None of it depends on echo contrast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from msus.analysis.detect import FasciaLine
from msus.analysis.step_fit import choose_model, fit_three_level, one_ramp_sse

#: Longer side (px) of the frames the displacement is computed on.
WORK_SIDE_PX = 256
#: OpenCV DIS preset of the frame-to-frame flows (FAST: 6× quicker than MEDIUM on 256 px frames;
#: the steps and knees agree within a working px on the simulators).
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
#: Depth bands (superficial → deep) of the separation profile.
N_BANDS = 12
#: Depth range sampled (share of the fascia-to-fascia thickness; the fasciae themselves slide).
DEPTH_RANGE = (0.06, 0.94)
#: Plateau width (mm) beside each knee and the largest half-width (mm) of a tear searched.
PLATEAU_MM = 3.0
MAX_HALF_GAP_MM = 9.0


@dataclass(frozen=True)
class AxisGrid:
    """Sampling grid of the straightened muscle, full-frame px.

    ``map_x``, ``map_y``: nv×nu positions (rows = depth, columns along the axis);
    ``axis``: unit vector (x, y) of the long axis; ``du_px``: spacing along the axis (px);
    ``depth``: depth of each row as a share of the thickness.
    """

    map_x: np.ndarray
    map_y: np.ndarray
    axis: tuple[float, float]
    du_px: float
    depth: tuple[float, ...]


@dataclass(frozen=True)
class MotionDefect:
    """Motion evidence on one rest → contraction pair (lengths along the axis).

    Attributes
    ----------
    found
        A step was found in at least ``min_separating_fraction`` of the depth bands.
    separating_fraction
        Share of the thickness whose two sides separate (0..1): the motion thickness fraction.
    separation_profile_mm / _px
        Per depth band (superficial → deep), how far the two sides move apart, beyond the smooth
        shortening of intact muscle (negative: they come together).
    depth
        Depth of each band, share of the thickness.
    left_displacement_mm / right_displacement_mm (and ``_px``)
        Along-axis displacement of each side relative to the tissue between the ends (left moves
        left when negative).
    step_px, step_mm
        Median separation over the separating bands.
    gap_rest_px, gap_contraction_px (and ``_mm``)
        Distance along the axis between the knees (the stump ends) at rest and at contraction,
        over the central half of the separating depth.
    stump_rows_rest_px, stump_rows_contraction_px
        ((x_left, y_left), (x_right, y_right)) full-frame per measured depth band.
    noise_px
        Median rms residual of the step fits (px): how rough the displacement is.
    strain
        Median along-axis strain of the muscle (negative = shortening).
    thickening
        Median strain across the muscle (positive = it thickens; :func:`across_strain`).
    """

    found: bool
    separating_fraction: float
    separation_profile_px: tuple[float, ...]
    separation_profile_mm: tuple[float | None, ...]
    depth: tuple[float, ...]
    left_displacement_px: float | None
    right_displacement_px: float | None
    left_displacement_mm: float | None
    right_displacement_mm: float | None
    step_px: float
    step_mm: float | None
    gap_rest_px: float | None
    gap_contraction_px: float | None
    gap_rest_mm: float | None
    gap_contraction_mm: float | None
    stump_rows_rest_px: tuple = ()
    stump_rows_contraction_px: tuple = ()
    noise_px: float = 0.0
    strain: float = 0.0
    tear_column_px: tuple[float, float] | None = None
    thickening: float = 0.0

    def to_dict(self) -> dict:
        return {
            "found": self.found,
            "separating_fraction": self.separating_fraction,
            "separation_profile_mm": list(self.separation_profile_mm),
            "separation_profile_px": list(self.separation_profile_px),
            "depth_fraction": list(self.depth),
            "left_displacement_mm": self.left_displacement_mm,
            "right_displacement_mm": self.right_displacement_mm,
            "left_displacement_px": self.left_displacement_px,
            "right_displacement_px": self.right_displacement_px,
            "step_mm": self.step_mm,
            "step_px": self.step_px,
            "gap_rest_mm": self.gap_rest_mm,
            "gap_contraction_mm": self.gap_contraction_mm,
            "gap_rest_px": self.gap_rest_px,
            "gap_contraction_px": self.gap_contraction_px,
            "noise_px": self.noise_px,
            "strain": self.strain,
            "thickening": self.thickening,
            "tear_point_px": None if self.tear_column_px is None else list(self.tear_column_px),
        }


def work_frames(crops, side_px: int = WORK_SIDE_PX) -> tuple[list[np.ndarray], float]:
    """Downscaled grey copies of ROI crops for the flow (list of h×w uint8, small px per full px)."""
    h, w = crops[0].shape[:2]
    s = min(1.0, side_px / max(h, w))
    size = (max(16, round(w * s)), max(16, round(h * s)))
    return [cv2.resize(c, size, interpolation=cv2.INTER_AREA) for c in crops], s  # views: no copy


def accumulate_displacement(frames, start: int, stop: int) -> np.ndarray:
    """Displacement (h×w×2, x then y, px of ``frames``) of every pixel of frame ``start`` on
    frame ``stop``, composed frame to frame along the tissue's path (DIS optical flow)."""
    step = 1 if stop >= start else -1
    return accumulate_along(frames, range(start, stop + step, step))


def accumulate_along(frames, path) -> np.ndarray:
    """Displacement (h×w×2) of every pixel of frame ``path[0]`` on frame ``path[-1]``, composed
    flow by flow through the frames of ``path`` in turn (DIS optical flow)."""
    path = list(path)
    first = frames[path[0]]
    h, w = first.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    px, py = gx.copy(), gy.copy()
    if len(path) < 2:
        return np.zeros((h, w, 2), np.float32)
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)
    for a, b in zip(path[:-1], path[1:]):
        f = dis.calc(frames[a], frames[b], None)
        fx = cv2.remap(f[..., 0], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fy = cv2.remap(f[..., 1], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        px += fx
        py += fy
    return np.stack([px - gx, py - gy], axis=-1)


def muscle_grid(superficial: FasciaLine, deep: FasciaLine, roi, du_px: float,
                n_rows: int = 2 * N_BANDS, margin_px: float = 0.0) -> AxisGrid | None:
    """Sampling grid of the muscle between the inner edges of two fasciae (full-frame px).

    Columns are spaced ``du_px`` along x inside the ROI (less ``margin_px``); each column is cut
    from the superficial to the deep inner edge, rows at ``DEPTH_RANGE``.  None when the fasciae
    do not bound a muscle there.
    """
    x0, _, x1, _ = roi
    xs = np.arange(x0 + margin_px, x1 - margin_px + 1e-6, max(0.5, du_px * math.cos(
        math.radians(0.5 * (superficial.angle_deg + deep.angle_deg)))), dtype=np.float64)
    if xs.size < 16:
        return None
    top = superficial.y_at(xs) + superficial.inner_offset_px
    bot = deep.y_at(xs) - deep.inner_offset_px
    if float(np.median(bot - top)) < 6:
        return None
    depth = np.linspace(DEPTH_RANGE[0], DEPTH_RANGE[1], n_rows)
    map_x = np.broadcast_to(xs[None, :], (n_rows, xs.size)).astype(np.float32)
    map_y = (top[None, :] + depth[:, None] * (bot - top)[None, :]).astype(np.float32)
    ang = math.radians(0.5 * (superficial.angle_deg + deep.angle_deg))
    return AxisGrid(map_x, map_y, (math.cos(ang), math.sin(ang)), float(du_px), tuple(float(d) for d in depth))


def _on_grid(field: np.ndarray, scale: float, offset: tuple[int, int], grid: AxisGrid):
    """The field's (dx, dy) at the grid points, in full-frame px: the field was computed on frames
    downscaled by ``scale`` from ROI crops starting at ``offset`` (x0, y0)."""
    x0, y0 = offset
    sx = ((grid.map_x - x0 + 0.5) * scale - 0.5).astype(np.float32)
    sy = ((grid.map_y - y0 + 0.5) * scale - 0.5).astype(np.float32)
    dx = cv2.remap(field[..., 0], sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) / scale
    dy = cv2.remap(field[..., 1], sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) / scale
    return dx, dy


def axial_displacement(field: np.ndarray, scale: float, offset: tuple[int, int], grid: AxisGrid) -> np.ndarray:
    """Along-axis displacement (nv×nu, full-frame px) of the grid points from a displacement field
    computed on frames downscaled by ``scale`` from ROI crops starting at ``offset`` (x0, y0)."""
    dx, dy = _on_grid(field, scale, offset, grid)
    ux, uy = grid.axis
    return dx * ux + dy * uy


def across_strain(field: np.ndarray, scale: float, offset: tuple[int, int], grid: AxisGrid) -> float:
    """Median strain across the muscle (positive: it thickens) of a displacement field computed on
    frames downscaled by ``scale`` from ROI crops starting at ``offset``: per grid column, the
    least-squares slope of the displacement across the axis against the position across it."""
    dx, dy = _on_grid(field, scale, offset, grid)
    ux, uy = grid.axis
    dn = dy * ux - dx * uy
    pos = grid.map_y * ux - grid.map_x * uy
    pc, dc = pos - pos.mean(0), dn - dn.mean(0)
    den = (pc**2).sum(0)
    ok = den > 1e-9
    return float(np.median((pc * dc).sum(0)[ok] / den[ok])) if ok.any() else 0.0


def detrend(d: np.ndarray, du_px: float) -> tuple[np.ndarray, float]:
    """Remove the smooth shortening of intact muscle from along-axis displacements (rows of ``d``).

    The strain is the median local slope over the whole muscle (a tear is a narrow exception),
    so the step of a tear does not tilt it.  Returns (detrended rows, strain).
    """
    k = max(1, int(round(2.0 / max(du_px, 1e-6))))  # slopes over ~2 px of the full frame
    slopes = (d[:, k:] - d[:, :-k]) / (k * du_px)
    strain = float(np.median(slopes)) if slopes.size else 0.0
    u = np.arange(d.shape[1]) * du_px
    return d - strain * u[None, :], strain


def tear_column(e: np.ndarray, plateau: int) -> int:
    """Column of the largest step of the depth-median detrended displacement (either sign)."""
    prof = np.median(e, axis=0)
    c = np.concatenate([[0.0], np.cumsum(prof)])
    n = prof.size
    idx = np.arange(plateau, n - plateau)
    if idx.size == 0:
        return n // 2
    right = (c[idx + plateau] - c[idx]) / plateau
    left = (c[idx] - c[idx - plateau]) / plateau
    return int(idx[np.argmax(np.abs(right - left))])


def fit_step(e: np.ndarray, centre: int, half: int, plateau: int) -> tuple[int, int, float, float, float]:
    """Least-squares plateau–ramp–plateau fit of a 1-D profile near ``centre``.

    Knees i < j are searched within ``centre ± half``; the plateaus are the means over
    ``plateau`` samples outside them.  Returns (i, j, left level, right level, rms residual).
    """
    n = e.size
    lo, hi = max(0, centre - half - plateau), min(n, centre + half + plateau + 1)
    seg = e[lo:hi].astype(np.float64)
    L = seg.size
    ci = centre - lo
    ii = np.arange(max(plateau, ci - half), ci + 1)
    jj = np.arange(ci, min(L - plateau, ci + half + 1))
    if ii.size == 0 or jj.size == 0:
        return centre, centre, 0.0, 0.0, float("inf")
    I, J = np.meshgrid(ii, jj, indexing="ij")
    I, J = I.ravel(), np.maximum(J.ravel(), I.ravel())
    cs = np.concatenate([[0.0], np.cumsum(seg)])
    A = (cs[I + 1] - cs[I + 1 - plateau]) / plateau
    B = (cs[J + plateau] - cs[J]) / plateau
    x = np.arange(L)[None, :]
    t = np.clip((x - I[:, None]) / np.maximum(J - I, 1)[:, None], 0.0, 1.0)
    model = A[:, None] + (B - A)[:, None] * t
    w0 = np.maximum(I - plateau + 1, 0)[:, None]
    w1 = np.minimum(J + plateau, L)[:, None]
    inwin = (x >= w0) & (x < w1)
    sse = ((seg[None, :] - model) ** 2 * inwin).sum(1) / inwin.sum(1)
    k = int(np.argmin(sse))
    return int(I[k] + lo), int(J[k] + lo), float(A[k]), float(B[k]), float(math.sqrt(sse[k]))


def fit_band(e: np.ndarray, centre: int, half: int, plateau: int, th) -> tuple[int, int, float, float, float]:
    """One band's ends and levels: the one ramp of :func:`fit_step`, or the left / clot / right
    levels of :func:`msus.analysis.step_fit.fit_three_level` when they fit it better
    (:func:`~msus.analysis.step_fit.choose_model`).  Same tuple as :func:`fit_step`."""
    i, j, a, b, rms = fit_step(e, centre, half, plateau)
    if not math.isfinite(rms):
        return i, j, a, b, rms
    three = fit_three_level(e, centre, half, plateau)
    if not choose_model(one_ramp_sse(e, centre, half, plateau, i, j), three, th):
        return i, j, a, b, rms
    return three.i, three.j, three.left, three.right, min(rms, math.sqrt(three.sse / three.n))


def step_localisation(e: np.ndarray, i: int, j: int, plateau: int) -> float:
    """How much the step of a band stands out along the axis: a tear is a discontinuity, the
    displacement jumps across the narrow band between the knees ``i`` < ``j`` and the two sides
    move as pieces; the shear of intact (pennate) muscle varies gradually along the whole axis.

    The step is the difference of the means over ``plateau`` samples beyond each knee; the same
    difference (two ``plateau`` windows ``j - i`` apart) is taken at every position along ``e``
    whose windows lie wholly on one side of the tear zone ``[i - plateau, j + plateau)``.  Returns
    |step| / the largest such change elsewhere (inf when no window fits beside the tear zone:
    nothing to compare with)."""
    n, w, p = e.size, max(j - i, 1), plateau
    c = np.concatenate([[0.0], np.cumsum(e, dtype=np.float64)])
    mean = lambda a: (c[a + p] - c[a]) / p  # noqa: E731 - mean of e[a:a+p]
    step = abs(mean(min(j, n - p)) - mean(max(i - p + 1, 0)))
    a = np.arange(0, n - (2 * p + w) + 1)  # left window e[a:a+p], right window e[a+p+w:a+2p+w]
    beside = (a + 2 * p + w <= i - p) | (a >= j + p)
    if not beside.any():
        return float("inf")
    other = float(np.max(np.abs(mean(a[beside] + p + w) - mean(a[beside]))))
    return step / other if other > 1e-12 else float("inf")


def _bands(e: np.ndarray, n: int = N_BANDS) -> np.ndarray:
    """Rows of ``e`` averaged into ``n`` depth bands."""
    edges = np.linspace(0, e.shape[0], n + 1).round().astype(int)
    return np.stack([e[a:b].mean(0) for a, b in zip(edges[:-1], edges[1:])])


def _scales(mm_per_px: float | None, grid: AxisGrid) -> tuple[int, int]:
    """(plateau, half-width of the search) in grid samples."""
    du = grid.du_px
    nu = grid.map_x.shape[1]
    if mm_per_px:
        plateau, half = PLATEAU_MM / mm_per_px / du, MAX_HALF_GAP_MM / mm_per_px / du
    else:
        plateau, half = 0.05 * nu, 0.15 * nu
    plateau = int(np.clip(round(plateau), 3, max(3, nu // 8)))
    half = int(np.clip(round(half), 4, max(4, nu // 3)))
    return plateau, half


def motion_defect(d: np.ndarray, grid: AxisGrid, mm_per_px: float | None, th) -> MotionDefect:
    """Motion evidence from along-axis displacements ``d`` (nv×nu px, rows of ``grid``).

    Parameters
    ----------
    d
        Along-axis displacement of each grid point from rest to contraction (full-frame px).
    grid
        The straightened muscle (:func:`muscle_grid`).
    mm_per_px
        Calibration along the axis (None: px only).
    th
        :class:`msus.analysis.thresholds.MotionThresholds`.
    """
    e, strain = detrend(d, grid.du_px)
    bands = _bands(e)
    plateau, half = _scales(mm_per_px, grid)
    centre = tear_column(bands, plateau)
    fits = [fit_band(b, centre, half, plateau, th) for b in bands]
    sep = np.array([f[3] - f[2] for f in fits])
    depth = tuple(float(v) for v in _bands(np.asarray(grid.depth)[:, None]).ravel())
    mm = (lambda v: None if v is None or mm_per_px is None else float(v * mm_per_px))
    sign = 1.0 if float(np.median(sep)) >= 0 else -1.0
    noise = float(np.median([f[4] for f in fits]))  # rms residual of the step fits
    min_step = th.min_step_mm / mm_per_px if mm_per_px else th.min_step_px
    thr = max(min_step, th.min_step_share * float(np.max(sign * sep)))
    separating = sign * sep >= thr
    frac = float(separating.mean())
    sel = np.flatnonzero(separating)
    step = float(np.median(sep[sel])) if sel.size else float(np.median(sep))
    loc = float(np.median([step_localisation(bands[k], fits[k][0], fits[k][1], plateau) for k in sel])) \
        if sel.size else 0.0
    found = bool(frac >= th.min_separating_fraction and abs(step) >= min_step
                 and noise <= th.max_step_noise_ratio * abs(step) and loc >= th.min_step_localisation)
    base = dict(separating_fraction=frac if found else 0.0, separation_profile_px=tuple(float(v) for v in sep),
                separation_profile_mm=tuple(mm(v) for v in sep), depth=depth, step_px=step, step_mm=mm(step),
                noise_px=noise, strain=strain)
    if not found:
        return MotionDefect(found=False, left_displacement_px=None, right_displacement_px=None,
                            left_displacement_mm=None, right_displacement_mm=None, gap_rest_px=None,
                            gap_contraction_px=None, gap_rest_mm=None, gap_contraction_mm=None, **base)
    return _ends(fits, sel, bands, d, grid, strain, mm, base, centre)


def _ends(fits, sel, bands, d, grid: AxisGrid, strain, mm, base, centre) -> MotionDefect:
    """Stump ends, gaps and side displacements over the central half of the separating depth."""
    a, b = int(sel[0]), int(sel[-1])
    q0, q1 = a + 0.25 * (b - a), a + 0.75 * (b - a)
    central = [k for k in sel if q0 - 1e-9 <= k <= q1 + 1e-9] or [int(sel[len(sel) // 2])]
    du = grid.du_px
    gaps_r, gaps_c, lefts, rights, rows_r, rows_c = [], [], [], [], [], []
    nv = grid.map_x.shape[0]
    edges = np.linspace(0, nv, N_BANDS + 1).round().astype(int)
    d_b = _bands(d)
    for k in central:
        i, j, A, B, _ = fits[k]
        g = (j - i) * du
        mid = float(bands[k][(i + j) // 2])
        gaps_r.append(g)
        gaps_c.append(g + (B - A) + strain * g)
        lefts.append(A - mid)
        rights.append(B - mid)
        v = 0.5 * (edges[k] + edges[k + 1] - 1)
        pl, pr = _point(grid, v, i), _point(grid, v, j)
        ux, uy = grid.axis
        ml, mr = float(d_b[k][max(0, i - 1)]), float(d_b[k][min(d_b.shape[1] - 1, j + 1)])
        rows_r.append((pl, pr))
        rows_c.append(((pl[0] + ml * ux, pl[1] + ml * uy), (pr[0] + mr * ux, pr[1] + mr * uy)))
    gr, gc = float(np.mean(gaps_r)), float(np.mean(gaps_c))
    lp, rp = float(np.median(lefts)), float(np.median(rights))
    vc = 0.5 * (edges[central[0]] + edges[central[-1] + 1] - 1)
    return MotionDefect(found=True, left_displacement_px=lp, right_displacement_px=rp,
                        left_displacement_mm=mm(lp), right_displacement_mm=mm(rp), gap_rest_px=gr,
                        gap_contraction_px=gc, gap_rest_mm=mm(gr), gap_contraction_mm=mm(gc),
                        stump_rows_rest_px=tuple(rows_r), stump_rows_contraction_px=tuple(rows_c),
                        tear_column_px=_point(grid, vc, centre), **base)


def _point(grid: AxisGrid, v: float, u: float) -> tuple[float, float]:
    """Full-frame (x, y) of straightened (row v, column u), bilinear."""
    nv, nu = grid.map_x.shape
    v0, u0 = int(np.clip(math.floor(v), 0, nv - 1)), int(np.clip(math.floor(u), 0, nu - 1))
    v1, u1 = min(nv - 1, v0 + 1), min(nu - 1, u0 + 1)
    fv, fu = float(np.clip(v - v0, 0, 1)), float(np.clip(u - u0, 0, 1))

    def at(m):
        top = (1 - fu) * m[v0, u0] + fu * m[v0, u1]
        bot = (1 - fu) * m[v1, u0] + fu * m[v1, u1]
        return float((1 - fv) * top + fv * bot)

    return at(grid.map_x), at(grid.map_y)
