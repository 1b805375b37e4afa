"""Fusing the echo and the motion evidence: which found the defect, where the stump ends are,
the gap on every frame and at the two key frames, the thickness fraction, and the flags.

* Echo finds the defect when it is dark; motion finds it when a near-isoechoic haematoma hides
  it (the two ends separate on contraction, the region between moves with neither); when both
  find it the flag says so.
* The thickness fraction is the mean of the echo's depth extent and the motion's separating
  share when both found the defect, else the one that did.
* The stump ends come from the echo where it found them (sub-pixel half-power crossings), else
  from the motion's knees; either way they are tracked through the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from msus.analysis.classify import Finding, classify
from msus.analysis.detect import Defect
from msus.analysis.echo import EchoEvidence, patch_offsets, usable
from msus.analysis.motion_defect import (
    AxisGrid,
    MotionDefect,
    accumulate_along,
    across_strain,
    axial_displacement,
    motion_defect,
    muscle_grid,
    work_frames,
)
from msus.analysis.roi import mm_per_px_at_centre
from msus.calibration import Calibration


@dataclass(frozen=True)
class MotionEvidence:
    """The motion step's result: the defect (None when not assessed), the along-axis
    displacement on the grid, and whether the suggested frames had to be swapped."""

    defect: MotionDefect | None
    displacement: np.ndarray | None = None
    grid: AxisGrid | None = None
    swapped: bool = False


@dataclass(frozen=True)
class Fused:
    """The fused evidence: found, by which (``echo``/``motion``/``both``/``none``), thickness
    fraction, whether the muscle contracted, and the track's anchor (ROI-crop px)."""

    found: bool
    source: str
    thickness_fraction: float
    echo_fraction: float
    contracted: bool
    anchor: int | None = None
    points: np.ndarray | None = None
    offsets: np.ndarray | None = None
    keyframes: tuple = ()


@dataclass(frozen=True)
class PairedGaps:
    """Gaps at the rest and the contraction frame and their difference (px, mm)."""

    rest_px: float | None
    contraction_px: float | None
    rest_mm: float | None
    contraction_mm: float | None

    @property
    def retraction_px(self) -> float | None:
        return None if self.rest_px is None or self.contraction_px is None else self.contraction_px - self.rest_px

    @property
    def retraction_mm(self) -> float | None:
        return None if self.rest_mm is None or self.contraction_mm is None else self.contraction_mm - self.rest_mm


def _assess(small, path, grid: AxisGrid, scale: float, roi, mmpp, th):
    field = accumulate_along(small, path)
    disp = axial_displacement(field, scale, roi[:2], grid)
    md = motion_defect(disp, grid, mmpp, th.motion)
    return disp, replace(md, thickening=across_strain(field, scale, roi[:2], grid))


def motion_evidence(crops, roi, r: int, c: int, d_rest: Defect, cal: Calibration, th,
                    allow_swap: bool = True, path=None, d_con: Defect | None = None) -> MotionEvidence:
    """Displacement rest → contraction on the straightened muscle and its step (see
    :mod:`msus.analysis.motion_defect`), accumulated through the frames of ``path`` (from ``r``
    to ``c``; default every frame between them, :func:`msus.analysis.motion.pose_path` goes
    through the poses between them).  When the muscle says the two frames are the wrong way
    round (:func:`reversed_frames`), with ``allow_swap`` the evidence is measured again from
    ``c`` to ``r`` (on the fasciae of ``d_con``, the detection on ``c``, when given) and
    ``swapped`` is set."""
    if d_rest.superficial_fascia is None or d_rest.deep_fascia is None:
        return MotionEvidence(None)
    if path is None:
        path = range(r, c + (1 if c >= r else -1), 1 if c >= r else -1)
    path = list(path)
    small, scale = work_frames([crops[i] for i in path])
    grid = muscle_grid(d_rest.superficial_fascia, d_rest.deep_fascia, roi, du_px=1.0 / scale)
    if grid is None:
        return MotionEvidence(None)
    mmpp = mm_per_px_at_centre(cal, roi)
    steps = list(range(len(path)))
    disp, md = _assess(small, steps, grid, scale, roi, mmpp, th)
    if allow_swap and reversed_frames(md, th.motion):
        if d_con is not None and d_con.superficial_fascia is not None and d_con.deep_fascia is not None:
            grid = muscle_grid(d_con.superficial_fascia, d_con.deep_fascia, roi, du_px=1.0 / scale) or grid
        disp, md = _assess(small, steps[::-1], grid, scale, roi, mmpp, th)
        return MotionEvidence(md, disp, grid, swapped=True)
    return MotionEvidence(md, disp, grid)


