"""Accuracy of the tear analysis per simulator (own, foreign, physics) and all together.

Sets (the analysis sees only pixels and calibration; truth is read afterwards):

* **own**: ``N_CASES`` loops of :mod:`msus.synth`, cycling full / partial / none with depth,
  thickness, fascicle angle, tilt, gap, retraction, partial fraction, spacing, frequency and
  noise drawn at random;
* **foreign**: ``N_FOREIGN`` loops of ``tests/foreign_sim.py`` (k ≡ 1 mod 5 through a JPEG DICOM,
  k ≡ 3 through an H.264 MP4 with manual calibration) plus ``N_HAEM`` full tears filled with a
  near-isoechoic haematoma (scatter amplitude 1/3–2/3 of the muscle's);
* **physics**: the PyMUST set of ``tests/physics_set.py`` (3-pose files and held loops), when
  present.

Per set: classification accuracy, rest/peak frames inside the true rest/peak stretches, gap MAE
and mean signed error (bias) at rest and contraction, thickness-fraction MAE, muscle-thickness
MAE; the **echo-only** flag and measurements (the detector alone, computed in the same run) are
the baseline column.  Plus haematoma-filled full tears found, and false flags on the real intact
loops.  Goals: classification ≥ 95 %, frames ≥ 95 %, gap MAE ≤ 0.5 mm, |bias| ≤ 0.15 mm,
haematoma-filled full tears ≥ 90 %, 0 false flags.  ``python -m benchmarks accuracy``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from collections import Counter

import numpy as np

from benchmarks.common import Figure

N_CASES = int(os.environ.get("MSUS_BENCH_CASES", "36"))
SEED = int(os.environ.get("MSUS_BENCH_SEED", "2026"))
N_FOREIGN = int(os.environ.get("MSUS_BENCH_FOREIGN_CASES", "36"))
N_HAEM = int(os.environ.get("MSUS_BENCH_HAEMATOMA_CASES", "12"))
N_PHYS_SEEDS = int(os.environ.get("MSUS_BENCH_PHYSICS_SEEDS", "1"))
ROOT = Path(__file__).resolve().parent.parent
REAL_INTACT = (("medial gastrocnemius video", ROOT / "tests" / "data" / "p6_isokinetic120_01_push_02.mp4", 0.0883),
               ("GE lateral gastrocnemius frames", ROOT / "tests" / "data" / "gastroc_jumping_frames", 0.0868),
               ("GE lateral gastrocnemius, all 23 frames",
                ROOT / "tests" / "data" / "gastroc_jumping_23", 0.0868))


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


def _stretch(act: np.ndarray, low: bool) -> set[int]:
    """Frames of the true rest (lowest activation) or peak (highest) stretch (within 2 %)."""
    act = np.asarray(act, float)
    tol = 0.02 * max(1e-9, float(act.max() - act.min()))
    sel = act <= act.min() + tol if low else act >= act.max() - tol
    return set(int(i) for i in np.flatnonzero(sel))


def _record(res, truth: dict) -> dict:
    """One case: fused and echo-only results against the truth."""
    r, c = res.rest_frame, res.contraction_frame
    rec = {"truth": truth["classification"], "pred": res.classification,
           "pred_echo": res.echo_finding.classification, "haematoma": truth.get("haematoma", False),
           "frames_ok": r in truth["rest_frames"] and c in truth["peak_frames"], "tear": truth["tear"]}
    if truth["tear"] != "none":
        g = truth["gap_mm"]
        for key, i, val in (("rest", r, res.gap_rest_mm), ("con", c, res.gap_contraction_mm)):
            rec[f"gap_{key}"] = None if val is None or not np.isfinite(g[i]) else float(val - g[i])
        echo_found = res.echo_finding.classification != "no_defect"
        rec["gap_rest_echo"] = rec["gap_rest"] if echo_found and res.evidence != "motion" else None
        rec["gap_con_echo"] = rec["gap_con"] if echo_found and res.evidence != "motion" else None
        rec["frac_err"] = abs(res.defect_thickness_fraction - truth["frac"]) if res.defect_found else None
        rec["frac_err_echo"] = abs(_echo_fraction(res) - truth["frac"]) if echo_found else None
    tm = truth.get("thickness_mm")
    if tm is not None:
        got = np.array([np.nan if v is None else v for v in res.thickness.thickness_mm], float)
        ok = np.isfinite(got) & np.isfinite(tm)
        rec["thick_err"] = float(np.mean(np.abs(got[ok] - tm[ok]))) if ok.any() else None
        base = res.defect_rest.muscle_thickness_mm
        rec["thick_err_echo"] = None if base is None else float(np.nanmean(np.abs(base - np.asarray(tm, float))))
    return rec


def _echo_fraction(res) -> float:
    fr = [d.thickness_fraction for d in (res.defect_rest, res.defect_contraction) if d.found or d.stump_rows_px]
    return max(fr) if fr else 0.0


#: msus.synth's thickness truth runs between the fasciae's muscle-side edges; its fasciae are
#: bands 1.0 mm (superficial) and 0.8 mm (deep) thick, so the mid-line thickness is 0.5 + 0.4 mm more.
OWN_FASCIA_HALF_WIDTHS_MM = 0.5 + 0.4


def own_cases(n_cases: int = N_CASES):
    """(make cine, truth) of the own simulator's cases."""
    from msus.cine import Cine
    from msus.synth import calibration_for, simulate

    rng = np.random.default_rng(SEED)
    for k in range(n_cases):
        p = case_params(k, rng)
        ph = simulate(p)
        truth = {"classification": ph.classification, "tear": p.tear, "gap_mm": ph.gap_mm,
                 "rest_frames": _stretch(ph.activation, True) | {ph.rest_frame},
                 "peak_frames": _stretch(ph.activation, False) | {ph.contraction_frame},
                 "frac": ph.defect_thickness_fraction,
                 "thickness_mm": np.asarray(ph.muscle_thickness_mm, float) + OWN_FASCIA_HALF_WIDTHS_MM}
        yield (lambda ph=ph, p=p: (Cine.from_frames(ph.frames, fps=ph.fps, calibration=calibration_for(p),
                                                   kind="synthetic"), None)), truth


