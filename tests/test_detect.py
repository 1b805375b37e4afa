"""msus.analysis.detect: the defect between the fasciae on single frames (phantoms and real muscle)."""

import json

import cv2
import numpy as np
import pytest

from msus.calibration import Calibration
from msus.analysis.detect import check_roi, defect, tissue_roi
from msus.errors import AnalysisError
from msus.synth import SynthParams, calibration_for, simulate


def phantom(**kw):
    p = SynthParams(**{"rows": 300, "columns": 400, "mm_per_px": 0.12, "n_frames": 4, "muscle_depth_mm": 6.0,
                       "muscle_thickness_mm": 16.0, "bone_gap_mm": 8.0, **kw})
    return simulate(p, workers=1)


@pytest.fixture(scope="module")
def full():
    return phantom(tear="full", seed=11, gap_rest_mm=6.0, gap_contraction_mm=9.0)


@pytest.fixture(scope="module")
def partial():
    return phantom(tear="partial", seed=12, gap_rest_mm=7.0, partial_fraction=0.5)


@pytest.fixture(scope="module")
def intact():
    return phantom(tear="none", seed=13)


def test_full_thickness(full):
    d = defect(full.frames[0], None, calibration_for(full.params), frame_index=0)
    assert d.found
    assert d.thickness_fraction >= 0.9
    assert d.gap_mm == pytest.approx(full.gap_mm[0], abs=1.0)  # one frame; the benchmark measures the MAE
    assert d.gap_px == pytest.approx(d.gap_mm / 0.12, rel=1e-6)
    assert d.calibration_source == "us_region"
    # stump ends near the truth (px)
    ends = full.stump_ends_px[0]
    assert np.linalg.norm(np.array(d.stump_left_px) - ends[0]) < 8
    assert np.linalg.norm(np.array(d.stump_right_px) - ends[1]) < 8
    # fasciae found near the muscle boundaries, horizontal muscle
    assert abs(d.axis_angle_deg) < 3
    assert d.superficial_fascia.y_at(200) < ends[0][1] < d.deep_fascia.y_at(200)
    assert 0.5 <= d.confidence <= 1.0


def test_partial(partial):
    d = defect(partial.frames[0], None, calibration_for(partial.params))
    assert d.found
    assert 0.3 <= d.thickness_fraction <= 0.75
    assert d.gap_mm == pytest.approx(partial.gap_mm[0], abs=1.0)
    top, bottom = d.depth_extent
    assert 0.1 < top < bottom < 0.9


def test_intact(intact):
    d = defect(intact.frames[0], None, calibration_for(intact.params))
    assert not d.found
    assert d.gap_mm is None and d.notes
    assert d.superficial_fascia is not None and d.muscle_thickness_mm == pytest.approx(16.0, abs=2.0)


@pytest.mark.parametrize("seed, frames", [(13, (0, 8)), (28, (7, 9))])
def test_dark_fascicle_gap_at_a_fascia_is_no_defect(seed, frames):
    """Intact muscle of the batch loops' geometry (tests/batch_loops.py): a dark gap between the
    fibres inserting on a fascia dims the rows of the fascia's tail over it (to 0.70–0.88 of their
    level beside it), so those rows are not the fascia's blur there and still count as fibres
    inside (:func:`msus.analysis.extent.tail_over`); left out, these frames were partial tears."""
    p = SynthParams(rows=160, columns=220, mm_per_px=0.12, muscle_depth_mm=4.0, muscle_thickness_mm=8.0,
                    fps=16.0, n_frames=16, tear="none", seed=seed)
    ph = simulate(p, workers=1)
    for i in frames:
        d = defect(ph.frames[i], None, calibration_for(p), frame_index=i)
        assert not d.found, (seed, i, d.depth_extent, d.power_ratio)


def test_tilted_muscle_gap_along_its_axis():
    ph = phantom(tear="full", seed=14, fascia_tilt_deg=-10.0, fascicle_angle_deg=22.0, gap_rest_mm=5.0,
                 gap_contraction_mm=8.0, rows=320)
    d = defect(ph.frames[0], None, calibration_for(ph.params))
    assert d.found and d.thickness_fraction >= 0.9
    assert d.axis_angle_deg == pytest.approx(-10.0, abs=3.0)
    assert d.gap_mm == pytest.approx(ph.gap_mm[0], abs=1.0)


