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
    """Frames of one texture translated by shifts[i] px along x (sub-pixel, bilinear): a probe
    sliding over still tissue."""
    return deformed_loop(np.zeros(len(shifts)), drift=shifts, seed=seed)


def deformed_loop(amounts, drift=None, noise=0.0, seed=0):
    """Frames of one texture contracting by amounts[i] px: shortening along x about the centre
    (each end moves amounts[i] px inwards) and thickening along y (half as much), optionally
    translated by drift[i] px along x (probe drift) and with Gaussian noise (grey levels)."""
    base = texture(seed=seed)
    h, w = base.shape
    rng = np.random.default_rng(seed + 100)
    drift = np.zeros(len(amounts)) if drift is None else np.asarray(drift, float)
    out = []
    for a, s in zip(amounts, drift):
        sx, sy = 1 - 2 * a / w, 1 + a / h
        cx, cy = w / 2, h / 2
        m = np.float32([[sx, 0, cx * (1 - sx) + s], [0, sy, cy * (1 - sy)]])
        f = cv2.warpAffine(base, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        out.append(f + rng.normal(0, noise, f.shape) if noise else f)
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


def profile(n=40):
    """Rest (0..7), rise (8..15), hold (16..23), fall (24..31), rest: displacement 0..6 px."""
    t = np.arange(n)
    d = np.interp(t, [0, 7, 16, 23, 32, n - 1], [0, 0, 6, 6, 0, 0])
    return d


def test_rest_before_contraction_and_peak_in_hold():
    frames = deformed_loop(profile())
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
    frames = deformed_loop(profile())
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
    frames = deformed_loop(profile(24))
    m = motion(Cine.from_frames(frames, fps=20), roi=(10, 10, 120, 100))
    assert m.rest_frame < m.contraction_frame


def test_one_frame_refused():
    with pytest.raises(AnalysisError):
        analyse_motion(np.zeros((1, 20, 20), np.uint8))


def _rest_and_peak(amounts, **kw):
    m = analyse_motion(deformed_loop(amounts, **kw), 1.0)
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


def test_pose_extremes_rest_reached_first_even_when_noisy():
    # rest 0..7, rise, hold 16..23, fall, rest 32..39; heavy electronic noise on every frame
    r, c = _rest_and_peak(profile(), noise=12.0, seed=3)
    assert 0 <= r <= 7, r
    assert 16 <= c <= 23, c
    # the same loop starting at the hold: the extreme reached first (the hold) comes first
    amounts = list(profile()[16:]) + list(profile()[:16])
    m = analyse_motion(deformed_loop(amounts, noise=12.0, seed=3), 1.0)
    assert m.rest_frame <= 7 and 16 <= m.contraction_frame <= 23
    assert len(m.pose_score) == 40


def test_probe_drift_is_not_the_contraction():
    # the probe slides 14 px steadily over the loop (far more than the contraction moves the
    # tissue); the tissue contracts by 3 px in frames 14..22 only
    n = 36
    amounts = np.interp(np.arange(n), [0, 10, 14, 22, 26, n - 1], [0, 0, 3, 3, 0, 0])
    r, c = _rest_and_peak(amounts, drift=np.linspace(0.0, 14.0, n))
    assert 14 <= c <= 22, c
    assert r <= 10 or r >= 26, r


def test_two_frame_loop_rest_first():
    m = analyse_motion(deformed_loop([0.0, 5.0]), 1.0)
    assert (m.rest_frame, m.contraction_frame) == (0, 1)
    m = analyse_motion(deformed_loop([5.0, 0.0]), 1.0)  # contracted first: the order is the muscle's call
    assert {m.rest_frame, m.contraction_frame} == {0, 1}


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 0, 2), (0, 2, 1), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_three_pose_loop_any_order_gives_rest_and_peak(order):
    # poses rest (0 px), half-way (3 px), peak (6 px) in any order: never the half-way pose
    amounts = [3.0 * k for k in order]
    m = analyse_motion(deformed_loop(amounts, noise=4.0), 1.0)
    rest, peak = order.index(0), order.index(2)
    assert {m.rest_frame, m.contraction_frame} == {rest, peak}
    if rest < peak:  # rest reached first: no need of the muscle's word
        assert (m.rest_frame, m.contraction_frame) == (rest, peak)


def test_swapped_exchanges_rest_and_peak():
    from msus.analysis.motion import swapped

    m = analyse_motion(deformed_loop(profile()), 1.0)
    s = swapped(m)
    assert (s.rest_frame, s.contraction_frame) == (m.contraction_frame, m.rest_frame)
    assert s.deformation_px[s.rest_frame] == pytest.approx(0.0, abs=1e-6)
    assert s.deformation_px[s.contraction_frame] == pytest.approx(m.deformation_px[m.contraction_frame], rel=0.2)
