"""Physics-based test set for the tear analysis: scatterers imaged by a simulated linear array.

This is a *test-data generator* (never imported by ``msus``).  It uses PyMUST (PyPI ``pymust``,
LGPL-3.0, the Python port of the MUST toolbox by D. Garcia) to simulate what a linear-array
transducer records: point scatterers with random reflection coefficients, an L11-5v probe
(7.6 MHz, ``pymust.getparam``; its central 104 of 128 elements), steered plane-wave transmits with
``pymust.simus`` (2-D, no elevation), I/Q demodulation (``rf2iq``), delay-and-sum beamforming
(``dasmtx``), coherent compounding of the steered transmits, envelope and log compression to a
uint8 grey B-mode image.

Anatomy (material coordinates ``s`` along the muscle's long axis, ``t`` across it, mm; ``t = 0``
is the superficial fascia's ridge, ``t = T`` the deep one's):

* subcutaneous layer (weak scatter, a few bright septa), superficial and deep fascia (thin,
  strongly scattering bands, tilted by ``tilt_deg`` and gently curved by ``curvature``), a
  deeper muscle below;
* pennate muscle: scatterer amplitude modulated along oblique fibre septa (perimysium);
* a full-thickness tear (two stumps with frayed ends and a haematoma between them whose scatter
  amplitude is ``haematoma_ratio`` times the muscle's between its septa) or a partial tear
  (a haematoma-filled defect under one fascia) or intact muscle.

Poses 0 / 1 / 2 = rest / half-way / peak contraction.  The *same* scatterers move with the
tissue: intact muscle shortens smoothly along its axis (a displacement gradient) and thickens;
in a full tear the two stumps retract away from the tear while the clot between them moves with
neither; in a partial tear the muscle moves as one piece and the defect does not open.

Regenerate the shipped set (10 cases × 3 poses; 30 min measured with 2 jobs on 2 busy cores)::

    nice -n 15 python tests/physics_sim.py --out tests/data/physics --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

PROBE = "L11-5v"
MM_PER_PX_X = 0.118
MM_PER_PX_Y = 0.110
WIDTH = HEIGHT = 256
TOP_MM = 2.0  # depth of the first image row
DYNAMIC_RANGE_DB = 50.0
POSES = (0.0, 0.5, 1.0)  # activation of the rest, half-way and peak poses


@dataclass(frozen=True)
class Grid:
    """The image grid: ``width`` × ``height`` pixels, pixel centres in mm."""

    width: int = WIDTH
    height: int = HEIGHT
    mm_x: float = MM_PER_PX_X
    mm_y: float = MM_PER_PX_Y
    top_mm: float = TOP_MM

    def x_mm(self) -> np.ndarray:
        return (np.arange(self.width) - (self.width - 1) / 2) * self.mm_x

    def z_mm(self) -> np.ndarray:
        return self.top_mm + np.arange(self.height) * self.mm_y

    def to_px(self, x_mm, z_mm) -> np.ndarray:
        col = np.asarray(x_mm) / self.mm_x + (self.width - 1) / 2
        row = (np.asarray(z_mm) - self.top_mm) / self.mm_y
        return np.stack([col, row], axis=-1)


@dataclass(frozen=True)
class Case:
    """One simulated case (all lengths in mm, angles in degrees)."""

    case_id: str
    tear: str  # full / partial / none
    seed: int
    haematoma_ratio: float | None = None
    tilt_deg: float = 0.0
    curvature: float = 0.0  # fasciae bend by curvature * s**2 (1/mm)
    depth_mm: float = 7.5  # superficial fascia ridge at the image centre
    thickness_mm: float = 13.0  # fascia ridge to ridge at rest
    thickening: float = 0.05  # relative thickening at peak
    shortening: float = 0.06  # axial strain of intact muscle at peak
    pennation_deg: float = 18.0
    rest_gap_mm: float = 0.0  # full tear: nominal gap at rest
    peak_gap_mm: float = 0.0  # full tear: nominal gap at peak
    tear_s_mm: float = 0.0  # where along the axis the tear is centred
    partial_side: str = "superficial"
    partial_fraction: float = 0.0
    partial_length_mm: float = 0.0
    fray_mm: float = 0.5
    density_per_mm2: float = 12.0
    angles_deg: tuple = (-6.0, 0.0, 6.0)
    noise_db: float = -45.0  # electronic noise in the RF, relative to the muscle echo


def _catalogue() -> list[Case]:
    return [
        Case("full_iso033", "full", 101, haematoma_ratio=0.33, rest_gap_mm=3.5, peak_gap_mm=9.0),
        Case("full_iso050", "full", 102, haematoma_ratio=0.5, rest_gap_mm=5.0, peak_gap_mm=11.5, tear_s_mm=1.5),
        Case("full_iso066", "full", 103, haematoma_ratio=0.66, rest_gap_mm=6.5, peak_gap_mm=13.5, tear_s_mm=-1.0),
        Case("full_dark", "full", 104, haematoma_ratio=0.08, rest_gap_mm=4.5, peak_gap_mm=10.5),
        Case("full_tilt_p10", "full", 105, haematoma_ratio=0.5, tilt_deg=10.0, rest_gap_mm=4.0, peak_gap_mm=10.0,
             depth_mm=8.5, thickness_mm=12.0),
        Case("full_curved", "full", 106, haematoma_ratio=0.4, curvature=0.006, rest_gap_mm=5.5, peak_gap_mm=12.0,
             depth_mm=7.0),
        Case("partial_sup35", "partial", 201, haematoma_ratio=0.15, partial_side="superficial",
             partial_fraction=0.35, partial_length_mm=5.0),
        Case("partial_deep65", "partial", 202, haematoma_ratio=0.3, partial_side="deep",
             partial_fraction=0.65, partial_length_mm=5.5, tear_s_mm=1.0),
        Case("partial_tilt_m10", "partial", 203, haematoma_ratio=0.25, tilt_deg=-10.0, partial_side="superficial",
             partial_fraction=0.4, partial_length_mm=4.5, depth_mm=8.5, thickness_mm=12.0),
        Case("intact_flat", "none", 301, thickening=0.05, shortening=0.06),
        Case("intact_tilt_m10", "none", 302, tilt_deg=-10.0, thickening=0.05, shortening=0.07, depth_mm=8.5,
             thickness_mm=12.0),
        Case("intact_tilt_p10", "none", 303, tilt_deg=10.0, thickening=0.06, shortening=0.05, depth_mm=8.5,
             thickness_mm=12.5, pennation_deg=22.0),
        Case("intact_curved", "none", 304, curvature=-0.005, thickening=0.05, shortening=0.06, depth_mm=9.0,
             thickness_mm=12.0),
    ]


def default_cases() -> list[Case]:
    """The shipped set: 10 cases × 3 poses (the two of the first commit rendered first)."""
    first = ("full_iso050", "intact_flat")
    skip = ("full_curved", "partial_tilt_m10", "intact_curved")  # optional extras (--cases to render them)
    return sorted([x for x in _catalogue() if x.case_id not in skip], key=lambda x: x.case_id not in first)


def all_cases() -> list[Case]:
    return default_cases() + [x for x in _catalogue() if x.case_id not in {y.case_id for y in default_cases()}]


# ---------------------------------------------------------------- geometry
class Geometry:
    """Material (s, t) <-> world (x, z) in mm: world = O + s*u + (t + curvature*s^2)*n."""

    def __init__(self, case: Case):
        th = np.deg2rad(case.tilt_deg)
        self.u = np.array([np.cos(th), np.sin(th)])
        self.n = np.array([-np.sin(th), np.cos(th)])
        self.o = np.array([0.0, case.depth_mm])
        self.k = case.curvature

    def to_world(self, s, t):
        s, t = np.asarray(s, float), np.asarray(t, float)
        off = t + self.k * s**2
        return self.o[0] + s * self.u[0] + off * self.n[0], self.o[1] + s * self.u[1] + off * self.n[1]

    def to_material(self, x, z):
        dx, dz = np.asarray(x) - self.o[0], np.asarray(z) - self.o[1]
        s = dx * self.u[0] + dz * self.u[1]
        return s, dx * self.n[0] + dz * self.n[1] - self.k * s**2


def _smooth_profile(rng, n_terms=4, amp=0.5, scale=4.0):
    """A smooth random function f(t) (mm), sum of a few sinusoids plus finer jitter."""
    k = rng.uniform(0.5, 2.5, n_terms) * 2 * np.pi / scale
    ph = rng.uniform(0, 2 * np.pi, n_terms)
    a = rng.normal(0, amp / np.sqrt(n_terms), n_terms)
    kf = rng.uniform(6, 12, 3) * 2 * np.pi / scale
    pf = rng.uniform(0, 2 * np.pi, 3)

    def f(t):
        t = np.asarray(t, float)[..., None]
        return (a * np.sin(k * t + ph)).sum(-1) + 0.12 * amp * np.sin(kf * t + pf).sum(-1)

    return f


class Tear:
    """Stump-end profiles and retraction of a full tear (material coordinates)."""

    def __init__(self, case: Case, rng):
        self.case = case
        fl = _smooth_profile(rng, amp=case.fray_mm)
        fr = _smooth_profile(rng, amp=case.fray_mm)
        half = case.rest_gap_mm / 2
        c = case.tear_s_mm
        self.left = lambda t: c - half + fl(t)
        self.right = lambda t: c + half + fr(t)
        self._fix_min_gap()
        share = rng.uniform(0.4, 0.6)
        extra = case.peak_gap_mm - case.rest_gap_mm
        self.d_left, self.d_right = extra * share, extra * (1 - share)

    def _fix_min_gap(self):
        t = np.linspace(0, self.case.thickness_mm, 400)
        gmin = (self.right(t) - self.left(t)).min()
        if gmin < 1.0:  # keep the stumps apart everywhere
            r = self.right
            self.right = lambda tt, r=r, d=1.0 - gmin: r(tt) + d

    def stump_shift(self, side: str, f: float) -> float:
        return -self.d_left * f if side == "left" else self.d_right * f

    def ends(self, t_rest, f):
        """Deformed stump-end positions s' at rest depths ``t_rest`` for activation ``f``."""
        return self.left(t_rest) + self.stump_shift("left", f), self.right(t_rest) + self.stump_shift("right", f)


