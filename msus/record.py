"""The finding's values, computed once: gap at rest, gap at contraction, Δgap, muscle thickness.

One clinical record says one thing.  :func:`finding_values` takes the loop's calipers and the
automatic analysis' values and returns :class:`FindingValues`; the store writes them into the
finding's row (so the study list, JSON, CSV, SR and PDF read the same numbers) and the app's
finding panel and Δgap card show them.

Rules
-----
* The **reader** is the reviewer whose finding it is (the one who analysed and measured).  Each
  role (gap at rest, gap at contraction, muscle thickness) takes the reader's latest caliper with
  that role; without one, the automatic analysis' value (``source="automatic"``).  So automatic
  values stand until the reader accepts or edits a caliper, and the edited one after.
* Other reviewers' calipers are **second reads**: listed and exported as such, used for rater
  agreement (:mod:`msus.agreement`), never mixed into the finding.
* A caliper's note never changes its role (:mod:`msus.measure`).
* Δgap = gap at contraction − gap at rest, in mm when both are calibrated, else in px.
"""

from __future__ import annotations

from dataclasses import dataclass

from msus.measure import LABEL_CONTRACTION, LABEL_REST, LABEL_THICKNESS, Measurement
from msus.terms import length_label

SIGNED = ("final", "amended")  # statuses of a signed (locked) finding


@dataclass(frozen=True)
class RoleValue:
    """One value of the finding: a length in mm (when calibrated) and px, and where it came from.

    ``source`` is ``"caliper"`` (then ``measurement_id`` and ``kind`` name it) or ``"automatic"``
    (the analysis' value, ``kind="automatic"``).
    """

    role: str
    length_mm: float | None
    length_px: float | None
    frame_index: int | None
    source: str
    kind: str
    reviewer: str = ""
    measurement_id: str | None = None


@dataclass(frozen=True)
class FindingValues:
    """What the finding says, with the second reads beside it (see module docstring)."""

    reader: str
    rest: RoleValue | None
    contraction: RoleValue | None
    thickness: RoleValue | None = None
    second_reads: tuple[Measurement, ...] = ()

    @property
    def retraction_mm(self) -> float | None:
        if self.rest is None or self.contraction is None:
            return None
        if self.rest.length_mm is None or self.contraction.length_mm is None:
            return None
        return self.contraction.length_mm - self.rest.length_mm

    @property
    def retraction_px(self) -> float | None:
        if self.rest is None or self.contraction is None:
            return None
        if self.rest.length_px is None or self.contraction.length_px is None:
            return None
        return self.contraction.length_px - self.rest.length_px

    @property
    def used_ids(self) -> tuple[str, ...]:
        """Ids of the calipers the finding reads (locked once it is signed)."""
        return tuple(v.measurement_id for v in (self.rest, self.contraction, self.thickness) if v and v.measurement_id)

    def columns(self) -> dict:
        """The store's finding columns these values set."""
        r, c = self.rest, self.contraction
        return {
            "rest_frame": r.frame_index if r else None,
            "contraction_frame": c.frame_index if c else None,
            "gap_rest_mm": r.length_mm if r else None,
            "gap_contraction_mm": c.length_mm if c else None,
            "gap_rest_px": r.length_px if r else None,
            "gap_contraction_px": c.length_px if c else None,
            "retraction_mm": self.retraction_mm,
        }

    def sources(self) -> dict:
        """{role: "caliper <kind>" | "automatic"} for the record's ``extra`` (shown in reports)."""
        out = {}
        for v in (self.rest, self.contraction, self.thickness):
            if v is not None:
                out[v.role] = {"source": v.source, "kind": v.kind, "measurement_id": v.measurement_id,
                               "reviewer": v.reviewer}
        return out


def _from_caliper(m: Measurement) -> RoleValue:
    return RoleValue(m.role, m.length_mm, m.length_px, int(m.frame_index), "caliper", m.kind, m.reviewer, m.id)


def _from_automatic(role: str, auto: dict, mm_key: str, px_key: str, frame_key: str | None) -> RoleValue | None:
    mm, px = auto.get(mm_key), auto.get(px_key)
    if mm is None and px is None:
        return None
    frame = auto.get(frame_key) if frame_key else None
    return RoleValue(role, None if mm is None else float(mm), None if px is None else float(px),
                     None if frame is None else int(frame), "automatic", "automatic", "msus (automatic)")


