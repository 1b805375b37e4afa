"""The fasciae bounding a muscle: bright near-horizontal bands found as lines of a ridge map.

A ridge response (bright bands: −∂²I/∂y² at σ :data:`RIDGE_SIGMA_PX` working px, ≥ 0) is
projected along every orientation from −30° to +30° (1° steps) — a Hough transform of lines
restricted to near-horizontal muscles (:func:`line_candidates`).  Lines weaker than
:data:`FASCIA_MIN_SHARE` of the strongest, or than :data:`FASCIA_MIN_NOISE` times the typical
line strength, are not fasciae (:func:`fascia_candidates`).  Each line is refined separately
(:func:`refine_line`: weighted least squares on the ridge maxima in a band around it, with outlier
rejection), so two fasciae may have different tilts.  The muscle's edge below (above) a fascia is
where the echo falls half-way to the muscle's level (:func:`inner_offset`).

Consecutive lines at least a minimum distance apart bound a compartment
(:func:`compartment_pairs`) — unless they converge: two lines whose distance across the region
shrinks below ``min_parallel_ratio`` (``[defect]`` thresholds) of its largest value form a wedge
(a skin or subcutaneous line crossing a tilted fascia), not the two fasciae of one muscle, whose
aponeuroses stay roughly parallel over a probe's width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Orientations (deg) searched for the fasciae.
ANGLES_DEG = np.arange(-30, 31, 1.0)
#: Scale (working px) of the ridge filter that finds the fasciae (bright bands ~1 mm thick).
RIDGE_SIGMA_PX = 3.0
#: A line weaker than this share of the strongest one is not taken for a fascia.
FASCIA_MIN_SHARE = 0.2
#: ... and at least this multiple of the typical line strength (the median projection of the
#: ridge map over every orientation and position: speckle ridges averaged along a line).
FASCIA_MIN_NOISE = 3.0


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




def ridge(gs: np.ndarray, sigma: float) -> np.ndarray:
    """Bright-band response −∂²I/∂y² (≥ 0) of an image at scale ``sigma``."""
    g = cv2.GaussianBlur(gs, (0, 0), sigma)
    d2 = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3)
    return np.maximum(-d2, 0)


def line_candidates(r: np.ndarray, min_sep: float, n_best: int = 4):
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


def refine_line(r: np.ndarray, ang: float, yc: float, band: float):
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


def inner_offset(gs: np.ndarray, yline: np.ndarray, direction: int, muscle_level: float) -> float:
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



def fascia_candidates(r: np.ndarray) -> list[tuple[float, float, float]]:
    """The strong lines of a ridge map ``r``: [(strength, angle rad, y at the centre column)].

    Weaker lines (fascicles, septa) do not bound a compartment; a ridge hugging the ROI's top or
    bottom edge (skin line, image border) does not set the scale: it is not a fascia and is often
    the strongest line; a fascia stands out from the speckle's own ridges (a thin or faint fascia
    is much weaker than a thick one or a bone line, but still far above speckle).
    """
    h = r.shape[0]
    cands, line_noise = line_candidates(r, min_sep=max(6.0, 0.06 * h), n_best=8)
    if not cands:
        return cands
    inner = [c for c in cands if RIDGE_SIGMA_PX < c[2] < h - 1 - RIDGE_SIGMA_PX] or cands
    top_strength = max(c[0] for c in inner)
    return [c for c in cands if c[0] >= max(FASCIA_MIN_SHARE * top_strength, FASCIA_MIN_NOISE * line_noise)]


@dataclass(frozen=True)
class Compartment:
    """A muscle compartment: its superficial (``top``) and deep (``bottom``) candidate lines and
    their refined curves ``yt``, ``yb`` (working row per working column) and slopes."""

    top: tuple
    bottom: tuple
    yt: np.ndarray
    yb: np.ndarray
    slope_top: float
    slope_bottom: float

    @property
    def parallel_ratio(self) -> float:
        """Smallest over largest distance between the two curves across the region (1 for
        parallel lines, ≤ 0 for lines that cross)."""
        d = self.yb - self.yt
        return float(d.min() / max(float(d.max()), 1e-6))


def fascia_curves(r: np.ndarray, top, bot) -> Compartment:
    """The refined curves of a (superficial, deep) pair of candidate lines of the ridge map ``r``."""
    w = r.shape[1]
    a_t, b_t, c_t = refine_line(r, top[1], top[2], band=6.0)
    a_b, b_b, c_b = refine_line(r, bot[1], bot[2], band=6.0)
    xc = (w - 1) / 2.0
    cols = np.arange(w, dtype=np.float32)
    yt = a_t + b_t * (cols - xc) + c_t * (cols - xc) ** 2
    yb = a_b + b_b * (cols - xc) + c_b * (cols - xc) ** 2
    return Compartment(top, bot, yt, yb, b_t, b_b)


def drop_fascicles(cands, r: np.ndarray, min_parallel_ratio: float) -> list:
    """The candidate lines without the fascicles: of two neighbouring lines (in depth at the
    centre column) that converge (a wedge: their distance across the region falls below
    ``min_parallel_ratio`` of its largest value), the one whose tilt strays further from the
    others' (their strength-weighted median tilt) is dropped, one line at a time, until no
    neighbours converge.  Pennate fascicles run obliquely between the aponeuroses, which stay
    near-parallel; a skin line crossing a tilted fascia is likewise the odd one out when the
    muscle's two fasciae share their tilt.  Two lines alone are kept (nothing to compare)."""
    lines = sorted(cands, key=lambda c: c[2])
    slopes = {c: refine_line(r, c[1], c[2], band=6.0)[1] for c in lines}
    while len(lines) > 2:
        wedges = [(a, b) for a, b in zip(lines, lines[1:])
                  if fascia_curves(r, a, b).parallel_ratio < min_parallel_ratio]
        if not wedges:
            break
        order = np.argsort([slopes[c] for c in lines])
        cum = np.cumsum([lines[i][0] for i in order])
        med = slopes[lines[order[int(np.searchsorted(cum, 0.5 * cum[-1]))]]]
        stray = max((c for pair in wedges for c in pair), key=lambda c: abs(slopes[c] - med))
        lines = [c for c in lines if c is not stray]
    return lines


def compartment_pairs(cands, r: np.ndarray, min_parallel_ratio: float) -> list[Compartment]:
    """The compartments: every line with the nearest line at least ``max(12, 0.12 h)`` px below
    it (at the centre column), unless the two converge (a wedge: the distance between the refined
    curves falls below ``min_parallel_ratio`` of its largest value across the region).  A line
    that forms a wedge with the next one bounds no compartment from above: pairing it with a line
    further down would span the line between them.  Fascicles are dropped first
    (:func:`drop_fascicles`); a compartment that spans the top line of another compartment with
    the same deep line is that muscle with a line above it, not a muscle of its own."""
    h = r.shape[0]
    min_gap = max(12.0, 0.12 * h)
    lines = drop_fascicles(cands, r, min_parallel_ratio)
    out = []
    for i, top in enumerate(lines):
        nxt = [c for c in lines[i + 1 :] if c[2] - top[2] >= min_gap]
        if nxt:
            comp = fascia_curves(r, top, nxt[0])
            if comp.parallel_ratio >= min_parallel_ratio:
                out.append(comp)
    return [c for c in out if not any(o.bottom is c.bottom and o.top[2] > c.top[2] for o in out)]
