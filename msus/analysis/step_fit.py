"""Three-level fit of one depth band's along-axis displacement: left side, clot, right side.

The one-ramp model of :func:`msus.analysis.motion_defect.fit_step` assumes the tissue between the
stump ends stretches with them.  A clot that stays put instead leaves **two steps**: the left side
moves one way up to the left end, the clot keeps its own level, the right side moves the other way
from the right end.  :func:`fit_three_level` scans every pair of ends (and a few transition
widths of each step, the flow smooths a step over some px) and solves the three levels by linear least squares
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


def _rises(x: np.ndarray, ends: np.ndarray, w: int, at_end: bool) -> np.ndarray:
    """Rows: 0 → 1 over ``w`` samples, starting at each end (or reaching 1 at it: ``at_end``)."""
    start = ends[:, None] - (w if at_end else 0)
    return np.clip((x[None, :] - start) / w, 0.0, 1.0)


def _best_pair(seg: np.ndarray, r1: np.ndarray, r2: np.ndarray, valid: np.ndarray):
    """Least-squares levels of ``c0 + c1·r1[i] + c2·r2[j]`` for every pair (i, j) (the 3×3 normal
    equations solved in closed form, all pairs at once); the best valid pair as
    (i index, j index, coefficients, residual energy)."""
    n = float(seg.size)
    s1, s2 = r1.sum(1)[:, None], r2.sum(1)[None, :]
    q1, q2, x = (r1 * r1).sum(1)[:, None], (r2 * r2).sum(1)[None, :], r1 @ r2.T
    y0, y1, y2 = float(seg.sum()), (r1 @ seg)[:, None], (r2 @ seg)[None, :]
    # cofactors of the symmetric matrix [[n, s1, s2], [s1, q1, x], [s2, x, q2]]
    k00, k01, k02 = q1 * q2 - x * x, s2 * x - s1 * q2, s1 * x - s2 * q1
    k11, k12, k22 = n * q2 - s2 * s2, s1 * s2 - n * x, n * q1 - s1 * s1
    det = n * k00 + s1 * k01 + s2 * k02
    ok = valid & (np.abs(det) > 1e-9)
    det = np.where(ok, det, 1.0)
    c0 = (k00 * y0 + k01 * y1 + k02 * y2) / det
    c1 = (k01 * y0 + k11 * y1 + k12 * y2) / det
    c2 = (k02 * y0 + k12 * y1 + k22 * y2) / det
    sse = np.where(ok, float((seg * seg).sum()) - (c0 * y0 + c1 * y1 + c2 * y2), np.inf)
    a, b = np.unravel_index(int(np.argmin(sse)), sse.shape)
    return int(a), int(b), (float(c0[a, b]), float(c1[a, b]), float(c2[a, b])), max(float(sse[a, b]), 0.0)


def fit_three_level(e: np.ndarray, centre: int, half: int, plateau: int) -> LevelFit | None:
    """Best left / clot / right fit of ``e`` with both ends within ``centre ± half``.

    Each step rises over its own width (scanned: ¼, ½ and 1 plateau), the clot clinging to an
    end and the flow's smoothing make it gradual; the left end ``i`` is where the left side's
    level stops, the right end ``j`` where the right side's starts.
    """
    lo, hi = _segment(e.size, centre, half, plateau)
    seg = e[lo:hi].astype(np.float64)
    x = np.arange(seg.size, dtype=np.float64)
    ends = np.arange(max(plateau, centre - half - lo), min(seg.size - plateau, centre + half - lo + 1))
    if ends.size < 3:
        return None
    widths = sorted({max(1, plateau // 4), max(1, plateau // 2), plateau})
    left = {w: _rises(x, ends, w, False) for w in widths}
    right = {w: _rises(x, ends, w, True) for w in widths}
    best = None
    for w1 in widths:
        for w2 in widths:
            valid = ends[None, :] - ends[:, None] >= w1 + w2 + 1
            if not valid.any():
                continue
            a, b, (c0, c1, c2), sse = _best_pair(seg, left[w1], right[w2], valid)
            if best is None or sse < best.sse:
                best = LevelFit(int(ends[a] + lo), int(ends[b] + lo), float(c0), float(c0 + c1),
                                float(c0 + c1 + c2), sse, seg.size, 7)
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
