"""Where a dark defect starts and ends: along the muscle's axis and across its depth.

``profile_extent(P, margin, trough) -> Extent | None`` on the straightened muscle ``P`` (linear
echo power; rows = depth from superficial 0 to deep 1, columns along the axis) and the trough
the defect was found from.  Each row is normalised by the muscle's level in that row (median
outside the defect's columns).  Then:

1. **centre line** (:func:`centre_line`): the defect followed row by row (at most one column per
   row, ≤ 45° from the normal to the axis) and fitted by a straight line — a tear plane is a
   plane, fraying is noise around it;
2. **depth extent** (:func:`depth_extent`): the profile across the depth over the central half
   of the defect's columns, following that line; dark rows in runs, runs separated by short
   brighter interruptions (floating echoes, clots: :data:`BRIDGE_ROWS`) are one defect; the top
   and bottom are the half-level crossings.  Near the superficial (deep) fascia the rows the
   fascia's bright band blurs into (the **fascia tail**, :func:`fascia_tail_rows`) are read as
   defect when the rows under them are dark: a defect reaching the fascia is not ended by the
   fascia's own blur.  A tail counts over a defect only where it keeps its level there
   (:func:`tail_over`): the fascia continues over a tear under it;
3. **ends along the axis** (:func:`axis_ends`): the median over the rows of the central half of
   the torn depth, re-aligned on the centre line, and the sub-pixel half-level crossings between
   the defect's own level and the muscle's level just beyond each end.

Medians across rows / columns make frayed ends and floating echoes count by their typical, not
their extreme, position.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Dark runs across the depth separated by at most this share of the thickness are one defect.
BRIDGE_ROWS = 0.3
#: Rows (px) at the top / bottom of the depth profile within which an edge counts as the fascia.
EDGE_TOL_ROWS = 2.0


@dataclass(frozen=True)
class Extent:
    """A defect's extent in straightened px.

    ``x_left``, ``x_right``: the ends of the middle measured row; ``shear[v]`` (columns) moves
    them to row ``v`` of an oblique defect.  ``v_top``, ``v_bottom``: depth rows; ``fraction``
    of the thickness; ``power_axis`` / ``power_depth``: the defect's level relative to the muscle
    along the axis / across the depth.
    """

    x_left: float
    x_right: float
    v_top: float
    v_bottom: float
    fraction: float
    power_axis: float
    power_depth: float
    shear: np.ndarray


def half_crossing(p: np.ndarray, start: int, step: int, level: float, stop: int) -> float | None:
    """First sub-pixel position from ``start`` moving by ``step`` where ``p`` rises to ``level``."""
    i = start
    while 0 <= i + step < p.size and (i + step - stop) * step <= 0:
        j = i + step
        if p[j] >= level:
            a_, b_ = float(p[i]), float(p[j])
            t = 0.0 if b_ == a_ else (level - a_) / (b_ - a_)
            return float(i + step * np.clip(t, 0.0, 1.0))
        i = j
    return None


def column_level(block: np.ndarray) -> np.ndarray:
    """Echo power level of each column of a block of rows (median: frayed ends and floating
    echoes count by their typical, not their extreme, value)."""
    return np.median(block, axis=0)


def fascia_tail_rows(S: np.ndarray, level: float, max_share: float) -> tuple[int, int]:
    """Rows at the top and at the bottom of the straightened muscle ``S`` that the bright band of
    the superficial / deep fascia blurs into (its **tail**): the leading (trailing) rows whose
    level across the whole width is at least ``1 + level`` times the muscle's median, at most
    ``max_share`` of the thickness.  A defect under a fascia is not ended, nor crossed by
    fibres, there: the fascia continues over it."""
    nv = S.shape[0]
    rows = np.median(S, axis=1)
    bright = rows >= (1.0 + level) * max(float(np.median(S)), 1e-6)
    cap = int(np.floor(max_share * nv))
    top = 0
    while top < cap and bright[top]:
        top += 1
    bot = 0
    while bot < cap and bright[nv - 1 - bot]:
        bot += 1
    return top, bot


def tail_over(S: np.ndarray, tail: tuple[int, int], cols: tuple[int, int], level: float) -> tuple[int, int]:
    """The fascia tails (:func:`fascia_tail_rows`) that continue over the columns ``cols`` (first,
    last) of a candidate defect, per side (0 rows where a tail does not).  The fascia continues
    over a tear under it, so over the defect its tail keeps its level: a tail whose rows there
    fall below ``1 / (1 + level)`` of their level beside the defect (median over the rows of the
    ratio of the medians) has lost more than its excess over the muscle; what made those rows
    bright beside the defect is missing over it, so there they are muscle, not the fascia."""
    nv, nc = S.shape
    c0, c1 = max(0, int(cols[0])), min(nc - 1, int(cols[1]))
    outside = np.ones(nc, bool)
    outside[max(0, c0 - 2) : c1 + 3] = False
    if c1 < c0 or outside.sum() < 4:
        return 0, 0

    def keeps(rows: np.ndarray) -> bool:
        over = np.median(S[rows][:, c0 : c1 + 1], axis=1)
        beside = np.maximum(np.median(S[rows][:, outside], axis=1), 1e-6)
        return float(np.median(over / beside)) >= 1.0 / (1.0 + level)

    top, bot = int(tail[0]), int(tail[1])
    top = top if top and keeps(np.arange(top)) else 0
    bot = bot if bot and keeps(np.arange(nv - bot, nv)) else 0
    return top, bot


def normalised(P: np.ndarray, c0: int, c1: int) -> np.ndarray | None:
    """``P`` with each row divided by the muscle's level in that row (median outside the
    defect's columns ``c0..c1``); None when too little muscle lies outside."""
    nc = P.shape[1]
    outside = np.ones(nc, bool)
    outside[max(0, c0 - 2) : c1 + 3] = False
    if outside.sum() < 4:
        return None
    row_level = np.median(P[:, outside], axis=1)
    return P / np.maximum(row_level[:, None], 1e-6)


