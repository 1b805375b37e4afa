"""``msus measure PATH --frame N --p1 X,Y --p2 X,Y [--mm-per-px V] [--json]``.

Points are (x, y) = (column, row), 0-based, in full-frame pixels; floats allowed (459.5).  The
frame number is 0-based, like every frame index in msus's JSON (the app shows it 1-based).
``--mm-per-px`` is a manual calibration used only where the file carries none.  Exit 0 whenever
the points are valid, calibrated or not; a point off the image exits 1.
"""

from __future__ import annotations

import argparse

from msus.commands import print_json
from msus.errors import MeasurementError


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (e.g. 459.5,290.5), got {text!r}") from None
    return (x, y)


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of mm per px, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError("mm per px must be a positive number")
    return v


def add_parser(sub):
    p = sub.add_parser("measure", help="distance between two points on a frame, in mm when calibrated",
                       description="Distance between two points on one frame. x = column, y = row, 0-based "
                                   "full-frame pixels; mm only when both ends share a calibration.")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--frame", type=int, default=0, metavar="N", help="0-based frame index (default 0)")
    p.add_argument("--p1", type=_point, required=True, metavar="X,Y")
    p.add_argument("--p2", type=_point, required=True, metavar="X,Y")
    p.add_argument("--mm-per-px", type=_positive, default=None, metavar="V",
                   help="manual calibration, used only when the file carries none")
    p.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    import msus
    from msus.measure import make_measurement

    with msus.load(args.path) as cine:
        n = len(cine)
        if not 0 <= args.frame < n:
            raise MeasurementError(f"frame {args.frame} is out of range (0–{n - 1}; frames are 0-based)")
        cal = cine.calibration_for(args.frame).with_fallback_manual(args.mm_per_px)
        m = make_measurement(cal, args.frame, args.p1, args.p2, shape=(cine.rows, cine.columns))
        dist = m.distance
        warnings = list(dist.warnings)
        if args.mm_per_px is not None and cal.source != "manual" and cal.calibrated:
            warnings.append(f"--mm-per-px ignored: the file carries its own calibration ({cal.source})")
        out = {
            "distance_mm": dist.distance_mm,
            "distance_px": dist.distance_px,
            "calibration_source": dist.calibration_source,
            "region_index": dist.region_index,
            "mm_per_px_x": dist.mm_per_px_x,
            "mm_per_px_y": dist.mm_per_px_y,
            "frame": args.frame,
            "p1": list(args.p1),
            "p2": list(args.p2),
            "warnings": warnings,
        }
        if args.json:
            print_json(out)
        else:
            print(f"{dist.label}  [{cal.badge(*args.p1)}]")
            for w in warnings:
                print(f"warning: {w}")
    return 0
