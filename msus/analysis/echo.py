"""Echo evidence over the loop: the dark defect on the rest and contraction frames, and whether
the two detections are the same defect (consistency rules of docs/analysis.md).

A defect counts only when it is seen on both frames at corresponding places (the stumps tracked
from one frame land near the stumps found on the other), or on one frame with high confidence —
a single dark patch on one frame is not a tear.  A faint defect (below ``min_confidence``,
clearly low in echo power) counts when confirmed on both frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msus.analysis.detect import Defect
from msus.analysis.thresholds import Thresholds
from msus.analysis.track import track_points

#: Depth positions (index into Defect.stump_rows_px) tracked per stump.
TRACK_ROWS = (0, 2, 4)


@dataclass(frozen=True)
class EchoEvidence:
    """Whether the echo defect counts, and the stump points to anchor the track on.

    ``anchor`` frame and its K×2 ``points`` (ROI-crop px, left ends then right ends);
    ``keyframes`` {frame: K×2} from the other detection; ``corrected`` frames whose detected
    stumps were partly replaced by the track; ``usable_rest`` / ``usable_contraction`` whether
    each frame's detection may be measured.
    """

    found: bool
    anchor: int | None = None
    points: np.ndarray | None = None
    offsets: np.ndarray | None = None
    keyframes: tuple = ()
    corrected: frozenset = frozenset()
    usable_rest: bool = False
    usable_contraction: bool = False
    seen_once: bool = False


def faint_ok(d: Defect, th: Thresholds) -> bool:
    """A defect rejected only for low confidence, yet clearly darker in echo power: usable when
    confirmed on the other frame (``pair_min_confidence`` / ``pair_max_power_ratio``)."""
    t = th.defect
    return (
        not d.found
        and d.power_ratio is not None
        and d.power_ratio <= t.pair_max_power_ratio
        and d.confidence >= t.pair_min_confidence
        and len(d.stump_rows_px) >= 5
        and all("echo power" not in n for n in d.notes)
    )


def usable(d: Defect, th: Thresholds) -> bool:
    return d.found or faint_ok(d, th)


def stump_points(d: Defect) -> np.ndarray:
    """K×2 points: left stump ends at the tracked depths, then the right ones (full-frame px)."""
    rows = [d.stump_rows_px[i] for i in TRACK_ROWS]
    return np.asarray([p for p, _ in rows] + [q for _, q in rows], float)


def patch_offsets(left, right, k: int, radius: float = 6.0) -> np.ndarray:
    """Shift each stump's texture patch away from the defect, onto the stump's tissue."""
    u = np.asarray(right, float) - np.asarray(left, float)
    u /= max(1e-6, float(np.linalg.norm(u)))
    off = (radius + 3.0) * u
    return np.concatenate([np.repeat(-off[None], k, 0), np.repeat(off[None], k, 0)])


def _correspond(pred: np.ndarray, got: np.ndarray, tol: float):
    """The other frame's stumps, with an end that disagrees with the track replaced by it
    (a floating echo splitting the gap); None when neither end agrees."""
    k = len(got) // 2
    ok_l = np.linalg.norm(pred[:k].mean(0) - got[:k].mean(0)) <= tol
    ok_r = np.linalg.norm(pred[k:].mean(0) - got[k:].mean(0)) <= tol
    if not (ok_l or ok_r):
        return None, False
    out = got.copy()
    if not ok_l:
        out[:k] = pred[:k]
    if not ok_r:
        out[k:] = pred[k:]
    return out, not (ok_l and ok_r)


def echo_evidence(seq, origin: np.ndarray, d_rest: Defect, d_con: Defect, th: Thresholds,
                  run_cache: dict) -> EchoEvidence:
    """Apply the consistency rules to the two detections (``seq``: ROI crops, ``origin`` their
    offset (x0, y0))."""
    ur, uc = usable(d_rest, th), usable(d_con, th)
    anchor_det = d_rest if d_rest.found else (d_con if d_con.found else None)
    if anchor_det is None and ur and uc:
        anchor_det = d_rest
    base = dict(usable_rest=ur, usable_contraction=uc, seen_once=d_rest.found or d_con.found)
    if anchor_det is None or len(anchor_det.stump_rows_px) < 5:
        return EchoEvidence(False, **base)
    anchor = anchor_det.frame_index
    other = d_con if anchor_det is d_rest else d_rest
    pts = stump_points(anchor_det)
    offs = patch_offsets(anchor_det.stump_left_px, anchor_det.stump_right_px, len(pts) // 2)
    probe = track_points(seq, pts - origin, anchor_frame=anchor, patch_offsets_px=offs, run_cache=run_cache,
                         span=(min(anchor, other.frame_index), max(anchor, other.frame_index)),
                         max_fb_error_px=th.tracking.max_fb_error_px,
                         min_reliable_share=th.tracking.min_reliable_share)
    keys, corrected = {}, set()
    if usable(other, th) and len(other.stump_rows_px) >= 5:
        tol = max(15.0, 0.5 * max(anchor_det.gap_px or 0, other.gap_px or 0))
        got, fixed = _correspond(probe.points_px[other.frame_index] + origin, stump_points(other), tol)
        if got is not None:
            keys[other.frame_index] = got - origin
            if fixed:
                corrected.add(other.frame_index)
    single_ok = (
        anchor_det.found
        and anchor_det.confidence >= th.defect.single_frame_confidence
        and anchor_det.power_ratio is not None
        and anchor_det.power_ratio <= th.defect.single_frame_max_power_ratio
    )
    found = bool(keys) or single_ok
    return EchoEvidence(found, anchor, pts - origin, offs, tuple(keys.items()), frozenset(corrected), **base)