def _partial_depth(case: Case, rng):
    """Partial defect: depth extent d(s) (mm, from its fascia) over its length, frayed edges."""
    T, L, c = case.thickness_mm, case.partial_length_mm, case.tear_s_mm
    edge = _smooth_profile(rng, amp=0.25, scale=2.0)
    fd = case.partial_fraction * T

    def depth(s):
        s = np.asarray(s, float)
        q = np.clip(1 - (2 * (s - c) / L) ** 2, 0, None)
        d = fd * np.minimum(1.0, 1.8 * np.sqrt(q)) + edge(s) * (q > 0)
        return np.clip(d, 0, fd)

    return depth


# ---------------------------------------------------------------- tissue
FASCIA_AMP, FASCIA_SIGMA_MM = 8.0, 0.28
SUBCUT_AMP, DEEP_AMP = 0.45, 0.8
KIND_STATIC, KIND_MUSCLE_LEFT, KIND_MUSCLE_RIGHT, KIND_MUSCLE, KIND_DEEP, KIND_CLOT = range(6)
FIELD_MARGIN_MM = 2.5  # scatterers this far beyond the image sides (steered transmits reach them)


def _septa(s, t, rng, angle_deg, spacing, width=0.08, gain=2.0):
    """Amplitude multiplier of fibre septa at angle ``angle_deg`` to the axis (wavy, jittered)."""
    a = np.deg2rad(angle_deg)
    q = s * np.sin(a) + t * np.cos(a) + 0.15 * np.sin(2 * np.pi * s / 7.0 + rng.uniform(0, 6.3))
    idx = np.round(q / spacing)
    jitter = np.random.default_rng(int(rng.integers(1 << 30))).uniform(0.5, 1.3, 4096)
    dq = q - idx * spacing
    return 1.0 + gain * jitter[(idx.astype(int)) % 4096] * np.exp(-0.5 * (dq / width) ** 2)


