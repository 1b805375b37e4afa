"""Streamlit page for the teaching mode: case picker, blind reveal, viewing aids, hand-outs.

Call :func:`render` from the app (or a standalone script).  All logic lives in
:mod:`msus.teaching`; this page only shows a :class:`~msus.teaching.Session` and turns widget
values into its transitions (its widgets: :mod:`msus.ui.teaching_widgets`).  State lives in ``st.session_state`` under keys starting with
``teach_``: ``teach_session`` holds the frozen session value.

Steps the learner sees:

* **STATIC** — one frame (the rest frame: the static exam), the region, no title or teaching
  point.  The learner picks a tear kind and, if they see a gap, measures it (caliper on the
  player or typed in mm), then commits.
* **LOOP** — the loop plays (A–B on the contraction, speed 0.1–2×, ping-pong), with rest and
  contraction side by side and a difference view on request.  The learner may revise the call and
  measures the gap at the contraction frame.
* **REVEAL** — the expert classification, reasons and gaps; the learner's caliper (orange) and the
  expert's (green) drawn on the static and contraction frames; a table with the difference in mm;
  the case's score and its breakdown; the teaching point; hand-outs.
* **DONE** — the session summary and the results CSV.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from msus import teaching as T
from msus.errors import MsusError
from msus.teaching.reveal import typed_gap_caliper
from msus.ui import teaching_widgets as W
from msus.ui.text import md, md_rows

logger = logging.getLogger(__name__)

KEY = "teach_session"
PRESENT = "teach_presentation"

_PRESENTATION_CSS = """
<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li,
[data-testid="stMain"] label, [data-testid="stMain"] button p,
[data-testid="stMain"] [data-testid="stTable"] td,
[data-testid="stMain"] [data-testid="stTable"] th { font-size: 1.6rem !important; line-height: 1.35; }
[data-testid="stMain"] [data-testid="stCaptionContainer"], [data-testid="stMain"] [data-testid="stCaption"] p,
[data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.25rem !important; }
[data-testid="stMain"] [data-testid="stMetricValue"],
[data-testid="stMain"] [data-testid="stMetricValue"] *,
[data-testid="stMain"] [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p { font-size: 3.4rem !important; line-height: 1.2; }
[data-testid="stMain"] h1 { font-size: 3.2rem !important; }
[data-testid="stMain"] h2, [data-testid="stMain"] h3 { font-size: 2.4rem !important; }
[data-testid="stMain"] .block-container { max-width: 100% !important; padding-top: 1rem; }
</style>
"""


def _default_samples_dir() -> Path:
    from msus.config import load_settings

    return load_settings().samples_dir


# ---- page pieces --------------------------------------------------------------------------------


def _session() -> T.Session | None:
    return st.session_state.get(KEY)


def _set(session: T.Session | None) -> None:
    st.session_state[KEY] = session
    st.rerun()


def _error(exc: Exception) -> None:
    W.show_error(exc)


def _picker(cases: list[T.Case]) -> None:
    st.subheader("Start a session")
    if not cases:
        st.info("No teaching cases yet: the bundled samples appear here once `samples/` holds them.")
        return
    reveal = st.toggle("Show case titles (teacher only)", value=False, key="teach_show_titles",
                       help="Off on the projector: titles give the answer away; each case shows its title at the reveal.")
    labels = {c.id: (f"{c.title} · {c.region}" if reveal else f"Case {k + 1} · {c.region}")
              for k, c in enumerate(cases)}  # neutral until the reveal
    learner = st.text_input("Learner (or the room)", key="teach_learner", placeholder="e.g. Thursday group")
    chosen = st.multiselect(
        "Cases, in order", options=[c.id for c in cases], default=[c.id for c in cases[:3]],
        format_func=labels.get, key="teach_pick",
    )
    if st.button("Start session", type="primary", key="teach_start"):
        try:
            by = {c.id: c for c in cases}
            _set(T.Session.start([by[i] for i in chosen], learner=learner))
        except MsusError as exc:
            _error(exc)


def _teacher_panel(library: T.CaseLibrary) -> None:
    """Teacher: turn a loop's saved finding into a de-identified case in the library."""
    with st.expander("Teacher: add a case from a saved finding"):
        st.caption("The loop is copied de-identified into the case library; its saved finding becomes the "
                   "answer. Do not type patient identifiers into the title or teaching point.")
        try:
            from msus.config import load_settings
            from msus.ui.sources import list_loops, resolve_under

            folder = load_settings().loops_dir
        except (ImportError, MsusError) as exc:
            st.info(f"Adding cases needs the app's data folder settings ({md(exc)}).")
            return
        loops = list_loops(folder)
        names = [str(p.relative_to(folder)) for p in loops]
        pick = st.selectbox(f"Loop in the data folder ({md(folder)})", names, index=None, key="teach_add_loop",
                            placeholder="choose a loop" if names else "no loops in the data folder")
        title = st.text_input("Title", key="teach_add_title")
        region = st.text_input("Region (anatomy)", key="teach_add_region", placeholder="e.g. rectus femoris, longitudinal")
        point = st.text_area("Teaching point", key="teach_add_point", height=80)
        if st.button("Add case", key="teach_add", disabled=pick is None):
            try:
                from msus.store import open_store

                store = open_store()
                try:
                    case = T.add_case_from_store(library, store, resolve_under(folder, pick), title=title,
                                                 region=region, teaching_point=point)
                finally:
                    store.close()
                st.success(f"Added “{md(case.title)}” ({md(case.id)}), de-identified.")
            except MsusError as exc:
                _error(exc)


def _header(s: T.Session) -> None:
    c = s.case
    step = {T.STATIC: "1 · static frame", T.LOOP: "2 · the loop", T.REVEAL: "3 · reveal"}[s.stage]
    st.markdown(f"### Case {s.index + 1} of {len(s.cases)} — {md(c.region or 'region not given')}")
    st.caption(f"Step {step}" + (f" · {md(c.title)}" if s.stage == T.REVEAL else ""))


def _rkey(s: T.Session, stage: str) -> str:
    return f"teaching:{id(s.cases)}:{s.index}:{s.case.id}:{stage}"


def _static_step(s: T.Session, cine) -> None:
    c = s.case
    i = c.static_frame_index
    st.markdown(f"**Static frame {i + 1}** — what do you call? Measure the gap if you see one.")
    rv = W.player(W.still(c.source, i), _rkey(s, T.STATIC))
    if rv is None:
        st.image(cine.frame(i), caption=f"Static frame {i + 1} of {cine.n_frames}", width="stretch")
    k = f"teach_{s.index}_static"
    call = W.call_widget(k + "_call")
    gap, cal = W.gap_widget(k + "_gap", "this frame", W.learner_caliper(rv, frame_map=i))
    if st.button("Commit and play the loop", type="primary", key=k + "_commit"):
        try:
            _set(s.commit_static(call, gap, cal))
        except MsusError as exc:
            _error(exc)


def _loop_step(s: T.Session, cine) -> None:
    c = s.case
    k = f"teach_{s.index}_loop"
    prior = s.static_answer
    st.info(f"Your static call: **{T.CALL_LABELS[prior.classification]}**"
            + (f", gap {prior.gap_mm:.1f} mm" if prior.gap_mm is not None else ", no gap measured")
            + ". Watch the loop; you may revise. Measure the gap where the ends are furthest apart.")

    def setup(rv):  # on arriving from "Commit and play the loop": the loop plays from the static frame
        rv.rest_frame = c.static_frame_index
        rv.frame_index = c.static_frame_index
        rv.play()

    def controls(rv):
        from msus.ui import panels

        panels.view_controls(rv)

    rv = W.player(cine, _rkey(s, T.LOOP), setup=setup, controls=controls)
    if rv is not None:
        st.caption("Player: Space plays, ←/→ step, A / B set the range, speed down to 0.1×, ping-pong; "
                   "mark the contraction frame (C) to compare it with the static frame side by side.")
    with st.expander("Prepared clip for the room: A–B on the contraction, slow motion", expanded=rv is None):
        W.prepared_clip(c, cine, k)
    if rv is None and st.toggle("Static frame and the widest frame side by side", value=False, key=k + "_sbs"):
        W.side_by_side(c, cine, show_diff=st.toggle("Difference view", value=True, key=k + "_diff"))
    call = W.call_widget(k + "_call", default=prior.classification)
    cal_now = W.learner_caliper(rv, skip_frame=c.static_frame_index)
    if cal_now is not None and cal_now.frame_index != rv.frame_index and rv.frame_index is not None:
        st.caption(f"Your caliper is on frame {cal_now.frame_index + 1}.")
    gap, cal = W.gap_widget(k + "_gap", "the contraction frame", cal_now)
    if st.button("Reveal the expert finding", type="primary", key=k + "_commit"):
        try:
            _set(s.commit_loop(call, gap, cal))
        except MsusError as exc:
            _error(exc)


def _reveal_step(s: T.Session, cine) -> None:
    c, sc = s.case, s.revealed
    ok = sc.final_correct
    (st.success if ok else st.error)(
        f"Expert finding: **{T.CALL_LABELS[sc.expert_classification]}** — you said "
        f"**{T.CALL_LABELS[sc.final_call]}** after the loop ({T.CALL_LABELS[sc.static_call]} on the static frame)."
    )
    st.caption("A flag for review, never a diagnosis.")
    m = st.columns(3)
    m[0].metric("Case score", f"{sc.points:g} / {sc.max_points:g}")
    intact = sc.expert_classification == "no_defect"  # no defect: the expert's gap is none, not 0.0 mm
    m[1].metric("Expert Δgap", "none" if intact else W.mm(c.answer.retraction_mm))
    if sc.static_correct:  # nothing to catch: the static call was already right
        m[2].metric("Static call", "right", help="right on the static frame already; the loop confirmed it"
                    if sc.final_correct else "right on the static frame; changed after the loop")
    else:
        m[2].metric("Caught on the loop", "yes" if sc.caught_on_loop else "no",
                    help="static call wrong, final call right" if sc.caught_on_loop else "wrong before and after the loop")
    rows = [
        {"gap": "on the static frame", "you": W.mm(sc.learner_gap_static_mm),
         "expert": "none" if intact else W.mm(sc.expert_gap_static_mm), "difference": W.mm(sc.gap_static_error_mm)},
    ]
    if sc.contraction_frame_index is not None and sc.expert_gap_contraction_mm is not None:
        rows.append({"gap": f"at contraction (frame {sc.contraction_frame_index + 1})", "you": W.mm(sc.learner_gap_contraction_mm),
                     "expert": W.mm(sc.expert_gap_contraction_mm), "difference": W.mm(sc.gap_contraction_error_mm)})
    st.table(md_rows(rows))
    if c.answer.reasons:
        st.markdown("**Reasons for the flag**\n" + "\n".join(f"- {md(r)}" for r in c.answer.reasons))
    lr = s.static_answer.caliper or typed_gap_caliper(c.static_frame_index, sc.learner_gap_static_mm, c.answer.rest_caliper)
    lk = s.final_answer.caliper or typed_gap_caliper(sc.contraction_frame_index, sc.learner_gap_contraction_mm, c.answer.contraction_caliper)
    st.caption("Calipers: **green** expert, **orange** yours.")
    diff = st.toggle("Difference view", value=False, key=f"teach_{s.index}_rdiff")
    W.side_by_side(c, cine, show_diff=diff, learner=(lr, lk), expert=(c.answer.rest_caliper, c.answer.contraction_caliper))
    st.markdown(f"**Teaching point.** {md(c.teaching_point)}")
    with st.expander("Score breakdown"):
        st.table([{"item": k, "points": f"{v:g}"} for k, v in sc.breakdown])
    W.handouts(c, cine, s)
    last = s.index + 1 >= len(s.cases)
    if st.button("Finish the session" if last else "Next case", type="primary", key=f"teach_{s.index}_next"):
        _set(s.next_case())


def _summary(s: T.Session) -> None:
    t = s.summary()
    st.subheader("Session summary" + (f" — {md(t.learner)}" if t.learner else ""))
    m = st.columns(5)
    m[0].metric("Score", f"{t.points:g} / {t.max_points:g}")
    m[1].metric("Percent", f"{t.percent:.0f} %")
    m[2].metric("Final calls right", f"{t.n_final_correct} / {t.n_cases}")
    m[3].metric("Caught on the loop", str(t.n_caught_on_loop), help="static call wrong, final call right")
    m[4].metric("Mean gap error", W.mm(t.mean_abs_gap_error_mm))
    st.table(md_rows([
        {"case": sc.title, "expert": T.CALL_LABELS[sc.expert_classification],
         "static call": T.CALL_LABELS[sc.static_call], "final call": T.CALL_LABELS[sc.final_call],
         "points": f"{sc.points:g} / {sc.max_points:g}"}
        for sc in s.scores
    ]))
    st.download_button(
        "Download session results (CSV)", s.results_csv().encode("utf-8"),
        file_name="teaching_session_results.csv", mime="text/csv", key="teach_csv",
    )
    if st.button("New session", key="teach_new"):
        _set(None)


def render(samples_dir: str | Path | None = None, library_dir: str | Path | None = None, *, use_player: bool = True) -> None:
    """Draw the teaching mode.

    Parameters
    ----------
    samples_dir
        Folder with the bundled samples (``NAME.truth.json`` beside each loop); default
        ``$MSUS_SAMPLES_DIR`` or the repository's ``samples/``.
    library_dir
        The teacher's case library (default ``<msus data folder>/teaching``).
    use_player
        Use the app's browser cine player (needs the frame route of ``app.py``); False shows still
        images and the prepared clip only.
    """
    st.session_state[W.USE_PLAYER] = bool(use_player)
    if st.toggle("Presentation layout (large font)", key=PRESENT):
        st.html(_PRESENTATION_CSS)
    st.title("Teaching mode")
    st.caption("Blind reveal: call the static frame, watch the loop, then see the expert finding.")
    try:
        _page(samples_dir, library_dir)
    except MsusError as exc:
        _error(exc)
    except Exception as exc:  # the edge: one line, never a traceback (the log keeps it)
        logger.exception("unexpected error in the teaching mode")
        st.error(f"Unexpected problem in the teaching mode ({type(exc).__name__}); start a new session.")
        if st.button("New session", key="teach_reset"):
            _set(None)


def _page(samples_dir, library_dir) -> None:
    s = _session()
    if s is None:
        problems: list[str] = []
        cases = T.all_cases(samples_dir or _default_samples_dir(), T.CaseLibrary(library_dir), problems)
        for text in problems:
            st.warning(f"Skipped a sample: {md(text)}")
        _picker(cases)
        _teacher_panel(T.CaseLibrary(library_dir))
        return
    if s.stage == T.DONE:
        _summary(s)
        return
    _header(s)
    try:
        cine = W.load(s.case.source)
    except MsusError as exc:
        _error(exc)
        if st.button("Abandon the session", key="teach_abandon"):
            _set(None)
        return
    {T.STATIC: _static_step, T.LOOP: _loop_step, T.REVEAL: _reveal_step}[s.stage](s, cine)
    if s.scores:
        st.caption(f"Running score: {sum(x.points for x in s.scores):g} / {sum(x.max_points for x in s.scores):g}")
