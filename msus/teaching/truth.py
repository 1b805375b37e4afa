"""The bundled samples as ready cases: ``NAME.truth.json`` (the simulator's ground truth) → :class:`Case`.

The truth's classification, gap per frame, rest and contraction frames become the expert answer;
the static frame is the rest frame; the stump ends give the expert calipers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

from msus.errors import TeachingError
from msus.teaching.cases import TRUTH_SUFFIX, Answer, Caliper, Case, check_call, opt_float, opt_int


_SAMPLE_POINTS = {
    "suspected_full_thickness": (
        "At rest the torn ends lie close together and the static frame can look intact; on "
        "contraction the ends pull apart — watch the gap open in the loop."
    ),
    "partial": (
        "Fibres still bridge part of the thickness: the ends move together on contraction and "
        "the gap barely widens."
    ),
    "no_defect": (
        "Dark fascicle bands and speckle can mimic a defect on one frame; in the loop the fibres "
        "slide as one and nothing separates."
    ),
}


def _first(d: Mapping, *names, default=None):
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return default


def _loop_beside(truth: Path) -> Path | None:
    stem = truth.name[: -len(TRUTH_SUFFIX)]
    found = sorted(
        p for p in truth.parent.glob(stem + ".*")
        if p.is_file() and not p.name.endswith(".json") and p.name != truth.name
    )
    return found[0] if found else None


def case_from_truth(truth_path: str | Path) -> Case:
    """A ready :class:`Case` from a bundled sample's ``NAME.truth.json`` and its loop file.

    The ground truth (classification, gap per frame, rest and contraction frames) is the
    answer; the static frame is the rest frame.
    """
    truth = Path(truth_path)
    try:
        d = json.loads(truth.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TeachingError(f"cannot read sample truth {truth.name}: {exc}") from None
    if isinstance(d.get("truth"), Mapping):  # samples: file facts outside, simulator truth inside
        d = {**d, **d["truth"]}
    src = d.get("source") or d.get("file")
    loop = (truth.parent / src) if src else _loop_beside(truth)
    if loop is None or not loop.is_file():
        raise TeachingError(f"sample {truth.name} has no loop file beside it")
    name = truth.name[: -len(TRUTH_SUFFIX)]
    cls_ = check_call(_first(d, "classification", "tear_kind", default=""))
    curve = tuple(opt_float(v) for v in (_first(d, "gap_mm", "gap_curve_mm", default=()) or ()))
    rest = opt_int(_first(d, "rest_frame", "rest_frame_index"))
    con = opt_int(_first(d, "contraction_frame", "contraction_frame_index", "peak_frame"))

    def at(i, key):
        v = opt_float(d.get(key))
        if v is not None:
            return v
        if i is not None and 0 <= i < len(curve):
            return curve[i]
        return None

    if cls_ == "no_defect":
        g_rest = g_con = None
    else:
        g_rest, g_con = at(rest, "gap_rest_mm"), at(con, "gap_contraction_mm")
    reasons = tuple(str(r) for r in d.get("reasons") or ())
    if not reasons:
        reasons = _truth_reasons(d, cls_, g_rest, g_con)
    ends = d.get("stump_ends_px") or []
    answer = Answer(
        classification=cls_,
        gap_rest_mm=g_rest,
        gap_contraction_mm=g_con,
        reasons=reasons,
        rest_frame=rest,
        contraction_frame=con,
        gap_curve_mm=curve if cls_ != "no_defect" else (),
        rest_caliper=_truth_caliper(ends, rest, g_rest),
        contraction_caliper=_truth_caliper(ends, con, g_con),
        calibration_source="synthetic ground truth",
    )
    region = str(_first(d, "region", "anatomy", "muscle", default="thigh muscle (phantom), longitudinal"))
    desc = str(d.get("description") or "").strip()
    title = str(_first(d, "title", default=(desc[:1].upper() + desc[1:]) if desc else
                       name.replace("_", " ").replace("-", " ").capitalize()))
    return Case(
        id=f"sample-{name}",
        title=title,
        region=region,
        teaching_point=str(_first(d, "teaching_point", default=_SAMPLE_POINTS[cls_])),
        answer=answer,
        source=str(loop.resolve()),
        static_frame_index=rest if rest is not None else 0,
        origin="sample",
        deidentified=True,
    )


def _truth_caliper(ends, i: int | None, gap_mm: float | None) -> Caliper | None:
    """The expert caliper from ``stump_ends_px[i]`` = [[x, y] left, [x, y] right], if known."""
    if i is None or gap_mm is None or not 0 <= i < len(ends):
        return None
    try:
        (x1, y1), (x2, y2) = ends[i]
        vals = [float(v) for v in (x1, y1, x2, y2)]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in vals):
        return None
    return Caliper(i, *vals, length_mm=gap_mm, length_px=math.dist(vals[:2], vals[2:]),
                   calibration_source="synthetic ground truth")


def _truth_reasons(d: Mapping, cls_: str, g_rest, g_con) -> tuple[str, ...]:
    out = []
    frac = opt_float(_first(d, "defect_thickness_fraction", "thickness_fraction"))
    if frac is not None and cls_ != "no_defect":
        out.append(f"defect spans {frac * 100:.0f} % of the muscle thickness")
    if g_rest is not None and g_con is not None:
        delta = g_con - g_rest
        if abs(delta) >= 0.5:
            out.append(f"gap {'widens' if delta > 0 else 'narrows'} {abs(delta):.1f} mm on contraction")
        else:
            out.append("gap does not change on contraction")
    if cls_ == "no_defect":
        out.append("no defect between the fasciae (simulated ground truth)")
    return tuple(out)


def sample_cases(samples_dir: str | Path, problems: list[str] | None = None) -> list[Case]:
    """Every bundled sample with a ``NAME.truth.json`` as a ready case.

    A loop bundled twice (the same simulation in two containers, e.g. DICOM and MP4) becomes one
    case, the DICOM one (it carries its calibration).  Order: one case of each classification
    first (full-thickness, partial, intact — the classic three-case session), then the rest, each
    group by name.  With a ``problems`` list, a broken sample is skipped and its one-line reason
    appended there; without one it raises :class:`TeachingError`.
    """
    folder = Path(samples_dir)
    seen: dict[str, Case] = {}
    for p in sorted(folder.glob("*" + TRUTH_SUFFIX)):
        try:
            case = case_from_truth(p)
        except TeachingError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
            continue
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
            params = (raw.get("truth") or raw).get("params")
        except (OSError, ValueError, AttributeError):
            params = None
        key = json.dumps(params, sort_keys=True) if params else case.id
        old = seen.get(key)
        if old is None or (Path(old.source).suffix.lower() != ".dcm" and Path(case.source).suffix.lower() == ".dcm"):
            seen[key] = case
    cases = sorted(seen.values(), key=lambda c: c.id)
    order = {"suspected_full_thickness": 0, "partial": 1, "no_defect": 2}
    firsts, rest, got = [], [], set()
    for c in cases:
        k = c.answer.classification
        (rest if k in got else firsts).append(c)
        got.add(k)
    firsts.sort(key=lambda c: order[c.answer.classification])
    return firsts + rest
