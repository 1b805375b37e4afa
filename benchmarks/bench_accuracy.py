"""Accuracy of the tear analysis on varied simulated loops (not the committed samples).

``N_CASES`` loops from :mod:`msus.synth` with their own seeds, cycling the tear kinds (full,
partial, none) and drawing depth, thickness, fascicle angle, fascia tilt, gap, retraction,
partial fraction, pixel spacing, frequency and noise at random.  The analysis sees only the
pixels and the calibration (``simulate_cine``); the ground truth is read afterwards.

Figures (each with a naive baseline measured in the same run):

* gap MAE at rest / at contraction (mm), against the true gap *on the frame the analysis chose*
  (so frame choice and measurement are judged separately); baseline: a fixed-threshold detector
  (dark pixels below 60 % of the ROI median, widest dark run of the component nearest the
  centre) for rest, the "no retraction" predictor (contraction gap = rest gap) for contraction;
* classification accuracy; baseline: always the most frequent class;
* tracking drift (mm): the true stump ends at rest tracked to the contraction frame with no
  re-anchoring, distance to the true ends there; baseline: "no motion" (ends stay put);
* frame choice error (frames) for rest and contraction; baselines: frame 0, and the frame that
  differs most from frame 0 (mean absolute grey difference).

Goals: gap MAE ≤ 0.5 mm, classification ≥ 95 %, drift ≤ 0.5 mm.

**Foreign set** (``foreign: …`` figures): ``N_FOREIGN`` loops from the independent simulator in
``tests/foreign_sim.py`` (another speckle model, display, anatomy, tear shapes, contraction
profiles, scanner-like screens with a calibrated region not covering the frame); loops k ≡ 1
(mod 5) go through ``msus.load`` from a JPEG DICOM and k ≡ 3 (mod 5) from an H.264 MP4 (uncalibrated, so
the true mm/px is passed as the manual calibration and the ROI comes from the texture).  Same
figures and baselines, plus false flags on intact muscles.
``python -m benchmarks accuracy`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import math
import os
from collections import Counter

import cv2
import numpy as np

from benchmarks.common import Figure

N_CASES = int(os.environ.get("MSUS_BENCH_CASES", "36"))
SEED = int(os.environ.get("MSUS_BENCH_SEED", "2026"))
N_FOREIGN = int(os.environ.get("MSUS_BENCH_FOREIGN_CASES", "36"))


def case_params(k: int, rng: np.random.Generator):
    """Parameters of case ``k`` (varied; none of them is passed to the analysis)."""
    from msus.synth import SynthParams

    tear = ("full", "partial", "none")[k % 3]
    mmpp = float(rng.uniform(0.06, 0.14))
    thick = float(rng.uniform(10.0, 24.0))
    depth = float(rng.uniform(4.0, 12.0))
    g0 = float(rng.uniform(3.0, 10.0))
    frac = float(rng.uniform(0.3, 0.7))
    pos = float(np.clip(rng.uniform(0.3, 0.7), frac / 2, 1 - frac / 2))
    rows = int(min(480, (depth + thick + 14.0) / mmpp))
    cols = int(min(640, 60.0 / mmpp))
    return SynthParams(
        tear=tear,
        partial_fraction=frac,
        partial_position=pos,
        gap_rest_mm=g0,
        gap_contraction_mm=g0 + float(rng.uniform(2.0, 6.0)),
        tear_offset_mm=float(rng.uniform(-3.0, 3.0)),
        fray_mm=float(rng.uniform(0.5, 1.3)),
        muscle_depth_mm=depth,
        muscle_thickness_mm=thick,
        fascicle_angle_deg=float(rng.uniform(5.0, 30.0)),
        fascia_tilt_deg=float(rng.uniform(-12.0, 12.0)),
        mm_per_px=mmpp,
        rows=rows,
        columns=cols,
        n_frames=24,
        frequency_mhz=float(rng.uniform(8.0, 14.0)),
        noise=float(rng.uniform(0.05, 0.3)),
        seed=1000 + k,
    )


def _naive_peak(frames: np.ndarray) -> int:
    """Baseline peak-contraction frame: the frame that differs most from the first one."""
    f0 = frames[0].astype(np.float32)
    return int(np.argmax([np.abs(f.astype(np.float32) - f0).mean() for f in frames]))


def naive_gap_px(frame: np.ndarray) -> float | None:
    """Baseline detector: fixed threshold, widest dark run of the dark blob nearest the centre."""
    g = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), 3)
    h, w = g.shape
    mask = (g < 0.6 * float(np.median(g[h // 6 : 5 * h // 6]))).astype(np.uint8)
    n, lab, stats, cent = cv2.connectedComponentsWithStats(mask)
    if n <= 1:
        return None
    big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] > 50 and stats[i, cv2.CC_STAT_WIDTH] < 0.8 * w]
    if not big:
        return None
    i = min(big, key=lambda i: math.hypot(cent[i][0] - w / 2, cent[i][1] - h / 2))
    return float(np.median((lab == i).sum(axis=1)[(lab == i).any(axis=1)]))


def evaluate(n_cases: int = N_CASES) -> list[dict]:
    """Run the analysis on every case; one record per case."""
    from msus.analysis import _patch_offsets, analyze
    from msus.calibration import Calibration
    from msus.synth import calibration_for, simulate
    from msus.cine import Cine
    from msus.analysis.track import track_points

    rng = np.random.default_rng(SEED)
    out = []
    for k in range(n_cases):
        p = case_params(k, rng)
        ph = simulate(p)
        cine = Cine.from_frames(ph.frames, fps=ph.fps, calibration=calibration_for(p), kind="synthetic")
        res = analyze(cine)
        r, c = res.rest_frame, res.contraction_frame
        rec = {
            "tear": p.tear,
            "truth": ph.classification,
            "pred": res.classification,
            "frac": res.defect_thickness_fraction,
            "true_frac": ph.defect_thickness_fraction,
            "retraction_mm": res.retraction_mm,
            "rest_err_frames": abs(r - ph.rest_frame),
            "con_err_frames": abs(c - ph.contraction_frame),
            "rest_base_frames": abs(0 - ph.rest_frame),
            "con_base_frames": abs(_naive_peak(ph.frames) - ph.contraction_frame),
        }
        if p.tear != "none":
            t_r, t_c = float(ph.gap_mm[r]), float(ph.gap_mm[c])
            rec["gap_rest_err"] = None if res.gap_rest_mm is None else abs(res.gap_rest_mm - t_r)
            rec["gap_con_err"] = None if res.gap_contraction_mm is None else abs(res.gap_contraction_mm - t_c)
            rec["gap_con_base"] = None if res.gap_rest_mm is None else abs(res.gap_rest_mm - t_c)
            nb = naive_gap_px(ph.frames[r])
            rec["gap_rest_base"] = abs(t_r) if nb is None else abs(nb * p.mm_per_px - t_r)
            # drift: true stump ends at the true rest frame tracked (no re-anchoring) to the true
            # contraction frame
            a, b = ph.rest_frame, ph.contraction_frame
            ends = ph.stump_ends_px[a]
            offs = np.array([ends[0] - ends[1], ends[1] - ends[0]], float)
            offs = offs / np.linalg.norm(offs, axis=1, keepdims=True) * 9.0
            tr = track_points(ph.frames, ends, anchor_frame=a, patch_offsets_px=offs, span=(a, b))
            got = tr.points_px[b]
            rec["drift_mm"] = float(np.linalg.norm(got - ph.stump_ends_px[b], axis=1).mean() * p.mm_per_px)
            rec["drift_base_mm"] = float(np.linalg.norm(ends - ph.stump_ends_px[b], axis=1).mean() * p.mm_per_px)
        out.append(rec)
    return out


def _mae(vals, missing_penalty=None):
    v = [x for x in vals if x is not None]
    return float(np.mean(v)) if v else float("nan")


def evaluate_foreign(n_cases: int = N_FOREIGN) -> list[dict]:
    """The analysis on loops of the independent simulator (``tests/foreign_sim.py``)."""
    import sys
    import tempfile
    from pathlib import Path

    import msus
    from msus.analysis import analyze
    from msus.cine import Cine

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from foreign_sim import simulate_foreign, write_dicom, write_mp4

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(n_cases):
            L = simulate_foreign(SEED * 1000 + k, ("full", "partial", "none")[k % 3])
            io = {1: "dicom", 3: "mp4"}.get(k % 5, "array")  # every tear kind goes through both
            if io == "dicom":
                path = Path(tmp) / f"f{k}.dcm"
                write_dicom(L, path)
                res = analyze(msus.load(path))
            elif io == "mp4":
                path = Path(tmp) / f"f{k}.mp4"
                write_mp4(L, path)
                res = analyze(msus.load(path), mm_per_px=L.params["mm_per_px"])
            else:
                res = analyze(Cine.from_frames(L.frames, fps=L.fps, calibration=L.calibration, kind="synthetic"))
            r, c = res.rest_frame, res.contraction_frame
            grey = L.frames[r].mean(axis=2).astype(np.uint8)
            x0, y0, x1, y1 = L.region
            rec = {"tear": L.tear, "truth": L.classification, "pred": res.classification, "io": io,
                   "rest_err_frames": abs(r - L.rest_frame), "con_err_frames": abs(c - L.contraction_frame),
                   "rest_base_frames": abs(0 - L.rest_frame),
                   "con_base_frames": abs(_naive_peak(L.frames.mean(axis=3)) - L.contraction_frame)}
            if L.tear != "none":
                t_r, t_c = float(L.gap_mm[r]), float(L.gap_mm[c])
                rec["gap_rest_err"] = None if res.gap_rest_mm is None else abs(res.gap_rest_mm - t_r)
                rec["gap_con_err"] = None if res.gap_contraction_mm is None else abs(res.gap_contraction_mm - t_c)
                rec["gap_con_base"] = None if res.gap_rest_mm is None else abs(res.gap_rest_mm - t_c)
                nb = naive_gap_px(grey[y0 : y1 + 1, x0 : x1 + 1])
                rec["gap_rest_base"] = abs(t_r) if nb is None else abs(nb * L.params["mm_per_px"] - t_r)
            out.append(rec)
    return out


def _figures(recs: list[dict], prefix: str, false_flags: bool = True) -> list[Figure]:
    """Gap MAE (rest, contraction), classification and, optionally, false flags on intact loops."""
    tears = [r for r in recs if r["tear"] != "none"]
    missing = sum(1 for r in tears if r.get("gap_rest_err") is None)
    acc = float(np.mean([r["pred"] == r["truth"] for r in recs]))
    majority = Counter(r["truth"] for r in recs).most_common(1)[0][1] / len(recs)
    g_r = _mae([r.get("gap_rest_err") for r in tears])
    g_r_b = _mae([r.get("gap_rest_base") for r in tears])
    g_c = _mae([r.get("gap_con_err") for r in tears])
    g_c_b = _mae([r.get("gap_con_base") for r in tears])
    conf = Counter((r["truth"], r["pred"]) for r in recs)
    wrong = ", ".join(f"{t}->{p}:{n}" for (t, p), n in sorted(conf.items()) if t != p) or "none"
    intact = [r for r in recs if r["tear"] == "none"]
    flags = sum(1 for r in intact if r["pred"] != "no_defect")
    n = len(recs)
    figs = [
        Figure(f"{prefix}gap MAE at rest", g_r, "mm", g_r_b, g_r / g_r_b if g_r_b else None,
               f"{len(tears) - missing}/{len(tears)} tears measured; baseline fixed-threshold detector; goal <= 0.5 mm"),
        Figure(f"{prefix}gap MAE at contraction", g_c, "mm", g_c_b, g_c / g_c_b if g_c_b else None,
               "baseline 'no retraction' (contraction gap = rest gap); goal <= 0.5 mm"),
        Figure(f"{prefix}classification", acc * 100, "%", majority * 100, acc / majority,
               f"{n} loops; baseline majority class; errors {wrong}; goal >= 95 %"),
    ]
    if false_flags:
        figs.append(Figure(f"{prefix}false flags on intact muscles", float(flags), "loops", float(len(intact)), None,
                           f"of {len(intact)} intact loops (baseline column: their number); goal 0"))
    return figs


def run() -> list[Figure]:
    figs = _run_own() if N_CASES > 0 else []
    if N_FOREIGN > 0:
        fr = evaluate_foreign()
        figs += _figures(fr, "foreign: ")
        figs.append(Figure("foreign: contraction frame error", _mae([r["con_err_frames"] for r in fr]), "frames",
                           _mae([r["con_base_frames"] for r in fr]), None,
                           "baseline: the frame most different from frame 0; profiles ramp/twitch/hold/preloaded/double"))
    return figs


def _run_own() -> list[Figure]:
    recs = evaluate()
    tears = [r for r in recs if r["tear"] != "none"]
    dr = _mae([r.get("drift_mm") for r in tears])
    dr_b = _mae([r.get("drift_base_mm") for r in tears])
    fr = _mae([r["rest_err_frames"] for r in recs])
    fr_b = _mae([r["rest_base_frames"] for r in recs])
    fc = _mae([r["con_err_frames"] for r in recs])
    fc_b = _mae([r["con_base_frames"] for r in recs])
    return _figures(recs, "accuracy: ", false_flags=False) + [
        Figure("accuracy: tracking drift rest->contraction", dr, "mm", dr_b, dr / dr_b if dr_b else None,
               "no re-anchoring; baseline 'no motion'; goal <= 0.5 mm"),
        Figure("accuracy: rest frame error", fr, "frames", fr_b, fr / fr_b if fr_b else None,
               "baseline: frame 0"),
        Figure("accuracy: contraction frame error", fc, "frames", fc_b, fc / fc_b if fc_b else None,
               "baseline: the frame most different from frame 0; the true peak is a held plateau"),
    ]


if __name__ == "__main__":
    from benchmarks.common import format_figure

    for f in run():
        print(format_figure(f))
