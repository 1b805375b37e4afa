"""Following points (the stump ends) through a loop.

Each point to follow is represented by a small patch of texture points around it (a grid of
``patch_points`` points within ``patch_radius_px``, optionally shifted away from the defect onto
the stump's tissue, where there is texture to track).  Every frame step tracks the patch points
with pyramidal Lucas–Kanade (``cv2.calcOpticalFlowPyrLK``) forward and then backward; a patch
point whose backward track misses its start by more than ``max_fb_error_px`` is unreliable on
that step.  The followed point moves by the median displacement of its reliable patch points;
a frame where fewer than ``min_reliable_share`` of a point's patch is reliable is marked
unreliable (and the point coasts on the reliable rest, or stays put).

Keyframes (frames where the positions are known: the anchor, user corrections, detections)
re-anchor the track: between two keyframes the forward track from the earlier one and the
backward track from the later one are blended linearly in time, so the track passes exactly
through every keyframe and drift cannot accumulate across them.

Tracking runs on a crop of the frames around the points (plus a margin for motion), which keeps
it fast on large frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from msus.cine import to_grey
from msus.errors import AnalysisError

LK_WIN = (13, 13)
LK_LEVELS = 2
LK_PARAMS = dict(
    winSize=LK_WIN,
    maxLevel=LK_LEVELS,
    criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.02),
)


@dataclass(frozen=True)
class Track:
    """Positions of K points over N frames.

    Attributes
    ----------
    points_px
        N×K×2 float array (x, y) in full-frame px (read-only).
    reliable
        N×K bool: the forward–backward check passed on the step into this frame (keyframes True).
    fb_error_px
        N×K float: median forward–backward error of the point's patch on the step into this
        frame, px (0 on keyframes).
    keyframes
        Frame indices the track was anchored on.
    """

    points_px: np.ndarray
    reliable: np.ndarray
    fb_error_px: np.ndarray
    keyframes: tuple[int, ...]

    @property
    def n_frames(self) -> int:
        return self.points_px.shape[0]

    @property
    def median_fb_error_px(self) -> float:
        """Median forward–backward error over all tracked (non-key) frames and points, px."""
        mask = np.isfinite(self.points_px[..., 0])
        mask[list(self.keyframes)] = False
        v = self.fb_error_px[mask]
        return float(np.median(v)) if v.size else 0.0

    @property
    def unreliable_frames(self) -> tuple[int, ...]:
        return tuple(int(i) for i in np.flatnonzero(~self.reliable.all(axis=1)))


def _patch_points(cur: np.ndarray, origin: np.ndarray, radius: float, n_side: int, offsets: np.ndarray) -> np.ndarray:
    """The patch of texture points of every followed point (K·n_side² × 1 × 2 float32, crop px)."""
    g = np.linspace(-radius, radius, n_side)
    xx, yy = np.meshgrid(g, g)
    grid = np.stack([xx.ravel(), yy.ravel()], 1)
    p = grid[None] + (cur - origin)[:, None] + offsets[:, None]
    return p.astype(np.float32).reshape(-1, 1, 2)


def _masked_median(v: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per row of ``v`` (K×M×2), the median of the entries where ``ok`` (K×M) holds, as
    ``np.median`` gives it (the mean of the two middle values); NaN for a row with none."""
    s = np.sort(np.where(ok[..., None], v, np.nan), axis=1)  # NaN last
    n = ok.sum(axis=1)
    lo = np.maximum((n - 1) // 2, 0)[:, None, None]
    hi = np.maximum(n // 2, 0)[:, None, None]
    a = np.take_along_axis(s, lo, axis=1)[:, 0]
    b = np.take_along_axis(s, hi, axis=1)[:, 0]
    return (a + b) / 2


@dataclass(frozen=True)
class _Patches:
    """How each followed point is represented: its patch of texture points and the checks."""

    radius: float
    side: int
    offsets: np.ndarray  # K×2
    max_fb_error_px: float
    min_reliable_share: float


class _Frames:
    """Grey crops (a box around the points) of the frames, cached a few at a time."""

    def __init__(self, frames, box):
        self.frames, self.box, self.cache = frames, box, {}
        self.origin = np.array([box[0], box[2]], float)

    def __call__(self, i: int) -> np.ndarray:
        c = self.cache.get(i)
        if c is None:
            x0, x1, y0, y1 = self.box
            c = np.ascontiguousarray(to_grey(self.frames[i])[y0:y1, x0:x1])
            self.cache[i] = c
        return c


def _step(a, b, cur: np.ndarray, origin: np.ndarray, pp: _Patches):
    """One LK step a → b of every point's patch: (new positions, reliable, median FB error)."""
    k = cur.shape[0]
    patches = _patch_points(cur, origin, pp.radius, pp.side, pp.offsets)
    nxt, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, patches, None, **LK_PARAMS)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, nxt, None, **LK_PARAMS)
    err = np.linalg.norm((back - patches).reshape(-1, 2), axis=1)
    good = ((st1.ravel() == 1) & (st2.ravel() == 1) & (err <= pp.max_fb_error_px)).reshape(k, -1)
    disp = (nxt - patches).reshape(k, -1, 2)
    err = err.reshape(k, -1)
    has = good.any(axis=1)
    new = cur.copy()
    new[has] = cur[has] + _masked_median(disp, good)[has]
    others = disp[good]
    if others.size and not has.all():
        # coast: move with the other points' reliable motion, else stay
        new[~has] = cur[~has] + np.median(others, axis=0)
    return new, good.mean(axis=1) >= pp.min_reliable_share, np.median(err, axis=1)


