"""Motion over a cine loop: energy per frame, suggested rest and peak-contraction frames.

The loop is converted once to small grey frames (the ROI, downscaled so its longer side is at
most :data:`WORK_SIDE_PX` px).  Dense optical flow (OpenCV DIS, ultrafast preset) between
consecutive small frames gives

* the **motion energy** of frame *t*: mean flow magnitude from frame *t-1* to *t* (px of the
  full-resolution frame per frame interval), lightly smoothed over time;
* the **deformation** of frame *t* relative to a reference: the accumulated flow fields are summed
  per pixel, and the deformation is the mean magnitude of their difference to the reference's.
  Summing per pixel (no sign cancellation between the two halves of a torn muscle pulling apart)
  makes it grow with contraction even when the tissue moves in opposite directions.

The suggested **rest frame** is the middle of the stillest stretch before the contraction, the
suggested **peak-contraction frame** is the frame of largest deformation from rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from msus.cine import to_grey
from msus.errors import AnalysisError

#: Longer side (px) of the small frames motion works on.
WORK_SIDE_PX = 160
#: Loops of at most this many frames (3-pose files, pairs): rest and peak are the two most
#: different poses (:func:`most_different_pair`).
SHORT_LOOP_FRAMES = 5
#: Temporal smoothing (Gaussian sigma, frames) of the energy curve.
SMOOTH_FRAMES = 1.5
#: A window is "still" when its energy is within this share of the way from the loop's
#: stillest window to its median window.
STILL_SHARE = 0.25
#: Frames within this share of the deformation range below the peak form the held contraction.
PEAK_SHARE = 0.1
#: Rest is moved to the pose furthest from the peak when it lies below this share of that
#: distance (see :func:`_check_extremes`).
EXTREME_SHARE = 0.7
#: Energy above this share of the way from the loop's minimum to its maximum is a motion burst.
BURST_SHARE = 0.5
#: ... sustained over at least this many frames (a single jolt of the probe is not a contraction).
BURST_FRAMES = 3


@dataclass(frozen=True)
class Motion:
    """Motion over a loop.  Curves have one value per frame.

    Attributes
    ----------
    energy_px
        Smoothed mean optical-flow magnitude into each frame, full-resolution px per frame.
    deformation_px
        Mean accumulated displacement of each frame relative to the rest frame, px.
    rest_frame, contraction_frame
        Suggested frame indices (0-based).
    still_window
        (first, last) frame of the stillest stretch the rest frame was taken from.
    scale
        Small-frame px per full-resolution px.
    """

    energy_px: tuple[float, ...]
    deformation_px: tuple[float, ...]
    rest_frame: int
    contraction_frame: int
    still_window: tuple[int, int]
    scale: float

    def to_dict(self) -> dict:
        return {
            "energy_px": list(self.energy_px),
            "deformation_px": list(self.deformation_px),
            "rest_frame": self.rest_frame,
            "contraction_frame": self.contraction_frame,
            "still_window": list(self.still_window),
        }


def small_frames(frames, roi=None, side_px: int = WORK_SIDE_PX) -> tuple[np.ndarray, float]:
    """Grey, downscaled ROI crops of a sequence of frames.

    Parameters
    ----------
    frames
        Iterable of H×W or H×W×3 uint8 frames.
    roi
        (x0, y0, x1, y1) inclusive px, or None for the whole frame.
    side_px
        Longer side of the result, px.

    Returns
    -------
    (N×h×w uint8 array, scale) where scale is small px per full px.
    """
    out = []
    scale = 1.0
    size = None
    for f in frames:
        g = to_grey(f)
        if roi is not None:
            x0, y0, x1, y1 = roi
            g = g[y0 : y1 + 1, x0 : x1 + 1]
        if size is None:
            h, w = g.shape
            scale = min(1.0, side_px / max(h, w))
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
        out.append(cv2.resize(g, size, interpolation=cv2.INTER_AREA))
    if not out:
        raise AnalysisError("the loop holds no frames")
    return np.stack(out), scale


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or x.size < 3:
        return x.astype(float)
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    xp = np.pad(x.astype(float), r, mode="edge")
    return np.convolve(xp, k, mode="valid")


def flows(small: np.ndarray) -> np.ndarray:
    """Consecutive dense flows of small frames: (N-1)×h×w×2 float32 (small px)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    n = small.shape[0]
    out = np.empty((n - 1, *small.shape[1:], 2), np.float32)
    for t in range(1, n):
        out[t - 1] = dis.calc(small[t - 1], small[t], None)
    return out


