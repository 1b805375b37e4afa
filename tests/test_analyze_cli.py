"""``msus analyze``: samples (full, partial, intact), real intact muscle, bad inputs."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from msus.cli import main

KEYS = ("rest_frame", "contraction_frame", "gap_rest_mm", "gap_contraction_mm", "retraction_mm",
        "defect_thickness_fraction", "classification", "reasons", "calibration_source", "gap_curve_mm",
        "gap_rest_px", "gap_contraction_px", "retraction_px", "gap_curve_px",
        "muscle_thickness_mm", "muscle_thickness_px", "muscle_thickness_rest_mm", "muscle_thickness_contraction_mm",
        "motion_evidence")
MOTION_KEYS = ("separation_profile_mm", "separating_fraction", "left_displacement_mm", "right_displacement_mm")


def analyze_json(capsys, *args):
    rc = main(["analyze", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    d = json.loads(out)
    for k in KEYS:
        assert k in d, k
    for k in MOTION_KEYS:
        assert k in d["motion_evidence"], k
    n = d["n_frames"]
    assert len(d["muscle_thickness_mm"]) == n == len(d["muscle_thickness_px"])
    return d


def truth_of(samples_dir, name):
    return json.loads((samples_dir / f"{name}.truth.json").read_text())["truth"]


def test_full_tear_sample(capsys, samples_dir):
    d = analyze_json(capsys, samples_dir / "phantom_full_tear.dcm")
    t = truth_of(samples_dir, "phantom_full_tear")
    assert d["classification"] == "suspected_full_thickness"
    assert d["calibration_source"] == "us_region"
    assert abs(d["rest_frame"] - t["rest_frame"]) <= 3
    assert abs(d["contraction_frame"] - t["contraction_frame"]) <= 4
    # gaps against the truth on the frames the analysis chose
    assert d["gap_rest_mm"] == pytest.approx(t["gap_mm"][d["rest_frame"]], abs=0.75)
    assert d["gap_contraction_mm"] == pytest.approx(t["gap_mm"][d["contraction_frame"]], abs=0.75)
    assert d["retraction_mm"] > 2.5
    assert d["defect_thickness_fraction"] >= 0.9
    assert any("of the muscle thickness" in r for r in d["reasons"])
    assert any(r.startswith("gap widens") for r in d["reasons"])
    assert d["disclaimer"] == "flag for review, not a diagnosis"
    curve = d["gap_curve_mm"]
    assert len(curve) == t["n_frames"] == len(d["gap_curve_px"])
    err = [abs(g - tg) for g, tg in zip(curve, t["gap_mm"]) if g is not None]
    assert len(err) >= 0.8 * len(curve) and float(np.median(err)) < 0.75
    assert d["gap_rest_px"] == pytest.approx(d["gap_rest_mm"] / 0.12, rel=1e-6)
    # motion evidence: the ends separate across the whole thickness
    me = d["motion_evidence"]
    assert me["found"] and me["separating_fraction"] >= 0.85
    assert me["left_displacement_mm"] < 0 < me["right_displacement_mm"]
    assert len(me["separation_profile_mm"]) == len(me["depth_fraction"]) > 0
    assert any(r.startswith("motion: the ends separate") for r in d["reasons"])
    # muscle thickness on every frame (fascia mid-lines), in mm and px
    ok = [(a, b) for a, b in zip(d["muscle_thickness_mm"], t["muscle_thickness_mm"]) if a is not None]
    assert len(ok) >= 0.8 * len(curve)
    assert float(np.median([abs(a - b) for a, b in ok])) < 1.5
    assert d["muscle_thickness_rest_mm"] == d["muscle_thickness_mm"][d["rest_frame"]]
    assert d["muscle_thickness_contraction_mm"] == d["muscle_thickness_mm"][d["contraction_frame"]]
    mm_px = [(a, b) for a, b in zip(d["muscle_thickness_mm"], d["muscle_thickness_px"]) if a is not None]
    assert all(a == pytest.approx(b * 0.12, rel=1e-6) for a, b in mm_px)


def test_partial_tear_sample(capsys, samples_dir):
    d = analyze_json(capsys, samples_dir / "phantom_partial_tear.dcm")
    t = truth_of(samples_dir, "phantom_partial_tear")
    assert d["classification"] == "partial"
    assert 0.3 <= d["defect_thickness_fraction"] <= 0.75
    assert d["gap_rest_mm"] == pytest.approx(t["gap_rest_mm"], abs=0.75)
    assert abs(d["retraction_mm"]) < 1.0


def test_intact_sample(capsys, samples_dir):
    d = analyze_json(capsys, samples_dir / "phantom_intact.dcm")
    assert d["classification"] == "no_defect"
    assert d["gap_rest_mm"] is None and d["gap_rest_px"] is None
    assert all(v is None for v in d["gap_curve_mm"])
    assert d["tracked"] == "muscle" and d["fb_error_px"] is not None


def test_uncalibrated_video_reports_px(capsys, samples_dir):
    d = analyze_json(capsys, samples_dir / "phantom_full_tear_tilted.mp4")
    assert d["classification"] == "suspected_full_thickness"
    assert d["calibration_source"] == "none"
    assert d["gap_rest_mm"] is None and d["retraction_mm"] is None
    assert all(v is None for v in d["gap_curve_mm"])
    assert d["gap_rest_px"] > 20 and d["retraction_px"] > 20
    # a manual calibration turns px into mm
    d2 = analyze_json(capsys, samples_dir / "phantom_full_tear_tilted.mp4", "--mm-per-px", "0.075")
    assert d2["calibration_source"] == "manual"
    assert d2["gap_rest_mm"] == pytest.approx(d2["gap_rest_px"] * 0.075, rel=1e-6)


def test_user_frames_and_roi(capsys, samples_dir):
    d = analyze_json(capsys, samples_dir / "phantom_full_tear.dcm", "--rest-frame", "3", "--contraction-frame", "21",
                     "--roi", "20,40,379,259")
    assert (d["rest_frame"], d["contraction_frame"]) == (3, 21)
    assert d["rest_frame_source"] == d["contraction_frame_source"] == "user"
    assert d["roi"] == [20, 40, 379, 259]
    assert d["classification"] == "suspected_full_thickness"


def test_real_intact_gastrocnemius_video(capsys, data_dir):
    # Drazan, Hullfish & Baxter 2019 (CC BY 4.0): medial gastrocnemius, no tear, 0.0883 mm/px
    d = analyze_json(capsys, data_dir / "p6_isokinetic120_01_push_02.mp4", "--mm-per-px", "0.0883")
    assert d["classification"] == "no_defect"
    assert d["fb_error_px"] is not None and d["fb_error_px"] < 1.0


def test_real_intact_frames(capsys, data_dir):
    d = analyze_json(capsys, data_dir / "gastroc_jumping_frames", "--mm-per-px", "0.0866")
    assert d["classification"] == "no_defect"
    assert not d["motion_evidence"]["found"]
    assert d["muscle_thickness_rest_mm"] is not None


def test_text_output(capsys, samples_dir):
    assert main(["analyze", str(samples_dir / "phantom_intact.dcm")]) == 0
    out = capsys.readouterr().out
    assert "classification: no_defect" in out and "not a diagnosis" in out


def _error(capsys, *args):
    rc = main(["analyze", *map(str, args)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("msus: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_roi_outside_the_image(capsys, samples_dir):
    err = _error(capsys, samples_dir / "phantom_intact.dcm", "--roi", "0,0,5000,5000")
    assert "outside" in err
    assert "X0,Y0,X1,Y1" in _error(capsys, samples_dir / "phantom_intact.dcm", "--roi", "1,2,3")


def test_frame_out_of_range(capsys, samples_dir):
    assert "outside the loop" in _error(capsys, samples_dir / "phantom_intact.dcm", "--rest-frame", "999")


def test_one_frame_loop(capsys, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), rng.integers(0, 255, (120, 160), dtype=np.uint8))
    assert "at least two frames" in _error(capsys, path)


def test_blank_loop(capsys, tmp_path):
    folder = tmp_path / "blank"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i:02d}.png"), np.zeros((120, 160), np.uint8))
    assert "blank" in _error(capsys, folder)


def test_subprocess_exit_status(samples_dir):
    r = subprocess.run([sys.executable, "-m", "msus", "analyze", str(samples_dir / "phantom_intact.dcm"),
                        "--roi=-5,0,10,10"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("msus: error:") and "Traceback" not in r.stderr


# ---- the result as the review app uses it ---------------------------------------------------------
def _panel_script():
    import streamlit as st

    import msus
    from msus.ui import analysis_panel
    from msus.ui.review import Review

    cine = msus.load(st.session_state.get("path"))
    if "rv" not in st.session_state:
        st.session_state["rv"] = Review.for_cine(cine, "loop-1")
    rv = st.session_state["rv"]
    res = analysis_panel.render(cine, rv)
    st.session_state["out"] = None if res is None else res.classification
    st.session_state["nshapes"] = len(rv.extra_shapes)


def test_analysis_panel_accept_and_reject(samples_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_panel_script, default_timeout=120)
    at.session_state["path"] = str(samples_dir / "phantom_full_tear.dcm")
    at.run()
    at.button(key="msus_analyze_btn").click().run()
    assert not at.exception
    assert at.session_state["out"] == "suspected_full_thickness"
    assert at.session_state["nshapes"] > 20  # stumps and calipers on tracked frames, outline, fasciae
    assert any("flag for review, not a diagnosis" in e.value for e in at.error)
    at.button(key="msus_acc_rest_frame").click().run()
    rv = at.session_state["rv"]
    assert rv.rest_frame is not None
    at.button(key="msus_acc_gap_rest").click().run()
    ms = at.session_state["rv"].measurements
    assert [(m.label, m.kind) for m in ms] == [("gap at rest", "automatic")]
    assert ms[0].length_mm == pytest.approx(5.0, abs=0.75)
    at.button(key="msus_rej_flag").click().run()
    assert at.session_state["out"] is None
    assert any("rejected" in i.value for i in at.info)


def _path_of(node, key, path=()):
    """The index path of the element with ``key`` in an AppTest tree (None when it is not drawn)."""
    if getattr(node, "key", None) == key:
        return path
    for i, child in getattr(node, "children", {}).items():
        found = _path_of(child, key, path + (i,))
        if found is not None:
            return found
    return None


def test_analysis_rows_keep_their_places_after_the_analyze_run(samples_dir):
    """The run that analyses draws a progress bar; the next run does not.  A bar in the page flow
    moved every row below it by one, and a moved keyed button is briefly drawn twice in the browser
    (the old one stale, the new one live): a click then hit two Accept buttons."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_panel_script, default_timeout=120)
    at.session_state["path"] = str(samples_dir / "phantom_full_tear.dcm")
    at.run()
    at.button(key="msus_analyze_btn").click().run()
    keys = ["msus_acc_rest_frame", "msus_acc_contraction_frame", "msus_acc_gap_rest", "msus_rej_flag"]
    placed = {k: _path_of(at.main, k) for k in keys}
    assert all(placed.values()), placed
    at.button(key="msus_acc_rest_frame").click().run()
    assert {k: _path_of(at.main, k) for k in keys} == placed
    at.run()  # a run with no click at all (the player's)
    assert {k: _path_of(at.main, k) for k in keys} == placed


