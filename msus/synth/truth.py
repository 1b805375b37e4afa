"""Ground truth of a phantom loop: :class:`Phantom` and the per-frame gap, stump ends, fascia."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from msus.synth.params import SynthParams
from msus.synth.render import Renderer
from msus.synth.scene import Scene


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


def truth(scene: Scene, rend: Renderer):
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
