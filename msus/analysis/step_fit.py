"""Three-level fit of one depth band's along-axis displacement: left side, clot, right side.

The one-ramp model of :func:`msus.analysis.motion_defect.fit_step` assumes the tissue between the
stump ends stretches with them.  A clot that stays put instead leaves **two steps**: the left side
moves one way up to the left end, the clot keeps its own level, the right side moves the other way
from the right end.  :func:`fit_three_level` scans every pair of ends (and a few transition
widths, the flow smooths a step over some px) and solves the three levels by linear least squares
for each; :func:`choose_model` keeps it over the one ramp only when the Bayesian information
criterion (BIC) and the residual both say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LevelFit:
    """A fitted profile: ends ``i`` < ``j`` (samples), levels, residual energy over ``n`` samples."""

    i: int
    j: int
    left: float
    middle: float
    right: float
    sse: float
    n: int
    k: int  # free parameters (BIC)

    @property
    def bic(self) -> float:
        return self.n * math.log(max(self.sse, 1e-12) / self.n) + self.k * math.log(self.n)


def _segment(n: int, centre: int, half: int, plateau: int) -> tuple[int, int]:
    return max(0, centre - half - plateau), min(n, centre + half + plateau + 1)


def one_ramp_sse(e: np.ndarray, centre: int, half: int, plateau: int, i: int, j: int) -> LevelFit:
    """Least-squares levels of the one-ramp model with ends ``i``, ``j`` over the fit segment."""
    lo, hi = _segment(e.size, centre, half, plateau)
    seg = e[lo:hi].astype(np.float64)
    x = np.arange(lo, hi, dtype=np.float64)
    r = np.clip((x - i) / max(j - i, 1), 0.0, 1.0)
    basis = np.stack([np.ones_like(r), r], axis=1)
    coef, *_ = np.linalg.lstsq(basis, seg, rcond=None)
    sse = float(((seg - basis @ coef) ** 2).sum())
    a, b = float(coef[0]), float(coef[0] + coef[1])
    return LevelFit(i, j, a, 0.5 * (a + b), b, sse, seg.size, 4)


def fit_three_level(e: np.ndarray, centre: int, half: int, plateau: int) -> LevelFit | None:
    """Best left / clot / right fit of ``e`` with both ends within ``centre ± half``.

    Each step rises over ``w`` samples (scanned: 1, plateau/4, plateau/2); the left end ``i`` is
    where the left side's level stops, the right end ``j`` where the right side's starts.
    """
    lo, hi = _segment(e.size, centre, half, plateau)
    seg = e[lo:hi].astype(np.float64)
    L = seg.size
    x = np.arange(L, dtype=np.float64)
    ends = np.arange(max(plateau, centre - half - lo), min(L - plateau, centre + half - lo + 1))
    if ends.size < 3:
        return None
    best = None
    for w in sorted({1, max(1, plateau // 4), max(1, plateau // 2)}):
        r1 = np.clip((x[None, :] - ends[:, None]) / w, 0.0, 1.0)  # rises from i over w
        r2 = np.clip((x[None, :] - (ends[:, None] - w)) / w, 0.0, 1.0)  # reaches 1 at j
        s1, s2 = r1.sum(1), r2.sum(1)
        q1, q2, x12 = (r1 * r1).sum(1), (r2 * r2).sum(1), r1 @ r2.T
        e1, e2 = r1 @ seg, r2 @ seg
        ni = ends.size
        g = np.empty((ni, ni, 3, 3))
        g[..., 0, 0] = L
        g[..., 0, 1] = g[..., 1, 0] = s1[:, None]
        g[..., 0, 2] = g[..., 2, 0] = s2[None, :]
        g[..., 1, 1] = q1[:, None]
        g[..., 2, 2] = q2[None, :]
        g[..., 1, 2] = g[..., 2, 1] = x12
        rhs = np.stack(np.broadcast_arrays(np.full((ni, ni), seg.sum()), e1[:, None], e2[None, :]), -1)
        valid = ends[None, :] - ends[:, None] >= 2 * w + 1
        g[~valid] = np.eye(3)
        coef = np.linalg.solve(g, rhs[..., None])[..., 0]
        sse = float((seg * seg).sum()) - (coef * rhs).sum(-1)
        sse[~valid] = np.inf
        a, b = np.unravel_index(int(np.argmin(sse)), sse.shape)
        if best is None or sse[a, b] < best.sse:
            c0, c1, c2 = coef[a, b]
            best = LevelFit(int(ends[a] + lo), int(ends[b] + lo), float(c0), float(c0 + c1),
                            float(c0 + c1 + c2), max(float(sse[a, b]), 0.0), L, 6)
    return best


def choose_model(ramp: LevelFit, three: LevelFit | None, th) -> bool:
    """True when the three-level (still clot) model explains the band better than one ramp:
    lower BIC, at most ``1 - min_clot_gain`` of its residual, and a clot level distinct from both
    sides by ``min_clot_share`` of the full step."""
    if three is None:
        return False
    full = three.right - three.left
    if abs(full) < 1e-9:
        return False
    share = min((three.middle - three.left) / full, (three.right - three.middle) / full)
    return bool(three.bic < ramp.bic and three.sse <= (1.0 - th.min_clot_gain) * ramp.sse
                and share >= th.min_clot_share)
