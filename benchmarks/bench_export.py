"""Exports: a 300-frame annotated MP4 (and GIF) relative to the loop's own duration.

The loop: 300 frames of 600×800 grey at 30 fps (10 s), made of the real Philips EPIQ frames in
``tests/data`` repeated (or a synthetic speckle loop when that file is absent), with two calipers,
a defect outline and a finding to burn in.  Baseline: the loop's duration; ratio < 1 means the
export is faster than playing the loop.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.common import Figure

ROOT = Path(__file__).resolve().parents[1]
N_FRAMES = 300
FPS = 30.0


def _loop():
    import msus
    from msus.cine import Cine

    src = ROOT / "tests" / "data" / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm"
    if src.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            real = msus.load(src)
        base = np.stack([real.frame(i) for i in range(real.n_frames)])
        cal = real.calibration
    else:
        from msus.calibration import Calibration

        base = np.random.default_rng(0).integers(0, 255, (27, 600, 800), dtype=np.uint8)
        cal = Calibration.manual(0.08)
    frames = base[np.arange(N_FRAMES) % base.shape[0]]
    return Cine.from_frames(frames, fps=FPS, calibration=cal)


def _data(cine):
    from msus.export import from_cine
    from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement

    a = make_measurement(cine.calibration, 40, (300, 300), (372, 300), label=LABEL_REST, reviewer="bench")
    b = make_measurement(cine.calibration, 200, (290, 310), (410, 318), label=LABEL_CONTRACTION, reviewer="bench")
    outline = tuple((350 + 60 * np.cos(t), 300 + 25 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 60))
    finding = {"classification": "suspected_full_thickness", "rest_frame": 40, "contraction_frame": 200,
               "reasons": ["defect spans 100 % of the muscle thickness"], "status": "draft"}
    return from_cine(cine, measurements=(a, b), finding=finding, outlines_px={40: outline, 200: outline})


def run() -> list[Figure]:
    from msus.export.video import write_gif, write_mp4

    cine = _loop()
    data = _data(cine)
    duration = cine.duration_ms / 1000
    figs = []
    with tempfile.TemporaryDirectory(prefix="msus-bench-export-") as d:
        t0 = time.perf_counter()
        write_mp4(cine, data, Path(d) / "a.mp4")
        t = time.perf_counter() - t0
        figs.append(Figure("export mp4 300 frames 600x800", t, "s", duration, t / duration,
                           "baseline: the loop's own duration (10 s); goal ratio < 1"))
        t0 = time.perf_counter()
        write_gif(cine, data, Path(d) / "a.gif")
        t = time.perf_counter() - t0
        figs.append(Figure("export gif 300 frames (480 px wide)", t, "s", duration, t / duration,
                           "baseline: the loop's own duration (10 s)"))
    return figs
