"""The teacher's case library: cases made from saved findings, their loops de-identified on the way in.

``ROOT/<case id>/case.json`` beside the de-identified loop (default root ``<msus data folder>/teaching``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

import msus
from msus.errors import ExportError, MsusError, TeachingError
from msus.store.engine import data_dir
from msus.store.identity import identify
from msus.teaching.cases import CASE_FILE, Answer, Case, check_call, opt_float, opt_int
from msus.teaching.truth import sample_cases


def deidentify_loop(source: str | Path, out_dir: str | Path) -> Path:
    """Copy a loop into ``out_dir`` de-identified (:func:`msus.export.deid.deidentify_file`).

    Header PHI is removed (DICOM basic profile) and pixels outside the ultrasound regions blacked
    out, so the teaching library never holds an identified loop.  Raises
    :class:`~msus.errors.ExportError` when the loop cannot be de-identified — the case is then
    refused rather than stored with PHI (also when the de-identifier cannot be imported).
    """
    try:
        from msus.export import deid  # imported here: without it, a case is refused, never stored with PHI
    except ImportError as exc:
        raise ExportError("cannot add a teaching case: de-identification (msus.export.deid) is not available") from exc
    try:
        return deid.deidentify_file(Path(source), Path(out_dir))
    except MsusError as exc:  # not DICOM, unreadable…: refused, never stored identified
        raise ExportError(f"cannot add a teaching case: de-identification failed ({exc})") from exc


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
            rest_c = m
        elif label == "gap at contraction":
            con_c = m
    return Answer(
        classification=check_call(_field(finding, "classification", "")),
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
