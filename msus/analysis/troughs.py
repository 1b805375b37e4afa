"""Dark troughs along the straightened muscle: the candidates of an echo defect.

In depth bands of the straightened muscle (the whole thickness and six overlapping bands of 30 %)
the median echo per column is a profile along the axis; fascicle lines average out, a defect
crossing the band is a trough (:func:`find_troughs`).  A trough counts when it is deep enough
(``min_contrast`` of the muscle's level, or :data:`MIN_TROUGH_LEVELS` grey levels), long enough,
bounded by muscle on both sides (:data:`BOUND_REACH`, :data:`BOUND_RECOVERY`) and with both stumps
inside the ROI.  :func:`refine_trough` outlines it at half depth and refuses it when bright fibres
lie inside or it spans too little of the thickness.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from msus.analysis.extent import tail_over

#: A trough this many grey levels deep counts even when shallower than ``min_contrast`` (about
#: 5.5 dB at the nominal 60 dB display range, the spread of fully developed speckle).
MIN_TROUGH_LEVELS = 24.0
#: A trough is bounded by muscle when, within max(stump margin, BOUND_REACH × its width) beyond
#: each half-depth edge, the echo recovers this share of the way back to the muscle's level.
BOUND_REACH = 1.0
BOUND_RECOVERY = 0.75


@dataclass(frozen=True)
class Trough:
    """A trough of one depth band: relative ``depth`` (1 − trough / band level), ``width`` and
    half-depth columns ``xa..xb``, band rows ``b0..b1``, the band's grey ``level``."""

    depth: float
    width: int
    b0: int
    b1: int
    xa: int
    xb: int
    level: float


@dataclass(frozen=True)
class Outlined:
    """A refined trough: its ``mask`` (straightened px), defect and muscle grey levels, the
    half-way level, the trough's (xa, xb, b0, b1) and the fascia ``tail`` rows (top, bottom)
    that continue over it (:func:`msus.analysis.extent.tail_over`)."""

    mask: np.ndarray
    defect_level: float
    muscle_level: float
    half_level: float
    box: tuple[int, int, int, int]
    tail: tuple[int, int] = (0, 0)


def depth_bands(nv: int) -> list[tuple[int, int]]:
    """The whole thickness and six overlapping bands of 30 % of it."""
    bands = [(0, nv)]
    bh = max(4, int(round(0.3 * nv)))
    for k in range(6):
        b0 = int(round(k * (nv - bh) / 5))
        bands.append((b0, b0 + bh))
    return bands


def _band_troughs(r_: np.ndarray, level: float, band, th, min_len: float, end_margin: float) -> list[Trough]:
    """The (up to three) deepest troughs of one band's relative profile ``r_``."""
    ncols = r_.size
    out = []
    lo_ok = np.ones(ncols, bool)
    for _ in range(3):
        cand_x = np.flatnonzero(lo_ok)
        if cand_x.size == 0:
            break
        xm_ = int(cand_x[np.argmin(r_[cand_x])])
        depth = 1.0 - float(r_[xm_])
        # deep enough relative to the muscle (grey ratio), or by a fixed number of grey levels
        # (≈ dB on the display): on a bright display a fluid gap is many levels darker yet a
        # smaller share of the muscle's grey level
        if depth < th["min_contrast"] and depth * level < MIN_TROUGH_LEVELS:
            break
        halfr = 1.0 - depth / 2.0
        xa = xm_
        while xa > 0 and r_[xa - 1] < halfr:
            xa -= 1
        xb = xm_
        while xb < ncols - 1 and r_[xb + 1] < halfr:
            xb += 1
        lo_ok[max(0, xa - 2) : xb + 3] = False
        width = xb - xa + 1
        # bounded by muscle: within a short reach beyond each half-depth edge the echo recovers
        # three quarters of the way back to the muscle's level
        reach = int(round(max(end_margin, BOUND_REACH * width)))
        rec = 1.0 - (1.0 - BOUND_RECOVERY) * depth
        left_ok = (r_[max(0, xa - reach) : xa] >= rec).any()
        right_ok = (r_[xb + 1 : xb + 1 + reach] >= rec).any()
        if width < min_len or xa < end_margin or xb > ncols - 1 - end_margin or not (left_ok and right_ok):
            continue
        out.append(Trough(depth, width, band[0], band[1], xa, xb, level))
    return out


