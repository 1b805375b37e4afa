"""Rest and peak frames of short pose files in any order (the physics-based set, through the whole
analysis): the two most different poses, rest the earlier unless the muscle says otherwise."""

import sys
from dataclasses import replace
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import physics_set  # noqa: E402

from msus.analysis import analyze, load_thresholds  # noqa: E402
from msus.analysis.fuse import reversed_frames  # noqa: E402
from msus.analysis.motion import pose_order, pose_path, small_frames  # noqa: E402
from msus.analysis.motion_defect import MotionDefect  # noqa: E402

CASES = {c.id: c for c in physics_set.cases()}


def _file(case_id, poses):
    """A pose file of the physics case holding ``poses`` (0 rest, 1 half-way, 2 peak) in that order."""
    case = CASES[case_id]
    return physics_set._loop(case, [case.pose(k) for k in poses], poses, [(0.0, 0.0)] * len(poses),
                             physics_set.THREE_POSE_FPS)


def _frames(loop):
    with loop.cine as cine:
        res = analyze(cine)
    return res, loop.poses[res.rest_frame], loop.poses[res.contraction_frame]


@pytest.mark.parametrize("poses", list(permutations((0, 1, 2))), ids=lambda p: "".join(map(str, p)))
def test_three_pose_file_in_any_order_full_tear(poses):
    # a full tear hidden by a haematoma half as echogenic as the muscle
    res, rest, peak = _frames(_file("full_iso050", poses))
    assert (rest, peak) == (0, 2)
    assert res.classification == "suspected_full_thickness"
    assert res.retraction_mm is not None and res.retraction_mm > 2.0


@pytest.mark.parametrize("poses", [(0, 1, 2), (2, 1, 0), (1, 2, 0)], ids=lambda p: "".join(map(str, p)))
def test_three_pose_file_intact_muscle_longer_and_thinner_at_rest(poses):
    # no step to tell the order: the muscle is longer and thinner at rest
    res, rest, peak = _frames(_file("intact_flat", poses))
    assert (rest, peak) == (0, 2)
    assert res.classification == "no_defect"


@pytest.mark.parametrize("case_id", ["full_dark", "intact_flat"])
def test_two_frame_file_peak_first(case_id):
    res, rest, peak = _frames(_file(case_id, (2, 0)))
    assert (res.rest_frame, res.contraction_frame) == (1, 0)
    ahead, _, _ = _frames(_file(case_id, (0, 2)))  # the same pair, rest first: the same finding
    assert res.classification == ahead.classification == CASES[case_id].truth["classification"]
    if case_id == "full_dark":
        assert res.retraction_mm == pytest.approx(ahead.retraction_mm, abs=0.05) and res.retraction_mm > 2.0


def test_pose_order_follows_the_poses_not_the_time():
    loop = _file("partial_deep65", (2, 0, 1))  # peak, rest, half-way
    small, _ = small_frames([loop.cine.frame(i) for i in range(3)])
    loop.cine.close()
    assert pose_order(small) in ((1, 2, 0), (0, 2, 1))  # rest - half-way - peak, either way
    # rest and peak next to each other in time: the displacement goes through the half-way pose
    assert pose_path([-5.0, 0.0, 5.0], 0, 2) == (0, 1, 2)
    assert pose_path([5.0, -5.0, 0.5], 1, 0) == (1, 2, 0)
    assert pose_path(np.linspace(0, 1, 9), 2, 6) == (2, 3, 4, 5, 6)


def _md(**kw):
    base = dict(found=False, separating_fraction=0.0, separation_profile_px=(), separation_profile_mm=(), depth=(),
                left_displacement_px=None, right_displacement_px=None, left_displacement_mm=None,
                right_displacement_mm=None, step_px=0.0, step_mm=None, gap_rest_px=None, gap_contraction_px=None,
                gap_rest_mm=None, gap_contraction_mm=None)
    return replace(MotionDefect(**base), **kw)


def test_reversed_frames_needs_the_step_or_both_length_and_thickness():
    th = load_thresholds().motion
    assert not reversed_frames(_md(strain=-0.04, thickening=0.04), th)  # shorter and thicker: a contraction
    assert reversed_frames(_md(strain=0.04, thickening=-0.04), th)  # longer and thinner: relaxing
    assert not reversed_frames(_md(strain=0.0, thickening=-0.15), th)  # one cue alone is not enough
    assert not reversed_frames(_md(strain=0.03, thickening=0.0), th)
    # a full-thickness step decides by its sign, whatever the strains say
    assert reversed_frames(_md(found=True, separating_fraction=1.0, step_px=-20.0, strain=-0.04, thickening=0.04), th)
    assert not reversed_frames(_md(found=True, separating_fraction=1.0, step_px=20.0, strain=0.04, thickening=-0.04), th)
