"""Motion over a cine loop: energy per frame, the pose of every frame, rest and peak-contraction frames.

The loop is converted once to small grey frames (the ROI, downscaled so its longer side is at
most :data:`WORK_SIDE_PX` px).  Dense optical flow (OpenCV DIS, ultrafast preset) between
consecutive small frames gives the **motion energy** of frame *t*: mean flow magnitude from frame
*t-1* to *t* (px of the full-resolution frame per frame interval), lightly smoothed over time.

The **pose** of every frame is read from the motion itself (:func:`pose_fields`,
:func:`pose_score`):

1. the displacement field of the first frame's tissue on every frame (a grid every
   :data:`POSE_STEP_PX` small px): predicted from the previous frame's field and the frame-to-frame
   flow (accumulated along the tissue's path), then corrected by a direct DIS registration of the
   frame to the first one, so that the drift of frame-to-frame chaining does not bias the far end
   of the loop;
2. the global probe drift removed: the median displacement of each field (a probe sliding or
   pressing moves everything alike; a contraction deforms the tissue);
3. PCA over the frames of the flattened fields: the first component is the **contraction axis**
   and a frame's projection on it its **pose score**, smoothed over time
   (``scipy.ndimage.gaussian_filter1d``) on loops of more than 3 frames.

**Rest and peak** are the two extremes of the score, i.e. the two most different poses, on any
loop of ≥ 2 frames: each is the middle of the first stretch of frames within
:data:`EXTREME_SHARE` of its extreme (a peak narrower than the smoothing is placed on the
unsmoothed score).  Rest is the extreme reached first; the analysis exchanges the two when the
muscle says otherwise (see :func:`msus.analysis.fuse.motion_evidence`).  The **deformation** of a
frame is the mean magnitude of its displacement relative to the rest frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import permutations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from msus.cine import to_grey
from msus.errors import AnalysisError

#: Longer side (px) of the small frames motion works on.
WORK_SIDE_PX = 160
#: Temporal smoothing (Gaussian sigma, frames) of the energy curve.
SMOOTH_FRAMES = 1.5
#: Loops of at most this many frames (pose files: rest / half-way / peak, pairs) are followed
#: through their frames in the order of least change between neighbours (:func:`pose_order`).
SHORT_LOOP_FRAMES = 5
#: Gaussian blur (small px) before frames are compared for :func:`pose_order`.
ORDER_BLUR_PX = 1.0
#: Grid step (small px) of the displacement fields the pose is read from.
POSE_STEP_PX = 4
#: Share of the field's height and width left out at each border (flow is poorest there).
POSE_MARGIN = 0.1
#: DIS preset of the direct registration of every frame to the first one.
REGISTER_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
#: Smoothing of the pose score on loops of more than 3 frames: Gaussian sigma of
#: n / POSE_SMOOTH_DIVISOR frames, clipped to POSE_SIGMA_RANGE.
POSE_SMOOTH_DIVISOR = 40.0
POSE_SIGMA_RANGE = (0.7, 2.0)
#: An extreme's stretch: frames within this share of the score's range from the extreme.
EXTREME_SHARE = 0.05
#: An extreme is reached at the first frame within this share of the range from it.
REACH_SHARE = 0.1


@dataclass(frozen=True)
class Motion:
    """Motion over a loop.  Curves have one value per frame.

    Attributes
    ----------
    energy_px
        Smoothed mean optical-flow magnitude into each frame, full-resolution px per frame.
    deformation_px
        Mean displacement of each frame relative to the rest frame, full-resolution px.
    rest_frame, contraction_frame
        Suggested frame indices (0-based).
    still_window
        (first, last) frame of the rest stretch the rest frame was taken from.
    scale
        Small-frame px per full-resolution px.
    pose_score
        Position of each frame along the contraction axis (small px, smoothed; the sign is that of
        the first principal component, rest and peak are its two extremes).
    deformation_peak_px
        Mean displacement of each frame relative to the contraction frame (for :func:`swapped`).
    """

    energy_px: tuple[float, ...]
    deformation_px: tuple[float, ...]
    rest_frame: int
    contraction_frame: int
    still_window: tuple[int, int]
    scale: float
    pose_score: tuple[float, ...] = ()
    deformation_peak_px: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return {
            "energy_px": list(self.energy_px),
            "deformation_px": list(self.deformation_px),
            "rest_frame": self.rest_frame,
            "contraction_frame": self.contraction_frame,
            "still_window": list(self.still_window),
            "pose_score": list(self.pose_score),
        }


def swapped(m: Motion) -> Motion:
    """The same motion with rest and peak exchanged (the muscle said they were the wrong way round)."""
    c = m.contraction_frame
    return replace(m, rest_frame=c, contraction_frame=m.rest_frame, still_window=(c, c),
                   deformation_px=m.deformation_peak_px or m.deformation_px,
                   deformation_peak_px=m.deformation_px)


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
    return gaussian_filter1d(x.astype(float), sigma, mode="nearest")


def flows(small: np.ndarray) -> np.ndarray:
    """Consecutive dense flows of small frames: (N-1)×h×w×2 float32 (small px)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    n = small.shape[0]
    out = np.empty((n - 1, *small.shape[1:], 2), np.float32)
    for t in range(1, n):
        out[t - 1] = dis.calc(small[t - 1], small[t], None)
    return out


