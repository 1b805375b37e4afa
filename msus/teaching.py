"""Teaching mode: a case library and the blind-reveal session that scores a learner.

The case behind msus is a full-thickness tear missed on a static exam.  A teaching session shows
one static frame first, asks the learner to commit (tear kind, and a gap caliper if they see one),
then plays the loop and lets them revise, then reveals the expert finding beside their answer.

Three parts, all plain values (no Streamlit here):

* :class:`Case` / :class:`Answer` — a frozen teaching case: title, region (anatomy), teaching
  point, the expert answer (classification, gap at rest and at contraction in mm, reasons), the
  loop it plays and the static frame shown first.  :func:`sample_cases` turns the bundled
  ``samples/*.truth.json`` into ready cases; :class:`CaseLibrary` keeps teacher-made cases in a
  folder, and :meth:`CaseLibrary.add_finding` builds one from a saved finding, de-identifying the
  loop on the way in (:func:`deidentify_loop`).
* :class:`Session` — the state machine ``STATIC → LOOP → REVEAL`` per case, then the next case,
  then ``DONE``.  Each transition returns a new :class:`Session` (store it in
  ``st.session_state``); a wrong-stage call raises :class:`TeachingError`.
* :func:`score_attempt` and :class:`ScoringRule` — the documented per-case score, the
  :class:`SessionSummary` over several cases, and :func:`results_csv` for the hand-out.

Scoring rule (defaults of :class:`ScoringRule`; 100 points per case at most)
----------------------------------------------------------------------------
* **final call** (after the loop): 50 if the tear kind is right; 25 if the learner called a tear
  of the wrong kind (partial vs full thickness) when there is one.
* **static call**: 20 if the call committed on the static frame was already right.
* **caught on the loop**: 10 when the static call was wrong and the final call is right — the
  skill the session teaches.  It never stacks with the static points, so catching it on the static
  frame (max 100) still beats catching it only on the loop (max 90).
* **gaps**: 15 each for the gap on the static frame and the gap at contraction (a caliper the
  learner placed on another frame of the loop is compared with the expert gap on that frame when
  the case has a gap curve).  "No caliper"
  means 0 mm; a case with no defect has an expert gap of 0 mm.  Full points when the error is
  within ``gap_tolerance_mm`` (1.0 mm), falling linearly to 0 at ``gap_zero_mm`` (3.0 mm).  A gap
  the expert could not give in mm (uncalibrated loop) is not scored and leaves the case's maximum.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from msus.errors import ExportError, MsusError, TeachingError
from msus.numbers import opt_float, opt_int
from msus.terms import CLASSIFICATION_LABELS, Classification

CLASSIFICATIONS = (Classification.NO_DEFECT, Classification.PARTIAL, Classification.SUSPECTED_FULL_THICKNESS)
#: What a learner sees for each classification (the app's one label map).
CALL_LABELS = CLASSIFICATION_LABELS
TEAR_KINDS = (Classification.PARTIAL, Classification.SUSPECTED_FULL_THICKNESS)

STATIC, LOOP, REVEAL, DONE = "static", "loop", "reveal", "done"
STAGES = (STATIC, LOOP, REVEAL, DONE)

CASE_FILE = "case.json"
TRUTH_SUFFIX = ".truth.json"


# ---- cases ---------------------------------------------------------------------------------


def _check_call(call: str) -> str:
    c = str(call).strip()
    if c not in CLASSIFICATIONS:
        raise TeachingError(f"unknown tear kind {call!r} (choose one of {', '.join(CLASSIFICATIONS)})")
    return c


@dataclass(frozen=True)
class Caliper:
    """Two caliper ends on one frame, full-frame px (x = column, y = row, 0-based)."""

    frame_index: int
    x1: float
    y1: float
    x2: float
    y2: float
    length_mm: float | None = None
    length_px: float | None = None
    calibration_source: str = "none"

    @classmethod
    def from_measurement(cls, m) -> "Caliper":
        """From a :class:`msus.measure.Measurement` (keeps its mm and calibration source)."""
        return cls(
            int(m.frame_index), float(m.x1), float(m.y1), float(m.x2), float(m.y2),
            m.length_mm, m.length_px, m.calibration_source,
        )

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "Caliper | None":
        if not d:
            return None
        return cls(
            int(d["frame_index"]), float(d["x1"]), float(d["y1"]), float(d["x2"]), float(d["y2"]),
            opt_float(d.get("length_mm")), opt_float(d.get("length_px")),
            str(d.get("calibration_source") or "none"),
        )


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
    rest_caliper: Caliper | None = None
    contraction_caliper: Caliper | None = None
    calibration_source: str = "none"

    def __post_init__(self):
        _check_call(self.classification)

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
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        d["gap_curve_mm"] = list(self.gap_curve_mm)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "Answer":
        return cls(
            classification=_check_call(d.get("classification", "")),
            gap_rest_mm=opt_float(d.get("gap_rest_mm")),
            gap_contraction_mm=opt_float(d.get("gap_contraction_mm")),
            reasons=tuple(str(r) for r in d.get("reasons") or ()),
            rest_frame=opt_int(d.get("rest_frame")),
            contraction_frame=opt_int(d.get("contraction_frame")),
            gap_curve_mm=tuple(opt_float(v) for v in d.get("gap_curve_mm") or ()),
            rest_caliper=Caliper.from_dict(d.get("rest_caliper")),
            contraction_caliper=Caliper.from_dict(d.get("contraction_caliper")),
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
            raise TeachingError(f"case file is incomplete or malformed ({exc})") from exc


# ---- the bundled samples as ready cases -----------------------------------------------------

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
        raise TeachingError(f"cannot read sample truth {truth.name}: {exc}") from exc
    if isinstance(d.get("truth"), Mapping):  # samples: file facts outside, simulator truth inside
        d = {**d, **d["truth"]}
    src = d.get("source") or d.get("file")
    loop = (truth.parent / src) if src else _loop_beside(truth)
    if loop is None or not loop.is_file():
        raise TeachingError(f"sample {truth.name} has no loop file beside it")
    name = truth.name[: -len(TRUTH_SUFFIX)]
    cls_ = _check_call(_first(d, "classification", "tear_kind", default=""))
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


# ---- de-identification call point ------------------------------------------------------------


def deidentify_loop(source: str | Path, out_dir: str | Path) -> Path:
    """Copy a loop into ``out_dir`` de-identified, via :mod:`msus.export.deid`.

    Header PHI is removed (DICOM basic profile) and pixels outside the ultrasound regions blacked
    out by the export work's de-identifier; this function is only the call point, so the teaching
    library never holds an identified loop.  Raises :class:`~msus.errors.ExportError` when the
    loop cannot be de-identified — a case is then refused rather than stored with PHI.
    """
    from msus.export.deid import deidentify_file  # noqa: PLC0415 (export imports teaching's cases)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = deidentify_file(Path(source), out_dir)
    except MsusError as exc:  # not DICOM, unreadable…: refused, never stored identified
        raise ExportError(f"cannot add a teaching case: de-identification failed ({exc})") from exc
    path = Path(result) if result is not None else None
    if path is None or not path.exists():
        raise ExportError("de-identification produced no file")
    return path


# ---- the library -------------------------------------------------------------------------------


def _field(obj, name, default=None):
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def answer_from_finding(finding, measurements: Iterable = ()) -> Answer:
    """The expert :class:`Answer` from a saved finding (store row, analysis result or mapping).

    ``measurements`` may hold the finding's calipers (:class:`msus.measure.Measurement`); the
    ones labelled "gap at rest" / "gap at contraction" become the expert calipers.
    """
    reasons = _field(finding, "reasons", ()) or ()
    if isinstance(reasons, str):
        try:
            reasons = json.loads(reasons)
        except ValueError:
            reasons = [reasons]
    curve = _field(finding, "gap_curve_mm", ()) or ()
    rest_c = con_c = None
    for m in measurements:
        label = _field(m, "label", "")
        if label == "gap at rest":
            rest_c = Caliper.from_measurement(m)
        elif label == "gap at contraction":
            con_c = Caliper.from_measurement(m)
    return Answer(
        classification=_check_call(_field(finding, "classification", "")),
        gap_rest_mm=opt_float(_field(finding, "gap_rest_mm")),
        gap_contraction_mm=opt_float(_field(finding, "gap_contraction_mm")),
        reasons=tuple(str(r) for r in reasons),
        rest_frame=opt_int(_field(finding, "rest_frame")),
        contraction_frame=opt_int(_field(finding, "contraction_frame")),
        gap_curve_mm=tuple(opt_float(v) for v in curve),
        rest_caliper=rest_c,
        contraction_caliper=con_c,
        calibration_source=str(_field(finding, "calibration_source", "none") or "none"),
    )


class CaseLibrary:
    """Teacher-made cases in a folder: ``ROOT/<case id>/case.json`` beside the de-identified loop.

    Parameters
    ----------
    root
        The library folder (default ``<msus data folder>/teaching``); created on first add.
    """

    def __init__(self, root: str | Path | None = None):
        if root is None:
            from msus.store.engine import data_dir  # noqa: PLC0415

            root = data_dir() / "teaching"
        self.root = Path(root)

    def cases(self) -> list[Case]:
        """Every case in the library, oldest first; unreadable case files are skipped."""
        out = []
        if not self.root.is_dir():
            return out
        for f in sorted(self.root.glob(f"*/{CASE_FILE}"), key=lambda p: p.stat().st_mtime):
            try:
                out.append(Case.from_dict(json.loads(f.read_text(encoding="utf-8")), base=f.parent))
            except (OSError, ValueError, TeachingError):
                continue
        return out

    def get(self, case_id: str) -> Case:
        for c in self.cases():
            if c.id == case_id:
                return c
        raise TeachingError(f"no teaching case {case_id!r} in the library")

    def save(self, case: Case) -> Case:
        """Write ``case`` (its loop must already sit inside the library folder)."""
        folder = self.root / case.id
        folder.mkdir(parents=True, exist_ok=True)
        if not case.deidentified:
            raise TeachingError("a library case must be de-identified")
        try:
            Path(case.source).resolve().relative_to(self.root.resolve())
        except ValueError:
            raise TeachingError("a library case's loop must be inside the library folder") from None
        tmp = folder / (CASE_FILE + ".tmp")
        tmp.write_text(json.dumps(case.to_dict(relative_to=folder), indent=2), encoding="utf-8")
        tmp.replace(folder / CASE_FILE)
        return case

    def remove(self, case_id: str) -> None:
        folder = self.root / case_id
        if (folder / CASE_FILE).is_file():
            shutil.rmtree(folder)

    def add_finding(
        self,
        finding,
        source: str | Path,
        *,
        title: str,
        region: str,
        teaching_point: str,
        measurements: Iterable = (),
        static_frame_index: int | None = None,
        deidentify=deidentify_loop,
    ) -> Case:
        """Turn a saved finding into a case; the loop is de-identified into the library.

        Parameters
        ----------
        finding
            A saved finding (store row, analysis result or mapping with ``classification``,
            ``gap_rest_mm``, ``gap_contraction_mm``, ``reasons``, ``rest_frame``,
            ``contraction_frame``).
        source
            The loop the finding was made on; never modified (a de-identified copy is stored).
        title, region, teaching_point
            Written by the teacher; they must not contain patient identifiers.
        static_frame_index
            Frame shown first (default: the finding's rest frame).
        deidentify
            ``deidentify(source, out_dir) -> Path``; default :func:`deidentify_loop`.
        """
        if not str(title).strip():
            raise TeachingError("a teaching case needs a title")
        answer = answer_from_finding(finding, measurements)
        src = Path(source)
        if not src.is_file():
            raise TeachingError(f"the finding's loop {src.name} is not a file")
        h = hashlib.sha256(
            f"{src.name}|{answer.classification}|{answer.gap_rest_mm}|{answer.gap_contraction_mm}|"
            f"{datetime.now(timezone.utc).isoformat()}".encode()
        ).hexdigest()[:10]
        case_id = f"case-{h}"
        folder = self.root / case_id
        folder.mkdir(parents=True, exist_ok=True)
        try:
            loop = deidentify(src, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        static = static_frame_index if static_frame_index is not None else (answer.rest_frame or 0)
        case = Case(
            id=case_id,
            title=str(title).strip(),
            region=str(region).strip(),
            teaching_point=str(teaching_point).strip(),
            answer=answer,
            source=str(Path(loop).resolve()),
            static_frame_index=int(static),
            origin="library",
            deidentified=True,
        )
        return self.save(case)


def add_case_from_store(
    library: "CaseLibrary",
    store,
    source: str | Path,
    *,
    title: str,
    region: str,
    teaching_point: str,
    static_frame_index: int | None = None,
    deidentify=None,
) -> Case:
    """The loop's latest saved finding (and its labelled calipers) from the store as a new case.

    Parameters
    ----------
    library
        Where the case goes.
    store
        A :class:`msus.store.Store`.
    source
        The loop file the finding was made on (read, never modified).

    Raises
    ------
    TeachingError
        When the store holds no finding for this loop.
    """
    import msus  # noqa: PLC0415
    from msus.store.identity import identify  # noqa: PLC0415

    cine = msus.load(source)
    try:
        ref = store.loop(identify(cine).loop_key)
    finally:
        cine.close()
    finding = store.latest_finding(ref) if ref is not None else None
    if finding is None:
        raise TeachingError(f"the store holds no finding for {Path(source).name}; save one in the review first")
    ms = [sm.measurement for sm in store.measurements(ref)]
    kw = {} if deidentify is None else {"deidentify": deidentify}
    return library.add_finding(finding, source, title=title, region=region, teaching_point=teaching_point,
                               measurements=ms, static_frame_index=static_frame_index, **kw)


def all_cases(samples_dir: str | Path | None, library: CaseLibrary | None = None,
              problems: list[str] | None = None) -> list[Case]:
    """Bundled sample cases first, then the library's (``problems``: see :func:`sample_cases`)."""
    out = sample_cases(samples_dir, problems) if samples_dir and Path(samples_dir).is_dir() else []
    if library is not None:
        out += library.cases()
    return out


# ---- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringRule:
    """Points of one case (see the module docstring for the rule in words)."""

    final_correct: float = 50.0
    final_wrong_tear_kind: float = 25.0
    static_correct: float = 20.0
    caught_on_loop: float = 10.0
    gap_points: float = 15.0
    gap_tolerance_mm: float = 1.0
    gap_zero_mm: float = 3.0

    def gap_score(self, learner_mm: float | None, expert_mm: float) -> float:
        err = abs((learner_mm or 0.0) - expert_mm)
        if err <= self.gap_tolerance_mm:
            return self.gap_points
        if err >= self.gap_zero_mm:
            return 0.0
        span = self.gap_zero_mm - self.gap_tolerance_mm
        return self.gap_points * (1.0 - (err - self.gap_tolerance_mm) / span)


DEFAULT_RULE = ScoringRule()


@dataclass(frozen=True)
class LearnerAnswer:
    """What the learner committed: the call and gaps in mm (None = no caliper)."""

    classification: str
    gap_mm: float | None = None
    caliper: Caliper | None = None


@dataclass(frozen=True)
class CaseScore:
    """The score of one case, with every number that went into it (mm, points)."""

    case_id: str
    title: str
    region: str
    expert_classification: str
    static_call: str
    final_call: str
    static_correct: bool
    final_correct: bool
    caught_on_loop: bool
    static_frame_index: int
    contraction_frame_index: int | None
    expert_gap_static_mm: float | None
    learner_gap_static_mm: float | None
    gap_static_error_mm: float | None
    expert_gap_contraction_mm: float | None
    learner_gap_contraction_mm: float | None
    gap_contraction_error_mm: float | None
    points: float
    max_points: float
    breakdown: tuple[tuple[str, float], ...] = ()

    @property
    def percent(self) -> float:
        return 100.0 * self.points / self.max_points if self.max_points else 0.0


def _expert_gap(answer: Answer, frame: int | None) -> float | None:
    """Expert gap (mm) on a frame for scoring: 0 when there is no defect, None if unknown."""
    if answer.classification == "no_defect":
        return 0.0
    if frame is None:
        return None
    return answer.gap_at(frame)


def score_attempt(case: Case, static: LearnerAnswer, final: LearnerAnswer, rule: ScoringRule = DEFAULT_RULE) -> CaseScore:
    """Score one case from the learner's static and final (after the loop) answers."""
    truth = case.answer.classification
    s_ok = static.classification == truth
    f_ok = final.classification == truth
    caught = f_ok and not s_ok
    parts: list[tuple[str, float]] = []
    if f_ok:
        parts.append(("final call correct", rule.final_correct))
    elif truth in TEAR_KINDS and final.classification in TEAR_KINDS:
        parts.append(("tear seen, wrong kind", rule.final_wrong_tear_kind))
    else:
        parts.append(("final call wrong", 0.0))
    parts.append(("static call correct" if s_ok else "static call wrong", rule.static_correct if s_ok else 0.0))
    if caught:
        parts.append(("caught on the loop", rule.caught_on_loop))
    max_points = rule.final_correct + rule.static_correct

    con_frame = case.answer.contraction_frame
    x_static = _expert_gap(case.answer, case.static_frame_index)
    two_frames = con_frame is not None and con_frame != case.static_frame_index
    x_con = _expert_gap(case.answer, con_frame)
    if two_frames and final.caliper is not None and final.caliper.frame_index != case.static_frame_index:
        # A caliper placed on another frame of the loop is compared with the expert gap there
        # when the gap curve knows it (else with the contraction frame's gap).
        at = _expert_gap(case.answer, final.caliper.frame_index)
        if at is not None:
            x_con, con_frame = at, final.caliper.frame_index
    if two_frames:
        # Static caliper on the static frame; the LOOP answer's caliper on the contraction frame.
        l_static, l_con = static.gap_mm, final.gap_mm
    else:
        # One frame only: the LOOP answer may revise the static gap.
        l_static = final.gap_mm if final.gap_mm is not None else static.gap_mm
        l_con = None
    err_s = err_c = None
    if x_static is not None:
        err_s = abs((l_static or 0.0) - x_static)
        parts.append(("gap on the static frame", rule.gap_score(l_static, x_static)))
        max_points += rule.gap_points
    if x_con is not None and two_frames:
        err_c = abs((l_con or 0.0) - x_con)
        parts.append(("gap at contraction", rule.gap_score(l_con, x_con)))
        max_points += rule.gap_points
    return CaseScore(
        case_id=case.id,
        title=case.title,
        region=case.region,
        expert_classification=truth,
        static_call=static.classification,
        final_call=final.classification,
        static_correct=s_ok,
        final_correct=f_ok,
        caught_on_loop=caught,
        static_frame_index=case.static_frame_index,
        contraction_frame_index=con_frame,
        expert_gap_static_mm=x_static,
        learner_gap_static_mm=l_static,
        gap_static_error_mm=err_s,
        expert_gap_contraction_mm=x_con if two_frames else None,
        learner_gap_contraction_mm=l_con,
        gap_contraction_error_mm=err_c,
        points=round(sum(p for _, p in parts), 2),
        max_points=max_points,
        breakdown=tuple((k, round(v, 2)) for k, v in parts),
    )


@dataclass(frozen=True)
class SessionSummary:
    """Totals over the scored cases of a session."""

    learner: str
    n_cases: int
    points: float
    max_points: float
    n_final_correct: int
    n_static_correct: int
    n_caught_on_loop: int
    mean_abs_gap_error_mm: float | None

    @property
    def percent(self) -> float:
        return 100.0 * self.points / self.max_points if self.max_points else 0.0


def summarize(scores: Sequence[CaseScore], learner: str = "") -> SessionSummary:
    errs = [e for s in scores for e in (s.gap_static_error_mm, s.gap_contraction_error_mm) if e is not None]
    return SessionSummary(
        learner=learner,
        n_cases=len(scores),
        points=round(sum(s.points for s in scores), 2),
        max_points=sum(s.max_points for s in scores),
        n_final_correct=sum(s.final_correct for s in scores),
        n_static_correct=sum(s.static_correct for s in scores),
        n_caught_on_loop=sum(s.caught_on_loop for s in scores),
        mean_abs_gap_error_mm=(sum(errs) / len(errs)) if errs else None,
    )


CSV_COLUMNS = (
    "learner", "case_id", "title", "region", "expert_classification", "static_call", "final_call",
    "static_correct", "final_correct", "caught_on_loop", "static_frame", "contraction_frame",
    "expert_gap_static_mm", "learner_gap_static_mm", "gap_static_error_mm",
    "expert_gap_contraction_mm", "learner_gap_contraction_mm", "gap_contraction_error_mm",
    "points", "max_points", "percent",
)


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def results_csv(scores: Sequence[CaseScore], learner: str = "") -> str:
    """The learner's session results: one row per case (frames 1-based, mm to 0.01), then TOTAL."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in scores:
        w.writerow([_fmt(v) for v in (
            learner, s.case_id, s.title, s.region, s.expert_classification, s.static_call, s.final_call,
            s.static_correct, s.final_correct, s.caught_on_loop, s.static_frame_index + 1,
            None if s.contraction_frame_index is None else s.contraction_frame_index + 1,
            s.expert_gap_static_mm, s.learner_gap_static_mm, s.gap_static_error_mm,
            s.expert_gap_contraction_mm, s.learner_gap_contraction_mm, s.gap_contraction_error_mm,
            float(s.points), float(s.max_points), s.percent,
        )])
    t = summarize(scores, learner)
    w.writerow([_fmt(v) for v in (
        learner, "TOTAL", f"{t.n_cases} cases", "", "", "", "", t.n_static_correct, t.n_final_correct,
        t.n_caught_on_loop, "", "", "", "", t.mean_abs_gap_error_mm, "", "", "",
        float(t.points), float(t.max_points), t.percent,
    )])
    return buf.getvalue()


# ---- the blind-reveal session -------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A learner's pass over several cases: ``STATIC → LOOP → REVEAL`` per case, then ``DONE``.

    Every method returns a new session; nothing is mutated.  The expert answer of the current case
    is only reachable through :attr:`revealed` once the stage is ``REVEAL``.
    """

    cases: tuple[Case, ...]
    learner: str = ""
    index: int = 0
    stage: str = STATIC
    static_answer: LearnerAnswer | None = None
    final_answer: LearnerAnswer | None = None
    scores: tuple[CaseScore, ...] = ()
    rule: ScoringRule = field(default=DEFAULT_RULE)

    @classmethod
    def start(cls, cases: Sequence[Case], learner: str = "", rule: ScoringRule = DEFAULT_RULE) -> "Session":
        cases = tuple(cases)
        if not cases:
            raise TeachingError("choose at least one case to start a session")
        ids = [c.id for c in cases]
        if len(set(ids)) != len(ids):
            raise TeachingError("a case appears twice in the session")
        return cls(cases=cases, learner=str(learner).strip(), rule=rule)

    @property
    def case(self) -> Case | None:
        """The current case (None when the session is done)."""
        return self.cases[self.index] if self.stage != DONE else None

    @property
    def revealed(self) -> CaseScore | None:
        """The current case's score, available in ``REVEAL`` only."""
        return self.scores[-1] if self.stage == REVEAL else None

    def _need(self, stage: str, action: str) -> None:
        if self.stage != stage:
            raise TeachingError(f"cannot {action} now: the session is at the {self.stage} step")

    @staticmethod
    def _answer(call: str, gap_mm, caliper) -> LearnerAnswer:
        call = _check_call(call)
        if caliper is not None and not isinstance(caliper, Caliper):
            caliper = Caliper.from_measurement(caliper)
        g = opt_float(gap_mm)
        if caliper is not None and g is None:
            g = caliper.length_mm
        if g is not None and g < 0:
            raise TeachingError("a gap cannot be negative")
        return LearnerAnswer(call, g, caliper)

    def commit_static(self, call: str, gap_mm: float | None = None, caliper=None) -> "Session":
        """Commit the call on the static frame (and the gap measured there, mm); the loop plays next."""
        self._need(STATIC, "commit a static answer")
        return replace(self, stage=LOOP, static_answer=self._answer(call, gap_mm, caliper))

    def commit_loop(self, call: str, gap_mm: float | None = None, caliper=None) -> "Session":
        """Commit the (possibly revised) call after the loop and the gap at contraction; reveals."""
        self._need(LOOP, "commit the answer after the loop")
        final = self._answer(call, gap_mm, caliper)
        sc = score_attempt(self.case, self.static_answer, final, self.rule)
        return replace(self, stage=REVEAL, final_answer=final, scores=self.scores + (sc,))

    def next_case(self) -> "Session":
        """Leave the reveal for the next case's static frame (or DONE after the last)."""
        self._need(REVEAL, "go to the next case")
        if self.index + 1 >= len(self.cases):
            return replace(self, stage=DONE, static_answer=None, final_answer=None)
        return replace(self, index=self.index + 1, stage=STATIC, static_answer=None, final_answer=None)

    def summary(self) -> SessionSummary:
        return summarize(self.scores, self.learner)

    def results_csv(self) -> str:
        return results_csv(self.scores, self.learner)


# ---- hand-outs --------------------------------------------------------------------------------

EXPERT_REVIEWER = "expert (teaching case)"


def case_export_data(case: Case, cine):
    """The case's expert finding and calipers as :class:`msus.export.ExportData`.

    The calipers are re-measured with the loop's own calibration (so the burned-in lengths carry
    its provenance); nothing of the learner is included.
    """
    from msus import export as E  # noqa: PLC0415
    from msus.measure import LABEL_CONTRACTION, LABEL_REST, make_measurement  # noqa: PLC0415

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
    from msus.export import video  # noqa: PLC0415

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
