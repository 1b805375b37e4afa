"""msus.analysis.motion: motion energy, rest and peak-contraction frames on controlled loops."""

import cv2
import numpy as np
import pytest

from msus.cine import Cine
from msus.errors import AnalysisError
from msus.analysis.motion import analyse_motion, motion, small_frames


def texture(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 2.0)
    t = (t - t.min()) / (t.max() - t.min()) * 200 + 20
    return t.astype(np.float32)


def shifted_loop(shifts, seed=0):
    """Frames of one texture translated by shifts[i] px along x (sub-pixel, bilinear)."""
    base = texture(seed=seed)
    out = []
    for s in shifts:
        m = np.float32([[1, 0, s], [0, 1, 0]])
        out.append(cv2.warpAffine(base, m, (base.shape[1], base.shape[0]), borderMode=cv2.BORDER_REFLECT))
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def profile(n=40):
    """Rest (0..7), rise (8..15), hold (16..23), fall (24..31), rest: displacement 0..6 px."""
    t = np.arange(n)
    d = np.interp(t, [0, 7, 16, 23, 32, n - 1], [0, 0, 6, 6, 0, 0])
    return d


def test_rest_before_contraction_and_peak_in_hold():
    frames = shifted_loop(profile())
    small, scale = small_frames(frames)
    m = analyse_motion(small, scale)
    assert 0 <= m.rest_frame <= 7, m.rest_frame
    assert 16 <= m.contraction_frame <= 23, m.contraction_frame
    assert len(m.energy_px) == len(m.deformation_px) == 40
    # energy is low at rest and high during the rise
    e = np.array(m.energy_px)
    assert e[10:14].mean() > 3 * e[1:6].mean()
    # deformation from rest is largest in the hold
    d = np.array(m.deformation_px)
    assert d[18] > 3 * max(d[m.rest_frame], 0.05)


def test_user_frames_are_kept_and_the_other_suggested():
    frames = shifted_loop(profile())
    small, scale = small_frames(frames)
    m = analyse_motion(small, scale, rest_frame=2)
    assert m.rest_frame == 2 and 16 <= m.contraction_frame <= 23
    m = analyse_motion(small, scale, contraction_frame=20)
    assert m.contraction_frame == 20 and m.rest_frame < 8


def test_energy_in_full_resolution_px():
    # a steady 2 px/frame drift: energy ~2 full-resolution px per frame whatever the downscale
    frames = shifted_loop(np.arange(12) * 2.0)
    small, scale = small_frames(frames, side_px=80)
    m = analyse_motion(small, scale)
    assert scale < 1
    assert 1.4 < np.median(m.energy_px) < 2.6


def test_cine_wrapper_and_roi():
    frames = shifted_loop(profile(24))
    m = motion(Cine.from_frames(frames, fps=20), roi=(10, 10, 120, 100))
    assert m.rest_frame < m.contraction_frame


def test_one_frame_refused():
    with pytest.raises(AnalysisError):
        analyse_motion(np.zeros((1, 20, 20), np.uint8))


def _rest_and_peak(shifts):
    m = analyse_motion(shifted_loop(shifts), 1.0)
    return m.rest_frame, m.contraction_frame


def test_fast_rise_then_long_hold_keeps_rest_before_the_hold():
    # 4 still frames, a 3-frame rise, then a hold to the end: the hold is the stillest stretch
    shifts = [0.0] * 4 + [2.0, 4.0, 6.0] + [6.0] * 25
    r, c = _rest_and_peak(shifts)
    assert r <= 3
    assert c >= 7


def test_loop_starting_partly_contracted_finds_rest_after_the_relaxation():
    # starts at 3 px (partly contracted), relaxes to 0, holds, contracts to 8 px
    shifts = list(np.linspace(3.0, 0.0, 8)) + [0.0] * 10 + list(np.linspace(0.0, 8.0, 8)) + [8.0] * 8
    r, c = _rest_and_peak(shifts)
    assert 7 <= r <= 18
    assert c >= 25