def pose_order(small: np.ndarray) -> tuple[int, ...]:
    """Order to follow the frames in: time order, except on loops of at most
    :data:`SHORT_LOOP_FRAMES` frames (pose files in any order) the path through every frame with
    the least total change between neighbours (1 − normalised cross-correlation of the blurred
    frames): rest → half-way → peak whatever order they were saved in, so no flow has to bridge
    the whole contraction at once."""
    n = small.shape[0]
    if n <= 2 or n > SHORT_LOOP_FRAMES:
        return tuple(range(n))
    z = np.stack([cv2.GaussianBlur(f.astype(np.float32), (0, 0), ORDER_BLUR_PX).ravel() for f in small])
    z -= z.mean(axis=1, keepdims=True)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)
    cost = 1.0 - z @ z.T
    best, order = np.inf, tuple(range(n))
    for p in permutations(range(n)):
        v = float(sum(cost[a, b] for a, b in zip(p[:-1], p[1:])))
        if v < best - 1e-9:
            best, order = v, p
    return order


def pose_fields(small: np.ndarray, fl: np.ndarray, step: int = POSE_STEP_PX, order=None) -> np.ndarray:
    """Displacement of the first followed frame's tissue on every frame, on a grid every ``step`` px.

    Frames are followed in ``order`` (default time order, whose frame-to-frame flows are ``fl``,
    :func:`flows`).  Each frame's field is predicted from the previous one's and the flow between
    them along the tissue's path, then corrected by a direct DIS registration of the frame to the
    first (started from the prediction), so errors do not accumulate over the loop.
    Returns N×gh×gw×2 float32 (x, y; small px), indexed by frame; the first frame's field is zero.
    """
    n, h, w = small.shape
    order = tuple(range(n)) if order is None else tuple(order)
    if order != tuple(range(n)):
        fl = flows(small[list(order)])
    dis = cv2.DISOpticalFlow_create(REGISTER_PRESET)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    sl = (slice(step // 2, None, step), slice(step // 2, None, step))
    out = np.zeros((n, *gx[sl].shape, 2), np.float32)
    g = np.zeros((h, w, 2), np.float32)
    ref = small[order[0]]
    for k in range(1, n):
        px, py = gx + g[..., 0], gy + g[..., 1]
        f = fl[k - 1]
        g = g + np.stack([cv2.remap(f[..., j], px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                          for j in (0, 1)], axis=-1)
        g = dis.calc(ref, small[order[k]], np.ascontiguousarray(g))
        out[order[k]] = g[sl]
    return out


def drift_free(fields: np.ndarray, margin: float = POSE_MARGIN) -> np.ndarray:
    """Inner part of the fields (``margin`` of each side left out) less each field's median
    displacement (the probe's drift: it moves everything alike)."""
    gh, gw = fields.shape[1:3]
    my, mx = int(round(margin * gh)), int(round(margin * gw))
    inner = fields[:, my : gh - my or None, mx : gw - mx or None]
    med = np.median(inner.reshape(inner.shape[0], -1, 2), axis=1)
    return inner - med[:, None, None, :]


def pose_score(fields: np.ndarray) -> tuple[np.ndarray, float]:
    """Projection of every frame's drift-free field on the first principal component over the
    frames (the contraction axis), and that component's share of the variance."""
    x = drift_free(fields).reshape(fields.shape[0], -1).astype(np.float64)
    x -= x.mean(axis=0)
    g = x @ x.T  # the frames' Gram matrix (N×N) has the components of x's SVD, far cheaper
    u, lam = _top_eigenvector(g)
    total = float(np.trace(g))
    return u * np.sqrt(lam), (lam / total if total > 0 else 0.0)


def _top_eigenvector(g: np.ndarray, iters: int = 1000, tol: float = 1e-10) -> tuple[np.ndarray, float]:
    """Unit eigenvector of the largest eigenvalue of a symmetric positive semi-definite matrix, and
    that eigenvalue, by power iteration from the row of the largest diagonal element (no LAPACK
    call: a threaded eigensolver stalls for a second on a busy 2-core machine)."""
    v = g[int(np.argmax(np.diag(g)))].astype(np.float64)
    nrm = float(np.linalg.norm(v))
    if nrm == 0.0:
        return np.zeros(g.shape[0]), 0.0
    v /= nrm
    for _ in range(iters):
        w = g @ v
        nrm = float(np.linalg.norm(w))
        if nrm == 0.0:
            break
        w /= nrm
        done = float(np.abs(w - v).max()) < tol
        v = w
        if done:
            break
    return v, max(0.0, float(v @ g @ v))


def pose_sigma(n: int) -> float:
    """Smoothing (frames) of the pose score of an n-frame loop (0: none, for 2–3 frames)."""
    if n <= 3:
        return 0.0
    lo, hi = POSE_SIGMA_RANGE
    return float(np.clip(n / POSE_SMOOTH_DIVISOR, lo, hi))


def _first_run(score: np.ndarray, target: float, tol: float) -> tuple[int, int]:
    """(first, last) frame of the first run of frames within ``tol`` of ``target``."""
    near = np.abs(score - target) <= tol
    a = int(np.argmax(near))
    b = a
    while b + 1 < near.size and near[b + 1]:
        b += 1
    return a, b


def extreme(score: np.ndarray, raw: np.ndarray, high: bool, sigma: float) -> tuple[int, tuple[int, int]]:
    """Frame of the score's maximum (``high``) or minimum and the stretch it is the middle of.

    The stretch is the first run of frames within :data:`EXTREME_SHARE` of the range from the
    extreme (a held pose: its middle, the more extreme of two middles); a stretch narrower than the smoothing is a brief peak,
    placed on the unsmoothed score ``raw`` (smoothing shifts an asymmetric peak).
    """
    span = max(1e-9, float(score.max() - score.min()))
    target = float(score.max() if high else score.min())
    a, b = _first_run(score, target, EXTREME_SHARE * span)
    if sigma > 0 and b - a + 1 < 2 * sigma:
        lo, hi = max(0, a - 1), min(score.size - 1, b + 1)
        seg = raw[lo : hi + 1]
        k = lo + int(np.argmax(seg) if high else np.argmin(seg))
        return k, (min(a, k), max(b, k))
    mids = sorted({(a + b) // 2, (a + b + 1) // 2}, key=lambda i: -score[i] if high else score[i])
    return mids[0], (a, b)


def reached(score: np.ndarray, high: bool) -> int:
    """First frame within :data:`REACH_SHARE` of the range from the maximum (``high``) or minimum."""
    span = max(1e-9, float(score.max() - score.min()))
    return _first_run(score, float(score.max() if high else score.min()), REACH_SHARE * span)[0]


def pose_path(score, r: int, c: int) -> tuple[int, ...]:
    """Frames to accumulate the displacement from ``r`` to ``c`` through: every frame between
    them in time, or — when they are neighbours (a 3-pose file in any order) — the frames whose
    pose lies between theirs, in pose order (small steps: a large deformation in one flow fails)."""
    step = 1 if c >= r else -1
    if abs(c - r) > 1:
        return tuple(range(r, c + step, step))
    s = np.asarray(score, float)
    lo, hi = sorted((s[r], s[c]))
    mid = [i for i in range(s.size) if i not in (r, c) and lo < s[i] < hi]
    mid.sort(key=lambda i: abs(s[i] - s[r]))
    return (r, *mid, c)


def _deformation(fields: np.ndarray, ref: int, scale: float) -> np.ndarray:
    """Mean displacement magnitude of every frame relative to frame ``ref`` (full-resolution px)."""
    d = fields - fields[ref]
    return np.sqrt((d**2).sum(-1)).mean(axis=(1, 2)) / scale


def choose_frames(score: np.ndarray, raw: np.ndarray, sigma: float, rest_frame: int | None = None,
                  contraction_frame: int | None = None) -> tuple[int, int, tuple[int, int]]:
    """(rest, contraction, rest stretch) from the pose score (see the module docstring).

    Without user frames, rest and peak are the two extremes, rest the one reached first; a frame
    chosen by the user is kept and the other one is the extreme further from it.
    """
    lo_f, lo_run = extreme(score, raw, False, sigma)
    hi_f, hi_run = extreme(score, raw, True, sigma)
    if rest_frame is not None and contraction_frame is not None:
        return int(rest_frame), int(contraction_frame), (int(rest_frame),) * 2
    if rest_frame is not None or contraction_frame is not None:
        given = int(rest_frame if rest_frame is not None else contraction_frame)
        far_high = score.max() - score[given] >= score[given] - score.min()
        other, run = (hi_f, hi_run) if far_high else (lo_f, lo_run)
        if rest_frame is not None:
            return given, int(other), (given, given)
        return int(other), given, run
    if reached(score, False) <= reached(score, True):
        return lo_f, hi_f, lo_run
    return hi_f, lo_f, hi_run


def analyse_motion(
    small: np.ndarray,
    scale: float = 1.0,
    *,
    rest_frame: int | None = None,
    contraction_frame: int | None = None,
) -> Motion:
    """Motion energy, pose score, deformation and suggested frames from small grey frames.

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
    for f in (rest_frame, contraction_frame):
        if f is not None and not 0 <= int(f) < n:
            raise AnalysisError(f"frame {f} is outside the loop (0..{n - 1})")
    fl = flows(small)
    mag = np.array([cv2.magnitude(*cv2.split(f)).mean() for f in fl], np.float32) / scale
    energy = _smooth(np.concatenate([[mag[0]], mag]), SMOOTH_FRAMES)
    fields = pose_fields(small, fl, order=pose_order(small))
    raw, _ = pose_score(fields)
    sigma = pose_sigma(n)
    score = gaussian_filter1d(raw, sigma, mode="nearest") if sigma > 0 else raw
    r, c, still = choose_frames(score, raw, sigma, rest_frame, contraction_frame)
    if r == c:
        c = int(np.argmax(np.abs(score - score[r])))
    return Motion(
        energy_px=tuple(float(v) for v in energy),
        deformation_px=tuple(float(v) for v in _deformation(fields, r, scale)),
        rest_frame=int(r),
        contraction_frame=int(c),
        still_window=(int(still[0]), int(still[1])),
        scale=float(scale),
        pose_score=tuple(float(v) for v in score),
        deformation_peak_px=tuple(float(v) for v in _deformation(fields, c, scale)),
    )


def motion(cine, roi=None, *, rest_frame=None, contraction_frame=None) -> Motion:
    """Motion analysis of a :class:`~msus.cine.Cine` (convenience wrapper)."""
    small, scale = small_frames((cine.frame(i) for i in range(cine.n_frames)), roi)
    return analyse_motion(small, scale, rest_frame=rest_frame, contraction_frame=contraction_frame)
