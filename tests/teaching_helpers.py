"""Helpers shared by the teaching tests (test_teaching.py, test_teaching_app.py, test_teaching_browser.py)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ROOT

#: The three classic cases every teaching test walks: full-thickness, partial, intact.
THREE = ("phantom_full_tear", "phantom_partial_tear", "phantom_intact")


def three_samples(tmp_path_factory) -> Path:
    """The bundled samples folder when it holds the three, else the same three written by ``msus.samples``."""
    here = ROOT / "samples"
    if all((here / f"{n}.truth.json").is_file() for n in THREE):
        return here
    from msus.samples import build_samples

    out = tmp_path_factory.mktemp("samples")
    build_samples(out, list(THREE))
    return out


def truth(folder: Path, name: str) -> dict:
    """The ground truth (``truth`` part of ``NAME.truth.json``) of sample ``name`` in ``folder``."""
    return json.loads((folder / f"{name}.truth.json").read_text())["truth"]
