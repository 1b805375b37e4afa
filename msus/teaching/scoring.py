"""The per-case score of a learner's answers, the session summary and the results CSV.

The rule in words is in :mod:`msus.teaching` (defaults of :class:`ScoringRule`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Sequence

from msus.measure import Measurement
from msus.teaching.cases import TEAR_KINDS, Answer, Case


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
    caliper: Measurement | None = None


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