def test_uncalibrated_gives_px_only(full):
    d = defect(full.frames[0], None, Calibration.none())
    assert d.found and d.gap_mm is None and d.gap_px > 10
    assert d.calibration_source == "none"


def test_overlay_is_plain_data(full):
    d = defect(full.frames[0], None, calibration_for(full.params))
    ov = d.overlay()
    assert len(ov["stumps"]) == 2 and len(ov["outline"]) >= 4 and len(ov["fasciae"]) == 2
    assert len(ov["calipers"]) >= 3
    json.dumps(d.to_dict())  # JSON-serialisable


def test_roi_checks(full):
    f = full.frames[0]
    with pytest.raises(AnalysisError, match="outside"):
        defect(f, (300, 10, 500, 100))
    with pytest.raises(AnalysisError, match="too small"):
        check_roi((10, 10, 15, 15), f.shape)
    with pytest.raises(AnalysisError, match="four numbers"):
        check_roi(("a", 1, 2, 3), f.shape)
    assert check_roi((100, 50, 20, 10), f.shape) == (20, 10, 100, 50)  # corners in any order


def test_blank_frame_refused():
    with pytest.raises(AnalysisError, match="blank"):
        defect(np.zeros((200, 300), np.uint8))


def test_tissue_roi_excludes_screen_ui(data_dir):
    # GE LOGIQ E9 screen capture: image area x 112-688, y 60-520 inside a black/text screen
    im = cv2.imread(str(data_dir / "gastroc_jumping_frames" / "gastroc_jumping_048.png"), cv2.IMREAD_GRAYSCALE)
    x0, y0, x1, y1 = tissue_roi(im)
    assert 100 <= x0 <= 135 and 660 <= x1 <= 700
    assert 45 <= y0 <= 90 and 480 <= y1 <= 530


def test_real_intact_muscle_frames(data_dir):
    cal = Calibration.manual(0.0866)
    for name in ("gastroc_jumping_048.png", "gastroc_jumping_052.png"):
        im = cv2.imread(str(data_dir / "gastroc_jumping_frames" / name), cv2.IMREAD_GRAYSCALE)
        d = defect(im, None, cal)
        assert not d.found, d.to_dict()
        assert d.superficial_fascia is not None and d.deep_fascia is not None


def _speckled_gap_crop(seed: int, width_px: float = 200.0, shape=(240, 800)):
    """A grey crop (60 dB log compression) of speckled muscle with a fluid gap (−25 dB) of
    ``width_px`` columns, its left end at a random sub-pixel place; and that place."""
    rng = np.random.default_rng(seed)
    h, w = shape
    z = rng.standard_normal((2, h, w)).astype(np.float32)
    re, im = (cv2.GaussianBlur(a, (0, 0), sigmaX=2.5, sigmaY=1.2) for a in z)
    power = re * re + im * im
    power /= power.mean()
    left = 0.5 * (w - width_px) + float(rng.uniform(0, 1))
    cols = np.arange(w, dtype=np.float32) + 0.5  # px centres
    inside = np.clip(np.minimum(cols - left, left + width_px - cols) + 0.5, 0, 1)  # share of each px
    power = power * (1.0 - inside * (1 - 10 ** -2.5))[None, :]
    grey = np.clip((10 * np.log10(np.maximum(power, 1e-9)) + 40.0) * 255 / 60.0, 0, 255)
    return grey.astype(np.uint8), left


def test_working_power_keeps_a_defects_ends_in_place():
    """The linear echo power of the working copy (downscaled 2.5×) puts the half-power ends of a
    fluid gap in a speckled muscle where they are: a grey-level median and average before undoing
    the log compression moved each end ≈ 1 working px into the muscle (gap too long)."""
    from msus.analysis.detect import working_copy
    from msus.analysis.extent import profile_extent

    errs = []
    for seed in range(6):
        g, left = _speckled_gap_crop(seed)
        work = working_copy(g, (0, 0, g.shape[1], g.shape[0]))
        P = work.gs_lin[10:-10]
        c0, c1 = (int(round((left + d) * work.sx)) for d in (10.0, 190.0))
        ext = profile_extent(P, 4, (c0, c1, P.shape[0] // 3, 2 * P.shape[0] // 3))
        assert ext is not None
        errs.append((ext.x_right - ext.x_left) / work.sx - 200.0)
    assert abs(float(np.mean(errs))) < 1.0, errs  # crop px (0.4 working px); was +1.9
