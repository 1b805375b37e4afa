"""The shipped physics-based test set (``tests/data/physics``) is self-consistent and its loops
load through ``msus.load`` with the right calibration, frame count and timing; the generator
(``tests/physics_sim.py``, PyPI ``pymust``) renders a tiny configuration deterministically."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import physics_set  # noqa: E402

CASES = physics_set.cases() or pytest.fail("tests/data/physics holds no case", pytrace=False)
CLASSES = {"full": "suspected_full_thickness", "partial": "partial", "none": "no_defect"}
POSE_KEYS = {"gap_mm", "stump_ends_px", "defect_thickness_fraction", "muscle_thickness_mm", "muscle_thickness_px",
             "superficial_fascia_px", "deep_fascia_px", "defect_outline_px", "roi_px"}


def test_set_covers_every_kind():
    kinds = {c.truth["tear"] for c in CASES}
    assert kinds == {"full", "partial", "none"}, kinds
    assert sum(len(c.truth["poses"]) for c in CASES) <= 42


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_truth_is_self_consistent(case):
    t = case.truth
    assert t["case"] == case.id
    assert t["generator"]["simulator"].startswith("pymust ")
    assert t["classification"] == CLASSES[t["tear"]]
    assert (t["rest_pose"], t["peak_pose"]) == (0, 2) and len(t["poses"]) == 3
    for k, p in enumerate(t["poses"]):
        assert POSE_KEYS <= set(p), POSE_KEYS - set(p)
        img = case.pose(k)
        assert img.dtype == np.uint8 and img.shape == (t["height_px"], t["width_px"])
        assert 40 < img.mean() < 200  # neither blank nor saturated
        x0, y0, x1, y1 = p["roi_px"]
        assert 0 <= x0 < x1 < img.shape[1] and 0 <= y0 < y1 < img.shape[0]
        assert len(p["superficial_fascia_px"]) >= 2 and len(p["deep_fascia_px"]) >= 2
        assert p["muscle_thickness_mm"] > 5
        if t["tear"] == "full":
            assert p["gap_mm"] > 0 and p["defect_thickness_fraction"] == 1.0 and len(p["stump_ends_px"]) == 2
        else:
            assert p["gap_mm"] is None
        if t["tear"] == "partial":
            assert 0.2 < p["defect_thickness_fraction"] < 0.9
        if t["tear"] == "none":
            assert p["defect_outline_px"] is None and p["defect_thickness_fraction"] == 0
    rest, peak = t["poses"][0], t["poses"][2]
    assert peak["muscle_thickness_mm"] > rest["muscle_thickness_mm"]  # thickens on contraction
    if t["tear"] == "full":
        assert peak["gap_mm"] > rest["gap_mm"] + 3  # the stumps retract
    # the poses differ (the scatterers moved) but stay the same tissue
    assert not np.array_equal(case.pose(0), case.pose(2))


def _check_loop(loop, n_frames, fps):
    cine = loop.cine
    t = loop.case.truth
    assert cine.n_frames == n_frames == len(loop.poses) == len(loop.gap_mm)
    assert cine.fps == pytest.approx(fps, rel=1e-3)
    cal = cine.calibration_for(0)
    region = cal.regions[0]
    assert region.mm_per_px_x == pytest.approx(t["mm_per_px_x"])
    assert region.mm_per_px_y == pytest.approx(t["mm_per_px_y"])
    assert cine.grey(0).shape == (t["height_px"], t["width_px"])
    assert loop.rest_frames and loop.peak_frames
    for i in loop.rest_frames:
        assert loop.poses[i] == t["rest_pose"]
    for i in loop.peak_frames:
        assert loop.poses[i] == t["peak_pose"]


@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: c.id)
def test_three_pose_loop_loads(case):
    loop = physics_set.three_pose(case)
    _check_loop(loop, 3, physics_set.THREE_POSE_FPS)
    assert np.array_equal(loop.cine.grey(2), case.pose(2))  # lossless
    swapped = physics_set.three_pose(case, swapped=True)
    assert swapped.rest_frames == (2,) and swapped.peak_frames == (0,)
    assert np.array_equal(swapped.cine.grey(0), case.pose(2))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_held_loop_noise_and_drift(seed):
    case = CASES[seed % len(CASES)]
    loop = physics_set.held_loop(case, seed)
    assert 11 <= len(loop.poses) <= 14
    _check_loop(loop, len(loop.poses), physics_set.HELD_FPS)
    assert loop.rest_frames[0] == 0 and loop.poses[0] == 0
    drift = np.array(loop.drift_px)
    assert np.abs(drift).max() < 1.0 and np.abs(drift).max() > 0.05  # sub-pixel, but there
    assert np.abs(np.diff(drift, axis=0)).max() < 0.5  # slowly varying
    # frames of one held pose differ (fresh noise) but stay close to the pose
    a, b = (loop.cine.grey(i).astype(float) for i in loop.rest_frames[:2])
    assert not np.array_equal(a, b)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.5
    again = physics_set.held_loop(case, seed)
    assert np.array_equal(again.cine.grey(3), loop.cine.grey(3))  # deterministic
    started = physics_set.held_loop(case, seed, start="peak")
    assert started.poses[0] == 2 and started.peak_frames[0] == 0 and started.rest_frames[0] > 0
    assert started.gap_mm[0] == case.truth["poses"][2]["gap_mm"]


def test_held_loop_refuses_bad_start():
    with pytest.raises(ValueError):
        physics_set.held_loop(CASES[0], 0, start="middle")


@pytest.mark.skipif(importlib.util.find_spec("pymust") is None, reason="pymust not installed")
def test_generator_renders_tiny_case_deterministically():
    import physics_sim as ps

    grid = ps.Grid(width=24, height=20, top_mm=6.5)
    case = ps.Case("tiny", "full", 7, haematoma_ratio=0.5, rest_gap_mm=1.2, peak_gap_mm=2.4, thickness_mm=1.2,
                   depth_mm=7.0, density_per_mm2=4.0, angles_deg=(0.0,))
    ph = ps.make_phantom(case, grid)
    assert 50 < len(ph.rc) < 400
    a = ps.render_pose(ph, 0.0, grid, 0)
    b = ps.render_pose(ps.make_phantom(case, grid), 0.0, grid, 0)
    assert a.shape == (20, 24) and np.isfinite(a).all() and a.max() > 0
    np.testing.assert_array_equal(a, b)
    c = ps.render_pose(ph, 1.0, grid, 0)
    assert not np.allclose(a, c)  # the stumps moved
    from physics_truth import case_truth

    truth = case_truth(ph, grid)
    assert truth["poses"][2]["gap_mm"] > truth["poses"][0]["gap_mm"]