def reversed_frames(md: MotionDefect, th) -> bool:
    """Are rest ``r`` and peak ``c`` the wrong way round, by the muscle between them?

    A full-thickness step decides by its sign (the ends come *together* from r to c).  Without
    one, the muscle must be both longer (along-axis strain ≥ ``th.reverse_min_lengthening``) and
    thinner (strain across ≤ −``th.reverse_min_thinning``) at c: a contraction shortens and
    thickens it.  ``th``: :class:`~msus.analysis.thresholds.MotionThresholds`.
    """
    if md.found and md.separating_fraction >= th.full_separating_fraction:
        return md.step_px < 0
    return md.strain >= th.reverse_min_lengthening and md.thickening <= -th.reverse_min_thinning


def contracted(mot, c: int, cal: Calibration, roi, th) -> bool:
    """Did the muscle move between the two frames (else the gap change says nothing)?"""
    moved_px = float(mot.deformation_px[c]) if 0 <= c < len(mot.deformation_px) else 0.0
    mmpp = mm_per_px_at_centre(cal, roi)
    if mmpp is not None:
        return moved_px * mmpp >= th.classification.min_contraction_motion_mm
    return moved_px >= th.classification.min_contraction_motion_px


def _motion_anchor(md: MotionDefect, r: int, c: int, origin: np.ndarray):
    """Track anchor (3 depths per stump) from the motion's knees at rest, keyframed at contraction."""
    rows = md.stump_rows_rest_px
    pick = np.unique(np.linspace(0, len(rows) - 1, 3).round().astype(int))
    rest = [rows[i] for i in pick]
    con = [md.stump_rows_contraction_px[i] for i in pick]
    pts = np.asarray([p for p, _ in rest] + [q for _, q in rest], float)
    pts_c = np.asarray([p for p, _ in con] + [q for _, q in con], float)
    offs = patch_offsets(rest[len(rest) // 2][0], rest[len(rest) // 2][1], len(rest))
    return r, pts - origin, offs, ((c, pts_c - origin),)


def fuse(echo: EchoEvidence, mev: MotionEvidence, d_r: Defect, d_c: Defect, r: int, c: int, th,
         cal: Calibration, roi, mot) -> Fused:
    """Combine the two evidences (see the module docstring)."""
    md = mev.defect
    # a step between the two sides is itself movement (the mean deformation of the ROI can stay
    # small when only the muscle moves and the layers around it do not)
    motion_found = bool(md is not None and md.found and md.step_px > 0)
    moved = contracted(mot, c, cal, roi, th) or motion_found
    # alone, motion flags only a step across the whole thickness: a step over part of the depth
    # without a dark defect is what pennate compartments sliding past each other also show
    motion_full = motion_found and md.separating_fraction >= th.motion.full_separating_fraction
    if not echo.found:
        motion_found = motion_full
    fracs = [d.thickness_fraction for d in (d_r, d_c) if usable(d, th)]
    echo_frac = max(fracs) if (echo.found and fracs) else 0.0
    if echo.found and motion_found:
        source, frac = "both", 0.5 * (echo_frac + md.separating_fraction)
    elif echo.found:
        source, frac = "echo", echo_frac
    elif motion_found:
        source, frac = "motion", md.separating_fraction
    else:
        return Fused(False, "none", 0.0, 0.0, moved)
    if echo.found:
        anchor = (echo.anchor, echo.points, echo.offsets, echo.keyframes)
    else:
        anchor = _motion_anchor(md, r, c, np.asarray(roi[:2], float))
    return Fused(True, source, float(frac), float(echo_frac), moved, *anchor)


def gap_curves(track, what: str, fused: Fused, cal: Calibration, n: int):
    """Gap per frame from the tracked ends (px, mm); None where unreliable or without a defect."""
    curve_px: list[float | None] = [None] * n
    curve_mm: list[float | None] = [None] * n
    if not (fused.found and what == "stumps"):
        return tuple(curve_px), tuple(curve_mm)
    k = track.points_px.shape[1] // 2
    for i in range(n):
        if not track.reliable[i].all():
            continue
        ds = [cal.measure(track.points_px[i, j], track.points_px[i, j + k]) for j in range(k)]
        curve_px[i] = float(np.mean([d.distance_px for d in ds]))
        mms = [d.distance_mm for d in ds]
        curve_mm[i] = float(np.mean(mms)) if all(v is not None for v in mms) else None
    return tuple(curve_px), tuple(curve_mm)


def paired_gaps(fused: Fused, curves, echo: EchoEvidence, d_r: Defect, d_c: Defect, r: int, c: int,
                user_frames: set, motion: MotionDefect | None = None) -> PairedGaps:
    """Gap at rest and at contraction: the echo's measurement where it found the stumps (and the
    reviewer did not move them), else the motion's, else the tracked curve."""
    if not fused.found:
        return PairedGaps(None, None, None, None)
    curve_px, curve_mm = curves
    out = []
    for d, i, ok, which in ((d_r, r, echo.usable_rest, "rest"), (d_c, c, echo.usable_contraction, "contraction")):
        if i in user_frames:
            out.append((curve_px[i], curve_mm[i]))
        elif fused.source != "motion" and ok and d.gap_px is not None and i not in echo.corrected:
            out.append((d.gap_px, d.gap_mm))
        elif fused.source == "motion" and motion is not None:
            out.append((getattr(motion, f"gap_{which}_px"), getattr(motion, f"gap_{which}_mm")))
        else:
            out.append((curve_px[i], curve_mm[i]))
    return PairedGaps(out[0][0], out[1][0], out[0][1], out[1][1])


def findings(fused: Fused, echo: EchoEvidence, g: PairedGaps, d_r: Defect, d_c: Defect,
             mev: MotionEvidence, th) -> tuple[Finding, Finding]:
    """(the fused flag, the flag of the echo evidence alone)."""
    contrasts = [d.contrast for d in (d_r, d_c) if usable(d, th)]
    contrast = float(np.mean(contrasts)) if (echo.found and contrasts) else None
    notes = []
    if not echo.found and echo.seen_once:
        notes.append("a dark region seen on one frame was not confirmed on the other")
    elif not echo.found:
        notes.extend(d_r.notes[:1])
    gaps = dict(gap_rest_mm=g.rest_mm, gap_contraction_mm=g.contraction_mm, gap_rest_px=g.rest_px,
                gap_contraction_px=g.contraction_px)
    echo_gaps = gaps if echo.found else {}
    echo_only = classify(defect_found=echo.found, thickness_fraction=fused.echo_fraction, contrast=contrast,
                         notes=notes, contracted=fused.contracted, thresholds=th, **echo_gaps)
    fused_f = classify(defect_found=fused.found, thickness_fraction=fused.thickness_fraction, contrast=contrast,
                       notes=notes, contracted=fused.contracted, thresholds=th, motion=mev.defect,
                       echo_found=echo.found, **gaps)
    return fused_f, echo_only