def finding_values(measurements, *, reader: str | None = None, automatic: dict | None = None) -> FindingValues:
    """The finding's values from the reader's calipers, else the automatic ones.

    Parameters
    ----------
    measurements
        The loop's calipers (:class:`~msus.measure.Measurement` or objects with ``.measurement``),
        oldest first; every reviewer's.
    reader
        The reviewer whose calipers make the finding.  None: every caliper counts as the reader's
        (one reviewer's own session).
    automatic
        The analysis' values: ``gap_rest_mm``, ``gap_contraction_mm``, ``gap_rest_px``,
        ``gap_contraction_px``, ``rest_frame``, ``contraction_frame``, optionally
        ``thickness_mm``/``thickness_px``.
    """
    ms = [getattr(m, "measurement", m) for m in measurements]
    own = [m for m in ms if reader is None or m.reviewer == reader]
    others = tuple(m for m in ms if reader is not None and m.reviewer != reader)
    auto = automatic or {}

    def pick(role, mm_key, px_key, frame_key):
        mine = [m for m in own if m.role == role]
        if mine:
            return _from_caliper(mine[-1])
        return _from_automatic(role, auto, mm_key, px_key, frame_key)

    return FindingValues(
        reader=reader or "",
        rest=pick(LABEL_REST, "gap_rest_mm", "gap_rest_px", "rest_frame"),
        contraction=pick(LABEL_CONTRACTION, "gap_contraction_mm", "gap_contraction_px", "contraction_frame"),
        thickness=pick(LABEL_THICKNESS, "thickness_mm", "thickness_px", None),
        second_reads=others,
    )


