"""The tear analysis on the physics-based set (``tests/data/physics``, PyMUST: scatterers, a
linear array, compounded plane waves, delay-and-sum) — a simulator the detector was not built on.

* every case's 3-pose loop is classified as its truth, with the gap within tolerance of the
  truth on the rest and the peak frame for full tears;
* the held loops (electronic noise, sub-pixel probe drift) of the intact and partial cases keep
  their classification;
* the echo detector alone: a tilted muscle is searched between its own fasciae (not in the
  wedge a skin line makes with the tilted superficial fascia), intact muscle shows no defect on
  any pose, and the partial tear under the superficial fascia is found, reaching the fascia
  (refused as "fibres inside" without the fascia's tail);
* the two rules behind those on small arrays: converging lines bound no compartment
  (:func:`msus.analysis.fascia.compartment_pairs`), and the fascia's tail is measured
  (:func:`msus.analysis.extent.fascia_tail_rows`) and counts over a defect only where it keeps
  its level there (:func:`msus.analysis.extent.tail_over`).
"""

from __future__ import annotations

import dataclasses
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import physics_set  # noqa: E402

from msus.analysis import analyze  # noqa: E402
from msus.analysis.detect import defect  # noqa: E402
from msus.analysis.extent import fascia_tail_rows, tail_over  # noqa: E402
from msus.analysis.fascia import compartment_pairs  # noqa: E402
from msus.analysis.thresholds import load_thresholds  # noqa: E402

CASES = {c.id: c for c in physics_set.cases()} or pytest.fail("tests/data/physics holds no case", pytrace=False)


def _gap_tolerance_mm(true_mm: float) -> float:
    """1 mm or 10 % of the gap, whichever is larger (the set's goal is a 0.5 mm mean error)."""
    return max(1.0, 0.1 * true_mm)


@lru_cache(maxsize=None)
def _three_pose(case_id: str):
    loop = physics_set.three_pose(CASES[case_id])
    with loop.cine:
        return loop, analyze(loop.cine)


@lru_cache(maxsize=None)
def _held(case_id: str):
    loop = physics_set.held_loop(CASES[case_id], 0)
    with loop.cine:
        return loop, analyze(loop.cine)


def _defect(case_id: str, pose: int):
    case = CASES[case_id]
    loop = physics_set.three_pose(case)
    with loop.cine:
        return defect(case.pose(pose), None, loop.cine.calibration)


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_three_pose_classification_and_gap(case_id):
    loop, res = _three_pose(case_id)
    assert res.classification == loop.classification, (res.classification, res.finding.reasons)
    assert res.rest_frame in loop.rest_frames and res.contraction_frame in loop.peak_frames
    if loop.tear == "full":
        for frame, got in ((res.rest_frame, res.gap_rest_mm), (res.contraction_frame, res.gap_contraction_mm)):
            true = loop.gap_mm[frame]
            assert got is not None, f"no gap measured on frame {frame}"
            assert abs(got - true) <= _gap_tolerance_mm(true), (frame, got, true)


@pytest.mark.parametrize("case_id", ["intact_flat", "intact_tilt_m10", "intact_tilt_p10", "partial_sup35"])
def test_held_loop_keeps_its_classification(case_id):
    loop, res = _held(case_id)
    assert res.classification == loop.classification, (res.classification, res.finding.reasons)