def foreign_cases(n_cases: int = N_FOREIGN, n_haem: int = N_HAEM, tmp: str = "."):
    """(make cine, truth) of the foreign simulator's cases (DICOM / MP4 / array) and its
    haematoma-filled full tears."""
    import msus
    from msus.cine import Cine

    sys.path.insert(0, str(ROOT / "tests"))
    from foreign_sim import simulate_foreign, write_dicom, write_mp4

    hrng = np.random.default_rng(SEED + 7)
    specs = [(SEED * 1000 + k, ("full", "partial", "none")[k % 3], None) for k in range(n_cases)]
    specs += [(SEED * 1000 + 500 + k, "full", float(hrng.uniform(1 / 3, 2 / 3))) for k in range(n_haem)]
    for k, (seed, tear, haem) in enumerate(specs):
        L = simulate_foreign(seed, tear, haematoma=haem)
        io = {1: "dicom", 3: "mp4"}.get(k % 5, "array") if haem is None else "array"
        truth = {"classification": L.classification, "tear": L.tear, "gap_mm": L.gap_mm,
                 "rest_frames": _stretch(L.activation, True) | {L.rest_frame},
                 "peak_frames": _stretch(L.activation, False) | {L.contraction_frame},
                 "frac": L.thickness_fraction, "haematoma": haem is not None,
                 "thickness_mm": np.full(L.frames.shape[0], L.params["thick_mm"])}

        def make(L=L, io=io, k=k):
            if io == "dicom":
                path = Path(tmp) / f"f{k}.dcm"
                write_dicom(L, path)
                return msus.load(path), None
            if io == "mp4":
                path = Path(tmp) / f"f{k}.mp4"
                write_mp4(L, path)
                return msus.load(path), L.params["mm_per_px"]
            return Cine.from_frames(L.frames, fps=L.fps, calibration=L.calibration, kind="synthetic"), None

        yield make, truth


def physics_cases():
    """(make cine, truth) of the physics-based set (3-pose files and held loops), if shipped."""
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        import physics_set  # noqa: PLC0415

        cases = list(physics_set.cases())
    except (ImportError, FileNotFoundError, OSError):
        return
    nan = float("nan")
    for case in cases:
        haem = case.truth.get("haematoma_amplitude_ratio") is not None and case.truth["tear"] == "full"
        makers = [lambda case=case: physics_set.three_pose(case)]
        makers += [lambda case=case, s=s: physics_set.held_loop(case, s) for s in range(N_PHYS_SEEDS)]
        for make in makers:
            loop = make()
            truth = {"classification": loop.classification, "tear": loop.tear,
                     "gap_mm": np.asarray([nan if v is None else v for v in loop.gap_mm], float),
                     "rest_frames": set(loop.rest_frames), "peak_frames": set(loop.peak_frames),
                     "frac": float(loop.defect_thickness_fraction), "haematoma": haem,
                     "thickness_mm": np.asarray([nan if v is None else v for v in loop.muscle_thickness_mm], float)}
            yield (lambda loop=loop: (loop.cine, None)), truth


def _tear_of(cls: str) -> str:
    return {"suspected_full_thickness": "full", "partial": "partial"}.get(cls, "none")


def evaluate(cases) -> list[dict]:
    """Analyse every case once (the fused and the echo-only results come from the same run)."""
    from msus.analysis import analyze

    out = []
    for make, truth in cases:
        cine, mmpp = make()
        try:
            res = analyze(cine, mm_per_px=mmpp)
        finally:
            close = getattr(cine, "close", None)
            if close is not None:
                close()
        out.append(_record(res, truth))
    return out


