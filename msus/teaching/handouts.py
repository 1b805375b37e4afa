"""Hand-outs of a case: its expert finding as export data, the annotated A–B clip, the case sheet."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from msus import export as E
from msus.errors import TeachingError
from msus.export import video
from msus.export.bundle import write_bundle
from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement
from msus.teaching.cases import Case


EXPERT_REVIEWER = "expert (teaching case)"


def case_export_data(case: Case, cine):
    """The case's expert finding and calipers as :class:`msus.export.ExportData`.

    The calipers are re-measured with the loop's own calibration (so the burned-in lengths carry
    its provenance); nothing of the learner is included.
    """
    a = case.answer
    ms = []
    for cal, label in ((a.rest_caliper, LABEL_REST), (a.contraction_caliper, LABEL_CONTRACTION)):
        if cal is None or not 0 <= cal.frame_index < cine.n_frames:
            continue
        ms.append(make_measurement(cine.calibration_for(cal.frame_index), cal.frame_index,
                                   (cal.x1, cal.y1), (cal.x2, cal.y2), label=label, reviewer=EXPERT_REVIEWER))
    finding = {
        "classification": a.classification, "reasons": list(a.reasons),
        "rest_frame": a.rest_frame, "contraction_frame": a.contraction_frame,
        "gap_rest_mm": a.gap_rest_mm, "gap_contraction_mm": a.gap_contraction_mm,
        "retraction_mm": a.retraction_mm, "calibration_source": a.calibration_source,
        "status": "final", "kind": "manual", "reviewer": EXPERT_REVIEWER,
    }
    return E.from_cine(cine, measurements=tuple(ms), finding=finding, notes=(f"teaching case {case.id}",))


def write_case_video(case: Case, cine, out: str | Path, fmt: str = "gif") -> Path:
    """The case's A–B range (rest → contraction) as an annotated GIF or MP4 (via msus.export)."""
    if fmt not in ("gif", "mp4"):
        raise TeachingError(f"unknown video format {fmt!r} (gif or mp4)")
    a, b = case.ab_range
    if b <= a:
        a, b = 0, cine.n_frames - 1
    b = min(b, cine.n_frames - 1)
    data = case_export_data(case, cine)
    write = video.write_gif if fmt == "gif" else video.write_mp4
    return write(cine, data, Path(out), start=a, stop=b + 1)


def case_sheet(case: Case) -> dict:
    """The case for a hand-out (JSON-ready): everything but where its loop lives on this machine."""
    d = case.to_dict()
    d["source"] = Path(case.source).name
    return d


def case_video_bytes(case: Case, cine, fmt: str = "gif") -> bytes:
    """:func:`write_case_video` as file bytes (written to a temporary folder, deleted after)."""
    with tempfile.TemporaryDirectory(prefix="msus-teach-") as d:
        return write_case_video(case, cine, Path(d) / f"case.{fmt}", fmt).read_bytes()


def case_bundle_bytes(case: Case, cine) -> bytes:
    """The case's de-identified bundle (.zip, :func:`msus.export.bundle.write_bundle`) as bytes."""
    with tempfile.TemporaryDirectory(prefix="msus-teach-") as d:
        return Path(write_bundle(case.source, case_export_data(case, cine), Path(d) / "bundle.zip")).read_bytes()


def case_sheet_bytes(case: Case) -> bytes:
    """:func:`case_sheet` as indented JSON (UTF-8)."""
    return json.dumps(case_sheet(case), indent=2).encode("utf-8")
