"""The tear analysis on loops from an independent simulator (``tests/foreign_sim.py``): another
speckle model, display, anatomy, tear shapes and contraction profiles, inside a scanner-like
screen whose calibrated region does not cover the frame.  Small loops keep this fast; the
benchmark (``python -m benchmarks accuracy``, ``foreign:`` figures) runs the larger set."""

import sys
from pathlib import Path

import numpy as np
import pytest

import msus
from msus.analysis import analyze
from msus.cine import Cine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from foreign_sim import simulate_foreign, write_dicom, write_mp4  # noqa: E402

GAP_TOL_MM = 1.6  # small loops: 0.1–0.17 mm px, jagged and oblique ends


def _check(loop, res):
    assert res.classification == loop.classification, (res.classification, res.reasons, loop.params)
    if loop.tear == "none":
        assert res.gap_rest_mm is None
        return
    r, c = res.rest_frame, res.contraction_frame
    assert res.gap_rest_mm == pytest.approx(loop.gap_mm[r], abs=GAP_TOL_MM)
    assert res.gap_contraction_mm == pytest.approx(loop.gap_mm[c], abs=GAP_TOL_MM)
    if loop.tear == "full":
        assert res.retraction_mm > 1.0
    else:
        assert abs(loop.thickness_fraction - res.defect_thickness_fraction) < 0.25


@pytest.mark.parametrize("seed", [100, 101, 102, 112, 113, 117])
def test_foreign_loop_in_memory(seed):
    loop = simulate_foreign(seed, small=True)
    res = analyze(Cine.from_frames(loop.frames, fps=loop.fps, calibration=loop.calibration, kind="synthetic"))
    # the calibrated region (not the screen with its scale, text and logo) is analysed
    assert res.roi == loop.region
    assert res.calibration_source == "us_region"
    _check(loop, res)


def test_foreign_loop_through_jpeg_dicom(tmp_path):
    loop = simulate_foreign(108, small=True)
    path = tmp_path / "foreign.dcm"
    write_dicom(loop, path)
    cine = msus.load(path)
    assert cine.n_frames == loop.frames.shape[0]
    res = analyze(cine)
    assert res.calibration_source == "us_region"
    _check(loop, res)


def test_foreign_loop_through_mp4_finds_the_image_in_the_screen(tmp_path):
    loop = simulate_foreign(102, small=True)
    path = tmp_path / "foreign.mp4"
    write_mp4(loop, path)
    res = analyze(msus.load(path), mm_per_px=loop.params["mm_per_px"])
    # no region in an MP4: the ROI comes from the texture and must stay inside the image area,
    # off the depth scale, text and logo
    x0, y0, x1, y1 = res.roi
    rx0, ry0, rx1, ry1 = loop.region
    assert x0 >= rx0 - 4 and y0 >= ry0 - 4 and x1 <= rx1 + 4 and y1 <= ry1 + 4
    assert (x1 - x0) > 0.7 * (rx1 - rx0) and (y1 - y0) > 0.7 * (ry1 - ry0)
    _check(loop, res)


def test_ground_truth_follows_the_definitions():
    full = simulate_foreign(102, small=True)
    assert full.tear == "full" and full.thickness_fraction == 1.0
    # free stumps retract with the activation
    a = full.activation
    assert np.corrcoef(a, full.gap_mm)[0, 1] > 0.99
    part = simulate_foreign(100, small=True)
    assert part.tear == "partial"
    # a partial tear does not retract (only the muscle's slight shortening)
    assert np.ptp(part.gap_mm) < 0.08 * np.nanmean(part.gap_mm)
    intact = simulate_foreign(101, small=True)
    assert np.isnan(intact.gap_mm).all() and intact.classification == "no_defect"


@pytest.mark.parametrize("seed, amplitude", [(2026504, 0.64), (2026506, 0.65)])
def test_haematoma_tear_under_a_fat_layer_is_found_in_the_muscle(seed, amplitude):
    """No compartment shows a dark defect (the haematoma scatters ~2/3 as strongly as muscle), and
    the shallowest compartment is the fat under the skin line: the muscle between two fasciae is
    the one analysed, so the motion finds the tear (both were ``no_defect`` while the detector fell
    back on the compartment bounded by the image's top edge)."""
    loop = simulate_foreign(seed, "full", haematoma=amplitude)
    res = analyze(Cine.from_frames(loop.frames, fps=loop.fps, calibration=loop.calibration, kind="synthetic"))
    assert res.classification == "suspected_full_thickness", res.reasons
    assert res.gap_contraction_mm == pytest.approx(loop.gap_mm[res.contraction_frame], abs=3.0)
    assert res.retraction_mm > 1.0