def _run(crop: _Frames, start: int, stop: int, p_start: np.ndarray, pp: _Patches):
    """Track from start towards stop (exclusive of start): (frames, positions, ok, fb)."""
    step = 1 if stop > start else -1
    idx = list(range(start + step, stop + step, step))
    k = p_start.shape[0]
    pos, ok, fb = np.zeros((len(idx), k, 2)), np.zeros((len(idx), k), bool), np.zeros((len(idx), k))
    cur = p_start.copy()
    for j, i in enumerate(idx):
        cur, ok[j], fb[j] = _step(crop(i - step), crop(i), cur, crop.origin, pp)
        pos[j] = cur
        crop.cache.pop(i - 2 * step, None)  # keep the crop cache small
    return idx, pos, ok, fb


def _cached_run(crop: _Frames, start: int, stop: int, p_start: np.ndarray, pp: _Patches, run_cache):
    """:func:`_run`, reused from ``run_cache`` for the same start, stop, positions and settings."""
    key = (start, stop, np.round(p_start, 6).tobytes(), pp.radius, pp.side, pp.offsets.tobytes(),
           pp.max_fb_error_px, pp.min_reliable_share)
    if run_cache is not None and key in run_cache:
        idx, pos, ok, fb = run_cache[key]
        return idx, pos.copy(), ok.copy(), fb.copy()
    crop.cache.clear()
    out = _run(crop, start, stop, p_start, pp)
    if run_cache is not None:
        run_cache[key] = out
    return out


def _checked_keys(n: int, pts0: np.ndarray, anchor_frame: int, keyframes) -> dict[int, np.ndarray]:
    """{frame: K×2 positions} of the anchor and the keyframes, checked."""
    if pts0.shape[0] == 0:
        raise AnalysisError("no points to track")
    if not 0 <= anchor_frame < n:
        raise AnalysisError(f"anchor frame {anchor_frame} is outside the loop (0..{n - 1})")
    keys = {int(anchor_frame): pts0}
    for f, p in (keyframes or {}).items():
        f = int(f)
        if not 0 <= f < n:
            raise AnalysisError(f"keyframe {f} is outside the loop (0..{n - 1})")
        p = np.asarray(p, float).reshape(-1, 2)
        if p.shape != pts0.shape:
            raise AnalysisError("a keyframe must give the same number of points as the anchor")
        keys[f] = p
    return keys