def analyse_motion(
    small: np.ndarray,
    scale: float = 1.0,
    *,
    rest_frame: int | None = None,
    contraction_frame: int | None = None,
) -> Motion:
    """Motion energy, deformation and suggested frames from small grey frames.

    Parameters
    ----------
    small
        N×h×w uint8 frames (see :func:`small_frames`), N ≥ 2.
    scale
        Small px per full-resolution px (curves are reported in full-resolution px).
    rest_frame, contraction_frame
        Frames chosen by the user; the other one is suggested relative to them.
    """
    n = small.shape[0]
    if n < 2:
        raise AnalysisError("motion analysis needs at least two frames")
    fl = flows(small)
    mag = np.sqrt((fl**2).sum(-1)).mean(axis=(1, 2)) / scale
    energy = np.concatenate([[mag[0]], mag])
    energy_s = _smooth(energy, SMOOTH_FRAMES)
    # accumulated displacement field per frame (summed per pixel, Eulerian approximation)
    # stored small: reduce the field to a coarse grid to keep memory low.
    grid = fl[:, ::4, ::4, :]
    cum = np.concatenate([np.zeros((1, *grid.shape[1:]), np.float32), np.cumsum(grid, axis=0)])

    def deformation_from(r: int) -> np.ndarray:
        d = np.sqrt(((cum - cum[r]) ** 2).sum(-1)).mean(axis=(1, 2)) / scale
        return d if n <= SHORT_LOOP_FRAMES else _smooth(d, 1.0)

    if n <= SHORT_LOOP_FRAMES and rest_frame is None and contraction_frame is None:
        r, c = most_different_pair([deformation_from(i) for i in range(n)])
        return Motion(tuple(float(v) for v in energy_s), tuple(float(v) for v in deformation_from(r)),
                      r, c, (r, r), float(scale))
    win = max(3, min(15, n // 12))
    wsum = np.convolve(energy_s, np.ones(min(win, n)) / min(win, n), mode="valid")  # window starts

    def first_still(lo: int, hi: int) -> tuple[int, int]:
        """Earliest still stretch whose window lies in [lo, hi]: the first run of windows with
        energy near the loop's minimum, and the stillest window of that run."""
        w = min(win, n)
        hi_a = min(hi - w + 1, wsum.size - 1)
        if hi_a < lo:
            return (lo, min(hi, n - 1))
        seg = wsum[lo : hi_a + 1]
        floor, med = float(seg.min()), float(np.median(wsum))
        still = seg <= floor + STILL_SHARE * max(0.0, med - floor)
        a = int(np.argmax(still))
        b = a
        while b + 1 < seg.size and still[b + 1]:
            b += 1
        best = lo + a + int(np.argmin(seg[a : b + 1]))
        return (best, best + w - 1)

    def plateau_middle(d: np.ndarray, lo: int) -> int:
        """Middle of the run of frames near the deformation peak (a held contraction)."""
        seg = d[lo:]
        k = int(np.argmax(seg))
        top = seg >= seg[k] - PEAK_SHARE * max(1e-9, seg[k] - float(seg.min()))
        a = b = k
        while a - 1 >= 0 and top[a - 1]:
            a -= 1
        while b + 1 < seg.size and top[b + 1]:
            b += 1
        return lo + (a + b) // 2

    # the loop is expected to start at rest: the rest frame is the stillest stretch before the
    # first burst of motion (the contraction's onset); without room before it, the first still
    # stretch of the loop
    lo_e, hi_e = float(energy_s.min()), float(energy_s.max())
    above = energy_s > lo_e + BURST_SHARE * (hi_e - lo_e)
    onset = n
    run_len = 0
    for i, a in enumerate(above):
        run_len = run_len + 1 if a else 0
        if run_len >= BURST_FRAMES:
            onset = i - BURST_FRAMES + 1
            break
    if rest_frame is not None:
        r = int(rest_frame)
        still = (r, r)
    else:
        end = onset - 1 if onset >= 3 else n - 1
        if contraction_frame is not None and int(contraction_frame) >= 2:
            end = min(end, int(contraction_frame) - 1) if onset >= 3 else int(contraction_frame) - 1
        still = first_still(0, end)
        r = (still[0] + still[1]) // 2
    if contraction_frame is not None:
        c = int(contraction_frame)
    else:
        d = deformation_from(r)
        c = plateau_middle(d, 0)
        if c == r:
            c = int(np.argmax(energy_s))
        if rest_frame is None and n >= 6:
            r, c, still = _check_extremes(r, c, still, deformation_from, plateau_middle)
    deform = deformation_from(r)
    return Motion(
        energy_px=tuple(float(v) for v in energy_s),
        deformation_px=tuple(float(v) for v in deform),
        rest_frame=int(r),
        contraction_frame=int(c),
        still_window=(int(still[0]), int(still[1])),
        scale=float(scale),
    )


def most_different_pair(deformations) -> tuple[int, int]:
    """(rest, contraction) of a short loop: the two poses furthest apart, rest the earlier.

    ``deformations[i][j]`` is the deformation of frame j from frame i (any N ≥ 2); the analysis
    swaps the two later when the motion evidence says the stumps come together instead.
    """
    n = len(deformations)
    best, pair = -1.0, (0, n - 1)
    for i in range(n):
        for j in range(i + 1, n):
            v = 0.5 * (float(deformations[i][j]) + float(deformations[j][i]))
            if v > best:
                best, pair = v, (i, j)
    return pair


def _check_extremes(r: int, c: int, still, deformation_from, plateau_middle):
    """Make rest and peak the two extremes of the loop's deformation, in the right order.

    A held contraction is as still as rest, and a loop may start partly contracted, so the
    stillest stretch before the first burst is not always rest.  Rest and peak contraction are
    the two poses furthest apart: when the rest chosen is much closer to the peak than the
    furthest pose from it, rest moves to that pose (searched before the peak); of the two, rest
    is the one closer to the first frame (loops are recorded from rest or near it).
    """
    d_c = deformation_from(c)
    span = float(d_c.max())
    if span > 0 and float(d_c[r]) < EXTREME_SHARE * span:
        r_new = plateau_middle(d_c[:c], 0) if c >= 2 else int(np.argmax(d_c))
        if float(d_c[r_new]) >= EXTREME_SHARE * span:
            r, still = int(r_new), (int(r_new), int(r_new))
    d_0 = deformation_from(0)
    if float(d_0[r]) > float(d_0[c]) + 0.25 * max(1e-9, float(deformation_from(r)[c])):
        # the "rest" is the pose further from the start: the two are swapped
        r = int(c)
        still = (r, r)
        c = plateau_middle(deformation_from(r), 0)
    return r, c, still


def motion(cine, roi=None, *, rest_frame=None, contraction_frame=None) -> Motion:
    """Motion analysis of a :class:`~msus.cine.Cine` (convenience wrapper)."""
    small, scale = small_frames((cine.frame(i) for i in range(cine.n_frames)), roi)
    return analyse_motion(small, scale, rest_frame=rest_frame, contraction_frame=contraction_frame)