@dataclass
class Phantom:
    """Scatterers in the rest configuration with their material coordinates and kinds."""

    case: Case
    s: np.ndarray
    t: np.ndarray
    kind: np.ndarray
    rc: np.ndarray
    tear: Tear | None
    partial_depth: object | None


def make_phantom(case: Case, grid: Grid = Grid()) -> Phantom:
    rng = np.random.default_rng(case.seed)
    geo = Geometry(case)
    T = case.thickness_mm
    z0, z1 = grid.top_mm - 1.5, grid.z_mm()[-1] + 1.0
    half = grid.x_mm()[-1] + FIELD_MARGIN_MM
    n = int(case.density_per_mm2 * 2 * half * (z1 - z0))
    x = rng.uniform(-half, half, n)
    z = rng.uniform(z0, z1, n)
    s, t = geo.to_material(x, z)
    tear = Tear(case, rng) if case.tear == "full" else None
    pdepth = _partial_depth(case, rng) if case.tear == "partial" else None
    amp = np.zeros(n)
    kind = np.full(n, KIND_STATIC)
    sub = t < 0
    amp[sub] = SUBCUT_AMP * _septa(s[sub], t[sub], rng, 20.0, 2.7, width=0.1, gain=4.0)
    mus = (t >= 0) & (t <= T)
    amp[mus] = _septa(s[mus], t[mus], rng, case.pennation_deg, 0.9)
    kind[mus] = KIND_MUSCLE
    deep = t > T
    amp[deep] = DEEP_AMP * _septa(s[deep], t[deep] - T, rng, -8.0, 1.3, gain=1.5)
    kind[deep] = KIND_DEEP
    ratio = case.haematoma_ratio
    if tear is not None:
        left = mus & (s <= tear.left(t))
        right = mus & (s >= tear.right(t))
        kind[left], kind[right] = KIND_MUSCLE_LEFT, KIND_MUSCLE_RIGHT
        keep = ~(mus & ~left & ~right)  # the rest gap is refilled by the clot below
        s, t, kind, amp = s[keep], t[keep], kind[keep], amp[keep]
        s, t, kind, amp = _add_clot(case, tear, rng, s, t, kind, amp)
    elif pdepth is not None:
        d = pdepth(s)
        inside = (t < d) if case.partial_side == "superficial" else (t > T - d)
        inside &= (kind == KIND_MUSCLE) & (d > 0)
        amp[inside] = ratio * _smooth_field(s[inside], t[inside], rng)
    fascia = FASCIA_AMP * (np.exp(-0.5 * (t / FASCIA_SIGMA_MM) ** 2) + np.exp(-0.5 * ((t - T) / FASCIA_SIGMA_MM) ** 2))
    amp = amp + fascia
    near_sup = np.abs(t) < 3 * FASCIA_SIGMA_MM
    kind[near_sup] = KIND_STATIC
    kind[np.abs(t - T) < 3 * FASCIA_SIGMA_MM] = KIND_DEEP
    rc = amp * rng.standard_normal(len(amp))
    return Phantom(case, s, t, kind, rc, tear, pdepth)


