"""Phantom simulator for musculoskeletal B-mode cine loops, with ground truth.

A loop is made the way a scanner makes it, only much simplified (see ``docs/synth.md``):

* **Tissue is a cloud of point scatterers** attached to anatomy (skin, subcutaneous fat with
  septa, superficial fascia, pennate muscle with fascicle lines, deep fascia, a deeper muscle,
  bone).  Each scatterer has a reflectivity and a random phase.  Between frames the scatterers are
  *displaced*, never re-drawn, so speckle moves coherently with the tissue and optical flow or
  tracking on the loop is meaningful.
* **Image formation**: the scatterers are splatted (bilinear) onto the pixel grid as complex
  (baseband, IQ) amplitudes carrying the carrier phase ``exp(i·2k·z)``, convolved with a
  Gaussian point-spread function (axial Gaussian-modulated pulse × lateral Gaussian beam whose
  width grows away from the focus), envelope-detected (``|IQ|``), attenuated (cumulative along
  each beam line, so bone casts a shadow and fluid gives posterior enhancement), time-gain
  compensated with a small residual variation, mixed with electronic noise and log-compressed to
  uint8.  Many scatterers per resolution cell give Rayleigh-distributed envelope speckle; two
  looks with independent phases are averaged in intensity (compounding, as MSK presets do).
* **A tear** (``full`` or ``partial``) is a hypoechoic haematoma between two frayed stump ends,
  with a few floating echoes.  Over the loop the muscle contracts (rest → contraction → relax,
  rest first): it slides along its axis and thickens (fascicles steepen), and -- for a
  full-thickness tear only -- the stumps retract so the gap widens.  Probe jitter moves
  everything a little.

Coordinates follow the project: points are ``(x, y)`` = (column, row) in pixels, 0-based.
Pixels are square (``mm_per_px``).  The muscle's long axis is tilted by ``fascia_tilt_deg``
(positive: deeper to the right).

Ground truth (see :class:`Phantom`) follows the project's definitions: the **gap** is the
distance along the muscle's long axis between the two stump ends, averaged over the central half
of the torn depth (25–75 % of the way from superficial to deep fascia; for a partial tear, of the
defect's depth extent).  For ``tear="none"`` there are no stumps: ``gap_mm`` is NaN (``null`` in
JSON) and ``stump_ends_px`` is NaN.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from msus.errors import SynthError

TEAR_KINDS = ("full", "partial", "none")
CLASSIFICATIONS = {"full": "suspected_full_thickness", "partial": "partial", "none": "no_defect"}

#: Speed of sound (mm/µs) used for the carrier wavelength.
SOUND_SPEED_MM_PER_US = 1.54
#: Reference soft-tissue attenuation (dB per mm, round trip) that the TGC compensates.
_ALPHA_REF_DB_PER_MM = 0.35
#: Display mapping: envelope relative to muscle speckle RMS (dB) mapped to 0..255.
_DB_FLOOR = -24.0
_DB_RANGE = 70.0
#: Compounded looks (independent speckle realisations averaged in intensity).
_LOOKS = 2
#: Cell size (px) of the coarse attenuation grid.
_ATT_CELL = 6



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


# ---------------------------------------------------------------------------------------------
# contraction profile
# ---------------------------------------------------------------------------------------------
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


def _key_frames(n_frames: int) -> tuple[int, int]:
    """(rest frame, peak-contraction frame): the middle of the first rest and of the hold."""
    a, b, c, _ = _PHASES
    rest = int(round(0.5 * a * (n_frames - 1)))
    peak = int(round(0.5 * (b + c) * (n_frames - 1)))
    prof = contraction_profile(n_frames)
    if prof[peak] < 1.0:  # very short loops
        peak = int(np.argmax(prof))
    return rest, peak


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Phantom:
    """A simulated loop and its per-frame ground truth.

    Attributes
    ----------
    frames
        uint8 array N×H×W (grey B-mode).
    params
        The :class:`SynthParams` used.
    gap_mm
        Per-frame gap (mm) along the muscle axis, averaged over the central half of the torn
        depth; NaN for ``tear="none"``.
    stump_ends_px
        N×2×2 array: per frame the two stump ends ``[(x, y) left, (x, y) right]`` in px -- the
        mean end position over the central half of the torn depth, placed at the middle of the
        torn depth; their distance is ``gap_mm / mm_per_px``.  NaN for ``tear="none"``.
    defect_thickness_fraction
        Share of the fascia-to-fascia thickness the defect spans at its widest (1, f or 0).
    rest_frame, contraction_frame
        Frame indices (0-based) of rest and of peak contraction.
    classification
        ``suspected_full_thickness``, ``partial`` or ``no_defect``.
    activation
        Contraction profile per frame in [0, 1].
    jitter_px
        N×2 probe shift per frame (x, y) in px.
    fascia_px
        N×2×K×2: per frame the superficial [0] and deep [1] muscle boundaries (the muscle-side
        edge of each fascia band) as polylines of (x, y) points in px.
    defect_polygons
        Per frame an M×2 array of (x, y) px outlining the defect (empty for ``none``).
    muscle_thickness_mm
        Per frame the fascia-to-fascia thickness (mm) through the tear centre (image centre when
        intact).
    """

    frames: np.ndarray
    params: SynthParams
    gap_mm: np.ndarray
    stump_ends_px: np.ndarray
    defect_thickness_fraction: float
    rest_frame: int
    contraction_frame: int
    classification: str
    activation: np.ndarray
    jitter_px: np.ndarray
    fascia_px: np.ndarray
    defect_polygons: tuple = field(repr=False)
    muscle_thickness_mm: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def mm_per_px(self) -> float:
        return float(self.params.mm_per_px)

    @property
    def fps(self) -> float:
        return float(self.params.fps)

    @property
    def gap_rest_mm(self) -> float:
        return float(self.gap_mm[self.rest_frame])

    @property
    def gap_contraction_mm(self) -> float:
        return float(self.gap_mm[self.contraction_frame])

    @property
    def retraction_mm(self) -> float:
        """Gap at contraction minus gap at rest (NaN without a defect)."""
        return self.gap_contraction_mm - self.gap_rest_mm

    def defect_polygon(self, i: int) -> np.ndarray:
        """Outline of the defect on frame ``i`` as an M×2 float array of (x, y) px."""
        return self.defect_polygons[int(i)]

    def defect_mask(self, i: int) -> np.ndarray:
        """Boolean H×W mask of the defect (haematoma between the stumps) on frame ``i``."""
        import cv2

        mask = np.zeros(self.frames.shape[1:], np.uint8)
        poly = self.defect_polygon(i)
        if len(poly) >= 3:
            pts = np.round(poly * 16).astype(np.int32)  # 4 fractional bits
            cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
        return mask.astype(bool)

    def muscle_mask(self, i: int) -> np.ndarray:
        """Boolean H×W mask of the muscle between its fascia boundaries on frame ``i``."""
        import cv2

        sup, deep = self.fascia_px[int(i)]
        poly = np.concatenate([sup, deep[::-1]])
        mask = np.zeros(self.frames.shape[1:], np.uint8)
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1, shift=4)
        return mask.astype(bool)

    def to_dict(self) -> dict:
        """JSON-ready ground truth (no pixels).  NaN values become ``None``."""

        def num(v):
            v = float(v)
            return None if not math.isfinite(v) else round(v, 4)

        def pts(a, step=1):
            return [[num(x), num(y)] for x, y in np.asarray(a)[::step]]

        key = {"rest": self.rest_frame, "contraction": self.contraction_frame}
        k = self.fascia_px.shape[2]
        fstep = max(1, k // 24)
        return {
            "truth_version": 1,
            "generator": "msus.synth",
            "params": self.params.to_dict(),
            "n_frames": self.n_frames,
            "rows": int(self.frames.shape[1]),
            "columns": int(self.frames.shape[2]),
            "fps": self.fps,
            "frame_time_ms": 1000.0 / self.fps,
            "mm_per_px": self.mm_per_px,
            "classification": self.classification,
            "tear": self.params.tear,
            "defect_thickness_fraction": num(self.defect_thickness_fraction),
            "rest_frame": self.rest_frame,
            "contraction_frame": self.contraction_frame,
            "gap_rest_mm": num(self.gap_rest_mm),
            "gap_contraction_mm": num(self.gap_contraction_mm),
            "retraction_mm": num(self.retraction_mm),
            "gap_mm": [num(g) for g in self.gap_mm],
            "stump_ends_px": [pts(s) for s in self.stump_ends_px],
            "activation": [round(float(a), 4) for a in self.activation],
            "muscle_thickness_mm": [num(t) for t in self.muscle_thickness_mm],
            "jitter_px": pts(self.jitter_px),
            "fascia_px": {
                name: {
                    "superficial": pts(self.fascia_px[i, 0], fstep),
                    "deep": pts(self.fascia_px[i, 1], fstep),
                }
                for name, i in key.items()
            },
            "defect_polygon_px": {
                name: pts(self.defect_polygon(i), max(1, len(self.defect_polygon(i)) // 120))
                for name, i in key.items()
            },
            "definitions": {
                "gap_mm": "distance along the muscle axis between the stump ends, averaged over the central "
                "half (25-75 %) of the torn depth; null without a defect",
                "stump_ends_px": "per frame [[x, y] left, [x, y] right]: mean stump end over the central half "
                "of the torn depth, at mid torn depth; 0-based pixel coordinates",
                "fascia_px": "muscle-side edge of the superficial and deep fascia",
                "defect_thickness_fraction": "share of the fascia-to-fascia thickness spanned by the defect",
            },
        }


# ---------------------------------------------------------------------------------------------
# scene
# ---------------------------------------------------------------------------------------------
class _Scene:
    """Static anatomy (scatterers at rest) plus the per-frame motion model."""

    def __init__(self, p: SynthParams):
        self.p = p
        s = p.mm_per_px
        self.H, self.W = p.rows, p.columns
        rng = np.random.default_rng([p.seed, 0])
        th = math.radians(p.fascia_tilt_deg)
        self.cos, self.sin = math.cos(th), math.sin(th)
        self.cx = (self.W - 1) / 2.0
        self.cy = p.muscle_depth_mm / s
        self.T0 = p.muscle_thickness_mm / s  # px
        self.uc = p.tear_offset_mm / s
        # carrier: phase advance per px of depth (round trip)
        lam = SOUND_SPEED_MM_PER_US / p.frequency_mhz
        self.k2 = 4 * math.pi * s / lam
        # PSF sigmas (px): axial 1.1 λ (a ~2-cycle Gaussian pulse), lateral 2 λ at the focus
        self.sig_z = max(0.7, (1.1 * lam) / s)  # px
        self.sig_x_focus = max(1.0, (2.0 * lam) / s)
        self.sig_x_far = self.sig_x_focus * 1.8
        self.focus_y = (p.muscle_depth_mm + 0.5 * p.muscle_thickness_mm) / s
        # fascia undulations and thickness variation along the muscle (px)
        self.und = [
            (rng.uniform(0.15, 0.35) / s, rng.uniform(25, 45) / s, rng.uniform(0, 2 * np.pi)),
            (rng.uniform(0.15, 0.35) / s, rng.uniform(25, 45) / s, rng.uniform(0, 2 * np.pi)),
        ]
        self.taper = rng.uniform(-0.05, 0.05)
        self.fw_sup = 1.0 / s
        self.fw_deep = 0.8 / s
        self.bone_gap = p.bone_gap_mm / s
        self.bone_curv = rng.uniform(0.5, 1.0) * 1e-3 * s  # px^-1 (gentle convex)
        self._build_defect(rng)
        self._build_scatterers(rng)
        self._build_gain(rng)

    # ---- geometry (reference configuration, tissue coordinates u along axis, v depth) --------
    def v_sup(self, u):
        a, lam, ph = self.und[0]
        return a * np.sin(2 * np.pi * u / lam + ph)

    def v_deep(self, u):
        a, lam, ph = self.und[1]
        half_w = self.W / 2
        return self.T0 * (1 + self.taper * u / half_w) + a * np.sin(2 * np.pi * u / lam + ph)

    def v_bone(self, u):
        return self.v_deep(u) + self.bone_gap - self.bone_curv * u**2

    def to_image(self, u, v, jx=0.0, jy=0.0):
        x = self.cx + u * self.cos - v * self.sin + jx
        y = self.cy + u * self.sin + v * self.cos + jy
        return x, y

    def to_tissue(self, x, y):
        dx, dy = x - self.cx, y - self.cy
        return dx * self.cos + dy * self.sin, -dx * self.sin + dy * self.cos

    # ---- defect ----------------------------------------------------------------------------
    def _build_defect(self, rng):
        p, s = self.p, self.p.mm_per_px
        self.has_defect = p.tear != "none"
        self.wgrid = np.linspace(0.0, 1.0, 801)
        if not self.has_defect:
            self.w0 = self.w1 = 0.5
            self.R_peak = 0.0
            return
        if p.tear == "full":
            w0, w1 = 0.0, 1.0
        else:
            w0 = p.partial_position - p.partial_fraction / 2
            w1 = p.partial_position + p.partial_fraction / 2
        self.w0, self.w1 = w0, w1
        wg = np.linspace(w0, w1, 801)
        self.wgrid = wg
        q = (wg - w0) / (w1 - w0)  # 0..1 across the torn span
        if p.tear == "full":
            shape = np.ones_like(q)
            taper = np.ones_like(q)
        else:  # lens-shaped cleft, closing at its upper and lower tips
            shape = np.clip(1 - (2 * q - 1) ** 2, 0, 1) ** 0.25
            taper = 0.6 * shape**0.5

        def fray():
            # smooth undulation + fibre-bundle steps (bundles ~0.5 mm thick protrude randomly)
            f = np.zeros_like(q)
            for _ in range(3):
                f += rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * rng.uniform(0.5, 2.5) * q + rng.uniform(0, 2 * np.pi))
            depth_px = (w1 - w0) * self.T0
            n_b = max(3, int(depth_px * s / 0.5))
            steps = rng.exponential(0.45, n_b) - 0.3
            idx = np.minimum((q * n_b).astype(int), n_b - 1)
            f += steps[idx]
            return f * p.fray_mm / s * taper

        fl, fr = fray(), fray()  # positive = protruding into the gap
        central = (q >= 0.25) & (q <= 0.75)
        g = p.gap_rest_mm / s
        # choose the half width so that the central-half mean gap equals gap_rest exactly
        base = (g + np.mean(fl[central] + fr[central])) / max(1e-9, np.mean(shape[central]))
        uL = self.uc - 0.5 * base * shape + fl
        uR = self.uc + 0.5 * base * shape - fr
        uR = np.maximum(uR, uL + 0.2)  # never cross
        self.uL0, self.uR0 = uL, uR
        self.central = central
        self.R_peak = (p.gap_contraction_mm - p.gap_rest_mm) / s if p.tear == "full" else 0.0
        # retraction taper: stump ends move by the full R/2, tissue far away is anchored
        self.d0 = max(np.max(self.uc - uL), np.max(uR - self.uc)) + 1.0 / s
        self.L_taper = 22.0 / s

    def _retract_weight(self, u):
        d = np.abs(u - self.uc)
        t = np.clip((d - self.d0) / self.L_taper, 0, 1)
        return 0.5 + 0.5 * np.cos(np.pi * t)

    # ---- scatterers ------------------------------------------------------------------------
    def _build_scatterers(self, rng):
        p, s = self.p, self.p.mm_per_px
        H, W = self.H, self.W
        # ≈ 10 scatterers per resolution cell (fully developed speckle) at any pixel size
        density = float(np.clip(10.0 / (2 * np.pi * self.sig_x_focus * self.sig_z), 0.15, 1.2))
        margin = (abs(p.slide_mm) + 4 * p.jitter_mm + 2.0) / s + 4 * self.sig_x_far
        if self.has_defect:
            margin += self.R_peak / 2
        x0, x1 = -margin, W - 1 + margin
        y0, y1 = -3 * self.sig_z - 2, H - 1 + 3 * self.sig_z + 2 + 4 * p.jitter_mm / s
        n = int(density * (x1 - x0) * (y1 - y0))
        x = rng.uniform(x0, x1, n)
        y = rng.uniform(y0, y1, n)
        u, v = self.to_tissue(x, y)
        vs, vd, vb = self.v_sup(u), self.v_deep(u), self.v_bone(u)
        depth_mm = y * s
        amp = np.ones(n)
        alpha = np.full(n, _ALPHA_REF_DB_PER_MM)  # dB/mm round trip
        ms = np.zeros(n)  # slide multiplier
        dv = np.zeros(n)  # depth displacement at full activation (px)
        rf = np.zeros(n)  # retraction multiplier (±weight/2)
        keep = np.ones(n, bool)

        # smooth heterogeneity of echogenicity (log-normal, ~2 mm correlation)
        het = self._smooth_field(rng, x, y, corr_mm=2.0, x0=x0, y0=y0, x1=x1, y1=y1)
        amp *= np.exp(0.18 * het)

        skin = depth_mm < 0.7
        dermis = (depth_mm >= 0.7) & (depth_mm < 2.0)
        fat = (v < vs - self.fw_sup) & ~skin & ~dermis
        fsup = (v >= vs - self.fw_sup) & (v < vs)
        mus = (v >= vs) & (v <= vd)
        fdeep = (v > vd) & (v <= vd + self.fw_deep)
        deepm = (v > vd + self.fw_deep) & (v < vb)
        bone = (v >= vb) & (v < vb + 0.5 / s)
        below = v >= vb + 0.5 / s

        amp[skin] *= 4.5
        alpha[skin] = 0.5
        amp[dermis] *= 1.6
        ms[skin | dermis] = 0.0
        # subcutaneous fat: hypoechoic lobules with a few bright wavy septa
        amp[fat] *= 0.45
        alpha[fat] = 0.30
        ms[fat] = 0.15
        if fat.any():
            fat_top = 2.0 / s
            fat_bot = (p.muscle_depth_mm - 0.8) / s
            n_septa = int(rng.integers(3, 6))
            sep = np.zeros(int(fat.sum()))
            xf, yf = x[fat], y[fat]
            for k in range(n_septa):
                yk = fat_top + (k + 0.5 + rng.uniform(-0.3, 0.3)) * (fat_bot - fat_top) / n_septa
                slope = rng.uniform(-0.12, 0.12)
                a, lam, ph = rng.uniform(0.2, 0.8) / s, rng.uniform(8, 25) / s, rng.uniform(0, 6.3)
                yline = yk + slope * (xf - self.cx) + a * np.sin(2 * np.pi * xf / lam + ph)
                seg = np.sin(2 * np.pi * xf / rng.uniform(6, 15) * s + rng.uniform(0, 6.3)) > -0.4
                sep = np.maximum(sep, np.exp(-0.5 * ((yf - yline) / (0.12 / s)) ** 2) * seg)
            amp[fat] *= 1 + 6.0 * sep
        # fascia: bright, speckled, slightly varying along its length
        along = self._smooth_field(rng, x, y, corr_mm=4.0, x0=x0, y0=y0, x1=x1, y1=y1)
        amp[fsup] *= 20.0 * np.exp(0.25 * along[fsup])
        amp[fdeep] *= 16.0 * np.exp(0.25 * along[fdeep])
        alpha[fsup | fdeep] = 0.6
        ms[fsup | fdeep] = 1.0
        # muscle: pennate fascicle lines (perimysium) on a darker background
        w = np.zeros(n)
        w[mus | fsup | fdeep] = (v - vs)[mus | fsup | fdeep] / (vd - vs)[mus | fsup | fdeep]
        amp[mus] *= 0.5 * (1 + 8.0 * self._fascicles(rng, u[mus], v[mus]))
        ms[mus] = 1.0
        m = mus | fsup | fdeep
        dv[m] = (v - vs)[m] * p.thickening
        # deeper muscle (weaker fascicles), compressed as the muscle above thickens
        amp[deepm] *= 0.55 * (1 + 5.0 * self._fascicles(rng, u[deepm], v[deepm], angle=8.0, spacing_mm=2.2))
        ms[deepm] = 0.3
        thick = (vd - vs) * p.thickening
        dv[deepm] = thick[deepm] * np.clip((vb - v)[deepm] / np.maximum(1, (vb - vd))[deepm], 0, 1)
        # bone: very bright cortex, almost total attenuation below (acoustic shadow)
        amp[bone] *= 22.0
        alpha[bone] = 8.0
        amp[below] *= 0.04
        alpha[below] = 2.0

        # defect: muscle scatterers inside the torn region belong to the haematoma instead
        if self.has_defect:
            tor = mus & (w >= self.w0) & (w <= self.w1)
            uL = np.interp(w[tor], self.wgrid, self.uL0)
            uR = np.interp(w[tor], self.wgrid, self.uR0)
            inside = (u[tor] > uL) & (u[tor] < uR)
            idx = np.flatnonzero(tor)
            keep[idx[inside]] = False
            if self.R_peak > 0:
                side = np.where(u[tor] < self.uc, -0.5, 0.5)
                rf[idx] = side * self._retract_weight(u[tor])
        sel = keep
        self.u, self.v = u[sel], v[sel]
        self.amp, self.alpha = amp[sel], alpha[sel]
        self.ms, self.dv, self.rf = ms[sel], dv[sel], rf[sel]
        self.phase0 = rng.uniform(0, 2 * np.pi, int(sel.sum()))
        self.density = density
        if self.has_defect:
            self._build_haematoma(rng)

    def _smooth_field(self, rng, x, y, corr_mm, x0, y0, x1, y1):
        """Zero-mean, unit-variance smooth random field sampled at (x, y)."""
        from scipy.ndimage import gaussian_filter, map_coordinates

        step = corr_mm / self.p.mm_per_px / 2
        gh = int((y1 - y0) / step) + 3
        gw = int((x1 - x0) / step) + 3
        g = gaussian_filter(rng.standard_normal((gh, gw)), 1.0, mode="wrap")
        g /= g.std() + 1e-12
        return map_coordinates(g, [(y - y0) / step, (x - x0) / step], order=1, mode="nearest")

    def _fascicles(self, rng, u, v, angle=None, spacing_mm=1.7):
        """Line field in [0, 1]: thin bright fascicle lines at the pennation angle, broken up."""
        p, s = self.p, self.p.mm_per_px
        if u.size == 0:
            return np.zeros(0)
        a = math.radians(self.p.fascicle_angle_deg if angle is None else angle)
        # fibres rise towards +u from the deep to the superficial aponeurosis
        n_coord = u * math.sin(a) + v * math.cos(a)  # across the fibres
        m_coord = u * math.cos(a) - v * math.sin(a)  # along the fibres
        sp = spacing_mm / s
        k = np.floor(n_coord / sp).astype(np.int64)
        k_off = k - k.min()
        nk = int(k_off.max()) + 2
        offs = rng.uniform(-0.35, 0.35, nk) * sp
        strength = rng.uniform(0.3, 1.0, nk)
        centre = (k + 0.5) * sp + offs[k_off]
        width = 0.07 / s + 0.45  # px (thin, the PSF widens it)
        line = np.exp(-0.5 * ((n_coord - centre) / width) ** 2)
        # each line is broken into segments (~6 mm) whose breaks do not align between lines
        seglen = 6.0 / s
        shift = rng.uniform(0, seglen, nk)
        j = np.floor((m_coord + shift[k_off]) / seglen).astype(np.int64)
        j_off = j - j.min()
        nj = int(j_off.max()) + 1
        on = rng.uniform(0, 1, (nk, nj)) < 0.75
        return line * strength[k_off] * on[k_off, j_off]

    def _build_haematoma(self, rng):
        p, s = self.p, self.p.mm_per_px
        span_px = (self.w1 - self.w0) * self.T0
        width_peak = np.mean(self.uR0 - self.uL0) + self.R_peak
        n = int(self.density * span_px * width_peak * 1.05) + 10
        self.h_frac = rng.uniform(0, 1, n)
        self.h_w = rng.uniform(self.w0, self.w1, n)
        self.h_phase0 = rng.uniform(0, 2 * np.pi, n)
        self.h_amp = 0.14 * np.exp(0.25 * rng.standard_normal(n))
        self.h_wpeak = np.interp(self.h_w, self.wgrid, self.uR0 - self.uL0) + self.R_peak
        # floating echoes: small clusters of bright scatterers drifting in the fluid
        nb = int(rng.integers(5, 10))
        per = 6
        self.b_frac = np.repeat(rng.uniform(0.15, 0.85, nb), per)
        self.b_w = np.repeat(rng.uniform(self.w0 + 0.1 * (self.w1 - self.w0), self.w1 - 0.1 * (self.w1 - self.w0), nb), per)
        self.b_du = rng.normal(0, 0.25 / s, nb * per)
        self.b_dv = rng.normal(0, 0.1 / s, nb * per)
        self.b_amp = np.repeat(rng.uniform(0.8, 2.0, nb), per)
        self.b_phase0 = rng.uniform(0, 2 * np.pi, nb * per)
        self.b_drift = np.repeat(rng.uniform(0, 2 * np.pi, (nb, 2)), per, axis=0)

    def _build_gain(self, rng):
        """Residual TGC variation (smooth over depth, ±~1.5 dB) and lateral fall-off at the edges."""
        H, W = self.H, self.W
        yy = np.linspace(0, 1, H)
        g = np.zeros(H)
        for _ in range(3):
            g += rng.uniform(-0.6, 0.6) * np.sin(np.pi * rng.uniform(0.5, 2.5) * yy + rng.uniform(0, 6.3))
        xx = np.abs(np.linspace(-1, 1, W))
        lat = -1.5 * np.clip((xx - 0.85) / 0.15, 0, 1) ** 2
        self.gain_db = g[:, None] + lat[None, :]
        # TGC noise grows with depth (receiver gain)
        self.noise_gain = 0.6 + 0.8 * yy[:, None]

    # ---- motion ------------------------------------------------------------------------------
    def stump_curves(self, c, slide):
        """Displaced stump ends (uL, uR) on the defect's w grid for activation ``c``."""
        R = self.R_peak * c
        return self.uL0 + slide - R / 2, self.uR0 + slide + R / 2

    def tissue_v(self, u_ref, w, c):
        """Depth v (px) of relative depth w at reference position u_ref, at activation c."""
        vs = self.v_sup(u_ref)
        return vs + w * (self.v_deep(u_ref) - vs) * (1 + self.p.thickening * c)


