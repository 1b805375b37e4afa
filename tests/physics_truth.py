"""Ground truth of the physics-based test set (``physics_sim.py``): per pose the gap, stump ends,
defect thickness fraction and outline, muscle thickness, fascia mid-lines and ROI (px and mm)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from physics_sim import (DYNAMIC_RANGE_DB, POSES, PROBE, RX_FNUMBER, SIMUS_OPTIONS, Case, Geometry, Grid, Phantom,
                         axial_motion, probe_param)


def _px_list(grid: Grid, geo: Geometry, s, t) -> list:
    x, z = geo.to_world(s, t)
    return [[round(float(c), 2), round(float(r), 2)] for c, r in grid.to_px(x, z)]


def pose_truth(ph: Phantom, f: float, grid: Grid) -> dict:
    """Ground truth of one pose (see docs/architecture.md "Words we use" for gap and thickness)."""
    c, geo = ph.case, Geometry(ph.case)
    T = c.thickness_mm
    grow = 1 + c.thickening * f
    Tp = T * grow
    p0, p1 = grid.to_px(*geo.to_world(0.0, 0.0)), grid.to_px(*geo.to_world(0.0, Tp))
    ss = np.arange(-30.0, 30.01, 0.5)
    inside = lambda pts: [q for q in pts if -0.5 <= q[0] <= grid.width - 0.5]  # noqa: E731
    sup, deep = inside(_px_list(grid, geo, ss, 0 * ss)), inside(_px_list(grid, geo, ss, 0 * ss + Tp))
    rows = [q[1] for q in sup + deep]
    out = {
        "activation": f,
        "muscle_thickness_mm": round(Tp, 4),
        "muscle_thickness_px": round(float(np.hypot(*(p1 - p0))), 3),
        "superficial_fascia_px": sup,
        "deep_fascia_px": deep,
        "roi_px": [0, max(0, int(min(rows)) - 10), grid.width - 1, min(grid.height - 1, int(max(rows)) + 11)],
        "gap_mm": None,
        "stump_ends_px": None,
        "defect_thickness_fraction": 0.0,
        "defect_outline_px": None,
        "defect_length_mm": None,
    }
    if ph.tear is not None:
        out.update(_full_tear_truth(ph, f, grid, geo, Tp))
    elif ph.partial_depth is not None:
        out.update(_partial_truth(ph, f, grid, geo))
    return out


def _full_tear_truth(ph, f, grid, geo, Tp):
    T = ph.case.thickness_mm
    band = np.linspace(0.25 * T, 0.75 * T, 201)  # central half of the torn depth (rest coordinates)
    lo, hi = ph.tear.ends(band, f)
    tt = np.linspace(0, T, 61)
    l_all, r_all = ph.tear.ends(tt, f)
    grow = Tp / T
    outline = _px_list(grid, geo, l_all, tt * grow) + _px_list(grid, geo, r_all[::-1], tt[::-1] * grow)
    ends = _px_list(grid, geo, np.array([lo.mean(), hi.mean()]), np.array([Tp / 2, Tp / 2]))
    return {
        "gap_mm": round(float((hi - lo).mean()), 4),
        "stump_ends_px": ends,
        "defect_thickness_fraction": 1.0,
        "defect_outline_px": outline,
        "defect_length_mm": round(float((hi - lo).mean()), 4),
    }


def _partial_truth(ph, f, grid, geo):
    c = ph.case
    T, grow = c.thickness_mm, 1 + c.thickening * f
    ss = np.linspace(c.tear_s_mm - c.partial_length_mm / 2, c.tear_s_mm + c.partial_length_mm / 2, 81)
    d = ph.partial_depth(ss)
    ss, d = ss[d > 0], d[d > 0]
    base = np.zeros_like(ss) if c.partial_side == "superficial" else np.full_like(ss, T)
    tip = d if c.partial_side == "superficial" else T - d
    sp = axial_motion(c, ss, f)
    outline = _px_list(grid, geo, sp, base * grow) + _px_list(grid, geo, sp[::-1], tip[::-1] * grow)
    return {
        "defect_thickness_fraction": round(float(d.max() / T), 4),
        "defect_outline_px": outline,
        "defect_length_mm": round(float(sp[-1] - sp[0]), 4),
    }


def generator_info(case: Case, grid: Grid) -> dict:
    from importlib.metadata import version

    p = probe_param()
    return {
        "simulator": "pymust " + version("pymust"),
        "script": "tests/physics_sim.py",
        "probe": PROBE,
        "fc_hz": float(p.fc),
        "n_elements": int(p.Nelements),
        "pitch_m": float(p.pitch),
        "bandwidth_pct": float(p.bandwidth),
        "fs_hz": float(p.fs),
        "transmits": "steered plane waves, coherently compounded",
        "angles_deg": list(case.angles_deg),
        "rx_fnumber": RX_FNUMBER,
        "simus_options": SIMUS_OPTIONS,
        "density_per_mm2": case.density_per_mm2,
        "rf_noise_db": case.noise_db,
        "log_compression": f"{DYNAMIC_RANGE_DB:g} dB; 0 dB at the rest pose's median envelope + 30 dB",
        "grid": asdict(grid),
        "case_params": asdict(case),
    }


def case_truth(ph: Phantom, grid: Grid) -> dict:
    c = ph.case
    cls = {"full": "suspected_full_thickness", "partial": "partial", "none": "no_defect"}[c.tear]
    return {
        "case": c.case_id,
        "generator": generator_info(c, grid),
        "mm_per_px_x": grid.mm_x,
        "mm_per_px_y": grid.mm_y,
        "width_px": grid.width,
        "height_px": grid.height,
        "tear": c.tear,
        "classification": cls,
        "haematoma_amplitude_ratio": c.haematoma_ratio,
        "tilt_deg": c.tilt_deg,
        "rest_pose": 0,
        "peak_pose": len(POSES) - 1,
        "poses": [pose_truth(ph, f, grid) for f in POSES],
    }
