"""The result of the whole-loop analysis (frozen), its overlay shapes and its JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from msus.analysis.classify import DISCLAIMER, Finding
from msus.analysis.detect import Defect
from msus.analysis.motion import Motion
from msus.analysis.motion_defect import AxisGrid, MotionDefect
from msus.analysis.thickness import Thickness
from msus.analysis.track import Track
from msus.terms import length_label


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
        Motion energy and deformation curves (:class:`msus.analysis.motion.Motion`).
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
    motion_defect
        The motion evidence (:class:`msus.analysis.motion_defect.MotionDefect`), None when the
        muscle could not be straightened.
    thickness
        Muscle thickness per frame (:class:`msus.analysis.thickness.Thickness`).
    echo_finding
        The flag the echo evidence alone gives (the baseline the motion evidence is measured
        against).
    evidence
        Which evidence found the defect: ``"echo"``, ``"motion"``, ``"both"`` or ``"none"``.
    displacement_px, grid
        Along-axis displacement rest → contraction on the straightened muscle grid (px), for
        the overlay.
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
    motion_defect: MotionDefect | None = None
    thickness: Thickness | None = None
    echo_finding: Finding | None = None
    evidence: str = "none"
    displacement_px: np.ndarray | None = field(default=None, repr=False, compare=False)
    grid: AxisGrid | None = field(default=None, repr=False, compare=False)
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
        if gmm is not None or gpx is not None:
            shapes["gap_label"] = length_label(gmm, gpx)
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
            "muscle_thickness_mm": list(self.thickness.thickness_mm) if self.thickness else [None] * self.n_frames,
            "muscle_thickness_px": list(self.thickness.thickness_px) if self.thickness else [None] * self.n_frames,
            "muscle_thickness_rest_mm": self.muscle_thickness_rest_mm,
            "muscle_thickness_contraction_mm": self.muscle_thickness_contraction_mm,
            "motion_evidence": self.motion_evidence_dict(),
            "evidence": self.evidence,
            "classification_echo_only": self.echo_finding.classification if self.echo_finding else None,
            "timings_s": dict(self.timings_s),
        }

    @property
    def muscle_thickness_rest_mm(self) -> float | None:
        return None if self.thickness is None else self.thickness.thickness_mm[self.rest_frame]

    @property
    def muscle_thickness_contraction_mm(self) -> float | None:
        return None if self.thickness is None else self.thickness.thickness_mm[self.contraction_frame]

    def motion_evidence_dict(self) -> dict:
        """``motion_evidence`` of the JSON: separation profile across the depth (mm), the
        separating fraction, the displacement of each side (mm), and the rest in px."""
        md = self.motion_defect
        if md is None:
            return {"assessed": False, "found": False, "separation_profile_mm": [], "depth_fraction": [],
                    "separating_fraction": 0.0, "left_displacement_mm": None, "right_displacement_mm": None}
        return {"assessed": True, **md.to_dict()}