def test_overlay_shapes_are_plain_data(samples_dir):
    import msus
    from msus.analysis import analyze
    from msus.ui.analysis_panel import overlay_shapes

    with msus.load(samples_dir / "phantom_full_tear.dcm") as cine:
        res = analyze(cine)
    shapes = overlay_shapes(res)
    json.dumps(shapes)
    kinds = {s["kind"] for s in shapes}
    assert {"line", "polyline", "point"} <= kinds
    outline = [s for s in shapes if s["label"] == "defect"]
    assert {s["frame"] for s in outline} == {res.rest_frame, res.contraction_frame}
    assert all(s["closed"] for s in outline)
    hidden = overlay_shapes(res, hidden={"gap_rest"})
    assert not [s for s in hidden if s["frame"] == res.rest_frame and s["kind"] == "point"]
    ov = res.overlay(res.contraction_frame)
    assert ov["gap_label"].endswith("mm") and len(ov["calipers"]) == 3


def test_user_keyframes_reanchor_the_track(samples_dir):
    import msus
    from msus.analysis import analyze, keyframes_from_calipers

    with msus.load(samples_dir / "phantom_full_tear.dcm") as cine:
        res = analyze(cine)
        c = res.contraction_frame
        pts = np.asarray(res.stumps_at(c))
        k = len(pts) // 2
        # the reviewer drags the right stump 3 px further right on the contraction frame
        a, b = pts[k // 2], pts[k + k // 2] + [3.0, 0.0]
        keys = keyframes_from_calipers(res, {c: (tuple(b), tuple(a))})  # ends in either order
        res2 = analyze(cine, rest_frame=res.rest_frame, contraction_frame=c, keyframes=keys)
    got = np.asarray(res2.stumps_at(c))
    assert np.allclose(got[k:], pts[k:] + [3.0, 0.0], atol=1e-6)
    assert np.allclose(got[:k], pts[:k], atol=1e-6)
    assert res2.gap_curve_px[c] == pytest.approx(res.gap_curve_px[c] + 3.0, abs=0.3)
    # the reported contraction gap follows the reviewer's stumps
    assert res2.gap_contraction_px == pytest.approx(res2.gap_curve_px[c], rel=1e-9)
