"""Whole-loop tear analysis: frames → motion → defect → stump track → gap curve → flag.

``analyze(cine, ...) -> AnalysisResult`` runs the chain of :mod:`msus.motion`,
:mod:`msus.detect`, :mod:`msus.track` and :mod:`msus.findings` on one loop:

1. the region of interest (given, else the calibrated ultrasound region, else the textured
   image area of the loop) is cut out of every frame once (grey);
2. motion energy gives the suggested rest and peak-contraction frames (or the user's);
3. the defect detector runs on both frames;
4. a defect counts only when it is seen on both frames at corresponding places (the stumps
   tracked from the rest frame land near the stumps found on the contraction frame), or on one
   frame with high confidence — a single dark patch on one frame is not a tear;
5. the stump ends (three depths per side) are tracked through the whole loop, anchored on the
   rest frame and re-anchored on the contraction frame and on user keyframes; the gap per frame
   is the mean distance between the tracked ends (null where the forward–backward check fails);
6. the findings classify the evidence and give reasons.

Without a defect, a few muscle points are still tracked so that the forward–backward error of
the loop is reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from msus.calibration import Calibration
from msus.detect import Defect, check_roi, defect, to_grey, tissue_roi
from msus.errors import AnalysisError
from msus.findings import DISCLAIMER, Finding, classify, load_thresholds
from msus.motion import Motion, analyse_motion, small_frames
from msus.track import Track, track_points

Progress = Callable[[float, str], None]

#: Depth positions (index into Defect.stump_rows_px) tracked per stump.
TRACK_ROWS = (0, 2, 4)


@dataclass(frozen=True)
class AnalysisResult:
    """Everything the analysis found on one loop.  Frame indices 0-based; points (x, y) px.

    Attributes
    ----------
    n_frames, frame_times_ms
        Loop length and frame start times (ms).
    roi
        (x0, y0, x1, y1) inclusive px analysed.
    rest_frame, contraction_frame
        Frames of the paired measurement; ``*_source`` is ``"suggested"`` or ``"user"``.
    motion
        Motion energy and deformation curves (:class:`msus.motion.Motion`).
    defect_rest, defect_contraction
        Detector results on the two frames.
    defect_found
        The evidence passed the consistency rules (see module docstring).
    gap_rest_mm, gap_contraction_mm, retraction_mm
        Gaps from the detector on the two frames and their difference; None when uncalibrated
        or without a defect.
    gap_rest_px, gap_contraction_px, retraction_px
        The same in px (None without a defect).
    gap_curve_mm, gap_curve_px
        Gap per frame from the stump track; None where uncalibrated / unreliable / no defect.
    track
        The stump track (or muscle probe points without a defect); None if nothing was tracked.
    tracked_what
        ``"stumps"``, ``"muscle"`` or ``"none"``.
    fb_error_px, fb_error_mm
        Median forward–backward tracking error over the loop.
    finding
        Classification, reasons and descriptors.
    calibration_source, calibration_badge
        Provenance of every mm value.
    timings_s
        Seconds spent per step.
    """

    n_frames: int
    frame_times_ms: tuple[float, ...]
    roi: tuple[int, int, int, int]
    rest_frame: int
    contraction_frame: int
    rest_frame_source: str
    contraction_frame_source: str
    motion: Motion
    defect_rest: Defect
    defect_contraction: Defect
    defect_found: bool
    gap_rest_mm: float | None
    gap_contraction_mm: float | None
    retraction_mm: float | None
    gap_rest_px: float | None
    gap_contraction_px: float | None
    retraction_px: float | None
    gap_curve_mm: tuple[float | None, ...]
    gap_curve_px: tuple[float | None, ...]
    track: Track | None
    tracked_what: str
    fb_error_px: float | None
    fb_error_mm: float | None
    finding: Finding
    calibration_source: str
    calibration_badge: str
    defect_thickness_fraction: float
    timings_s: dict = field(default_factory=dict)

    @property
    def classification(self) -> str:
        return self.finding.classification

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.finding.reasons

    def stumps_at(self, frame_index: int) -> list[list[float]]:
        """Tracked stump points on a frame ([] without a stump track)."""
        if self.track is None or self.tracked_what != "stumps":
            return []
        p = self.track.points_px[int(frame_index)]
        return [[float(x), float(y)] for x, y in p]

    def overlay(self, frame_index: int) -> dict:
        """Plain shapes to draw on one frame, full-frame px (x, y).

        Keys: ``stumps`` (points), ``calipers`` (pairs of points, one per tracked depth),
        ``outline`` (closed polyline of the defect, on the rest and contraction frames),
        ``fasciae`` (pairs of points), ``roi`` [x0, y0, x1, y1], ``gap_label`` (text or None).
        """
        i = int(frame_index)
        shapes = {"stumps": [], "calipers": [], "outline": [], "fasciae": [], "roi": list(self.roi), "gap_label": None}
        det = self.defect_rest if i == self.rest_frame else self.defect_contraction if i == self.contraction_frame else None
        ref = det or self.defect_rest
        for f in (ref.superficial_fascia, ref.deep_fascia):
            if f is not None:
                shapes["fasciae"].append([[f.x0, f.y0], [f.x1, f.y1]])
        if not self.defect_found:
            return shapes
        if det is not None and det.outline_px:
            shapes["outline"] = [list(p) for p in det.outline_px]
        pts = self.stumps_at(i)
        if pts:
            k = len(pts) // 2
            shapes["stumps"] = pts
            shapes["calipers"] = [[pts[j], pts[j + k]] for j in range(k)]
        gmm, gpx = self.gap_curve_mm[i], self.gap_curve_px[i]
        if gmm is not None:
            shapes["gap_label"] = f"{gmm:.1f} mm"
        elif gpx is not None:
            shapes["gap_label"] = f"{gpx:.0f} px (uncalibrated)"
        return shapes

    def to_dict(self) -> dict:
        """The JSON of ``msus analyze --json`` (keys are a public interface: add, never rename)."""
        return {
            "rest_frame": self.rest_frame,
            "contraction_frame": self.contraction_frame,
            "rest_frame_source": self.rest_frame_source,
            "contraction_frame_source": self.contraction_frame_source,
            "gap_rest_mm": self.gap_rest_mm,
            "gap_contraction_mm": self.gap_contraction_mm,
            "retraction_mm": self.retraction_mm,
            "gap_rest_px": self.gap_rest_px,
            "gap_contraction_px": self.gap_contraction_px,
            "retraction_px": self.retraction_px,
            "defect_thickness_fraction": self.defect_thickness_fraction,
            "classification": self.classification,
            "reasons": list(self.reasons),
            "disclaimer": DISCLAIMER,
            "peetrons": self.finding.peetrons,
            "bamic": self.finding.bamic,
            "calibration_source": self.calibration_source,
            "calibration": self.calibration_badge,
            "gap_curve_mm": list(self.gap_curve_mm),
            "gap_curve_px": list(self.gap_curve_px),
            "roi": list(self.roi),
            "n_frames": self.n_frames,
            "frame_times_ms": list(self.frame_times_ms),
            "motion_energy_px": list(self.motion.energy_px),
            "deformation_px": list(self.motion.deformation_px),
            "tracked": self.tracked_what,
            "fb_error_px": self.fb_error_px,
            "fb_error_mm": self.fb_error_mm,
            "unreliable_frames": list(self.track.unreliable_frames) if self.track is not None else [],
            "stumps_rest_px": self.stumps_at(self.rest_frame),
            "stumps_contraction_px": self.stumps_at(self.contraction_frame),
            "defect_rest": self.defect_rest.to_dict(),
            "defect_contraction": self.defect_contraction.to_dict(),
            "timings_s": dict(self.timings_s),
        }


class _Crops:
    """Grey ROI crops of the loop's frames, indexable like a sequence (full-frame coordinates
    are recovered by the offset)."""

    def __init__(self, crops, offset: tuple[int, int]):
        self.crops = crops  # list of 2-D views into the decoded frames (no copies)
        self.offset = offset

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i):
        return self.crops[i]


def _frame_index(v, n: int, what: str) -> int | None:
    if v is None:
        return None
    try:
        i = int(v)
    except (TypeError, ValueError):
        raise AnalysisError(f"the {what} frame must be a whole number") from None
    if not 0 <= i < n:
        raise AnalysisError(f"the {what} frame {i} is outside the loop (frames 0..{n - 1})")
    return i


def _gap_between(cal: Calibration, a, b) -> tuple[float, float | None]:
    d = cal.measure(a, b)
    return d.distance_px, d.distance_mm


def analyze(
    cine,
    *,
    roi=None,
    rest_frame: int | None = None,
    contraction_frame: int | None = None,
    mm_per_px: float | None = None,
    keyframes: dict[int, list] | None = None,
    thresholds: dict | None = None,
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
        Parsed thresholds (default :func:`msus.findings.load_thresholds`).
    progress
        ``progress(fraction, message)`` callback.

    Raises
    ------
    AnalysisError
        One-frame loop, blank loop, ROI outside the image, frame out of range.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def report(f: float, msg: str) -> None:
        if progress is not None:
            progress(float(min(1.0, max(0.0, f))), msg)

    th = thresholds or load_thresholds()
    n = int(cine.n_frames)
    if n < 2:
        raise AnalysisError("analysis needs a loop of at least two frames (this source has one)")
    rest_frame = _frame_index(rest_frame, n, "rest")
    contraction_frame = _frame_index(contraction_frame, n, "contraction")
    if rest_frame is not None and rest_frame == contraction_frame:
        raise AnalysisError("the rest and contraction frames must differ")
    if mm_per_px is not None:
        try:
            mm_per_px = float(mm_per_px)
        except (TypeError, ValueError):
            raise AnalysisError("mm per px must be a number") from None
        if not (math.isfinite(mm_per_px) and mm_per_px > 0):
            raise AnalysisError("mm per px must be a positive number")
    cal = cine.calibration.with_fallback_manual(mm_per_px)
    shape = (cine.rows, cine.columns)
    if roi is not None:
        roi = check_roi(roi, shape)

    # --- frames: grey, once
    report(0.0, "reading frames")
    greys = []
    for i in range(n):
        greys.append(to_grey(cine.frame(i)))
        if i % 25 == 0:
            report(0.3 * i / n, f"reading frame {i + 1} of {n}")
    timings["read"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    if roi is None:
        pick = np.unique(np.linspace(0, n - 1, min(n, 12)).round().astype(int))
        roi = tissue_roi(np.stack([greys[i] for i in pick]), cal)
    x0, y0, x1, y1 = roi
    crops = [g[y0 : y1 + 1, x0 : x1 + 1] for g in greys]  # views: no copy
    del greys
    sample = np.stack(crops[:: max(1, n // 16)])
    if float(sample.std(axis=(1, 2)).max()) < 2.0 or float(sample.max()) < 8:
        raise AnalysisError("the loop is blank in the region analysed (no echo texture on any frame)")
    timings["roi"] = time.perf_counter() - t1

    # --- motion
    report(0.32, "motion")
    t1 = time.perf_counter()
    small, scale = small_frames(crops)
    mot = analyse_motion(small, scale, rest_frame=rest_frame, contraction_frame=contraction_frame)
    r, c = mot.rest_frame, mot.contraction_frame
    if r == c:
        c = (r + n // 2) % n
    timings["motion"] = time.perf_counter() - t1

    # --- defect on both frames
    report(0.45, "looking for a defect")
    t1 = time.perf_counter()
    full_view = _FullView(crops, (x0, y0), shape)
    d_rest = defect(full_view.full(r), roi, cal, frame_index=r, thresholds=th)
    d_con = defect(full_view.full(c), roi, cal, frame_index=c, thresholds=th)
    timings["detect"] = time.perf_counter() - t1

    # --- tracking
    report(0.6, "tracking")
    t1 = time.perf_counter()
    tracked_what = "none"
    track = None
    seq = _Crops(crops, (x0, y0))
    origin = np.array([x0, y0], float)
    # a faint defect (below min_confidence, yet clearly low in echo power) counts only when it
    # is seen on both frames at corresponding places
    def usable(d: Defect) -> bool:
        return d.found or _faint_ok(d, th)

    anchor_det = d_rest if d_rest.found else (d_con if d_con.found else None)
    if anchor_det is None and usable(d_rest) and usable(d_con):
        anchor_det = d_rest
    defect_found = False
    corrected: set[int] = set()  # frames whose detected stumps were partly replaced by the track
    if anchor_det is not None and len(anchor_det.stump_rows_px) >= 5:
        anchor = anchor_det.frame_index
        pts = _stump_points(anchor_det)
        offs = _patch_offsets(anchor_det, len(pts) // 2)
        other = d_con if anchor == r else d_rest
        # first, track from the anchor alone to check the other detection corresponds
        runs: dict = {}
        probe = track_points(seq, pts - origin, anchor_frame=anchor, patch_offsets_px=offs, run_cache=runs,
                             span=(min(anchor, other.frame_index), max(anchor, other.frame_index)),
                             max_fb_error_px=th["tracking"]["max_fb_error_px"],
                             min_reliable_share=th["tracking"]["min_reliable_share"])
        consistent = False
        other_pts = None
        if usable(other) and len(other.stump_rows_px) >= 5:
            pred = probe.points_px[other.frame_index] + origin
            got = _stump_points(other)
            k = len(got) // 2
            # stumps of the other frame must lie near where the anchor's stumps moved to; when
            # only one end agrees, the defect is the same but one end was misplaced on the other
            # frame (a floating echo splitting the gap): that end follows the track instead
            err_l = np.linalg.norm(pred[:k].mean(0) - got[:k].mean(0))
            err_r = np.linalg.norm(pred[k:].mean(0) - got[k:].mean(0))
            tol = max(15.0, 0.5 * max(anchor_det.gap_px or 0, other.gap_px or 0))
            ok_l, ok_r = err_l <= tol, err_r <= tol
            consistent = ok_l or ok_r
            if consistent:
                other_pts = got.copy()
                if not ok_l:
                    other_pts[:k] = pred[:k]
                if not ok_r:
                    other_pts[k:] = pred[k:]
                if not (ok_l and ok_r):
                    corrected.add(other.frame_index)
        # seen on one frame only: only a very clear one (confident and clearly fluid-dark)
        single_ok = (
            anchor_det.found
            and anchor_det.confidence >= th["defect"]["single_frame_confidence"]
            and anchor_det.power_ratio is not None
            and anchor_det.power_ratio <= th["defect"]["single_frame_max_power_ratio"]
        )
        defect_found = consistent or single_ok
        if defect_found:
            keys = {}
            if consistent:
                keys[other.frame_index] = other_pts - origin
            for f, p in (keyframes or {}).items():
                f = _frame_index(f, n, "keyframe")
                keys[f] = np.asarray(p, float).reshape(-1, 2) - origin
                corrected.add(f)  # the reviewer's stumps replace the detector's there
            track = track_points(seq, pts - origin, keys, anchor_frame=anchor, patch_offsets_px=offs, run_cache=runs,
                                 max_fb_error_px=th["tracking"]["max_fb_error_px"],
                                 min_reliable_share=th["tracking"]["min_reliable_share"])
            tracked_what = "stumps"
    if track is None:
        # no defect: follow a few muscle points to report the forward-backward error
        pts = _muscle_points(d_rest, roi)
        track = track_points(seq, pts - origin, anchor_frame=r,
                             max_fb_error_px=th["tracking"]["max_fb_error_px"],
                             min_reliable_share=th["tracking"]["min_reliable_share"])
        tracked_what = "muscle"
    # back to full-frame coordinates
    track = Track(track.points_px + origin, track.reliable, track.fb_error_px, track.keyframes)
    timings["track"] = time.perf_counter() - t1

    # --- gaps
    report(0.9, "measuring")
    curve_px: list[float | None] = [None] * n
    curve_mm: list[float | None] = [None] * n
    if defect_found and tracked_what == "stumps":
        k = track.points_px.shape[1] // 2
        for i in range(n):
            if not track.reliable[i].all():
                continue
            pxs, mms = [], []
            for j in range(k):
                a, b = _gap_between(cal, track.points_px[i, j], track.points_px[i, j + k])
                pxs.append(a)
                mms.append(b)
            curve_px[i] = float(np.mean(pxs))
            curve_mm[i] = float(np.mean(mms)) if all(v is not None for v in mms) else None
    fb_px = track.median_fb_error_px if track is not None else None
    fb_mm = None
    if fb_px is not None:
        mm = cal.mm_per_px_at((x0 + x1) / 2, (y0 + y1) / 2)
        if mm is not None:
            fb_mm = fb_px * float(np.mean(mm))

    def gap_of(d: Defect, i: int):
        if not defect_found:
            return None, None
        if usable(d) and d.gap_px is not None and i not in corrected:
            return d.gap_px, d.gap_mm
        return curve_px[i], curve_mm[i]

    g_r_px, g_r_mm = gap_of(d_rest, r)
    g_c_px, g_c_mm = gap_of(d_con, c)
    retr_px = g_c_px - g_r_px if g_r_px is not None and g_c_px is not None else None
    retr_mm = g_c_mm - g_r_mm if g_r_mm is not None and g_c_mm is not None else None
    fracs = [d.thickness_fraction for d in (d_rest, d_con) if usable(d)]
    frac = max(fracs) if (defect_found and fracs) else 0.0
    contrasts = [d.contrast for d in (d_rest, d_con) if usable(d)]
    notes = []
    if not defect_found and (d_rest.found or d_con.found):
        notes.append("a dark region seen on one frame was not confirmed on the other")
    elif not defect_found:
        notes.extend(d_rest.notes[:1])
    # did the muscle move between the two frames (else the gap change says nothing)?
    moved_px = float(mot.deformation_px[c]) if 0 <= c < len(mot.deformation_px) else 0.0
    mm_c = cal.mm_per_px_at((x0 + x1) / 2, (y0 + y1) / 2)
    if mm_c is not None:
        contracted = moved_px * float(np.mean(mm_c)) >= th["classification"]["min_contraction_motion_mm"]
    else:
        contracted = moved_px >= th["classification"]["min_contraction_motion_px"]
    finding = classify(
        defect_found=defect_found,
        contracted=contracted,
        thickness_fraction=frac,
        gap_rest_mm=g_r_mm,
        gap_contraction_mm=g_c_mm,
        gap_rest_px=g_r_px,
        gap_contraction_px=g_c_px,
        contrast=float(np.mean(contrasts)) if (defect_found and contrasts) else None,
        notes=notes,
        thresholds=th,
    )
    timings["total"] = time.perf_counter() - t0
    report(1.0, "done")
    cal_source = cal.source if cal.calibrated else "none"
    return AnalysisResult(
        n_frames=n,
        frame_times_ms=tuple(float(t) for t in cine.frame_times_ms),
        roi=tuple(int(v) for v in roi),
        rest_frame=int(r),
        contraction_frame=int(c),
        rest_frame_source="user" if rest_frame is not None else "suggested",
        contraction_frame_source="user" if contraction_frame is not None else "suggested",
        motion=mot,
        defect_rest=d_rest,
        defect_contraction=d_con,
        defect_found=defect_found,
        gap_rest_mm=g_r_mm,
        gap_contraction_mm=g_c_mm,
        retraction_mm=retr_mm,
        gap_rest_px=g_r_px,
        gap_contraction_px=g_c_px,
        retraction_px=retr_px,
        gap_curve_mm=tuple(curve_mm),
        gap_curve_px=tuple(curve_px),
        track=track,
        tracked_what=tracked_what,
        fb_error_px=fb_px,
        fb_error_mm=fb_mm,
        finding=finding,
        calibration_source=cal_source,
        calibration_badge=cal.badge(),
        defect_thickness_fraction=float(frac),
        timings_s=timings,
    )


def _faint_ok(d: Defect, th: dict) -> bool:
    """A defect rejected only for low confidence, yet clearly darker in echo power (see
    ``defect.pair_min_confidence`` / ``pair_max_power_ratio``): usable when confirmed on the
    other frame."""
    t = th["defect"]
    return (
        not d.found
        and d.power_ratio is not None
        and d.power_ratio <= t.get("pair_max_power_ratio", 0.0)
        and d.confidence >= t.get("pair_min_confidence", 1.0)
        and len(d.stump_rows_px) >= 5
        and all("echo power" not in n for n in d.notes)
    )


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


class _FullView:
    """Full-size frames rebuilt from ROI crops (zeros outside), for the detector's coordinates."""

    def __init__(self, crops, offset: tuple[int, int], shape: tuple[int, int]):
        self.crops, self.offset, self.shape = crops, offset, shape

    def full(self, i: int) -> np.ndarray:
        out = np.zeros(self.shape, np.uint8)
        x0, y0 = self.offset
        c = self.crops[i]
        out[y0 : y0 + c.shape[0], x0 : x0 + c.shape[1]] = c
        return out


def _stump_points(d: Defect) -> np.ndarray:
    """K×2 points: left stump ends at the tracked depths, then the right ones."""
    rows = [d.stump_rows_px[i] for i in TRACK_ROWS]
    left = [p for p, _ in rows]
    right = [q for _, q in rows]
    return np.asarray(left + right, float)


def _patch_offsets(d: Defect, k: int, radius: float = 6.0) -> np.ndarray:
    """Shift each stump's texture patch away from the defect, onto the stump's tissue."""
    (lx, ly), (rx, ry) = d.stump_left_px, d.stump_right_px
    u = np.array([rx - lx, ry - ly], float)
    u /= max(1e-6, float(np.linalg.norm(u)))
    off = (radius + 3.0) * u
    return np.concatenate([np.repeat(-off[None], k, 0), np.repeat(off[None], k, 0)])


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
