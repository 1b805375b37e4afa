"""The phantom simulator: ground truth consistent with the pixels, motion, determinism."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from msus.errors import MsusError
from msus.synth import (
    SynthParams,
    contraction_profile,
    render_frames,
    simulate,
    simulate_cine,
)

SMALL = dict(rows=220, columns=300, mm_per_px=0.15, n_frames=16, fps=10.0, muscle_depth_mm=5.0,
             muscle_thickness_mm=15.0, bone_gap_mm=7.0)


@pytest.fixture(scope="module")
def full():
    return simulate(SynthParams(tear="full", gap_rest_mm=5.0, gap_contraction_mm=10.0, seed=11, **SMALL))


@pytest.fixture(scope="module")
def partial():
    return simulate(SynthParams(tear="partial", partial_fraction=0.5, gap_rest_mm=9.0, seed=12, **SMALL))


@pytest.fixture(scope="module")
def intact():
    return simulate(SynthParams(tear="none", seed=13, fascia_tilt_deg=6.0, **SMALL))


def _ring(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool) & ~mask


def test_shapes_types_and_classification(full, partial, intact):
    for ph, cls, frac in ((full, "suspected_full_thickness", 1.0), (partial, "partial", 0.5), (intact, "no_defect", 0.0)):
        assert ph.frames.dtype == np.uint8 and ph.frames.shape == (16, 220, 300)
        assert ph.classification == cls
        assert ph.defect_thickness_fraction == pytest.approx(frac)
        assert ph.gap_mm.shape == (16,) and ph.stump_ends_px.shape == (16, 2, 2)
        assert 0 <= ph.rest_frame < ph.contraction_frame < ph.n_frames
        assert ph.activation[ph.rest_frame] == 0.0 and ph.activation[ph.contraction_frame] == 1.0


def test_contraction_profile_rest_first_smooth():
    a = contraction_profile(100)
    assert a[0] == 0 and a[-1] == 0 and a.max() == 1.0
    assert np.all(np.abs(np.diff(a)) < 0.2)  # smooth
    assert np.argmax(a > 0) > 10  # rest first


def test_full_tear_gap_opens_on_contraction(full):
    g = full.gap_mm
    assert g[full.rest_frame] == pytest.approx(5.0, abs=1e-6)
    assert g[full.contraction_frame] == pytest.approx(10.0, abs=1e-6)
    assert full.retraction_mm == pytest.approx(5.0, abs=1e-6)
    # gap follows the activation: larger whenever the muscle is more contracted
    order = np.argsort(full.activation)
    assert np.all(np.diff(g[order]) >= -1e-9)


def test_partial_gap_constant_and_none_has_no_gap(partial, intact):
    assert np.allclose(partial.gap_mm, 9.0, atol=1e-6)
    assert partial.retraction_mm == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isnan(intact.gap_mm)) and np.all(np.isnan(intact.stump_ends_px))
    assert not intact.defect_mask(0).any()


def test_stump_ends_are_gap_apart(full, partial):
    for ph in (full, partial):
        d = np.linalg.norm(ph.stump_ends_px[:, 1] - ph.stump_ends_px[:, 0], axis=1) * ph.mm_per_px
        assert np.allclose(d, ph.gap_mm, atol=1e-6)


@pytest.mark.parametrize("which", ["full", "partial"])
def test_defect_is_dark_but_not_black_where_truth_says(which, request):
    ph = request.getfixturevalue(which)
    for i in (ph.rest_frame, ph.contraction_frame):
        f = ph.frames[i].astype(float)
        m = ph.defect_mask(i)
        # the inner part of the defect (away from the PSF-blurred, frayed border)
        core = cv2.erode(m.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        ring = _ring(m, 8) & ph.muscle_mask(i)
        assert core.sum() > 50 and ring.sum() > 200
        assert f[core].mean() < 0.75 * f[ring].mean()
        assert f[core].mean() > 12  # a haematoma with echoes, not a black hole


def test_defect_area_matches_gap_times_thickness(full):
    i = full.contraction_frame
    area_mm2 = full.defect_mask(i).sum() * full.mm_per_px**2
    thick_mm = np.mean(full.fascia_px[i, 1, :, 1] - full.fascia_px[i, 0, :, 1]) * full.mm_per_px
    assert area_mm2 == pytest.approx(full.gap_mm[i] * thick_mm, rel=0.25)


def test_profile_between_stump_ends_is_darker(full):
    i = full.contraction_frame
    f = cv2.GaussianBlur(full.frames[i].astype(float), (0, 0), 2)
    (x1, y1), (x2, y2) = full.stump_ends_px[i]
    n = int(abs(x2 - x1))
    xs = np.linspace(x1, x2, n)
    ys = np.linspace(y1, y2, n)
    inside = f[np.round(ys).astype(int), np.round(xs).astype(int)][n // 4 : 3 * n // 4].mean()
    outside = np.concatenate([
        f[int(round(y1)), int(x1) - n : int(x1) - n // 3],
        f[int(round(y2)), int(x2) + n // 3 : int(x2) + n],
    ]).mean()
    assert inside < 0.8 * outside


def test_fascia_bright(intact):
    ph = intact
    i = ph.rest_frame
    f = ph.frames[i].astype(float)
    mus = ph.muscle_mask(i)
    off_sup = 0.4 / ph.mm_per_px  # band centre above the muscle-side edge
    off_deep = 0.33 / ph.mm_per_px
    vals = []
    for k, off in ((0, -off_sup), (1, off_deep)):
        line = ph.fascia_px[i, k]
        xs = np.arange(10, ph.frames.shape[2] - 10)
        ys = np.interp(xs, line[:, 0], line[:, 1]) + off
        vals.append(np.median(f[np.round(ys).astype(int), xs]))
    assert min(vals) > 1.4 * np.median(f[mus])


def test_tilt_and_fascia_lines(intact):
    sup = intact.fascia_px[0, 0]
    inside = (sup[:, 0] > 0) & (sup[:, 0] < intact.frames.shape[2])
    slope = np.polyfit(sup[inside, 0], sup[inside, 1], 1)[0]
    assert math.degrees(math.atan(slope)) == pytest.approx(6.0, abs=1.5)


def test_muscle_thickens_and_moves_on_contraction(intact):
    i0, i1 = intact.rest_frame, intact.contraction_frame
    t0 = np.mean(intact.fascia_px[i0, 1, :, 1] - intact.fascia_px[i0, 0, :, 1])
    t1 = np.mean(intact.fascia_px[i1, 1, :, 1] - intact.fascia_px[i1, 0, :, 1])
    assert t1 > t0 * 1.03
    th = intact.muscle_thickness_mm
    assert th[i0] == pytest.approx(15.0, rel=0.1) and th[i1] == pytest.approx(th[i0] * 1.06)
    # the superficial fascia slides along the axis: bright structures move between rest and peak
    sup0, sup1 = intact.fascia_px[i0, 0], intact.fascia_px[i1, 0]
    assert np.median(sup1[:, 0] - sup0[:, 0]) == pytest.approx(2.0 / intact.mm_per_px * math.cos(math.radians(6)), abs=2.5)


def test_speckle_moves_coherently_with_probe_jitter():
    p = SynthParams(tear="none", jitter_mm=0.4, seed=5, **SMALL)
    ph = simulate(p)
    rest = [i for i in range(ph.n_frames) if ph.activation[i] == 0 and i < ph.contraction_frame]
    a, b = rest[0], rest[-1]
    fa, fb = (np.float64(ph.frames[k]) for k in (a, b))
    (dx, dy), resp = cv2.phaseCorrelate(fa, fb)
    want = ph.jitter_px[b] - ph.jitter_px[a]
    assert resp > 0.2
    assert dx == pytest.approx(want[0], abs=0.5) and dy == pytest.approx(want[1], abs=0.5)
    # consecutive frames are strongly correlated (tissue is displaced, not re-drawn)
    c = np.corrcoef(ph.frames[a].ravel(), ph.frames[a + 1].ravel())[0, 1]
    assert c > 0.5


def test_deterministic_and_independent_of_threads():
    p = SynthParams(tear="full", seed=3, **SMALL)
    a = simulate(p, workers=1)
    b = simulate(p, workers=2)
    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(render_frames(p, [0, 7]), a.frames[[0, 7]])
    c = simulate(p, seed=4)
    assert not np.array_equal(a.frames, c.frames)


def test_to_dict_is_json(full, intact):
    for ph in (full, intact):
        d = json.loads(json.dumps(ph.to_dict(), allow_nan=False))
        assert d["classification"] == ph.classification
        assert len(d["gap_mm"]) == ph.n_frames
        assert d["params"]["seed"] == ph.params.seed
    assert json.loads(json.dumps(intact.to_dict()))["gap_rest_mm"] is None


def test_simulate_cine_is_calibrated():
    cine = simulate_cine(SynthParams(tear="partial", **SMALL))
    assert cine.n_frames == 16 and cine.shape == (220, 300)
    assert cine.fps == pytest.approx(10.0)
    assert cine.calibration.source == "us_region" and cine.calibration.calibrated
    assert cine.calibration.mm_per_px_at(150, 110) == pytest.approx((0.15, 0.15))
    d = cine.calibration.measure((10, 10), (110, 10))
    assert d.distance_mm == pytest.approx(15.0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(tear="torn"),
        dict(partial_fraction=1.2),
        dict(gap_rest_mm=8.0, gap_contraction_mm=4.0),
        dict(mm_per_px=0.0),
        dict(n_frames=1),
        dict(gap_rest_mm=40.0, gap_contraction_mm=45.0),
        dict(muscle_depth_mm=60.0),
    ],
)
def test_bad_parameters_are_msus_errors(kw):
    with pytest.raises(MsusError) as exc:
        SynthParams(**{**SMALL, **kw})
    assert "\n" not in str(exc.value)


def _dark_fraction_at_centre(ph, i):
    """Share of the fascia-to-fascia span that is dark on the column through the defect centre."""
    f = cv2.GaussianBlur(ph.frames[i].astype(float), (0, 0), 2.5)
    xc = int(round(ph.stump_ends_px[i, :, 0].mean()))
    ref = np.median(f[ph.muscle_mask(i) & ~ph.defect_mask(i)])
    ys = []
    for k in range(2):
        line = ph.fascia_px[i, k]
        ys.append(float(np.interp(xc, line[:, 0], line[:, 1])))
    col = f[int(ys[0]) + 1 : int(ys[1]), xc - 2 : xc + 3].mean(axis=1)
    return float(np.mean(col < 0.7 * ref))


def test_defect_thickness_fraction_matches_pixels(full, partial):
    assert _dark_fraction_at_centre(full, full.contraction_frame) > 0.8
    assert _dark_fraction_at_centre(partial, partial.rest_frame) == pytest.approx(0.5, abs=0.17)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_random_geometry_truth_is_consistent(seed):
    rng = np.random.default_rng(seed)
    g0 = float(rng.uniform(3, 8))
    p = SynthParams(
        tear="full", gap_rest_mm=g0, gap_contraction_mm=g0 + float(rng.uniform(0, 6)),
        fascia_tilt_deg=float(rng.uniform(-10, 10)), fascicle_angle_deg=float(rng.uniform(5, 30)),
        fray_mm=float(rng.uniform(0, 2)), seed=seed, **{**SMALL, "n_frames": 8},
    )
    ph = simulate(p)
    assert ph.gap_mm[ph.rest_frame] == pytest.approx(p.gap_rest_mm, abs=1e-6)
    assert ph.gap_mm[ph.contraction_frame] == pytest.approx(p.gap_contraction_mm, abs=1e-6)
    m = ph.defect_mask(ph.contraction_frame)
    f = ph.frames[ph.contraction_frame].astype(float)
    assert f[m].mean() < 0.8 * f[_ring(m, 8) & ph.muscle_mask(ph.contraction_frame)].mean()


def test_single_look_envelope_has_rayleigh_statistics():
    """Inside the homogeneous haematoma the envelope of one look is Rayleigh (mean/std = 1.91)."""
    from msus.synth.render import Renderer
    from msus.synth.scene import Scene

    p = SynthParams(tear="full", gap_rest_mm=12.0, gap_contraction_mm=13.0, fray_mm=0.0, seed=8, **SMALL)
    rend = Renderer(Scene(p))
    x, y, a = rend.points(0)
    only_fluid = a.copy()
    only_fluid[: rend.n_main] = 0
    only_fluid[rend.n_main + rend.n_h :] = 0  # no floating echoes
    iq = rend._splat(x, y, only_fluid, p.rows, p.columns).copy()
    for k in range(2):
        iq[k] = cv2.GaussianBlur(iq[k], rend.ksize, sigmaX=rend.sc.sig_x_focus, sigmaY=rend.sc.sig_z)
    env = np.hypot(iq[0], iq[1])
    ph = simulate(p)
    core = cv2.erode(ph.defect_mask(0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    e = env[core]
    assert e.size > 2000
    assert e.mean() / e.std() == pytest.approx(1.91, abs=0.2)