def suggested_gap(result, which: str) -> tuple[int, tuple, tuple, str]:
    """(frame, end 1, end 2, role) of the gap an analysis result suggests at ``which`` ("rest" or
    "contraction"): its frame's stumps at the middle tracked depth."""
    from msus.errors import MeasurementError

    if which not in ("rest", "contraction"):
        raise MeasurementError(f"unknown gap {which!r} (rest or contraction)")
    i = result.rest_frame if which == "rest" else result.contraction_frame
    pts = result.stumps_at(i) if i is not None else None
    if not pts:
        raise MeasurementError("no stump positions on that frame to place a caliper")
    k = len(pts) // 2  # the points run left stumps (one per depth), then right stumps
    return int(i), tuple(pts[k // 2]), tuple(pts[k + k // 2]), LABEL_REST if which == "rest" else LABEL_CONTRACTION


def caliper_gap_frames(measurements) -> set[int]:
    """Frames where the reader has a gap caliper (accepted or own): its value replaces the analysis' there."""
    return {m.frame_index for m in measurements if m.role in (LABEL_REST, LABEL_CONTRACTION)}


def edited_gap_calipers(measurements, result) -> dict:
    """{frame: (p1, p2)} of gap calipers the reader placed or dragged (not the analysis' own) on
    frames the analysis tracked: the keyframes a re-track goes through
    (:func:`msus.analysis.keyframes_from_calipers`)."""
    return {m.frame_index: ((m.x1, m.y1), (m.x2, m.y2)) for m in measurements
            if m.role in (LABEL_REST, LABEL_CONTRACTION) and m.kind != "automatic" and result.stumps_at(m.frame_index)}


def other_readers(measurements, reviewer: str | None, mine=()) -> dict[str, list[Measurement]]:
    """Other reviewers' calipers on a loop, by reviewer ("unknown" when unnamed): all but
    ``reviewer``'s and the ids in ``mine`` (the calipers on screen)."""
    mine = set(mine)
    out: dict[str, list[Measurement]] = {}
    for m in measurements:
        who = m.reviewer or "unknown"
        if who != reviewer and m.id not in mine:
            out.setdefault(who, []).append(m)
    return out


@dataclass(frozen=True)
class Retraction:
    """What the Δgap card shows: each gap's text and frame, Δgap, and whose values they are."""

    rest: str
    rest_frame: int | None
    contraction: str
    contraction_frame: int | None
    delta: str
    calibrated: bool  # Δgap in mm (else px)
    whose: str


def retraction(finding: dict | None, own: FindingValues) -> Retraction | None:
    """Δgap as the app shows it: the saved finding's when it has gaps (one value: every view reads
    the finding), else the reviewer's own calipers by role, else None (a gap is missing)."""
    f = finding
    if f is not None and (f.get("gap_rest_mm") is not None or f.get("gap_rest_px") is not None):
        return Retraction(length_text(f.get("gap_rest_mm"), f.get("gap_rest_px")), f.get("rest_frame"),
                          length_text(f.get("gap_contraction_mm"), f.get("gap_contraction_px")),
                          f.get("contraction_frame"), delta_text(f.get("retraction_mm"), _delta_px(f)),
                          f.get("retraction_mm") is not None, f"the finding of {f.get('reviewer')} ({f.get('status')})")
    if own.rest is not None and own.contraction is not None:
        return Retraction(length_text(own.rest.length_mm, own.rest.length_px), own.rest.frame_index,
                          length_text(own.contraction.length_mm, own.contraction.length_px),
                          own.contraction.frame_index, delta_text(own.retraction_mm, own.retraction_px),
                          own.retraction_mm is not None, "your calipers (no finding saved)")
    return None


def _delta_px(f: dict) -> float | None:
    """Δgap in px of a finding dict (None unless both gaps have a px length)."""
    if f.get("gap_rest_px") is None or f.get("gap_contraction_px") is None:
        return None
    return f["gap_contraction_px"] - f["gap_rest_px"]


def sources_line(finding: dict) -> str:
    """'From gap at rest: caliper of Dr A (manual) · gap at contraction: automatic analysis' ("" when unknown)."""
    said = []
    for role, v in ((finding.get("extra") or {}).get("sources") or {}).items():
        who = v.get("reviewer") or finding.get("reviewer")
        said.append(f"{role}: " + (f"caliper of {who} ({v.get('kind')})" if v.get("source") == "caliper"
                                   else "automatic analysis"))
    return ("From " + " · ".join(said)) if said else ""


def second_reads_line(measurements, reader: str | None) -> str:
    """Other reviewers' gap and thickness calipers, for agreement ("" when none):
    'Dr B: gap at rest 4.80 mm (frame 5); …'."""
    second = [m for m in finding_values(measurements, reader=reader).second_reads if m.role != "other"]
    return "; ".join(f"{m.reviewer}: {m.role} {length_text(m.length_mm, m.length_px)} (frame {m.frame_index + 1})"
                     for m in second)


# ---- one way to write the values ---------------------------------------------------------------
def length_text(mm: float | None, px: float | None) -> str:
    """'4.72 mm', '39.3 px (uncalibrated)' or '—' (:func:`msus.terms.length_label`)."""
    return length_label(mm, px)


def delta_text(mm: float | None, px: float | None) -> str:
    """'+5.40 mm', '+12.0 px (uncalibrated)' or '—' (:func:`msus.terms.length_label`)."""
    return length_label(mm, px, signed=True)


def headline(f: dict) -> str:
    """'Gap 4.72 mm at rest (frame 5) → 10.12 mm at contraction (frame 21), Δgap +5.40 mm'.

    ``f`` is a finding dict (keys as :class:`msus.store.StoredFinding`); frames shown 1-based.
    """
    def one(mm, px, frame, what):
        if mm is None and px is None:
            return None
        return f"{length_text(mm, px)} at {what}" + ("" if frame is None else f" (frame {int(frame) + 1})")

    parts = [p for p in (one(f.get("gap_rest_mm"), f.get("gap_rest_px"), f.get("rest_frame"), "rest"),
                         one(f.get("gap_contraction_mm"), f.get("gap_contraction_px"), f.get("contraction_frame"),
                             "contraction")) if p]
    if not parts:
        return ""
    delta = "" if len(parts) < 2 else f", Δgap {delta_text(f.get('retraction_mm'), _delta_px(f))}"
    return "Gap " + " → ".join(parts) + delta


def status_text(f: dict) -> str:
    """'draft', 'final (signed by Dr Bo, 2026-12-02 17:40 UTC)', 'amended (…; amends version 1: reason)'."""
    status = f.get("status") or "draft"
    n = int(f.get("amendment_no") or 0)
    if status in SIGNED:
        when = (f.get("signed_at") or "")[:16].replace("T", " ")
        text = f"{status} (signed by {f.get('signed_by') or '?'}" + (f", {when} UTC" if when else "") + ")"
    else:
        text = "draft"
    if n:
        text += f" — version {n + 1}, amends version {n}" + (f": {f['amendment_reason']}" if f.get("amendment_reason") else "")
    return text


_GAP_FREE_PREFIXES = ("echo:", "motion:", "the step spans")


def _gap_free(reason: str) -> bool:
    """A reason of the analysis that does not depend on the gaps (kept when a reader edits one):
    what the echo and the motion evidence found."""
    return reason.startswith(_GAP_FREE_PREFIXES) or "darker than the surrounding muscle" in reason


def reclassify(finding: dict, values: FindingValues, thresholds: dict | None = None) -> tuple[str, list[str]]:
    """The flag and its reasons for the finding's current values (:func:`msus.analysis.classify.classify`).

    The automatic analysis classified its own gaps; once a reader's caliper replaces one, the
    retraction changes, and so may the flag and the "gap widens …" reason.  Reasons that do not
    depend on the gaps (how dark the defect is) are kept.
    """
    from msus.analysis.classify import classify

    cls = finding.get("classification") or "no_defect"
    old = [str(r) for r in finding.get("reasons") or ()]
    if cls == "no_defect" or finding.get("defect_thickness_fraction") is None:
        return cls, old
    contracted = not any(r.startswith("no contraction between the two frames") for r in old)
    cols = values.columns()
    new = classify(defect_found=True, thickness_fraction=float(finding["defect_thickness_fraction"]),
                   gap_rest_mm=cols["gap_rest_mm"], gap_contraction_mm=cols["gap_contraction_mm"],
                   gap_rest_px=cols["gap_rest_px"], gap_contraction_px=cols["gap_contraction_px"],
                   contracted=contracted, thresholds=thresholds)
    reasons = list(new.reasons)
    kept = [r for r in old if _gap_free(r)]
    return new.classification, reasons[:1] + kept + reasons[1:]
