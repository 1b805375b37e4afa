"""msus.analysis.track: Lucas-Kanade point tracking with forward-backward checks and keyframes."""

import cv2
import numpy as np
import pytest

from msus.errors import AnalysisError
from msus.analysis.track import track_points


def texture(h=160, w=200, seed=1):
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.5)
    return ((t - t.min()) / (t.max() - t.min()) * 200 + 20).astype(np.float32)


def moving(shifts):
    base = texture()
    out = []
    for sx, sy in shifts:
        m = np.float32([[1, 0, sx], [0, 1, sy]])
        out.append(cv2.warpAffine(base, m, (base.shape[1], base.shape[0]), borderMode=cv2.BORDER_REFLECT))
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


SHIFTS = [(0.7 * i, 0.3 * i) for i in range(15)]
PTS = np.array([[70.0, 60.0], [120.0, 90.0]])


def test_follows_a_translation_sub_pixel():
    frames = moving(SHIFTS)
    tr = track_points(frames, PTS, anchor_frame=0)
    truth = PTS[None] + np.array(SHIFTS)[:, None, :]
    err = np.linalg.norm(tr.points_px - truth, axis=2)
    assert err.max() < 0.3, err.max()
    assert tr.reliable.all()
    assert tr.median_fb_error_px < 0.2
    assert tr.keyframes == (0,)


def test_anchor_in_the_middle_tracks_both_ways():
    frames = moving(SHIFTS)
    start = PTS + np.array(SHIFTS[7])
    tr = track_points(frames, start, anchor_frame=7)
    truth = PTS[None] + np.array(SHIFTS)[:, None, :]
    assert np.linalg.norm(tr.points_px - truth, axis=2).max() < 0.3


def test_keyframe_reanchors_the_track_exactly():
    frames = moving(SHIFTS)
    wrong = PTS + np.array(SHIFTS[10]) + [3.0, -2.0]  # a user correction (deliberately off)
    tr = track_points(frames, PTS, {10: wrong}, anchor_frame=0)
    assert np.allclose(tr.points_px[10], wrong)
    assert np.allclose(tr.points_px[0], PTS)
    # half-way the blend carries half of the correction
    truth5 = PTS + np.array(SHIFTS[5])
    off = tr.points_px[5] - truth5
    assert np.allclose(off.mean(0), [1.5, -1.0], atol=0.35)
    assert set(tr.keyframes) == {0, 10}


def test_scrambled_frame_is_marked_unreliable():
    frames = moving(SHIFTS)
    rng = np.random.default_rng(5)
    frames[8] = rng.integers(0, 255, frames[8].shape, dtype=np.uint8)
    tr = track_points(frames, PTS, anchor_frame=0)
    assert 8 in tr.unreliable_frames
    assert 3 not in tr.unreliable_frames


def test_patch_offsets_and_span():
    frames = moving(SHIFTS)
    tr = track_points(frames, PTS, anchor_frame=2, patch_offsets_px=[[-8, 0], [8, 0]], span=(2, 9))
    assert np.isnan(tr.points_px[0]).all() and np.isnan(tr.points_px[12]).all()
    truth = PTS + np.array(SHIFTS[9]) - np.array(SHIFTS[2])
    assert np.linalg.norm(tr.points_px[9] - truth, axis=1).max() < 0.3


def test_bad_inputs():
    frames = moving(SHIFTS[:3])
    with pytest.raises(AnalysisError):
        track_points(frames, np.zeros((0, 2)))
    with pytest.raises(AnalysisError):
        track_points(frames, PTS, anchor_frame=5)
    with pytest.raises(AnalysisError):
        track_points(frames, PTS, {1: [[1, 2]]})
