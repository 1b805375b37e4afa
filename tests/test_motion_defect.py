"""msus.analysis motion evidence, thickness, thresholds and short loops (arrays in, results out)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from msus.analysis.detect import FasciaLine
from msus.analysis.motion_defect import AxisGrid, detrend, fit_step, motion_defect, muscle_grid
from msus.analysis.thresholds import load_thresholds
from msus.errors import AnalysisError

sys.path.insert(0, str(Path(__file__).parent))
from foreign_sim import simulate_foreign  # noqa: E402

TH = load_thresholds()


def _grid(nv=24, nu=200, du=1.0):
    xs = np.arange(nu, dtype=np.float32) * du
    mx = np.broadcast_to(xs[None], (nv, nu)).astype(np.float32)
    my = np.broadcast_to(np.linspace(10, 60, nv, dtype=np.float32)[:, None], (nv, nu)).copy()
    return AxisGrid(mx, my, (1.0, 0.0), du, tuple(np.linspace(0.06, 0.94, nv)))


def _field(nv=24, nu=200, gap=(90, 110), step=20.0, rows=None, strain=-0.02, noise=0.2, seed=0):
    """Along-axis displacement: intact shortening plus, in ``rows``, ends pulling apart."""
    rng = np.random.default_rng(seed)
    u = np.arange(nu, dtype=float)
    d = np.tile(strain * (u - nu / 2), (nv, 1))
    a, b = gap
    ramp = np.clip((u - a) / (b - a), 0, 1) * step - step / 2
    for v in range(nv) if rows is None else rows:
        d[v] += ramp
    return d + noise * rng.standard_normal(d.shape)


def test_detrend_removes_smooth_shortening():
    d = _field(step=0.0, strain=-0.03)
    e, strain = detrend(d, 1.0)
    assert strain == pytest.approx(-0.03, abs=0.005)
    assert float(np.ptp(np.median(e, axis=0))) < 1.5


def test_fit_step_finds_the_knees():
    e = _field(nv=1, step=20.0, strain=0.0, noise=0.05)[0]
    i, j, a, b, rms = fit_step(e, 100, 40, 10)
    assert abs(i - 90) <= 2 and abs(j - 110) <= 2
    assert b - a == pytest.approx(20.0, abs=1.0)


def test_full_thickness_step_found_with_ends_and_gap():
    md = motion_defect(_field(), _grid(), 0.1, TH.motion)
    assert md.found and md.separating_fraction >= 0.9
    assert md.step_mm == pytest.approx(2.0, abs=0.2)
    assert md.gap_rest_mm == pytest.approx(2.0, abs=0.3)
    assert md.gap_contraction_mm == pytest.approx(4.0, abs=0.4)
    assert md.left_displacement_mm < 0 < md.right_displacement_mm
    assert len(md.separation_profile_mm) == len(md.depth)


def test_intact_contracting_muscle_has_no_step():
    md = motion_defect(_field(step=0.0, strain=-0.05), _grid(), 0.1, TH.motion)
    assert not md.found and md.separating_fraction == 0.0


def test_partial_depth_step_gives_a_partial_fraction():
    md = motion_defect(_field(rows=range(0, 12)), _grid(), 0.1, TH.motion)
    assert md.found
    assert 0.3 <= md.separating_fraction <= 0.7


def test_muscle_grid_between_fasciae():
    sup = FasciaLine(0, 20, 199, 30, inner_offset_px=3)
    deep = FasciaLine(0, 80, 199, 90, inner_offset_px=3)
    g = muscle_grid(sup, deep, (0, 0, 199, 120), du_px=2.0)
    assert g is not None and g.map_x.shape[0] == 24
    assert float(g.map_y.min()) > 20 and float(g.map_y.max()) < 93
    assert g.axis[1] > 0  # tilted: deeper to the right


def test_thresholds_are_typed_and_validated(tmp_path, monkeypatch):
    assert TH.motion.full_separating_fraction == TH["motion"]["full_separating_fraction"]
    bad = tmp_path / "t.toml"
    bad.write_text("[motion]\nfull_separating_fraction = 1.5\n")
    monkeypatch.setenv("MSUS_THRESHOLDS", str(bad))
    with pytest.raises(AnalysisError, match="share"):
        load_thresholds()
    bad.write_text("[motion]\nno_such_key = 1\n")
    with pytest.raises(AnalysisError, match="unknown key"):
        load_thresholds()
    bad.write_text('[defect]\nmin_contrast = "x"\n')
    with pytest.raises(AnalysisError, match="number"):
        load_thresholds()


# --- whole loops (small) -------------------------------------------------------------------


def _cine(loop, frames=None):
    from msus.cine import Cine

    f = loop.frames if frames is None else loop.frames[list(frames)]
    return Cine.from_frames(f, fps=loop.fps, calibration=loop.calibration, kind="synthetic")


@pytest.fixture(scope="module")
def haematoma_loop():
    return simulate_foreign(2026000 + 9, "full", small=True, haematoma=0.6)


def test_isoechoic_haematoma_found_by_motion(haematoma_loop):
    from msus.analysis import analyze

    res = analyze(_cine(haematoma_loop))
    assert res.classification == "suspected_full_thickness"
    assert res.motion_defect is not None and res.motion_defect.found
    assert any(r.startswith("motion: the ends separate") for r in res.reasons)
    d = res.to_dict()
    assert d["motion_evidence"]["separating_fraction"] >= 0.85
    assert d["motion_evidence"]["left_displacement_mm"] < 0 < d["motion_evidence"]["right_displacement_mm"]


def test_intact_contracting_loop_not_flagged():
    from msus.analysis import analyze

    loop = simulate_foreign(2026000 + 2, "none", small=True)
    res = analyze(_cine(loop))
    assert res.classification == "no_defect"
    assert res.motion_defect is not None and not res.motion_defect.found


def test_three_pose_and_two_frame_loops_and_swapped(haematoma_loop):
    from msus.analysis import analyze

    L = haematoma_loop
    r, c = L.rest_frame, L.contraction_frame
    half = (r + c) // 2
    res3 = analyze(_cine(L, (r, half, c)))
    assert (res3.rest_frame, res3.contraction_frame) == (0, 2)
    assert res3.classification == "suspected_full_thickness"
    res2 = analyze(_cine(L, (r, c)))
    assert (res2.rest_frame, res2.contraction_frame) == (0, 1)
    swapped = analyze(_cine(L, (c, half, r)))  # peak first: motion says the ends come together
    assert (swapped.rest_frame, swapped.contraction_frame) == (2, 0)
    assert swapped.classification == "suspected_full_thickness"
    assert swapped.retraction_mm is None or swapped.retraction_mm > 0


def _clot_field(nv=24, nu=200, ends=(80, 120), pull=10.0, clot=1.5, strain=-0.02, noise=0.2, seed=1):
    """Two retracting stumps around a still clot: the left side moves -pull, the right +pull, the
    clot between keeps its place except where it clings to an end (dragged along, fading over
    ~3 px into the clot) — two steps inside the gap, slightly smoothed as the flow does."""
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(seed)
    u = np.arange(nu, dtype=float)
    a, b = ends
    drag = (-pull - clot) * np.exp(-(u - a) / 3.0) + (pull - clot) * np.exp(-(b - u) / 3.0)
    prof = np.where(u <= a, -pull, np.where(u >= b, pull, clot + drag))
    prof = gaussian_filter1d(prof, 0.7)
    d = np.tile(strain * (u - nu / 2) + prof, (nv, 1))
    return d + noise * rng.standard_normal(d.shape)


def test_still_clot_between_two_stumps_gives_both_ends():
    """Three levels (left side, clot, right side): the ends are the two steps, not one ramp."""
    mmpp = 0.1
    md = motion_defect(_clot_field(), _grid(), mmpp, TH.motion)
    assert md.found and md.separating_fraction >= 0.9
    assert md.gap_rest_mm == pytest.approx(4.0, abs=0.3)
    assert md.gap_contraction_mm == pytest.approx(4.0 + 2.0 - 0.02 * 4.0, abs=0.4)
    for (xl, _), (xr, _) in md.stump_rows_rest_px:
        assert abs(xl - 80) * mmpp <= 0.3 and abs(xr - 120) * mmpp <= 0.3
    assert md.left_displacement_mm < 0 < md.right_displacement_mm


def test_three_levels_chosen_only_for_a_clot():
    from msus.analysis.step_fit import choose_model, fit_three_level, one_ramp_sse

    two_steps = _clot_field(nv=1, strain=0.0, noise=0.05)[0]
    ramp = _field(nv=1, step=20.0, strain=0.0, noise=0.05, gap=(80, 120))[0]
    for prof, want in ((two_steps, True), (ramp, False)):
        i, j, *_ = fit_step(prof, 100, 40, 10)
        three = fit_three_level(prof, 100, 40, 10)
        assert choose_model(one_ramp_sse(prof, 100, 40, 10, i, j), three, TH.motion) is want
    three = fit_three_level(two_steps, 100, 40, 10)
    assert abs(three.i - 80) <= 3 and abs(three.j - 120) <= 3
    assert three.middle == pytest.approx(1.5, abs=1.0)


def _shear_field(nv=24, nu=400, amp=24.0, period=260.0, noise=0.2, seed=0):
    """Intact pennate muscle: the along-axis displacement varies smoothly along the axis, more
    with depth (0 at the superficial fascia), on top of the shortening; no step anywhere."""
    rng = np.random.default_rng(seed)
    u = np.arange(nu, dtype=float)
    v = np.linspace(0.0, 1.0, nv)[:, None]
    d = -0.02 * (u - nu / 2)[None, :] + amp * v * np.sin(2 * np.pi * u / period)[None, :]
    return d + noise * rng.standard_normal((nv, nu))


def test_smooth_shear_is_not_a_step_but_a_step_is():
    """Smooth shear separates up to 4.6 mm across the depth at the steepest place (without the
    localisation rule it is a motion defect over 67 % of the depth); a step of 2 mm is found."""
    from dataclasses import replace

    from msus.analysis.motion_defect import step_localisation

    g = _grid(nu=400)
    md = motion_defect(_shear_field(), g, 0.1, TH.motion)
    assert not md.found and md.separating_fraction == 0.0
    assert max(md.separation_profile_mm) > 3.0  # the shear is large: only its smoothness says intact
    assert motion_defect(_shear_field(), g, 0.1, replace(TH.motion, min_step_localisation=0.0)).found
    step = motion_defect(_field(nu=400, gap=(190, 210)), g, 0.1, TH.motion)
    assert step.found and step.separating_fraction >= 0.9
    prof = _field(nv=1, nu=400, gap=(190, 210), strain=0.0, noise=0.05)[0]
    assert step_localisation(prof, 190, 210, 30) > 10.0
    assert step_localisation(_shear_field(nv=2)[1], 150, 200, 30) < 2.0
