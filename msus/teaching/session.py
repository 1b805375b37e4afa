"""The blind-reveal session: ``STATIC → LOOP → REVEAL`` per case, then ``DONE`` (frozen values)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from msus.errors import TeachingError
from msus.measure import Measurement
from msus.teaching.cases import Case, check_call, opt_float
from msus.teaching.scoring import (
    DEFAULT_RULE, CaseScore, LearnerAnswer, ScoringRule, SessionSummary, results_csv, score_attempt, summarize,
)

STATIC, LOOP, REVEAL, DONE = "static", "loop", "reveal", "done"
STAGES = (STATIC, LOOP, REVEAL, DONE)


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
        call = check_call(call)
        if caliper is not None and not isinstance(caliper, Measurement):
            raise TeachingError("a learner's caliper must be a measurement (msus.measure.Measurement)")
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
