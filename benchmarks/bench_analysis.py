"""Speed of the whole-loop tear analysis, and tracking quality on real intact muscle.

* ``analysis: 300-frame 600x800 loop``: wall time of :func:`msus.analysis.analyze` on a simulated
  300-frame 600×800 full-tear loop (in memory, calibrated).  Baseline: reading the same loop from
  an MP4 file and converting every frame to grey (what opening the loop costs in the app).  Goal
  ≤ 3 s on the 2-core machine.
* ``real video: forward-backward error``: median forward–backward tracking error over the real
  medial gastrocnemius video (Drazan, Hullfish & Baxter 2019, CC BY 4.0; in ``tests/data``),
  in px and mm (0.0883 mm/px).  Baseline: the median frame-to-frame motion of the same points (the
  error is meaningful relative to how far the tissue moves).  The classification must be
  ``no_defect``.
* ``real frames``: the same on the GE LOGIQ E9 lateral gastrocnemius frames (CC0, 0.0866 mm/px).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure, best_of

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "tests" / "data" / "p6_isokinetic120_01_push_02.mp4"
FRAMES = ROOT / "tests" / "data" / "gastroc_jumping_frames"
SHARED_FRAMES = ROOT / "tests" / "data" / "gastroc_jumping_23"  # all 23 frames (tests/data/NOTICE.md)


def _real(path: Path, mm_per_px: float, label: str) -> list[Figure]:
    import msus
    from msus.analysis import analyze

    if not path.exists():
        return []
    with msus.load(path) as cine:
        res = analyze(cine, mm_per_px=mm_per_px)
        tr = res.track
        step = np.linalg.norm(np.diff(tr.points_px, axis=0), axis=2)
        motion = float(np.nanmedian(step)) if step.size else float("nan")
        n = cine.n_frames
    ok = 1.0 if res.classification == "no_defect" else 0.0
    return [
        Figure(f"{label}: no_defect", ok, "bool", None, None,
               f"classification {res.classification} ({n} frames); must be no_defect"),
        Figure(f"{label}: forward-backward error", res.fb_error_px, "px", motion,
               res.fb_error_px / motion if motion else None,
               f"= {res.fb_error_mm:.4f} mm; baseline: median frame-to-frame motion of the tracked points"),
    ]


def run() -> list[Figure]:
    from msus.analysis import analyze
    from msus.cine import Cine
    from msus.synth import SynthParams, calibration_for, simulate

    p = SynthParams(tear="full", rows=600, columns=800, n_frames=300, mm_per_px=0.075, fps=30.0,
                    gap_rest_mm=5.0, gap_contraction_mm=9.0, fascia_tilt_deg=5.0, seed=77)
    t0 = time.perf_counter()
    ph = simulate(p)
    t_sim = time.perf_counter() - t0
    cal = calibration_for(p)

    def cine():
        return Cine.from_frames(ph.frames, fps=p.fps, calibration=cal, kind="synthetic", cache_frames=8)

    import tempfile

    import cv2

    import msus

    tmp = tempfile.TemporaryDirectory()
    mp4 = Path(tmp.name) / "loop.mp4"
    w = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), p.fps, (p.columns, p.rows), False)
    for f in ph.frames:
        w.write(f)
    w.release()

    def read_only():
        with msus.load(mp4) as c:
            for i in range(c.n_frames):
                c.grey(i)

    holder = {}

    def full():
        holder["res"] = analyze(cine())

    t_read = best_of(read_only, repeat=2)
    t_an = best_of(full, repeat=2)
    tmp.cleanup()
    res = holder["res"]
    stages = ", ".join(f"{k} {v:.2f}" for k, v in res.timings_s.items() if k != "total")
    figs = [
        Figure("analysis: 300-frame 600x800 loop", t_an, "s", t_read, t_an / t_read if t_read else None,
               f"baseline: decode the loop from MP4 + grey; stages: {stages}; {res.classification}; goal <= 3 s"),
        Figure("analysis: per frame", 1000 * t_an / p.n_frames, "ms", 1000 * t_read / p.n_frames,
               t_an / t_read if t_read else None, f"(simulating the loop took {t_sim:.0f} s, not counted)"),
    ]
    figs += _real(VIDEO, 0.0883, "real video (medial gastrocnemius)")
    frames = SHARED_FRAMES if SHARED_FRAMES.exists() else FRAMES
    figs += _real(frames, 0.0866, "real frames (lateral gastrocnemius)")
    return figs


if __name__ == "__main__":
    from benchmarks.common import format_figure

    for f in run():
        print(format_figure(f))