def _smooth_field(s, t, rng, depth=0.2):
    """Mild (±depth) smooth heterogeneity of a clot's scatter amplitude."""
    k = rng.uniform(0.5, 1.5, (3, 2))
    ph = rng.uniform(0, 2 * np.pi, 3)
    v = sum(np.sin(k[i, 0] * s + k[i, 1] * t + ph[i]) for i in range(3)) / 3
    return 1.0 + depth * v


def _add_clot(case, tear, rng, s, t, kind, amp):
    """Clot scatterers over the widest (peak) gap; each pose keeps those between its stumps."""
    T = case.thickness_mm
    tt = np.linspace(0, T, 200)
    lo, hi = tear.ends(tt, 1.0)
    s0, s1 = lo.min(), hi.max()
    n = int(case.density_per_mm2 * (s1 - s0) * T)
    cs = rng.uniform(s0, s1, n)
    ct = rng.uniform(0, T, n)
    ca = case.haematoma_ratio * _smooth_field(cs, ct, rng)
    return (np.concatenate([s, cs]), np.concatenate([t, ct]), np.concatenate([kind, np.full(n, KIND_CLOT)]),
            np.concatenate([amp, ca]))


def deform(ph: Phantom, f: float):
    """Deformed material coordinates (s', t') of every scatterer at activation ``f`` and a mask of
    the scatterers present (clot hidden under a stump is dropped)."""
    c = ph.case
    T = c.thickness_mm
    s, t, kind = ph.s, ph.t, ph.kind
    s2, t2 = s.copy(), t.copy()
    grow = 1 + c.thickening * f
    musc = np.isin(kind, (KIND_MUSCLE, KIND_MUSCLE_LEFT, KIND_MUSCLE_RIGHT, KIND_CLOT))
    t2[musc] = t[musc] * grow
    deep = kind == KIND_DEEP
    t2[deep] = t[deep] + T * (grow - 1)
    m = kind == KIND_MUSCLE
    s2[m] = axial_motion(c, s[m], f)
    keep = np.ones(len(s), bool)
    if ph.tear is not None:
        for k, side in ((KIND_MUSCLE_LEFT, "left"), (KIND_MUSCLE_RIGHT, "right")):
            sel = kind == k
            s2[sel] = s[sel] + ph.tear.stump_shift(side, f)
        cl = kind == KIND_CLOT
        lo, hi = ph.tear.ends(t[cl], f)
        keep[cl] = (s[cl] > lo) & (s[cl] < hi)
    return s2, t2, keep