def find_troughs(S: np.ndarray, th, min_len: float, end_margin: float) -> list[Trough]:
    """Troughs of every depth band of the straightened grey muscle ``S``, deepest (then widest)
    first."""
    found = []
    for b0, b1 in depth_bands(S.shape[0]):
        prof = cv2.GaussianBlur(np.median(S[b0:b1], axis=0)[None, :], (0, 0), 1.5)[0]
        level = float(np.median(prof))
        if level <= 1:
            continue
        found += _band_troughs(prof / level, level, (b0, b1), th, min_len, end_margin)
    found.sort(key=lambda t: (round(t.depth, 2), t.width), reverse=True)
    return found


def _half_depth_mask(t: Trough, S2: np.ndarray, half_g: float) -> np.ndarray | None:
    """The connected region darker than ``half_g`` holding most of the trough's core, kept to
    the trough's neighbourhood (dark muscle may connect to it), filled, with the core."""
    low = (S2 < half_g).astype(np.uint8)
    _, lab2 = cv2.connectedComponents(low, connectivity=8)
    core = np.zeros_like(low, bool)
    core[t.b0 : t.b1, t.xa : t.xb + 1] = True
    ids, counts = np.unique(lab2[core & (low > 0)], return_counts=True)
    if not ids.size:
        return None
    mask = lab2 == ids[np.argmax(counts)]
    keep = np.zeros_like(mask)
    pad = max(3, int(round(0.5 * t.width)))
    keep[:, max(0, t.xa - pad) : t.xb + pad + 1] = True
    mask_u = (mask & keep).astype(np.uint8)
    contours, _ = cv2.findContours(mask_u, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(mask_u)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool) | core


def refine_trough(t: Trough, S: np.ndarray, S2: np.ndarray, has_data: np.ndarray, th,
                  tail: tuple[int, int] = (0, 0)) -> Outlined | None:
    """Outline of a trough at half depth; None when it fails the stricter tests.  ``tail``: the
    rows of the fascia tails at the top and bottom (:func:`msus.analysis.extent.fascia_tail_rows`),
    left out of the test for fibres inside where they continue over the trough's columns."""
    if float(has_data[t.b0 : t.b1, max(0, t.xa - 3) : t.xb + 4].mean()) < 0.9:
        return None  # no image data there (outside the fan, under an overlay)
    d_lev = t.level * (1.0 - t.depth)
    half_g = (d_lev + t.level) / 2.0
    mask = _half_depth_mask(t, S2, half_g)
    if mask is None:
        return None
    # no fibres cross a tear: bright structure inside means a dark patch of muscle; the fascia's
    # tail over a defect under it is the fascia, not fibres — where it keeps its level over it
    tail = tail_over(S, tail, (t.xa, t.xb), th["fascia_tail_level"]) if any(tail) else (0, 0)
    inner = np.zeros_like(mask)
    inner[max(t.b0, tail[0]) : min(t.b1, S.shape[0] - tail[1]), t.xa : t.xb + 1] = True
    v90 = float(np.percentile(S[inner], 90)) if inner.sum() >= 10 else 0.0
    if v90 > th["max_inside_level"] * t.level:
        return None
    frac_b = float(mask[:, t.xa : t.xb + 1].any(axis=1).mean())
    if frac_b < th["min_thickness_fraction"]:
        return None
    return Outlined(mask, d_lev, t.level, half_g, (t.xa, t.xb, t.b0, t.b1), tail)
