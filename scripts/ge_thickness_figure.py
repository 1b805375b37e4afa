"""Regenerate docs/figures/ge_lateral_gastrocnemius_thickness.png: the muscle thickness that
``msus analyze`` follows on every frame of the GE LOGIQ E9 lateral-gastrocnemius loop
(tests/data/gastroc_jumping_23, 0.0868 mm/px from the depth scale), drawn by
:func:`msus.analysis.figures.thickness_plot`; prints frame name → mm.

    PYTHONPATH=. .venv/bin/python scripts/ge_thickness_figure.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

import msus
from msus.analysis import analyze
from msus.analysis.figures import thickness_plot

ROOT = Path(__file__).resolve().parent.parent
LOOP = ROOT / "tests" / "data" / "gastroc_jumping_23"
MM_PER_PX = 0.0868  # the depth scale's 1 cm ticks are 115 px apart
OUT = ROOT / "docs" / "figures" / "ge_lateral_gastrocnemius_thickness.png"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    with msus.load(LOOP) as cine:
        res = analyze(cine, mm_per_px=MM_PER_PX)
    mm = res.thickness.thickness_mm
    names = sorted(p.name for p in LOOP.glob("*.png"))
    for name, v in zip(names, mm):
        print(f"{name}\t{'-' if v is None else f'{v:.2f}'}")
    title = "GE LOGIQ E9 lateral gastrocnemius: muscle thickness (fascia mid-lines, mm) per frame"
    img = thickness_plot(mm, title, size=(700, 320))
    cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"wrote {out} ({res.classification})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
