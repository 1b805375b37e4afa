"""Tear-analysis panel of the review app: "Analyze", suggestions with accept / edit / reject.

``render(cine, review) -> AnalysisResult | None`` (called by ``app.py``):

* an **Analyze** button runs :func:`msus.analysis.analyze` with a progress bar (using the frames
  the reviewer marked, if any, and the manual calibration when the file has none);
* the **flag banner** shows the classification, its reasons and the words "flag for review, not
  a diagnosis";
* every suggestion — rest frame, contraction frame, gap at rest, gap at contraction, the flag —
  has **accept / edit / reject**: accepting a frame marks it on the timeline, accepting a gap
  adds it as an *automatic* caliper (dragging its ends in the player makes it
  *automatic-edited*), editing a frame re-runs the analysis with the reviewer's frame, rejecting
  hides the suggestion; result and decisions are kept per loop in
  :class:`msus.ui.session.AnalysisState` (``st.session_state["msus_analysis"]``);
* the **motion evidence** beside the finding: the displacement overlay on the contraction frame and
  the separation-across-depth profile (pictures from :func:`msus.analysis.figures.motion_figures`);
* plots of the gap over time and of the motion energy;
* overlay shapes for the player (stumps, gap calipers on every tracked frame, the defect outline
  and the fasciae on the rest and contraction frames) go to ``review.extra_shapes`` as plain
  data (see :func:`overlay_shapes`).

The panel holds no image processing: it calls :mod:`msus.analysis` and draws its result.
The returned result is what the findings store saves as a draft automatic finding; a rejected
flag returns None.
"""

from __future__ import annotations

import streamlit as st

from msus.errors import MsusError
from msus.analysis.classify import DISCLAIMER
from msus.record import caliper_gap_frames, edited_gap_calipers
from msus.terms import CLASSIFICATION_LABELS, length_label
from msus.ui import clicks
from msus.ui.text import html, md

COLORS = {"stump": "#ffd54f", "caliper": "#80deea", "outline": "#ef5350", "fascia": "#a5d6a7", "replaced": "#9e9e9e"}
SUGGESTIONS = ("rest_frame", "contraction_frame", "gap_rest", "gap_contraction", "flag")


def overlay_shapes(result, hidden=(), replaced=()) -> list[dict]:
    """Player shapes for an analysis result (full-frame px), omitting ``hidden`` suggestions.

    On the frames in ``replaced`` (where the reviewer's own gap caliper now gives the value) the
    analysis' calipers are drawn grey and dashed, labelled "automatic (replaced)", without a
    length, so only the reviewer's number is shown there.

    One caliper line per tracked depth and the stump points on every frame with a reliable
    track; the defect outline (closed polyline) and the fasciae (dashed) on the rest and
    contraction frames.  Format: ``{"kind", "points", "label", "color", "frame", "closed",
    "dash"}`` as documented in :mod:`msus.ui.player`.
    """
    hidden, replaced = set(hidden), set(replaced)
    shapes: list[dict] = []
    if result is None:
        return shapes
    keyed = {result.rest_frame: "rest", result.contraction_frame: "contraction"}
    for i, which in keyed.items():
        if f"{which}_frame" in hidden:
            continue
        ov = result.overlay(i)
        for a, b in ov["fasciae"]:
            shapes.append({"kind": "line", "points": [a, b], "label": "fascia", "color": COLORS["fascia"],
                           "frame": i, "closed": False, "dash": True})
        if ov["outline"] and f"gap_{which}" not in hidden:
            shapes.append({"kind": "polyline", "points": ov["outline"], "label": "defect", "color": COLORS["outline"],
                           "frame": i, "closed": True, "dash": False})
    if result.defect_found and result.tracked_what == "stumps":
        for i in range(result.n_frames):
            if (i == result.rest_frame and "gap_rest" in hidden) or (
                i == result.contraction_frame and "gap_contraction" in hidden
            ):
                continue
            ov = result.overlay(i)
            if ov["gap_label"] is None:
                continue  # unreliable track on this frame
            old = i in replaced
            label = "automatic (replaced)" if old else ov["gap_label"]
            for k, (a, b) in enumerate(ov["calipers"]):
                shapes.append({"kind": "line", "points": [a, b],
                               "label": label if k == len(ov["calipers"]) // 2 else "",
                               "color": COLORS["replaced"] if old else COLORS["caliper"], "frame": i,
                               "closed": False, "dash": old})
            for p in ov["stumps"]:
                shapes.append({"kind": "point", "points": [p], "label": "", "color": COLORS["stump"], "frame": i,
                               "closed": False, "dash": False})
    return shapes