ANCHOR_MM = -30.0  # intact/partial muscle shortens towards this point on its axis


def axial_motion(case: Case, s, f):
    """Smooth shortening along the axis: a displacement gradient, no step."""
    return ANCHOR_MM + (np.asarray(s) - ANCHOR_MM) * (1 - case.shortening * f)


# ---------------------------------------------------------------- imaging
def probe_param():
    import pymust

    p = pymust.getparam(PROBE)
    p.fs = 4 * p.fc
    p.c = 1540.0
    p.fnumber = RX_FNUMBER
    p.Nelements = N_ELEMENTS  # the central elements: an aperture as wide as the image
    return p


N_ELEMENTS = 104  # of the L11-5v's 128 (31.2 mm aperture for the 30.2 mm wide image)
RX_FNUMBER = 1.5  # receive f-number of the delay-and-sum beamformer
SIMUS_OPTIONS = {"dBThresh": -30, "ElementSplitting": 1, "WaitBar": False}


def simus_options():
    from pymust import utils

    o = utils.Options()
    for k, v in SIMUS_OPTIONS.items():
        o[k] = v
    return o


def rf_samples(grid: Grid) -> int:
    """Fixed RF length (samples) for every pose: the round trip to below the image, plus margin."""
    p = probe_param()
    depth_m = (grid.z_mm()[-1] + 3.0) / 1e3
    return int(np.ceil(2 * np.hypot(depth_m, 0.04) / p.c * p.fs))


