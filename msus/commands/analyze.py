"""``msus analyze PATH [--roi X0,Y0,X1,Y1] [--rest-frame N] [--contraction-frame N] [--mm-per-px V] [--json]``.

Runs the whole-loop tear analysis (:func:`msus.analysis.analyze`) on a DICOM file, video or
image stack.  x = column, y = row, 0-based full-frame pixels; the ROI corners are inclusive.
Frame numbers are 0-based.  ``--mm-per-px`` is a manual calibration used only where the source
carries none.  The classification is a flag for review, not a diagnosis.

JSON keys (public; added to, never renamed): ``rest_frame``, ``contraction_frame``,
``gap_rest_mm``, ``gap_contraction_mm``, ``retraction_mm``, ``defect_thickness_fraction``,
``classification``, ``reasons``, ``calibration_source``, ``gap_curve_mm`` (one value or null per
frame), and always the pixel twins ``gap_rest_px``, ``gap_contraction_px``, ``retraction_px``,
``gap_curve_px``; plus the details listed in docs/analysis.md.
"""

from __future__ import annotations

import sys

from msus.commands import print_json
from msus.errors import AnalysisError
from msus.terms import length_label


def _roi(text: str | None):
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        vals = [float(v) for v in parts]
    except ValueError:
        vals = []
    if len(vals) != 4:
        raise AnalysisError(f"--roi expects X0,Y0,X1,Y1 (four numbers, 0-based px), got {text!r}")
    return vals


def add_parser(sub):
    p = sub.add_parser(
        "analyze",
        help="find rest/contraction frames, track the stumps, measure the gap, flag a suspected tear",
        description="Tear analysis of a cine loop: suggested rest and peak-contraction frames, the defect "
        "between the fasciae, the gap along the muscle axis on every frame, and a flag for review "
        "(not a diagnosis). x = column, y = row, 0-based pixels; frames 0-based.",
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("--roi", default=None, metavar="X0,Y0,X1,Y1", help="region to analyse (inclusive px)")
    p.add_argument("--rest-frame", type=int, default=None, metavar="N", help="0-based rest frame (default: suggested)")
    p.add_argument("--contraction-frame", type=int, default=None, metavar="N",
                   help="0-based peak-contraction frame (default: suggested)")
    p.add_argument("--mm-per-px", type=float, default=None, metavar="V",
                   help="manual calibration, used only when the source carries none")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def _fmt(mm, px):
    return length_label(mm, px)


def run(args) -> int:
    import msus
    from msus.analysis import analyze

    roi = _roi(args.roi)
    with msus.load(args.path) as cine:
        res = analyze(
            cine,
            roi=roi,
            rest_frame=args.rest_frame,
            contraction_frame=args.contraction_frame,
            mm_per_px=args.mm_per_px,
        )
        warnings = []
        if args.mm_per_px is not None and cine.calibration.calibrated:
            warnings.append(f"--mm-per-px ignored: the source carries its own calibration ({cine.calibration.source})")
    out = res.to_dict()
    out["warnings"] = warnings
    if args.json:
        print_json(out)
        return 0
    w = sys.stdout.write
    w(f"classification: {res.classification}  (flag for review, not a diagnosis)\n")
    for r in res.reasons:
        w(f"  - {r}\n")
    w(f"rest frame:        {res.rest_frame} ({res.rest_frame_source})\n")
    w(f"contraction frame: {res.contraction_frame} ({res.contraction_frame_source})\n")
    w(f"gap at rest:        {_fmt(res.gap_rest_mm, res.gap_rest_px)}\n")
    w(f"gap at contraction: {_fmt(res.gap_contraction_mm, res.gap_contraction_px)}\n")
    w(f"retraction:         {_fmt(res.retraction_mm, res.retraction_px)}\n")
    w(f"thickness fraction: {res.defect_thickness_fraction * 100:.0f} %\n")
    if res.fb_error_px is not None:
        fb = f"{res.fb_error_px:.3f} px" + (f" ({res.fb_error_mm:.3f} mm)" if res.fb_error_mm is not None else "")
        w(f"tracking forward-backward error (median): {fb}\n")
    w(f"calibration: {res.calibration_badge}\n")
    for m in warnings:
        w(f"warning: {m}\n")
    return 0
