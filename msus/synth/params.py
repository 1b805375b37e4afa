"""Phantom parameters (:class:`SynthParams`) and the contraction profile of a loop."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from msus.errors import SynthError

TEAR_KINDS = ("full", "partial", "none")
CLASSIFICATIONS = {"full": "suspected_full_thickness", "partial": "partial", "none": "no_defect"}

#: Speed of sound (mm/µs) used for the carrier wavelength.
SOUND_SPEED_MM_PER_US = 1.54
#: Reference soft-tissue attenuation (dB per mm, round trip) that the TGC compensates.
ALPHA_REF_DB_PER_MM = 0.35


@dataclass(frozen=True)
class SynthParams:
    """Parameters of one phantom loop.  Lengths in mm, angles in degrees, time in frames / fps.

    Parameters
    ----------
    tear
        ``"full"`` (full-thickness: the defect spans fascia to fascia and the stumps retract on
        contraction), ``"partial"`` (spans ``partial_fraction`` of the thickness; gap constant) or
        ``"none"`` (intact muscle).
    partial_fraction
        Share of the muscle thickness the partial defect spans at its widest (0 < f < 1).
    partial_position
        Depth of the partial defect's centre as a fraction of the thickness (0 superficial, 1 deep).
    gap_rest_mm, gap_contraction_mm
        Ground-truth gap at rest and at peak contraction (mm).  For partial tears only
        ``gap_rest_mm`` is used (the gap stays constant).
    tear_offset_mm
        Position of the tear's centre along the muscle axis relative to the image centre (mm).
    fray_mm
        Amplitude of the irregularity of the stump ends (mm).
    muscle_depth_mm
        Depth of the superficial fascia (muscle's upper boundary) at the image centre (mm).
    muscle_thickness_mm
        Fascia-to-fascia thickness at rest (mm).
    fascicle_angle_deg
        Pennation angle of the fascicle lines relative to the muscle axis (deg).
    fascia_tilt_deg
        Angle of the muscle's long axis to the image rows (deg, positive = deeper to the right).
    bone_gap_mm
        Distance below the deep fascia of the bone surface (mm); bone below the image is omitted.
    mm_per_px
        Pixel spacing (mm per pixel, square pixels).
    rows, columns, n_frames
        Frame geometry and loop length.
    fps
        Frame rate (frames per second).
    frequency_mhz
        Transmit centre frequency (sets the carrier phase and the PSF size).
    noise
        Electronic noise level relative to the muscle speckle amplitude (0 = none).
    jitter_mm
        Standard deviation of the probe jitter (global shift per frame, mm).
    slide_mm
        Muscle slide along its axis at peak contraction (mm).
    thickening
        Relative increase of the muscle thickness at peak contraction.
    seed
        Random seed; the same parameters and seed give byte-identical frames.
    """

    tear: str = "full"
    partial_fraction: float = 0.5
    partial_position: float = 0.5
    gap_rest_mm: float = 6.0
    gap_contraction_mm: float = 11.0
    tear_offset_mm: float = 0.0
    fray_mm: float = 1.0
    muscle_depth_mm: float = 7.0
    muscle_thickness_mm: float = 18.0
    fascicle_angle_deg: float = 14.0
    fascia_tilt_deg: float = 0.0
    bone_gap_mm: float = 10.0
    mm_per_px: float = 0.075
    rows: int = 600
    columns: int = 800
    n_frames: int = 100
    fps: float = 25.0
    frequency_mhz: float = 12.0
    noise: float = 0.06
    jitter_mm: float = 0.12
    slide_mm: float = 2.0
    thickening: float = 0.06
    seed: int = 0

    def __post_init__(self):
        def bad(msg):
            raise SynthError(f"phantom parameters: {msg}")

        if self.tear not in TEAR_KINDS:
            bad(f"tear must be one of {', '.join(TEAR_KINDS)}, got {self.tear!r}")
        if not 0.05 <= self.partial_fraction <= 0.95:
            bad("partial_fraction must lie in [0.05, 0.95]")
        half = self.partial_fraction / 2
        if not half <= self.partial_position <= 1 - half:
            bad("partial_position leaves the defect outside the muscle")
        if not (self.mm_per_px > 0 and math.isfinite(self.mm_per_px)):
            bad("mm_per_px must be a positive number")
        if not (16 <= self.rows <= 4096 and 16 <= self.columns <= 4096):
            bad("rows and columns must lie in [16, 4096]")
        if not 4 <= self.n_frames <= 5000:
            bad("n_frames must lie in [4, 5000]")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            bad("fps must be positive")
        if self.tear != "none":
            if not self.gap_rest_mm > 0:
                bad("gap_rest_mm must be positive")
            if self.tear == "full" and self.gap_contraction_mm < self.gap_rest_mm:
                bad("gap_contraction_mm must be at least gap_rest_mm for a full-thickness tear")
        if self.muscle_depth_mm < 2.5:
            bad("muscle_depth_mm must be at least 2.5 mm (skin and fat lie above)")
        if self.muscle_thickness_mm < 3:
            bad("muscle_thickness_mm must be at least 3 mm")
        if self.muscle_depth_mm + 0.5 * self.muscle_thickness_mm > self.rows * self.mm_per_px:
            bad("the muscle lies below the image: reduce muscle_depth_mm or add rows")
        width_mm = self.columns * self.mm_per_px
        if self.tear != "none":
            span = max(self.gap_rest_mm, self.gap_contraction_mm if self.tear == "full" else 0) + 4 * self.fray_mm
            if span + 2 * abs(self.tear_offset_mm) > 0.8 * width_mm:
                bad("the tear (gap plus frayed ends) does not fit in the image width")
        if abs(self.fascia_tilt_deg) > 30 or not 0 <= self.fascicle_angle_deg <= 45:
            bad("fascia_tilt_deg must lie in [-30, 30] and fascicle_angle_deg in [0, 45]")
        if self.noise < 0 or self.jitter_mm < 0 or self.thickening < 0 or self.fray_mm < 0:
            bad("noise, jitter_mm, thickening and fray_mm must not be negative")

    @property
    def classification(self) -> str:
        return CLASSIFICATIONS[self.tear]

    def to_dict(self) -> dict:
        return asdict(self)



#: Phases of the loop as fractions of its duration: rest, rise, hold, fall, rest.
_PHASES = (0.18, 0.42, 0.58, 0.82)


def contraction_profile(n_frames: int) -> np.ndarray:
    """Activation in [0, 1] per frame: rest first, smooth rise, hold, smooth relax, rest.

    Parameters
    ----------
    n_frames
        Loop length.

    Returns
    -------
    numpy.ndarray
        Float array of length ``n_frames``; 0 at rest, 1 at peak contraction.
    """
    t = np.arange(n_frames) / max(1, n_frames - 1)
    a, b, c, d = _PHASES
    out = np.zeros(n_frames)
    rise = (t >= a) & (t < b)
    out[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - a) / (b - a))
    out[(t >= b) & (t < c)] = 1.0
    fall = (t >= c) & (t < d)
    out[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - c) / (d - c))
    return out


def key_frames(n_frames: int) -> tuple[int, int]:
    """(rest frame, peak-contraction frame): the middle of the first rest and of the hold."""
    a, b, c, _ = _PHASES
    rest = int(round(0.5 * a * (n_frames - 1)))
    peak = int(round(0.5 * (b + c) * (n_frames - 1)))
    prof = contraction_profile(n_frames)
    if prof[peak] < 1.0:  # very short loops
        peak = int(np.argmax(prof))
    return rest, peak