#: Phase lookup table (cos, sin) with 4096 steps: fast and identical on every machine.
_LUT_N = 4096
_LUT = np.exp(2j * np.pi * np.arange(_LUT_N) / _LUT_N)
_LUT_COS, _LUT_SIN = _LUT.real.copy(), _LUT.imag.copy()


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------
class _Renderer:
    def __init__(self, scene: _Scene):
        self.sc = scene
        p = scene.p
        self.act = contraction_profile(p.n_frames)
        rng = np.random.default_rng([p.seed, 1])
        import cv2
        from scipy.ndimage import gaussian_filter1d

        j = gaussian_filter1d(rng.standard_normal((p.n_frames, 2)), 1.5, axis=0, mode="nearest")
        j /= j.std(axis=0, keepdims=True) + 1e-12
        j *= p.jitter_mm / p.mm_per_px
        j[:, 1] *= 0.6  # less axial than lateral jitter
        self.jit = j
        self.slide = p.slide_mm / p.mm_per_px * self.act
        # PSF normalisation so that unit-amplitude speckle at the given density has unit RMS
        self.psf_norm = self._psf_norm()
        yy = np.arange(scene.H, dtype=float)
        hc, wc = (scene.H + _ATT_CELL - 1) // _ATT_CELL, (scene.W + _ATT_CELL - 1) // _ATT_CELL
        self.gain_db_coarse = cv2.resize(scene.gain_db, (wc, hc), interpolation=cv2.INTER_AREA)
        self.noise_level = (p.noise * 0.7 * scene.noise_gain).astype(np.float32)
        # PSF kernel truncated at ±3 sigma
        self.ksize = (2 * math.ceil(3 * scene.sig_x_focus) + 1, 2 * math.ceil(3 * scene.sig_z) + 1)
        self.extra_x = math.sqrt(1.0 + scene.sig_x_far**2 - scene.sig_x_focus**2)
        self.wfar = np.clip(np.abs(yy - scene.focus_y) / (0.6 * scene.H), 0, 1)[:, None]
        self._local = threading.local()
        self._prepare_points()

    def _psf_norm(self):
        sc = self.sc
        sx, sz = sc.sig_x_focus, sc.sig_z
        # sum of squares of a unit 2D Gaussian kernel with sigmas (sx, sz), incl. bilinear splat spread
        ssq = 1.0 / (4 * np.pi * math.sqrt((sx**2 + 1 / 6) * (sz**2 + 1 / 6)))
        return 1.0 / math.sqrt(sc.density * ssq)

    # ---- per-thread scratch buffers (avoid re-allocating ~100 MB of temporaries per frame) ----
    def _buf(self, name, shape, dtype=np.float64):
        bufs = self._local.__dict__.setdefault("bufs", {})
        arr = bufs.get(name)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = bufs[name] = np.empty(shape, dtype)
        return arr

    def _prepare_points(self):
        """Static per-scatterer arrays: rest image position and displacement bases."""
        sc = self.sc
        x0, y0 = sc.to_image(sc.u, sc.v)
        self.n_main = x0.size
        self.n_h = sc.h_w.size if sc.has_defect else 0
        self.n_b = sc.b_w.size if sc.has_defect else 0
        self.n_all = self.n_main + self.n_h + self.n_b
        amp = [sc.amp]
        ph0 = [sc.phase0]
        al = [sc.alpha]
        if sc.has_defect:
            amp.append(sc.h_amp)  # scaled per frame below
            ph0 += [sc.h_phase0, sc.b_phase0]
            amp.append(sc.b_amp)
            al += [np.full(self.n_h + self.n_b, 0.05)]
        self.x0, self.y0 = x0, y0
        self.ph0 = np.concatenate(ph0)
        self.amp_static = np.concatenate(amp) * self.psf_norm
        self.alpha_all = np.concatenate(al)
        # LUT-index offsets of each look's random phase (+0.5 for rounding)
        scale = _LUT_N / (2 * np.pi)
        self.ph_idx = [(look + 1) * self.ph0 * scale + 0.5 for look in range(_LOOKS)]
        self.k_idx = [sc.k2 * (1 - 0.15 * look) * scale for look in range(_LOOKS)]

    def points(self, i):
        """(x, y, amplitude) of every scatterer on frame i, in per-thread buffers."""
        sc = self.sc
        c = self.act[i]
        jx, jy = self.jit[i]
        slide = self.slide[i]
        R = sc.R_peak * c
        n, nm = self.n_all, self.n_main
        x = self._buf("x", (n,))
        y = self._buf("y", (n,))
        tmp = self._buf("tmp", (nm,))
        xm, ym = x[:nm], y[:nm]
        np.add(self.x0, jx, out=xm)
        np.add(self.y0, jy, out=ym)
        # u' = u + slide·ms + R·rf and v' = v + c·dv, rotated by the tilt
        for coef, arr in ((slide, sc.ms), (R, sc.rf), (c, sc.dv)):
            if coef == 0:
                continue
            cu, cv = (coef * sc.cos, coef * sc.sin) if arr is not sc.dv else (-coef * sc.sin, coef * sc.cos)
            np.multiply(arr, cu, out=tmp)
            xm += tmp
            np.multiply(arr, cv, out=tmp)
            ym += tmp
        amp = self.amp_static
        if sc.has_defect:
            amp = self._buf("amp", (n,))
            amp[:] = self.amp_static
            uL, uR = sc.stump_curves(c, slide)
            # haematoma: fills the space between the (frayed) stump ends
            hl = np.interp(sc.h_w, sc.wgrid, uL)
            hr = np.interp(sc.h_w, sc.wgrid, uR)
            hu = hl + sc.h_frac * (hr - hl)
            hv = sc.tissue_v(hu - slide, sc.h_w, c)
            hs = slice(nm, nm + self.n_h)
            x[hs], y[hs] = sc.to_image(hu, hv, jx, jy)
            amp[hs] *= np.sqrt(np.clip((hr - hl) / sc.h_wpeak, 0.05, 1.0))
            # floating echoes drift slowly within the fluid
            t = i / max(1.0, sc.p.fps)
            bf = np.clip(sc.b_frac + 0.06 * np.sin(0.9 * t + sc.b_drift[:, 0]), 0.05, 0.95)
            bw = sc.b_w + 0.03 * (sc.w1 - sc.w0) * np.sin(0.7 * t + sc.b_drift[:, 1])
            bl = np.interp(bw, sc.wgrid, uL)
            br = np.interp(bw, sc.wgrid, uR)
            bu = bl + bf * (br - bl) + sc.b_du
            bv = sc.tissue_v(bu - slide, bw, c) + sc.b_dv
            bs = slice(nm + self.n_h, n)
            x[bs], y[bs] = sc.to_image(bu, bv, jx, jy)
        return x, y, amp

    def _splat(self, x, y, amp, H, W):
        """Bilinear splat of the looks' complex amplitudes: returns (2·looks)×H×W float64."""
        n = x.size
        hw = H * W
        xf = self._buf("xf", (n,))
        yf = self._buf("yf", (n,))
        fx = self._buf("fx", (n,))
        fy = self._buf("fy", (n,))
        ok = self._buf("ok", (n,), bool)
        np.floor(x, out=xf)
        np.floor(y, out=yf)
        np.subtract(x, xf, out=fx)
        np.subtract(y, yf, out=fy)
        np.greater_equal(xf, 0, out=ok)
        ok &= xf < W - 1
        ok &= yf >= 0
        ok &= yf < H - 1
        # flat index of the top-left neighbour (0 for dropped points, whose weights are 0)
        yf *= W
        yf += xf
        yf *= ok
        idx = self._buf("idx", (4, n), np.intp)
        np.copyto(idx[0], yf, casting="unsafe")
        np.add(idx[0], 1, out=idx[1])
        np.add(idx[0], W, out=idx[2])
        np.add(idx[0], W + 1, out=idx[3])
        wts = self._buf("wts", (4, n))
        gy = self._buf("gy", (n,))
        np.subtract(1, fy, out=gy)
        gy *= ok
        fy *= ok
        gx = xf  # reuse: 1 - fx
        np.subtract(1, fx, out=gx)
        np.multiply(gx, gy, out=wts[0])
        np.multiply(fx, gy, out=wts[1])
        np.multiply(gx, fy, out=wts[2])
        np.multiply(fx, fy, out=wts[3])
        wts *= amp
        flat_idx = idx.reshape(-1)
        out = self._buf("iq", (2 * _LOOKS, H, W))
        ph = self._buf("ph", (n,))
        li = self._buf("li", (n,), np.intp)
        cs = self._buf("cs", (n,))
        wp = self._buf("wp", (4, n))
        for look in range(_LOOKS):
            # LUT index of the phase (look+1)·φ0 + 2k_look·y, rounded, modulo the table size
            np.multiply(y, self.k_idx[look], out=ph)
            ph += self.ph_idx[look]
            np.floor(ph, out=ph)
            np.copyto(li, ph, casting="unsafe")
            li &= _LUT_N - 1
            for part, table in enumerate((_LUT_COS, _LUT_SIN)):
                np.take(table, li, out=cs)
                np.multiply(wts, cs, out=wp)
                out[2 * look + part] = np.bincount(flat_idx, wp.reshape(-1), minlength=hw)[:hw].reshape(H, W)
        return out

    def frame(self, i) -> np.ndarray:
        import cv2

        sc, p = self.sc, self.sc.p
        H, W = sc.H, sc.W
        x, y, a = self.points(i)
        # two looks (spatial/frequency compounding): independent scatterer phases, carrier phase 2k·z
        iq = self._splat(x, y, a, H, W)
        n_planes = iq.shape[0]
        # PSF: axial pulse envelope × lateral beam (at focus; the widening with depth is applied
        # to the intensity below, which is cheaper and looks the same after compounding)
        for k in range(n_planes):
            cv2.GaussianBlur(iq[k], self.ksize, dst=iq[k], sigmaX=sc.sig_x_focus, sigmaY=sc.sig_z, borderType=cv2.BORDER_REFLECT)
        # attenuation along each beam line (coarse grid), compensated by the TGC for soft tissue
        f = _ATT_CELL
        hc, wc = (H + f - 1) // f, (W + f - 1) // f
        xa, ya, aa = x[::4], y[::4], self.alpha_all[::4]  # a quarter of the scatterers suffices here
        ok = (ya >= 0) & (ya < hc * f) & (xa >= 0) & (xa < W)
        cell = np.where(ok, (ya // f) * wc + np.minimum(xa // f, wc - 1), hc * wc).astype(np.intp)
        cnt = np.bincount(cell, minlength=hc * wc + 1)[: hc * wc]
        asum = np.bincount(cell, aa, minlength=hc * wc + 1)[: hc * wc]
        alpha = np.where(cnt > 0, asum / np.maximum(cnt, 1), _ALPHA_REF_DB_PER_MM).reshape(hc, wc)
        att_db = np.cumsum((alpha - _ALPHA_REF_DB_PER_MM) * f * p.mm_per_px, axis=0)
        att_db = np.minimum(att_db, 80.0)
        gain = self._buf("gain", (H, W))
        cv2.resize(np.power(10.0, (self.gain_db_coarse - att_db) / 20), (W, H), dst=gain, interpolation=cv2.INTER_LINEAR)
        rng = np.random.default_rng([p.seed, 2, i])
        # electronic noise, band-limited by the receiver (drawn at half resolution)
        hn, wn = (H + 1) // 2, (W + 1) // 2
        small = rng.standard_normal((n_planes, hn, wn), dtype=np.float32)
        noise = self._buf("noise", (H, W), np.float32)
        env2 = self._buf("env2", (H, W))
        env2.fill(0.0)
        for k in range(n_planes):
            plane = iq[k]
            plane *= gain
            cv2.resize(small[k], (W, H), dst=noise, interpolation=cv2.INTER_LINEAR)
            noise *= self.noise_level
            plane += noise
            plane *= plane
            env2 += plane
        env2 *= 1.0 / _LOOKS
        # beam widening away from the focus, plus mild video smoothing; then log compression
        far = self._buf("far", (H, W))
        g = self._buf("g", (H, W))
        cv2.GaussianBlur(env2, (0, 0), dst=far, sigmaX=self.extra_x, sigmaY=0.8, borderType=cv2.BORDER_REFLECT)
        cv2.GaussianBlur(env2, (0, 0), dst=g, sigmaX=1.0, sigmaY=0.8, borderType=cv2.BORDER_REFLECT)
        far -= g
        far *= self.wfar
        g += far
        g += 1e-12
        np.log10(g, out=g)
        g *= 10 * 255.0 / _DB_RANGE
        g += 0.5 - _DB_FLOOR * 255.0 / _DB_RANGE
        np.floor(g, out=g)
        np.clip(g, 0, 255, out=g)
        return g.astype(np.uint8)


def _truth(scene: _Scene, rend: _Renderer):
    p, sc = scene.p, scene
    n = p.n_frames
    s = p.mm_per_px
    gap = np.full(n, np.nan)
    ends = np.full((n, 2, 2), np.nan)
    polys = []
    # fascia lines: reference u samples across (and a little beyond) the image
    ur = np.linspace(-sc.W * 0.75, sc.W * 0.75, 241)
    fascia = np.empty((n, 2, ur.size, 2))
    for i in range(n):
        c = rend.act[i]
        jx, jy = rend.jit[i]
        slide = rend.slide[i]
        for k, w in enumerate((0.0, 1.0)):
            v = sc.tissue_v(ur, w, c)
            x, y = sc.to_image(ur + slide, v, jx, jy)
            fascia[i, k, :, 0], fascia[i, k, :, 1] = x, y
        if not sc.has_defect:
            polys.append(np.zeros((0, 2)))
            continue
        uL, uR = sc.stump_curves(c, slide)
        mL, mR = uL[sc.central].mean(), uR[sc.central].mean()
        gap[i] = (mR - mL) * s
        wm = 0.5 * (sc.w0 + sc.w1)
        um = 0.5 * (mL + mR)
        vm = sc.tissue_v(np.array(um - slide), wm, c)
        for k, uu in enumerate((mL, mR)):
            ends[i, k] = sc.to_image(uu, vm, jx, jy)
        vL = sc.tissue_v(uL - slide, sc.wgrid, c)
        vR = sc.tissue_v(uR - slide, sc.wgrid, c)
        xl, yl = sc.to_image(uL, vL, jx, jy)
        xr, yr = sc.to_image(uR, vR, jx, jy)
        polys.append(np.concatenate([np.stack([xl, yl], 1), np.stack([xr, yr], 1)[::-1]]))
    return gap, ends, fascia, tuple(polys)


def simulate(params: SynthParams | None = None, *, workers: int | None = None, **overrides) -> Phantom:
    """Simulate a B-mode cine loop with ground truth.

    Parameters
    ----------
    params
        Phantom parameters (default :class:`SynthParams()`); keyword ``overrides`` replace fields.
    workers
        Threads rendering frames in parallel (default: up to 2).  The result does not depend on it.

    Returns
    -------
    Phantom
        Frames (uint8 N×H×W) and per-frame ground truth.
    """
    if params is None:
        params = SynthParams(**overrides)
    elif overrides:
        from dataclasses import replace

        params = replace(params, **overrides)
    scene = _Scene(params)
    rend = _Renderer(scene)
    frames = np.empty((params.n_frames, params.rows, params.columns), np.uint8)
    nw = workers or min(2, os.cpu_count() or 1)

    def work(i):
        frames[i] = rend.frame(i)

    if nw > 1:
        with ThreadPoolExecutor(nw) as ex:
            list(ex.map(work, range(params.n_frames)))
    else:
        for i in range(params.n_frames):
            work(i)
    gap, ends, fascia, polys = _truth(scene, rend)
    t_ref = (scene.v_deep(scene.uc) - scene.v_sup(scene.uc)) * params.mm_per_px
    thickness = t_ref * (1 + params.thickening * rend.act)
    rest, peak = _key_frames(params.n_frames)
    frac = {"full": 1.0, "partial": float(params.partial_fraction), "none": 0.0}[params.tear]
    return Phantom(
        frames=frames,
        params=params,
        gap_mm=gap,
        stump_ends_px=ends,
        defect_thickness_fraction=frac,
        rest_frame=rest,
        contraction_frame=peak,
        classification=params.classification,
        activation=rend.act.copy(),
        jitter_px=rend.jit.copy(),
        fascia_px=fascia,
        defect_polygons=polys,
        muscle_thickness_mm=thickness,
    )


def render_frames(params: SynthParams, indices) -> np.ndarray:
    """Render only some frames of a loop (identical to the same frames of :func:`simulate`).

    Parameters
    ----------
    params
        Phantom parameters.
    indices
        Frame indices (0-based).

    Returns
    -------
    numpy.ndarray
        uint8 array len(indices)×H×W.
    """
    rend = _Renderer(_Scene(params))
    idx = [int(i) for i in indices]
    for i in idx:
        if not 0 <= i < params.n_frames:
            raise SynthError(f"frame {i} out of range (loop has {params.n_frames} frames)")
    out = np.empty((len(idx), params.rows, params.columns), np.uint8)
    for k, i in enumerate(idx):
        out[k] = rend.frame(i)
    return out


def calibration_for(params: SynthParams):
    """The :class:`~msus.calibration.Calibration` of a phantom: one 2D US region over the image."""
    from msus.calibration import Calibration, Region

    cm = params.mm_per_px / 10.0
    region = Region(
        index=0, x0=0, y0=0, x1=params.columns - 1, y1=params.rows - 1, delta_x=cm, delta_y=cm
    )
    return Calibration(source="us_region", regions=(region,), detail="phantom ultrasound region")


def simulate_cine(params: SynthParams | None = None, **overrides):
    """Simulate a loop and wrap it as a :class:`msus.cine.Cine` (calibrated, with timing).

    Returns
    -------
    msus.cine.Cine
        ``kind="synthetic"``; ``meta["truth"]`` holds :meth:`Phantom.to_dict`.
    """
    from msus.cine import Cine

    ph = simulate(params, **overrides)
    return Cine.from_frames(
        ph.frames,
        fps=ph.fps,
        calibration=calibration_for(ph.params),
        kind="synthetic",
        source_name=f"phantom ({ph.params.tear}, seed {ph.params.seed})",
        meta={"truth": ph.to_dict(), "manufacturer": "msus phantom"},
    )