def _follow_rows(Pr: np.ndarray, c0: int, c1: int, tb0: int, half_c: float):
    """Centre column of the dark run in every row, followed from the trough's band up and down
    (≤ 1 column per row), and which rows were inside a run as wide as the defect."""
    nv, nc = Pr.shape
    centre = np.full(nv, 0.5 * (c0 + c1))
    inside = np.zeros(nv, bool)
    reach_c = 2 * (c1 - c0 + 1)
    for rng_ in (range(max(0, tb0), nv), range(max(0, tb0) - 1, -1, -1)):
        prev = 0.5 * (c0 + c1)
        for v in rng_:
            row = Pr[v]
            x = int(np.clip(round(prev), 0, nc - 1))
            if row[x] < half_c:  # inside the dark run: its middle, moving ≤ 1 column per row
                a_ = x
                while a_ > 0 and row[a_ - 1] < half_c and x - a_ < reach_c:
                    a_ -= 1
                b_ = x
                while b_ < nc - 1 and row[b_ + 1] < half_c and b_ - x < reach_c:
                    b_ += 1
                # only a run as wide as the defect (bounded on both sides) steers the centre
                if 0.6 * (c1 - c0 + 1) <= b_ - a_ + 1 <= 1.5 * (c1 - c0 + 1):
                    prev = float(np.clip(0.5 * (a_ + b_), prev - 1.0, prev + 1.0))
                    inside[v] = True
            centre[v] = prev
    return centre, inside


def centre_line(Pn: np.ndarray, c0: int, c1: int, tb0: int, tb1: int) -> np.ndarray:
    """The defect's centre column per row: the straight fit through the rows inside it."""
    nv = Pn.shape[0]
    Pr = cv2.blur(Pn.astype(np.float32), (3, 5))  # local mean: 3 columns, 5 rows
    d_est = float(np.median(Pn[max(0, tb0) : max(tb0 + 1, min(nv, tb1)), c0 : c1 + 1]))
    centre, inside = _follow_rows(Pr, c0, c1, tb0, 0.5 * (1.0 + d_est))
    iv = np.flatnonzero(inside)
    if iv.size >= 5:
        slope, icpt = np.polyfit(iv.astype(float), centre[iv], 1)
        return icpt + slope * np.arange(nv, dtype=float)
    return np.full(nv, 0.5 * (c0 + c1))


def dark_runs(dark: np.ndarray, min_len: float) -> list[tuple[int, int]]:
    """(first, last) of every run of True at least ``min_len`` long."""
    runs, start = [], None
    for i, dv in enumerate(np.append(dark, False)):
        if dv and start is None:
            start = i
        elif not dv and start is not None:
            if i - start >= min_len:
                runs.append((start, i - 1))
            start = None
    return runs