def _run(cine, review, slot, rest=None, contraction=None, keyframes=None):
    """Analyse, showing progress in ``slot`` (the panel's fixed ``st.empty``: a bar drawn in the page
    flow would shift every element after it by one on the next run, and a keyed button moved by a
    run is briefly on the page twice, the old one stale and the new one live)."""
    from msus.analysis import analyze

    bar = slot.progress(0.0, text="Analyzing…")

    def progress(f, msg):
        bar.progress(float(f), text=f"Analyzing: {msg}")

    try:
        return analyze(cine, rest_frame=rest, contraction_frame=contraction, mm_per_px=review.manual_mm_per_px(),
                       keyframes=keyframes,
                       progress=progress)
    finally:
        bar.empty()




def render(cine, review):
    """Draw the panel; returns the current analysis result (None when none or the flag is rejected)."""
    st.markdown("##### Tear analysis")
    from msus.ui.session import analysis_state

    state = analysis_state(review.loop_key)
    c1, c2 = st.columns([1, 3])
    with c1:
        pressed = clicks.button("Analyze", key="msus_analyze_btn", scope=review.loop_key, type="primary",
                                help="Find rest and contraction frames, the defect, the stumps and the gap on every frame")
    with c2:
        st.caption("Uses the frames you marked, if any. Results are suggestions: accept, edit or reject each one.")
    slot = st.empty()  # every run draws it: the progress bar never moves the rows below
    if pressed:  # a click survives a player rerun that interrupts its run (msus.ui.clicks)
        with clicks.handled("msus_analyze_btn", review.loop_key):
            try:
                state.result = _run(cine, review, slot, review.rest_frame, review.contraction_frame)
                state.decisions, state.editing, state.error = {}, set(), None
            except MsusError as e:
                state.result, state.error = None, str(e)
    with st.container():  # a fixed slot: an error coming or going never moves the rows below
        if state.error:
            st.error(md(state.error))
    result = state.result
    if result is None:
        review.extra_shapes = []
        return None
    dec = state.decisions
    hidden = {k for k, v in dec.items() if v == "rejected"}
    review.extra_shapes = overlay_shapes(result, hidden, caliper_gap_frames(review.measurements))

    # --- the flag banner
    cls = result.classification
    text = CLASSIFICATION_LABELS[cls]
    body = f"**{text}** — {DISCLAIMER}.\n\n" + "\n".join(f"- {md(r)}" for r in result.reasons)
    if result.finding.peetrons:
        body += f"\n\n_{md(result.finding.peetrons)}_" + (f"; _{md(result.finding.bamic)}_" if result.finding.bamic else "")
    if "flag" in hidden:
        st.info(f"Flag rejected by the reviewer ({text}).")
    elif cls == "suspected_full_thickness":
        st.error(body)
    elif cls == "partial":
        st.warning(body)
    else:
        st.success(body)
    st.caption(f"Calibration: {md(result.calibration_badge)} · tracking forward–backward error "
               f"{'—' if result.fb_error_px is None else f'{result.fb_error_px:.2f} px'}")
    _motion_evidence(cine, result)

    # --- suggestions with accept / edit / reject
    rows = [
        ("rest_frame", f"Rest frame {result.rest_frame + 1}", result.rest_frame_source),
        ("contraction_frame", f"Contraction frame {result.contraction_frame + 1}", result.contraction_frame_source),
    ]
    if result.defect_found:
        rows += [
            ("gap_rest", f"Gap at rest {length_label(result.gap_rest_mm, result.gap_rest_px)}", "automatic"),
            ("gap_contraction",
             f"Gap at contraction {length_label(result.gap_contraction_mm, result.gap_contraction_px)}", "automatic"),
        ]
    rows.append(("flag", f"Flag: {cls.replace('_', ' ')}", "automatic"))
    for key, label, source in rows:
        a, b, c, d = st.columns([3, 1, 1, 1])
        status = dec.get(key)
        a.markdown(f"{html(label)}  \n<small>{html(source)}{' · ' + html(status) if status else ''}</small>", unsafe_allow_html=True)
        scope = review.loop_key
        if clicks.button("Accept", key=f"msus_acc_{key}", container=b, scope=scope, disabled=status == "accepted"):
            with clicks.handled(f"msus_acc_{key}", scope):
                if status != "accepted":  # a remembered click is applied once
                    try:
                        if key == "rest_frame":
                            review.mark("rest", result.rest_frame)
                        elif key == "contraction_frame":
                            review.mark("contraction", result.contraction_frame)
                        elif key == "gap_rest":
                            review.accept_gap(result, "rest")
                        elif key == "gap_contraction":
                            review.accept_gap(result, "contraction")
                        dec[key] = "accepted"
                    except MsusError as e:
                        review.messages.append(("error", str(e)))
            st.rerun()
        if clicks.button("Edit", key=f"msus_edit_{key}", container=c, scope=scope):
            with clicks.handled(f"msus_edit_{key}", scope):
                state.editing.add(key)
        if clicks.button("Reject", key=f"msus_rej_{key}", container=d, scope=scope, disabled=status == "rejected"):
            with clicks.handled(f"msus_rej_{key}", scope):
                dec[key] = "rejected"
            st.rerun()
        if key in state.editing:
            _edit(cine, review, state, result, key, slot)

    # --- user keyframes: re-track through the reviewer's own stump positions
    edited = edited_gap_calipers(review.measurements, result) if result.defect_found else {}
    if edited:
        frames_txt = ", ".join(str(f + 1) for f in sorted(edited))
        if st.button(f"Re-track through my calipers (frame {frames_txt})", key="msus_retrack"):
            from msus.analysis import keyframes_from_calipers

            try:
                state.result = _run(cine, review, slot, result.rest_frame, result.contraction_frame,
                                       keyframes_from_calipers(result, edited))
                state.decisions["keyframes"] = "user"
            except MsusError as e:
                st.error(md(e))
            st.rerun()

    # --- plots
    try:
        import pandas as pd

        t_s = [t / 1000.0 for t in result.frame_times_ms]
        if result.defect_found:
            unit = "mm" if any(v is not None for v in result.gap_curve_mm) else "px"
            curve = result.gap_curve_mm if unit == "mm" else result.gap_curve_px
            st.markdown(f"Gap over time ({unit})")
            st.line_chart(pd.DataFrame({"time (s)": t_s, f"gap ({unit})": curve}), x="time (s)", height=180)
        st.markdown("Motion (px per frame; deformation from rest in px)")
        st.line_chart(pd.DataFrame({"time (s)": t_s, "motion energy": list(result.motion.energy_px),
                                    "deformation": list(result.motion.deformation_px)}), x="time (s)", height=180)
    except ImportError:
        pass
    return None if "flag" in hidden else result