def _box(shape, keys: dict, ext: float) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) crop around every key position plus ``ext`` px."""
    hh, ww = shape[:2]
    allp = np.concatenate(list(keys.values()))
    return (int(max(0, np.floor(allp[:, 0].min() - ext))), int(min(ww, np.ceil(allp[:, 0].max() + ext) + 1)),
            int(max(0, np.floor(allp[:, 1].min() - ext))), int(min(hh, np.ceil(allp[:, 1].max() + ext) + 1)))


def track_points(
    frames,
    points,
    keyframes: dict[int, "np.ndarray"] | None = None,
    *,
    anchor_frame: int = 0,
    patch_radius_px: float = 6.0,
    patch_side: int = 3,
    patch_offsets_px=None,
    max_fb_error_px: float = 1.5,
    min_reliable_share: float = 0.5,
    margin_px: int = 48,
    span: tuple[int, int] | None = None,
    run_cache: dict | None = None,
) -> Track:
    """Follow points through a loop.

    Parameters
    ----------
    frames
        Sequence of N frames (H×W or H×W×3 uint8) supporting ``len`` and indexing, or an
        N×H×W array.
    points
        K×2 (x, y) full-frame px on ``anchor_frame``.
    keyframes
        Optional {frame_index: K×2 positions} that re-anchor the track (user corrections).
    patch_radius_px, patch_side
        Half-size of the square patch of texture points and points per side.
    patch_offsets_px
        K×2 shift of each point's patch centre (e.g. onto the stump tissue), px.
    max_fb_error_px
        Forward–backward error above which a patch point is unreliable on a step, px.
    min_reliable_share
        Share of reliable patch points needed for the point to count as tracked on a frame.
    margin_px
        Margin around the points' bounding box that tracking looks within, px.
    span
        (first, last) frames to track; frames outside are NaN (default: the whole loop).
    run_cache
        A dict shared between calls on the same frames with the same patch settings: a run
        from one frame towards another starting at the same positions is reused, not redone
        (the analysis checks a detection with a short track, then tracks the whole loop).
    """
    n = len(frames)
    lo_f, hi_f = (0, n - 1) if span is None else (max(0, int(span[0])), min(n - 1, int(span[1])))
    pts0 = np.asarray(points, float).reshape(-1, 2)
    keys = _checked_keys(n, pts0, anchor_frame, keyframes)
    k = pts0.shape[0]
    offsets = np.zeros((k, 2)) if patch_offsets_px is None else np.asarray(patch_offsets_px, float).reshape(k, 2)
    pp = _Patches(patch_radius_px, patch_side, offsets, max_fb_error_px, min_reliable_share)
    ext = patch_radius_px + np.abs(offsets).max() + margin_px
    crop = _Frames(frames, _box(np.asarray(frames[0]).shape, keys, ext))
    return _assemble(crop, keys, n, (lo_f, hi_f), pp, run_cache)


def _assemble(crop: _Frames, keys: dict, n: int, span: tuple[int, int], pp: _Patches, run_cache) -> Track:
    """The track over ``span``: keyframes exact, runs outward from the first and the last, and
    between two keyframes the forward and the backward run blended linearly in time."""
    lo_f, hi_f = span
    k = next(iter(keys.values())).shape[0]
    positions, reliable, fberr = np.full((n, k, 2), np.nan), np.ones((n, k), bool), np.zeros((n, k))
    ks = sorted(keys)
    for f in ks:
        positions[f] = keys[f]
    # before the first keyframe: backward only; after the last: forward only
    outward = [(ks[0], lo_f)] if ks[0] > lo_f else []
    outward += [(ks[-1], hi_f)] if ks[-1] < hi_f else []
    for start, stop in outward:
        idx, pos, ok, fb = _cached_run(crop, start, stop, keys[start], pp, run_cache)
        positions[idx], reliable[idx], fberr[idx] = pos, ok, fb
    for a, b in zip(ks[:-1], ks[1:]):
        if b - a < 2:
            continue
        _, pos_f, ok_f, fb_f = _cached_run(crop, a, b, keys[a], pp, run_cache)
        _, pos_b, ok_b, fb_b = _cached_run(crop, b, a, keys[b], pp, run_cache)
        inner = list(range(a + 1, b))
        m = len(inner)
        # the backward run visits b-1, b-2, ..., a: reversed to align with inner
        w = ((np.array(inner) - a) / (b - a))[:, None, None]
        positions[inner] = (1 - w) * pos_f[:m] + w * pos_b[:m][::-1]
        reliable[inner] = ok_f[:m] & ok_b[:m][::-1]
        fberr[inner] = np.maximum(fb_f[:m], fb_b[:m][::-1])
    for arr in (positions, reliable, fberr):
        arr.flags.writeable = False
    return Track(positions, reliable, fberr, tuple(ks))