def joined_runs(runs, mid_band: float, max_gap: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """First and last run of the defect: from the run nearest the trough's band, joining
    neighbouring runs across brighter interruptions of at most ``max_gap`` rows."""
    m = min(range(len(runs)), key=lambda j: 0 if runs[j][0] <= mid_band <= runs[j][1]
            else min(abs(runs[j][0] - mid_band), abs(runs[j][1] - mid_band)))
    lo_j = hi_j = m
    while lo_j > 0 and runs[lo_j][0] - runs[lo_j - 1][1] - 1 <= max_gap:
        lo_j -= 1
    while hi_j < len(runs) - 1 and runs[hi_j + 1][0] - runs[hi_j][1] - 1 <= max_gap:
        hi_j += 1
    return runs[lo_j], runs[hi_j]


def depth_profile(Pn: np.ndarray, centre: np.ndarray, hw: int) -> np.ndarray:
    """Median echo (relative to the muscle) per row over ``±hw`` columns of the centre line,
    lightly smoothed across the depth."""
    nv = Pn.shape[0]
    q = np.array([np.median(Pn[v, max(0, int(round(centre[v])) - hw) : int(round(centre[v])) + hw + 1])
                  for v in range(nv)])
    return cv2.GaussianBlur(q.astype(np.float32)[:, None], (1, 0), sigmaX=0.1, sigmaY=1.5)[:, 0]


def depth_extent(q: np.ndarray, tb0: int, tb1: int, tail: tuple[int, int] = (0, 0)):
    """(v_top, v_bottom, fraction, defect level) of the dark rows of the depth profile ``q``
    around the trough's band ``tb0..tb1``, or None.  An edge within :data:`EDGE_TOL_ROWS` of a
    fascia, or inside its tail (``tail`` rows at the top / bottom), reaches the fascia."""
    nv = q.size
    d_level = float(np.median(q[np.arange(tb0, min(nv, tb1))]))
    half_v = (d_level + 1.0) / 2.0
    runs = dark_runs(q < half_v, max(3, 0.05 * nv))
    if not runs:
        return None
    first_run, last_run = joined_runs(runs, 0.5 * (tb0 + tb1 - 1), BRIDGE_ROWS * nv)
    up = half_crossing(q, first_run[0], -1, half_v, 0) if first_run[0] > 0 else None
    dn = half_crossing(q, last_run[1], +1, half_v, nv - 1) if last_run[1] < nv - 1 else None
    v_top = 0.0 if up is None or up <= max(EDGE_TOL_ROWS, tail[0]) else up
    v_bot = float(nv - 1) if dn is None or dn >= nv - 1 - max(EDGE_TOL_ROWS, tail[1]) else dn
    if v_bot - v_top < 2:
        return None
    frac = float(np.clip((v_bot - v_top) / (nv - 1), 0.0, 1.0))
    if v_top == 0.0 and v_bot == nv - 1:
        frac = 1.0
    return v_top, v_bot, frac, d_level


def axis_ends(Pn: np.ndarray, centre: np.ndarray, rows: tuple[int, int], trough_cols: tuple[int, int], pad: int):
    """(x_left, x_right, defect level, shear) along the axis over the depth rows ``rows``, or
    None.  The rows are re-aligned on the centre line first (an oblique tear plane), so the ends
    are measured along the axis in every row; positions are those of the middle row."""
    nc = Pn.shape[1]
    r0, r1 = rows
    c0, c1 = trough_cols
    vm = int(round(0.5 * (r0 + r1 - 1)))
    shear = np.round(centre - centre[vm]).astype(int)
    cols_all = np.arange(nc)
    rows_al = np.stack([Pn[v, np.clip(cols_all + shear[v], 0, nc - 1)] for v in range(r0, r1)])
    p = column_level(rows_al)
    off = int(round(centre[vm] - 0.5 * (c0 + c1)))
    c0, c1 = int(np.clip(c0 + off, 0, nc - 1)), int(np.clip(c1 + off, 0, nc - 1))
    core = np.arange(c0, c1 + 1)
    xc = int(core[np.argmin(p[core])])
    span_c = max(pad, c1 - c0 + 1)
    a0, b0 = c0 - 2, c1 + 2
    d_x = float(np.median(p[core]))
    win = max(4, pad)
    lm = p[max(0, a0 - 2 * win) : a0 + 1]
    rm = p[b0 : b0 + 2 * win + 1]
    if lm.size < 2 or rm.size < 2:
        return None
    m_l, m_r = float(np.mean(lm)), float(np.mean(rm))
    xl = half_crossing(p, xc, -1, (d_x + m_l) / 2.0, max(0, a0 - span_c))
    xr = half_crossing(p, xc, +1, (d_x + m_r) / 2.0, min(nc - 1, b0 + span_c))
    if xl is None or xr is None or xr - xl < 1:
        return None
    return xl, xr, d_x, shear.astype(float)


def profile_extent(P: np.ndarray, margin: float, trough, tail: tuple[int, int] = (0, 0)) -> Extent | None:
    """Ends and depth extent of the defect found as ``trough`` (c0, c1, band top, band bottom;
    straightened px) in the straightened muscle ``P`` (linear echo power), or None.  ``tail``:
    rows of the fascia tails at the top and bottom (:func:`fascia_tail_rows`)."""
    nv = P.shape[0]
    c0, c1, tb0, tb1 = (int(v) for v in trough)
    pad = max(3, int(round(margin)))
    Pn = normalised(P, c0, c1)
    if Pn is None:
        return None
    centre = centre_line(Pn, c0, c1, tb0, tb1)
    q = depth_profile(Pn, centre, max(1, int(round(0.25 * (c1 - c0)))))
    dep = depth_extent(q, tb0, tb1, tail)
    if dep is None:
        return None
    v_top, v_bot, frac, d_level = dep
    # along-axis profile over the central half of the torn depth
    r0 = int(round(v_top + 0.25 * (v_bot - v_top)))
    r1 = max(r0 + 1, int(round(v_top + 0.75 * (v_bot - v_top))) + 1)
    ends = axis_ends(Pn, centre, (r0, r1), (c0, c1), pad)
    if ends is None:
        return None
    xl, xr, d_x, shear = ends
    return Extent(xl, xr, v_top, v_bot, frac, d_x, d_level, shear)
