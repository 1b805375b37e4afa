"""Loader of the physics-based test set (``tests/data/physics``, made by ``tests/physics_sim.py``).

``cases()`` lists the shipped cases; each becomes a real :class:`msus.cine.Cine` by encoding its
frames as a calibrated US multi-frame DICOM (one 2D tissue region, PhysicalDeltaX/Y from the
truth, FrameTime) and opening the bytes with :func:`msus.load`:

* ``three_pose(case)``: rest / half-way / peak as a 3-frame loop (``swapped=True``: peak first);
* ``held_loop(case, seed)``: the poses held as an 11–14-frame loop (rest held, a transition, peak
  held, maybe back; ``start="peak"`` starts contracted), every frame with fresh electronic noise
  (added to the envelope: grey -> linear envelope, + complex Gaussian noise, -> grey again) and a
  slowly varying sub-pixel probe drift (``cv2.warpAffine``, bilinear).

Every loop comes with its per-frame truth (gap, rest and peak frames, muscle thickness, ...).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from msus.synth.dicom import TissueRegion, dicom_bytes, us_multiframe_dataset  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "physics"
DYNAMIC_RANGE_DB = 50.0  # as physics_sim.DYNAMIC_RANGE_DB (the grey <-> envelope mapping)
THREE_POSE_FPS = 10.0
HELD_FPS = 20.0
NOISE_DB = -40.0  # electronic noise of held loops, relative to the envelope that maps to 255
MAX_DRIFT_PX = 0.6  # probe drift stays sub-pixel
# pose of each frame (0 rest, 1 half-way, 2 peak), lengths 11–14
PATTERNS = (
    (0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 1, 0, 0),
    (0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 1, 0),
    (0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2),
    (0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 1, 0),
)


@dataclass(frozen=True)
class Case:
    id: str
    truth: dict
    path: Path

    def pose(self, k: int) -> np.ndarray:
        """Pose ``k`` (0 rest, 1 half-way, 2 peak) as the shipped uint8 grey image."""
        return _pose_png(str(self.path / f"pose{k}.png"))


@dataclass(frozen=True)
class Loop:
    """A loop of a case opened through ``msus.load`` and its per-frame truth."""

    cine: object  # msus.cine.Cine
    case: Case
    poses: tuple  # pose index of every frame
    gap_mm: tuple  # per frame, None without a full tear
    muscle_thickness_mm: tuple
    rest_frames: tuple  # frames where the rest pose is held
    peak_frames: tuple
    drift_px: tuple  # (dx, dy) probe drift of every frame
    classification: str
    tear: str
    defect_thickness_fraction: float
    fps: float
    dicom: bytes


@lru_cache(maxsize=64)
def _pose_png(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 2:
        raise FileNotFoundError(f"not a grey PNG: {path}")
    img.setflags(write=False)
    return img


def cases(root: Path = DATA) -> list[Case]:
    """The shipped cases, sorted by id."""
    out = []
    for d in sorted(p for p in Path(root).glob("*") if (p / "truth.json").is_file()):
        out.append(Case(d.name, json.loads((d / "truth.json").read_text()), d))
    return out


def _load(frames: np.ndarray, case: Case, fps: float):
    import msus

    t = case.truth
    h, w = frames.shape[1:3]
    region = TissueRegion((0, 0, w - 1, h - 1), t["mm_per_px_x"] / 10.0, t["mm_per_px_y"] / 10.0)
    data = dicom_bytes(us_multiframe_dataset(frames, fps=fps, region=region, patient="Physics^Phantom"))
    return msus.load(data), data


def _loop(case: Case, frames, poses, drift, fps) -> Loop:
    cine, data = _load(np.stack(frames), case, fps)
    t = case.truth
    per = t["poses"]
    rest, peak = t["rest_pose"], t["peak_pose"]
    return Loop(
        cine=cine,
        case=case,
        poses=tuple(poses),
        gap_mm=tuple(per[k]["gap_mm"] for k in poses),
        muscle_thickness_mm=tuple(per[k]["muscle_thickness_mm"] for k in poses),
        rest_frames=tuple(i for i, k in enumerate(poses) if k == rest),
        peak_frames=tuple(i for i, k in enumerate(poses) if k == peak),
        drift_px=tuple(tuple(d) for d in drift),
        classification=t["classification"],
        tear=t["tear"],
        defect_thickness_fraction=max(p["defect_thickness_fraction"] for p in per),
        fps=fps,
        dicom=data,
    )


def three_pose(case: Case, *, swapped: bool = False) -> Loop:
    """Rest, half-way, peak as a 3-frame loop (``swapped``: peak, half-way, rest)."""
    poses = (2, 1, 0) if swapped else (0, 1, 2)
    return _loop(case, [case.pose(k) for k in poses], poses, [(0.0, 0.0)] * 3, THREE_POSE_FPS)


def add_noise(grey: np.ndarray, rng, noise_db: float = NOISE_DB, dr_db: float = DYNAMIC_RANGE_DB) -> np.ndarray:
    """Electronic noise in the envelope domain: grey -> envelope (255 = 1.0), + complex Gaussian
    noise of RMS ``noise_db``, -> log-compressed grey again."""
    env = 10.0 ** ((grey.astype(float) / 255.0 - 1.0) * dr_db / 20.0)
    sigma = 10.0 ** (noise_db / 20.0) / np.sqrt(2.0)
    noisy = np.abs(env + sigma * (rng.standard_normal(env.shape) + 1j * rng.standard_normal(env.shape)))
    db = 20.0 * np.log10(np.maximum(noisy, 1e-12))
    return np.clip(np.round(255.0 * (1.0 + db / dr_db)), 0, 255).astype(np.uint8)


def drift_path(n: int, rng, max_px: float = MAX_DRIFT_PX) -> np.ndarray:
    """A slowly varying sub-pixel probe drift (n × 2, px): a fraction of a sine cycle per axis."""
    t = np.linspace(0.0, 1.0, n)
    out = np.empty((n, 2))
    for j, amp in enumerate((max_px, 0.7 * max_px)):
        ph, cyc = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.8)
        d = np.sin(2 * np.pi * cyc * t + ph)
        out[:, j] = amp * rng.uniform(0.5, 1.0) * (d - d[0])
    return np.clip(out, -max_px, max_px)


def shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def held_loop(case: Case, seed: int, *, start: str = "rest") -> Loop:
    """The poses held as an 11–14-frame loop with electronic noise and sub-pixel probe drift.

    ``start="peak"`` swaps rest and peak in the sequence (a loop that starts contracted).
    """
    if start not in ("rest", "peak"):
        raise ValueError(f"start must be 'rest' or 'peak', not {start!r}")
    rng = np.random.default_rng([seed, sum(map(ord, case.id))])
    poses = PATTERNS[seed % len(PATTERNS)]
    if start == "peak":
        poses = tuple(2 - k for k in poses)
    drift = drift_path(len(poses), rng)
    frames = [add_noise(shift(case.pose(k), *d), rng) for k, d in zip(poses, drift)]
    return _loop(case, frames, poses, drift.round(4).tolist(), HELD_FPS)
