"""Phantom simulator speed: frames/s for a 100-frame 600×800 loop.

Baseline (same run, same machine): the cheapest possible "speckle" loop of the same size --
numpy Rayleigh noise per frame, one cv2.GaussianBlur (a PSF) and log compression to uint8, i.e.
the floor cost of producing a speckle-looking frame without any anatomy, motion or scatterer
physics.  ratio = simulator frames/s ÷ baseline frames/s (goal: ≥ 20 frames/s absolute, i.e. a
100-frame loop in ≤ 5 s on 2 cores; the ratio shows what the physics costs over the floor).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import Figure

N, H, W = 100, 600, 800


def _baseline_loop(n: int = N) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(0)
    out = np.empty((n, H, W), np.uint8)
    for i in range(n):
        env = rng.rayleigh(1.0, (H, W))
        env = cv2.GaussianBlur(env, (0, 0), sigmaX=4.0, sigmaY=2.3)
        db = 20 * np.log10(env + 1e-9)
        out[i] = np.clip((db + 30) * (255 / 72), 0, 255).astype(np.uint8)
    return out


def run() -> list[Figure]:
    from msus.synth import SynthParams, simulate

    params = SynthParams(n_frames=N, rows=H, columns=W, seed=1)
    simulate(SynthParams(n_frames=4, rows=H, columns=W))  # warm-up (imports, allocations)
    t0 = time.perf_counter()
    simulate(params)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    _baseline_loop()
    t_base = time.perf_counter() - t0
    fps_sim = N / t_sim
    fps_base = N / t_base
    return [
        Figure(
            "synth: 100-frame 600x800 loop",
            fps_sim,
            "frames/s",
            fps_base,
            fps_sim / fps_base,
            f"loop in {t_sim:.2f} s; baseline = Rayleigh noise + GaussianBlur + log per frame; goal >= 20 frames/s",
        )
    ]


if __name__ == "__main__":
    from benchmarks.common import format_figure

    for f in run():
        print(format_figure(f))