def _motion_evidence(cine, result) -> None:
    """Why the flag went up: the displacement along the muscle on the contraction frame and the
    separation of the two sides across the depth (pictures drawn by msus.analysis.figures)."""
    if result.motion_defect is None:
        st.caption("Motion evidence: not assessed (the fasciae bounding the muscle were not found).")
        return
    from msus.analysis.figures import motion_figures

    overlay, profile = motion_figures(cine.frame(result.contraction_frame), result)
    st.markdown("Motion evidence (rest → contraction)")
    left, right = st.columns([3, 2])
    left.image(overlay, width="stretch",
               caption=f"Displacement along the muscle, frame {result.contraction_frame + 1} "
                       "(blue: towards the left, red: towards the right; arrows exaggerated)")
    right.image(profile, width="stretch", caption="Separation of the two sides across the depth")
    thick = result.muscle_thickness_rest_mm, result.muscle_thickness_contraction_mm
    if all(v is not None for v in thick):
        st.caption(f"Muscle thickness (fascia mid-lines): {thick[0]:.1f} mm at rest, {thick[1]:.1f} mm at contraction")


def _edit(cine, review, state, result, key: str, slot) -> None:
    """Editing: frames get a number box and re-run the analysis; gaps are dragged in the player."""
    if key in ("rest_frame", "contraction_frame"):
        cur = getattr(result, key)
        v = st.number_input(f"{key.replace('_', ' ')} (1-based)", min_value=1, max_value=result.n_frames,
                            value=cur + 1, step=1, key=f"msus_num_{key}")
        if st.button("Re-analyze with this frame", key=f"msus_redo_{key}"):
            rest = int(v) - 1 if key == "rest_frame" else result.rest_frame
            con = int(v) - 1 if key == "contraction_frame" else result.contraction_frame
            try:
                state.result = _run(cine, review, slot, rest, con)
                state.decisions = {key: "edited"}
            except MsusError as e:
                st.error(md(e))
            state.editing.discard(key)
            st.rerun()
    elif key in ("gap_rest", "gap_contraction"):
        if state.decisions.get(key) != "accepted":
            try:
                review.accept_gap(result, "rest" if key == "gap_rest" else "contraction")
                state.decisions[key] = "accepted"
            except MsusError as e:
                st.error(md(e))
        st.caption("The caliper is placed: drag its ends in the player; it is then recorded as automatic-edited.")
        state.editing.discard(key)
    else:
        st.caption("The flag itself is not edited: accept or reject it; your calipers and marks are saved with it.")
        state.editing.discard(key)
