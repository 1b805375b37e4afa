"""Teaching mode: a case library and the blind-reveal session that scores a learner.

The case behind msus is a full-thickness tear missed on a static exam.  A teaching session shows
one static frame first, asks the learner to commit (tear kind, and a gap caliper if they see one),
then plays the loop and lets them revise, then reveals the expert finding beside their answer.

Rooms of the package (all plain values, no Streamlit here; every name below is importable from
``msus.teaching``):

* :mod:`~msus.teaching.cases` — :class:`Case` / :class:`Answer`: a frozen teaching case: title, region (anatomy), teaching
  point, the expert answer (classification, gap at rest and at contraction in mm, reasons), the
  loop it plays and the static frame shown first; its calipers are :class:`msus.measure.Measurement`.
  :mod:`~msus.teaching.truth` — :func:`sample_cases` turns the bundled ``samples/*.truth.json``
  into ready cases.  :mod:`~msus.teaching.library` — :class:`CaseLibrary` keeps teacher-made cases
  in a folder, and :meth:`CaseLibrary.add_finding` builds one from a saved finding, de-identifying
  the loop on the way in (:func:`deidentify_loop`, via :mod:`msus.export.deid`).
* :mod:`~msus.teaching.session` — :class:`Session`: the state machine ``STATIC → LOOP → REVEAL`` per case, then the next case,
  then ``DONE``.  Each transition returns a new :class:`Session` (store it in
  ``st.session_state``); a wrong-stage call raises :class:`TeachingError`.
* :mod:`~msus.teaching.scoring` — :func:`score_attempt` and :class:`ScoringRule`: the documented
  per-case score, the :class:`SessionSummary` over several cases, and :func:`results_csv`.
* :mod:`~msus.teaching.handouts` — the case as export data, its annotated A–B clip, the case sheet;
  :mod:`~msus.teaching.reveal` — what the reveal draws (calipers side by side, difference image,
  the room's slow-motion clip), through :mod:`msus.export`.

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

from msus.errors import TeachingError
from msus.teaching.cases import (
    CALL_LABELS, CASE_FILE, CLASSIFICATIONS, TEAR_KINDS, TRUTH_SUFFIX, Answer, Caliper, Case, caliper_from_dict,
    caliper_to_dict,
)
from msus.teaching.handouts import (
    EXPERT_REVIEWER, case_bundle_bytes, case_export_data, case_sheet, case_sheet_bytes, case_video_bytes, write_case_video,
)
from msus.teaching.library import CaseLibrary, add_case_from_store, all_cases, answer_from_finding, deidentify_loop
from msus.teaching.scoring import (
    CSV_COLUMNS, DEFAULT_RULE, CaseScore, LearnerAnswer, ScoringRule, SessionSummary, results_csv, score_attempt,
    summarize,
)
from msus.teaching.session import DONE, LOOP, REVEAL, STAGES, STATIC, Session
from msus.teaching.truth import case_from_truth, sample_cases

__all__ = [
    "CALL_LABELS", "CASE_FILE", "CLASSIFICATIONS", "CSV_COLUMNS", "DEFAULT_RULE", "DONE", "EXPERT_REVIEWER", "LOOP",
    "REVEAL", "STAGES", "STATIC", "TEAR_KINDS", "TRUTH_SUFFIX", "Answer", "Caliper", "Case", "CaseLibrary",
    "CaseScore", "LearnerAnswer", "ScoringRule", "Session", "SessionSummary", "TeachingError", "add_case_from_store",
    "all_cases", "answer_from_finding", "caliper_from_dict", "caliper_to_dict", "case_export_data", "case_from_truth",
    "case_sheet", "case_bundle_bytes", "case_sheet_bytes", "case_video_bytes", "deidentify_loop", "results_csv", "sample_cases", "score_attempt", "summarize", "write_case_video",
]
