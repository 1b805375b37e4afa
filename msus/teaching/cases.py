"""Teaching cases as frozen values: the expert :class:`Answer`, the :class:`Case`, its calipers.

A case's calipers are :class:`msus.measure.Measurement` values (:func:`Caliper` builds one from
stated lengths); ``case.json`` holds them as :meth:`~msus.measure.Measurement.to_dict` gives them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

from msus.calibration import Distance
from msus.errors import TeachingError
from msus.measure import Measurement
from msus.numbers import opt_float, opt_int  # noqa: F401 (the teaching modules read numbers through these)
from msus.terms import CLASSIFICATION_LABELS, Classification

CLASSIFICATIONS = (Classification.NO_DEFECT, Classification.PARTIAL, Classification.SUSPECTED_FULL_THICKNESS)
#: What a learner sees for each classification (the app's one label map).
CALL_LABELS = CLASSIFICATION_LABELS
TEAR_KINDS = (Classification.PARTIAL, Classification.SUSPECTED_FULL_THICKNESS)

CASE_FILE = "case.json"
TRUTH_SUFFIX = ".truth.json"


def check_call(call: str) -> str:
    """``call`` when it is one of :data:`CLASSIFICATIONS`, else :class:`TeachingError`."""
    c = str(call).strip()
    if c not in CLASSIFICATIONS:
        raise TeachingError(f"unknown tear kind {call!r} (choose one of {', '.join(CLASSIFICATIONS)})")
    return c


def Caliper(frame_index: int, x1: float, y1: float, x2: float, y2: float,  # noqa: N802 (a value maker)
            length_mm: float | None = None, length_px: float | None = None,
            calibration_source: str = "none", *, label: str = "") -> Measurement:
    """A caliper whose length is given rather than measured (truth files, typed gaps).

    Full-frame px (x = column, y = row, 0-based).  A teaching caliper is a
    :class:`msus.measure.Measurement`; this builds one from the lengths a case file or a ground
    truth states (``length_px`` defaults to the distance between the ends).
    """
    px = math.dist((x1, y1), (x2, y2)) if length_px is None else float(length_px)
    dist = Distance(px, opt_float(length_mm), str(calibration_source or "none"))
    return Measurement(int(frame_index), float(x1), float(y1), float(x2), float(y2), dist, label=label)


def caliper_to_dict(m: Measurement | None) -> dict | None:
    """A caliper for ``case.json`` (:meth:`msus.measure.Measurement.to_dict`: ends, lengths, provenance)."""
    return None if m is None else m.to_dict()


def caliper_from_dict(d: Mapping | None) -> Measurement | None:
    """The caliper of :func:`caliper_to_dict` (also reads case files that hold only ends and lengths)."""
    if not d:
        return None
    dist = Distance(
        float(opt_float(d.get("length_px")) or math.dist((float(d["x1"]), float(d["y1"])), (float(d["x2"]), float(d["y2"])))),
        opt_float(d.get("length_mm")), str(d.get("calibration_source") or "none"),
        opt_int(d.get("region_index")), opt_float(d.get("mm_per_px_x")), opt_float(d.get("mm_per_px_y")),
        tuple(str(w) for w in d.get("warnings") or ()),
    )
    kw = {k: str(d[k]) for k in ("label", "kind", "reviewer", "id", "created_at", "role", "note") if d.get(k)}
    return Measurement(int(d["frame_index"]), float(d["x1"]), float(d["y1"]), float(d["x2"]), float(d["y2"]), dist, **kw)


@dataclass(frozen=True)
class Answer:
    """The expert finding a case reveals.

    Attributes
    ----------
    classification
        ``suspected_full_thickness``, ``partial`` or ``no_defect``.
    gap_rest_mm, gap_contraction_mm
        Gap between the stump ends at the rest and contraction frames, mm (None: not calibrated
        or not measured; a case without a defect has no gap).
    reasons
        The flag's human-readable reasons.
    rest_frame, contraction_frame
        0-based frame indices of the paired measurement.
    gap_curve_mm
        Optional gap per frame (mm, None where unknown), to score a static frame other than rest.
    rest_caliper, contraction_caliper
        Optional expert calipers to draw beside the learner's.
    calibration_source
        Where the expert's mm came from.
    """

    classification: str
    gap_rest_mm: float | None = None
    gap_contraction_mm: float | None = None
    reasons: tuple[str, ...] = ()
    rest_frame: int | None = None
    contraction_frame: int | None = None
    gap_curve_mm: tuple[float | None, ...] = ()
    rest_caliper: Measurement | None = None
    contraction_caliper: Measurement | None = None
    calibration_source: str = "none"

    def __post_init__(self):
        check_call(self.classification)

    @property
    def retraction_mm(self) -> float | None:
        """Δgap = gap at contraction − gap at rest (mm)."""
        if self.gap_rest_mm is None or self.gap_contraction_mm is None:
            return None
        return self.gap_contraction_mm - self.gap_rest_mm

    def gap_at(self, frame_index: int) -> float | None:
        """Expert gap on ``frame_index`` (mm): the curve when known, else rest/contraction."""
        i = int(frame_index)
        if 0 <= i < len(self.gap_curve_mm) and self.gap_curve_mm[i] is not None:
            return self.gap_curve_mm[i]
        if i == self.contraction_frame and i != self.rest_frame:
            return self.gap_contraction_mm
        if i == self.rest_frame or self.contraction_frame is None:
            return self.gap_rest_mm
        return None

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["reasons"] = list(self.reasons)
        d["gap_curve_mm"] = list(self.gap_curve_mm)
        d["rest_caliper"] = caliper_to_dict(self.rest_caliper)
        d["contraction_caliper"] = caliper_to_dict(self.contraction_caliper)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "Answer":
        return cls(
            classification=check_call(d.get("classification", "")),
            gap_rest_mm=opt_float(d.get("gap_rest_mm")),
            gap_contraction_mm=opt_float(d.get("gap_contraction_mm")),
            reasons=tuple(str(r) for r in d.get("reasons") or ()),
            rest_frame=opt_int(d.get("rest_frame")),
            contraction_frame=opt_int(d.get("contraction_frame")),
            gap_curve_mm=tuple(opt_float(v) for v in d.get("gap_curve_mm") or ()),
            rest_caliper=caliper_from_dict(d.get("rest_caliper")),
            contraction_caliper=caliper_from_dict(d.get("contraction_caliper")),
            calibration_source=str(d.get("calibration_source") or "none"),
        )


@dataclass(frozen=True)
class Case:
    """One teaching case.

    Attributes
    ----------
    id
        Stable identifier (``sample-NAME`` for bundled samples, ``case-<hex>`` for library cases).
    title, region, teaching_point
        What the room sees: a title, the anatomy (e.g. "rectus femoris, longitudinal") and the one
        thing the case teaches.
    answer
        The expert :class:`Answer`, hidden until REVEAL.
    source
        The loop: a path to a de-identified file (absolute once loaded; relative in ``case.json``).
    static_frame_index
        The frame shown first (0-based); by default the rest frame — the static exam.
    origin
        ``sample`` (bundled) or ``library`` (made by a teacher, de-identified).
    deidentified
        True when the loop went through :func:`deidentify_loop` (or is synthetic, without PHI).
    """

    id: str
    title: str
    region: str
    teaching_point: str
    answer: Answer
    source: str
    static_frame_index: int = 0
    origin: str = "library"
    deidentified: bool = True

    @property
    def ab_range(self) -> tuple[int, int]:
        """A–B frames of the contraction (rest → contraction frame, ordered), 0-based inclusive."""
        a = self.answer.rest_frame
        b = self.answer.contraction_frame
        if a is None or b is None or a == b:
            return (0, max(0, self.static_frame_index))
        return (min(a, b), max(a, b))

    @property
    def expert_gap_static_mm(self) -> float | None:
        return self.answer.gap_at(self.static_frame_index)

    def to_dict(self, relative_to: Path | None = None) -> dict:
        src = self.source
        if relative_to is not None:
            try:
                src = Path(src).resolve().relative_to(Path(relative_to).resolve()).as_posix()
            except ValueError:
                pass
        return {
            "id": self.id,
            "title": self.title,
            "region": self.region,
            "teaching_point": self.teaching_point,
            "answer": self.answer.to_dict(),
            "source": src,
            "static_frame_index": self.static_frame_index,
            "origin": self.origin,
            "deidentified": self.deidentified,
        }

    @classmethod
    def from_dict(cls, d: Mapping, base: Path | None = None) -> "Case":
        try:
            src = Path(str(d["source"]))
            if base is not None and not src.is_absolute():
                src = Path(base) / src
            return cls(
                id=str(d["id"]),
                title=str(d.get("title") or d["id"]),
                region=str(d.get("region") or ""),
                teaching_point=str(d.get("teaching_point") or ""),
                answer=Answer.from_dict(d["answer"]),
                source=str(src),
                static_frame_index=int(d.get("static_frame_index") or 0),
                origin=str(d.get("origin") or "library"),
                deidentified=bool(d.get("deidentified", True)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TeachingError(f"case file is incomplete or malformed ({exc})") from None