def beamform_envelope(x_mm, z_mm, rc, case: Case, grid: Grid, noise_seed: int, _cache={}) -> np.ndarray:
    """Compounded plane-wave DAS image (complex I/Q summed over the steered transmits) -> envelope."""
    import pymust

    xi, zi = np.meshgrid(grid.x_mm() / 1e3, grid.z_mm() / 1e3)
    rng = np.random.default_rng(noise_seed)
    n = rf_samples(grid)
    iq_sum = np.zeros(xi.shape, complex)
    for a in case.angles_deg:
        p = probe_param()
        tx = pymust.txdelay(p, np.deg2rad(a))
        rf = pymust.simus(x_mm / 1e3, z_mm / 1e3, rc, tx, p, simus_options())
        rf = rf[0] if isinstance(rf, tuple) else rf
        rf = np.pad(rf, ((0, max(0, n - len(rf))), (0, 0)))[:n]
        noise = 10 ** (case.noise_db / 20) * np.sqrt(np.mean(rf**2))
        rf = rf + rng.standard_normal(rf.shape) * noise
        iq = pymust.rf2iq(rf, p)
        key = (a, iq.shape, grid)
        if key not in _cache:
            _cache[key] = pymust.dasmtx(1j * np.array(iq.shape), xi, zi, tx, probe_param())
        iq_sum += (_cache[key] @ iq.flatten(order="F")).reshape(xi.shape, order="F")
    return np.abs(iq_sum)


def log_compress(env: np.ndarray, ref: float, dr_db: float = DYNAMIC_RANGE_DB) -> np.ndarray:
    """Envelope -> uint8 grey; ``ref`` maps to 255, ``ref`` - ``dr_db`` to 0."""
    db = 20 * np.log10(np.maximum(env, 1e-30) / ref)
    return np.clip(np.round(255 * (1 + db / dr_db)), 0, 255).astype(np.uint8)


def render_pose(ph: Phantom, f: float, grid: Grid, pose_index: int) -> np.ndarray:
    s2, t2, keep = deform(ph, f)
    x, z = Geometry(ph.case).to_world(s2[keep], t2[keep])
    return beamform_envelope(x, z, ph.rc[keep], ph.case, grid, ph.case.seed * 10 + pose_index)


# ---------------------------------------------------------------- the set
def _render_task(args):
    case, k, grid = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.time()
    env = render_pose(make_phantom(case, grid), POSES[k], grid, k)
    return case.case_id, k, env, time.time() - t0


def write_case(out: Path, case: Case, grid: Grid, envs: list) -> None:
    import cv2

    d = out / case.case_id
    d.mkdir(parents=True, exist_ok=True)
    ref = float(np.median(envs[0])) * 10 ** (30 / 20)
    for k, env in enumerate(envs):
        cv2.imwrite(str(d / f"pose{k}.png"), log_compress(env, ref), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    from physics_truth import case_truth

    truth = case_truth(make_phantom(case, grid), grid)
    (d / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")


def main(argv=None) -> int:
    import logging
    from multiprocessing import Pool

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "physics")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cases", nargs="*", help="case ids (default: all)")
    a = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # pymust warns through the root logger
    grid = Grid()
    cases = [c for c in all_cases() if c.case_id in a.cases] if a.cases else default_cases()
    tasks = [(c, k, grid) for c in cases for k in range(len(POSES))]
    done: dict = {}
    t0 = time.time()
    with Pool(a.jobs) as pool:
        for cid, k, env, dt in pool.imap_unordered(_render_task, tasks):
            print(f"{cid} pose{k}: {dt:.0f} s", flush=True)
            done.setdefault(cid, {})[k] = env
            if len(done[cid]) == len(POSES):
                case = next(c for c in cases if c.case_id == cid)
                write_case(a.out, case, grid, [done[cid][i] for i in range(len(POSES))])
                del done[cid]
    print(f"{len(tasks)} frames in {time.time() - t0:.0f} s with {a.jobs} jobs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
