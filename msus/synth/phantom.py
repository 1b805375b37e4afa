"""Simulate a phantom loop: frames plus ground truth, as a :class:`Phantom` or a calibrated Cine."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from msus.synth.params import SynthParams, key_frames
from msus.synth.render import Renderer
from msus.synth.scene import Scene
from msus.synth.truth import Phantom, truth


def simulate(params: SynthParams | None = None, *, workers: int | None = None, **overrides) -> Phantom:
    """Simulate a B-mode cine loop with ground truth.

    Parameters
    ----------
    params
        Phantom parameters (default :class:`SynthParams()`); keyword ``overrides`` replace fields.
    workers
        Threads rendering frames in parallel (default: up to 2).  The result does not depend on it.

    Returns
    -------
    Phantom
        Frames (uint8 N×H×W) and per-frame ground truth.
    """
    if params is None:
        params = SynthParams(**overrides)
    elif overrides:
        from dataclasses import replace

        params = replace(params, **overrides)
    scene = Scene(params)
    rend = Renderer(scene)
    frames = np.empty((params.n_frames, params.rows, params.columns), np.uint8)
    nw = workers or min(2, os.cpu_count() or 1)

    def work(i):
        frames[i] = rend.frame(i)

    if nw > 1:
        with ThreadPoolExecutor(nw) as ex:
            list(ex.map(work, range(params.n_frames)))
    else:
        for i in range(params.n_frames):
            work(i)
    gap, ends, fascia, polys = truth(scene, rend)
    t_ref = (scene.v_deep(scene.uc) - scene.v_sup(scene.uc)) * params.mm_per_px
    thickness = t_ref * (1 + params.thickening * rend.act)
    rest, peak = key_frames(params.n_frames)
    frac = {"full": 1.0, "partial": float(params.partial_fraction), "none": 0.0}[params.tear]
    return Phantom(
        frames=frames,
        params=params,
        gap_mm=gap,
        stump_ends_px=ends,
        defect_thickness_fraction=frac,
        rest_frame=rest,
        contraction_frame=peak,
        classification=params.classification,
        activation=rend.act.copy(),
        jitter_px=rend.jit.copy(),
        fascia_px=fascia,
        defect_polygons=polys,
        muscle_thickness_mm=thickness,
    )


def calibration_for(params: SynthParams):
    """The :class:`~msus.calibration.Calibration` of a phantom: one 2D US region over the image."""
    from msus.calibration import Calibration, Region

    cm = params.mm_per_px / 10.0
    region = Region(
        index=0, x0=0, y0=0, x1=params.columns - 1, y1=params.rows - 1, delta_x=cm, delta_y=cm
    )
    return Calibration(source="us_region", regions=(region,), detail="phantom ultrasound region")


def simulate_cine(params: SynthParams | None = None, **overrides):
    """Simulate a loop and wrap it as a :class:`msus.cine.Cine` (calibrated, with timing).

    Returns
    -------
    msus.cine.Cine
        ``kind="synthetic"``; ``meta["truth"]`` holds :meth:`Phantom.to_dict`.
    """
    from msus.cine import Cine

    ph = simulate(params, **overrides)
    return Cine.from_frames(
        ph.frames,
        fps=ph.fps,
        calibration=calibration_for(ph.params),
        kind="synthetic",
        source_name=f"phantom ({ph.params.tear}, seed {ph.params.seed})",
        meta={"truth": ph.to_dict(), "manufacturer": "msus phantom"},
    )