def test_tilted_muscle_is_searched_between_its_own_fasciae():
    truth = CASES["intact_tilt_p10"].truth
    for pose in (0, 2):
        d = _defect("intact_tilt_p10", pose)
        assert not d.found, d.notes
        assert d.superficial_fascia is not None and d.deep_fascia is not None
        # both lines follow the muscle's +10° tilt (the wedge's skin line runs the other way)
        assert d.superficial_fascia.angle_deg == pytest.approx(truth["tilt_deg"], abs=3.0)
        assert d.deep_fascia.angle_deg == pytest.approx(truth["tilt_deg"], abs=3.0)
        sup = np.array(truth["poses"][pose]["superficial_fascia_px"], float)
        x = sup[len(sup) // 2, 0]
        assert abs(float(d.superficial_fascia.y_at(x)) - sup[len(sup) // 2, 1]) < 4.0


@pytest.mark.parametrize("case_id", ["intact_flat", "intact_tilt_m10", "intact_tilt_p10"])
def test_intact_muscle_shows_no_echo_defect(case_id):
    for pose in range(3):
        d = _defect(case_id, pose)
        assert not d.found, (pose, d.gap_mm, d.thickness_fraction)


def test_partial_tear_under_the_superficial_fascia_is_found():
    truth = CASES["partial_sup35"].truth["poses"][0]
    d = _defect("partial_sup35", 0)
    assert d.found, d.notes
    assert d.thickness_fraction == pytest.approx(truth["defect_thickness_fraction"], abs=0.1)
    top, bottom = d.depth_extent
    assert top < 0.1 and bottom < 0.5  # from the superficial fascia down, not through the muscle
    assert d.gap_mm == pytest.approx(truth["defect_length_mm"], abs=1.0)
    # without the fascia's tail (the rule off) its rows refuse it as "fibres inside"
    th = load_thresholds()
    off = dataclasses.replace(th, defect=dataclasses.replace(th.defect, fascia_tail_max=0.0))
    case = CASES["partial_sup35"]
    with physics_set.three_pose(case).cine as cine:
        assert not defect(case.pose(0), None, cine.calibration, thresholds=off).found


def _ridge_with_lines(lines, shape=(120, 200)) -> np.ndarray:
    """A ridge map holding bright 1-px lines y = a + b·(x − xc)."""
    h, w = shape
    r = np.zeros(shape, np.float32)
    xs = np.arange(w)
    for a, b in lines:
        ys = np.round(a + b * (xs - (w - 1) / 2.0)).astype(int)
        ok = (ys >= 0) & (ys < h)
        r[ys[ok], xs[ok]] = 10.0
    return r


def test_converging_lines_bound_no_compartment():
    th = load_thresholds().defect
    # two parallel fasciae tilted by +10°, a line at −10° above them meeting the upper one
    slope = np.tan(np.radians(10.0))
    r = _ridge_with_lines([(30.0, slope), (95.0, slope), (12.0, -slope)])
    cands = [(10.0, np.radians(10.0), 30.0), (10.0, np.radians(10.0), 95.0), (10.0, np.radians(-10.0), 12.0)]
    comps = compartment_pairs(cands, r, th.min_parallel_ratio)
    assert [(c.top[2], c.bottom[2]) for c in comps] == [(30.0, 95.0)]
    assert comps[0].parallel_ratio > 0.9
    # without the rule the wedge is a compartment
    assert len(compartment_pairs(cands, r, float("-inf"))) == 2


def test_fascia_tail_rows():
    S = np.full((100, 60), 100.0)
    S[:6] = np.linspace(160, 115, 6)[:, None]  # the superficial fascia's blur, 6 rows
    S[-3:] = 150.0  # the deep fascia's, 3 rows
    S[6:30, 20:40] = 40.0  # a dark defect under the superficial fascia
    assert fascia_tail_rows(S, 0.1, 0.1) == (6, 3)
    assert fascia_tail_rows(S, 0.1, 0.04) == (4, 3)  # at most 4 % of the thickness
    assert fascia_tail_rows(S, 0.7, 0.1) == (0, 0)  # nothing that bright


def test_tail_over_keeps_a_fascia_continuing_over_a_defect():
    S = np.full((100, 60), 100.0)
    S[:6] = np.linspace(160, 115, 6)[:, None]  # the superficial fascia's blur, 6 rows
    S[-4:] = np.linspace(115, 170, 4)[:, None]  # the deep fascia's, 4 rows
    S[6:30, 20:40] = 40.0  # a dark defect under the superficial fascia, which continues over it
    assert tail_over(S, (6, 4), (20, 39), 0.1) == (6, 4)
    # a dark gap that dims the rows next to the deep fascia: there they are not the fascia's blur
    S[-4:, 20:40] *= 0.8
    S[70:96, 20:40] = 40.0
    assert tail_over(S, (6, 4), (20, 39), 0.1) == (6, 0)
    assert tail_over(S, (6, 4), (20, 39), 0.3) == (6, 4)  # a brighter tail may lose more
    assert tail_over(S, (0, 0), (20, 39), 0.1) == (0, 0)