def _mae(vals):
    v = [abs(x) for x in vals if x is not None]
    return float(np.mean(v)) if v else float("nan")


def _mean(vals):
    v = [x for x in vals if x is not None]
    return float(np.mean(v)) if v else float("nan")


def _figures(recs: list[dict], prefix: str) -> list[Figure]:
    """Per-set figures, the echo-only analysis as the baseline column."""
    if not recs:
        return []
    n = len(recs)
    tears = [r for r in recs if r["tear"] != "none"]
    acc = 100 * float(np.mean([r["pred"] == r["truth"] for r in recs]))
    acc_e = 100 * float(np.mean([r["pred_echo"] == r["truth"] for r in recs]))
    conf = Counter((r["truth"], r["pred"]) for r in recs)
    wrong = ", ".join(f"{t}->{p}:{k}" for (t, p), k in sorted(conf.items()) if t != p) or "none"
    frames = 100 * float(np.mean([r["frames_ok"] for r in recs]))
    gaps = [r.get("gap_rest") for r in tears] + [r.get("gap_con") for r in tears]
    gaps_e = [r.get("gap_rest_echo") for r in tears] + [r.get("gap_con_echo") for r in tears]
    measured = sum(v is not None for v in gaps)
    fr, fr_e = _mae([r.get("frac_err") for r in tears]), _mae([r.get("frac_err_echo") for r in tears])
    th, th_e = _mae([r.get("thick_err") for r in recs]), _mae([r.get("thick_err_echo") for r in recs])
    figs = [
        Figure(f"{prefix}classification", acc, "%", acc_e, acc / acc_e if acc_e else None,
               f"{n} loops; baseline echo-only; errors {wrong}; goal >= 95 %"),
        Figure(f"{prefix}rest+peak frames in true stretches", frames, "%", None, None, "goal >= 95 %"),
        Figure(f"{prefix}gap MAE (rest and contraction)", _mae(gaps), "mm", _mae(gaps_e), None,
               f"{measured}/{2 * len(tears)} gaps measured; baseline echo-only gaps; goal <= 0.5 mm"),
        Figure(f"{prefix}gap bias (mean signed error)", _mean(gaps), "mm", _mean(gaps_e), None,
               "baseline echo-only; goal |bias| <= 0.15 mm"),
        Figure(f"{prefix}thickness-fraction MAE", fr, "", fr_e, None, "baseline echo-only"),
        Figure(f"{prefix}muscle-thickness MAE", th, "mm", th_e, None,
               "per frame, fascia mid-lines; baseline: the echo detector's rest-frame thickness on every frame"),
    ]
    intact = [r for r in recs if r["tear"] == "none"]
    if intact:
        ff = sum(r["pred"] != "no_defect" for r in intact)
        ff_e = sum(r["pred_echo"] != "no_defect" for r in intact)
        figs.append(Figure(f"{prefix}false flags on intact muscles", float(ff), "loops", float(ff_e), None,
                           f"of {len(intact)} intact loops; baseline echo-only; goal 0"))
    haem = [r for r in recs if r["haematoma"] and r["tear"] == "full"]
    if haem:
        h = 100 * float(np.mean([r["pred"] == "suspected_full_thickness" for r in haem]))
        h_e = 100 * float(np.mean([r["pred_echo"] == "suspected_full_thickness" for r in haem]))
        figs.append(Figure(f"{prefix}haematoma-filled full tears found", h, "%", h_e, None,
                           f"{len(haem)} loops; baseline echo-only; goal >= 90 %"))
    return figs


def _real_intact() -> list[Figure]:
    import msus
    from msus.analysis import analyze

    flags, flags_e, names = 0, 0, []
    for name, path, mmpp in REAL_INTACT:
        if not path.exists():
            continue
        with msus.load(path) as cine:
            res = analyze(cine, mm_per_px=mmpp)
        flags += res.classification != "no_defect"
        flags_e += res.echo_finding.classification != "no_defect"
        names.append(f"{name}: {res.classification}")
    return [Figure("real intact loops: false flags", float(flags), "loops", float(flags_e), None,
                   "; ".join(names) + "; baseline echo-only; goal 0")]


def run() -> list[Figure]:
    figs: list[Figure] = []
    every: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, cases in (("own", own_cases()), ("foreign", foreign_cases(tmp=tmp)), ("physics", physics_cases())):
            recs = evaluate(cases) if cases is not None else []
            if name == "physics" and not recs:
                figs.append(Figure("physics: not available", 0.0, "loops", None, None,
                                   "tests/physics_set.py or its data is missing"))
            figs += _figures(recs, f"{name}: ")
            every += recs
    figs += _figures(every, "all: ")
    figs += _real_intact()
    return figs


if __name__ == "__main__":
    from benchmarks.common import format_figure

    for f in run():
        print(format_figure(f))
