"""``analyze(cine) -> AnalysisResult``: the whole-loop analysis, one small step after another.

1. inputs and the region of interest; grey crops of every frame (views, :mod:`.roi`);
2. motion energy → suggested rest and peak-contraction frames (:mod:`.motion`);
3. echo evidence on both frames and its consistency (:mod:`.detect`, :mod:`.echo`);
4. motion evidence: the displacement along the straightened muscle, rest → contraction
   (:mod:`.motion_defect`); when it shows the stumps coming *together*, the two suggested frames
   were swapped and are exchanged;
5. fusion: which evidence found the defect, the stump ends to anchor on (:mod:`.fuse`);
6. the stump ends followed through the loop (:mod:`.track`); gap on every frame;
7. muscle thickness on every frame (:mod:`.thickness`);
8. the flag and its reasons, and the echo-only flag as a baseline (:mod:`.classify`).
"""

from __future__ import annotations

import functools
import time
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from msus.analysis import fuse as F
from msus.analysis.detect import Defect, defect_in_crop
from msus.analysis.echo import echo_evidence, patch_offsets
from msus.analysis.motion import analyse_motion, pose_path, small_frames, swapped
from msus.analysis.result import AnalysisResult
from msus.analysis.roi import checked_inputs, grey_crops, mm_per_px_at_centre
from msus.analysis.thickness import follow_thickness
from msus.analysis.thresholds import as_thresholds
from msus.analysis.track import Track, track_points

Progress = Callable[[float, str], None]

__all__ = ["AnalysisResult", "analyze", "keyframes_from_calipers"]


def _patch_offsets(d: Defect, k: int, radius: float = 6.0) -> np.ndarray:
    """Patch offsets of a detection's stumps (kept for callers of the old module)."""
    return patch_offsets(d.stump_left_px, d.stump_right_px, k, radius)


def _one_blas_thread(fn):
    """Run ``fn`` with the BLAS pools (numpy / SciPy, through threadpoolctl) at one thread: the
    analysis multiplies only small matrices (the step fits' pair scans, the pose Gram matrix),
    where a threaded BLAS waits on its second thread far longer than it computes (the motion
    evidence took 4.8 s instead of 0.8 s on a busy 2-core machine).  OpenCV keeps its threads."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return run


@_one_blas_thread
def analyze(
    cine,
    *,
    roi=None,
    rest_frame: int | None = None,
    contraction_frame: int | None = None,
    mm_per_px: float | None = None,
    keyframes: dict[int, list] | None = None,
    thresholds=None,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Analyse a whole loop for a muscle tear.

    Parameters
    ----------
    cine
        A :class:`msus.cine.Cine` (any source).
    roi
        (x0, y0, x1, y1) inclusive px (x = column), or None for the tissue region.
    rest_frame, contraction_frame
        0-based frames chosen by the user; None to use the suggestions.
    mm_per_px
        Manual calibration, used only when the source carries none.
    keyframes
        {frame: [[x, y], ...]} user-placed stump points (same order as ``stumps_at``) that
        re-anchor the track.
    thresholds
        :class:`~msus.analysis.thresholds.Thresholds` (default: the configured file).
    progress
        ``progress(fraction, message)`` callback.

    Raises
    ------
    AnalysisError
        One-frame loop, blank loop, ROI outside the image, frame out of range.
    """
    step = _Clock(progress)
    timings = step.timings
    t0 = step.last
    th = as_thresholds(thresholds)
    inp = checked_inputs(cine, roi, rest_frame, contraction_frame, mm_per_px, keyframes)
    step("", 0.0, "reading frames")
    crops, roi = grey_crops(cine, inp.roi, inp.calibration, lambda f, m: step("", 0.3 * f, m))
    step("read", 0.32, "motion")
    cal = inp.calibration
    mot, r, c, d, mev = _key_frames(crops, roi, inp, th, step)
    step("motion_evidence", 0.65, "tracking")
    origin = np.array(roi[:2], float)
    runs: dict = {}
    echo = echo_evidence(crops, origin, d[r], d[c], th, runs)
    fused = F.fuse(echo, mev, d[r], d[c], r, c, th, cal, roi, mot)
    track, what = _track(crops, origin, fused, inp, r, th, runs, d[r], roi)
    step("track", 0.85, "thickness")
    thick = follow_thickness(crops, d[r].superficial_fascia, d[r].deep_fascia, roi, cal, r)
    step("thickness", 0.92, "measuring")
    gaps = F.gap_curves(track, what, fused, cal, inp.n)
    g = F.paired_gaps(fused, gaps, echo, d[r], d[c], r, c, set(inp.keyframes), mev.defect)
    finding, echo_only = F.findings(fused, echo, g, d[r], d[c], mev, th)
    fb_px = track.median_fb_error_px
    mmpp = mm_per_px_at_centre(cal, roi)
    timings["total"] = time.perf_counter() - t0
    step("", 1.0, "done")
    return AnalysisResult(
        n_frames=inp.n, frame_times_ms=tuple(float(t) for t in cine.frame_times_ms), roi=tuple(int(v) for v in roi),
        rest_frame=int(r), contraction_frame=int(c),
        rest_frame_source="user" if inp.rest_frame is not None else "suggested",
        contraction_frame_source="user" if inp.contraction_frame is not None else "suggested",
        motion=mot, defect_rest=d[r], defect_contraction=d[c], defect_found=fused.found,
        gap_rest_mm=g.rest_mm, gap_contraction_mm=g.contraction_mm, retraction_mm=g.retraction_mm,
        gap_rest_px=g.rest_px, gap_contraction_px=g.contraction_px, retraction_px=g.retraction_px,
        gap_curve_mm=gaps[1], gap_curve_px=gaps[0], track=track, tracked_what=what,
        fb_error_px=fb_px, fb_error_mm=None if mmpp is None else fb_px * mmpp, finding=finding,
        calibration_source=cal.source if cal.calibrated else "none", calibration_badge=cal.badge(),
        defect_thickness_fraction=float(fused.thickness_fraction if fused.found else 0.0),
        motion_defect=mev.defect, thickness=thick, echo_finding=echo_only, evidence=fused.source,
        displacement_px=mev.displacement, grid=mev.grid, timings_s=timings,
    )


class _Clock:
    """Step timings (s) and the progress callback: ``clock(name, fraction, message)``."""

    def __init__(self, progress: Progress | None):
        self.progress, self.timings, self.last = progress, {}, time.perf_counter()

    def __call__(self, name: str, f: float, msg: str) -> None:
        now = time.perf_counter()
        if name:
            self.timings[name] = now - self.last
        self.last = now
        if self.progress is not None:
            self.progress(float(min(1.0, max(0.0, f))), msg)


def _key_frames(crops, roi, inp, th, step: _Clock):
    """Rest and peak from the motion (:mod:`.motion`), the echo detections on both, and the
    motion evidence between them, which exchanges the two when the muscle says they are the
    wrong way round.  Returns (motion, rest, contraction, {frame: Defect}, motion evidence)."""
    small, scale = small_frames(crops)
    mot = analyse_motion(small, scale, rest_frame=inp.rest_frame, contraction_frame=inp.contraction_frame)
    r, c = mot.rest_frame, mot.contraction_frame
    if r == c:
        c = (r + inp.n // 2) % inp.n
    step("motion", 0.45, "echo evidence")
    cal = inp.calibration
    d = {i: defect_in_crop(crops[i], roi, cal, frame_index=i, thresholds=th) for i in (r, c)}
    step("detect", 0.55, "motion evidence")
    user_frames = inp.rest_frame is not None or inp.contraction_frame is not None
    mev = F.motion_evidence(crops, roi, r, c, d[r], cal, th, allow_swap=not user_frames,
                            path=pose_path(mot.pose_score, r, c), d_con=d[c])
    if mev.swapped:
        r, c = c, r
        mot = swapped(mot)
    return mot, r, c, d, mev


def _track(crops, origin, fused, inp, r, th, runs, d_rest, roi) -> tuple[Track, str]:
    """Stump ends through the loop (anchored on the fused evidence and the user's keyframes), or
    a few muscle points without a defect (their forward–backward error is still reported)."""
    kw = dict(max_fb_error_px=th.tracking.max_fb_error_px, min_reliable_share=th.tracking.min_reliable_share)
    if fused.found and fused.points is not None:
        keys = {f: p for f, p in fused.keyframes}
        for f, p in inp.keyframes.items():
            keys[f] = np.asarray(p, float).reshape(-1, 2) - origin
        tr = track_points(crops, fused.points, keys, anchor_frame=fused.anchor, patch_offsets_px=fused.offsets,
                          run_cache=runs if fused.source != "motion" else None, **kw)
        what = "stumps"
    else:
        tr = track_points(crops, _muscle_points(d_rest, roi) - origin, anchor_frame=r, **kw)
        what = "muscle"
    return Track(tr.points_px + origin, tr.reliable, tr.fb_error_px, tr.keyframes), what


def keyframes_from_calipers(result: AnalysisResult, calipers: dict[int, tuple]) -> dict[int, list]:
    """User keyframes from edited gap calipers.

    Parameters
    ----------
    result
        An analysis with a stump track.
    calipers
        {frame: ((x_left, y_left), (x_right, y_right))}: where the reviewer put the two stump
        ends on that frame (either order).

    Returns
    -------
    {frame: [[x, y], ...]} for :func:`analyze`'s ``keyframes``: every tracked depth of a stump is
    moved by the same shift as the caliper end nearest to it.
    """
    out = {}
    for f, (a, b) in calipers.items():
        pts = np.asarray(result.stumps_at(int(f)), float)
        if pts.size == 0:
            continue
        k = len(pts) // 2
        left, right = pts[:k], pts[k:]
        a, b = np.asarray(a, float), np.asarray(b, float)
        cl, cr = left.mean(0), right.mean(0)
        if np.linalg.norm(a - cl) + np.linalg.norm(b - cr) > np.linalg.norm(a - cr) + np.linalg.norm(b - cl):
            a, b = b, a
        mid_l, mid_r = left[k // 2], right[k // 2]
        new = np.concatenate([left + (a - mid_l), right + (b - mid_r)])
        out[int(f)] = new.tolist()
    return out


def _muscle_points(d: Defect, roi) -> np.ndarray:
    """A few points in the middle of the muscle (or of the ROI) to measure tracking quality."""
    x0, y0, x1, y1 = roi
    xs = np.linspace(x0 + 0.3 * (x1 - x0), x0 + 0.7 * (x1 - x0), 3)
    pts = []
    for x in xs:
        if d.superficial_fascia is not None and d.deep_fascia is not None:
            ys = float(d.superficial_fascia.y_at(x))
            yd = float(d.deep_fascia.y_at(x))
            for q in (0.35, 0.65):
                pts.append((x, ys + q * (yd - ys)))
        else:
            for q in (0.4, 0.6):
                pts.append((x, y0 + q * (y1 - y0)))
    return np.asarray(pts, float)
