"""Read-only views of the findings store: rater agreement on the loop on screen, and the study
list (the Worklist's table, with *Open in Review*).

Called as ``store_panels.agreement_panel(cine)`` and ``store_panels.study_list(...)`` (the names
:mod:`msus.ui.store_panels` keeps).  Widget keys ``msus_study_pick``, ``msus_study_open``.
"""

from __future__ import annotations

import streamlit as st

from msus.errors import MsusError
from msus.ui.session import app_state
from msus.ui.store_access import store_or_none
from msus.ui.text import md


# ---- agreement and study list -------------------------------------------------------------------------
def agreement_panel(cine) -> None:
    """Bland–Altman plot and table for the reviewers who measured this loop."""
    from msus.agreement import rater_agreement

    store = store_or_none()
    if store is None:
        return
    try:
        ref = store.register_loop(cine)
        ms = store.measurements(ref)
    except MsusError as e:
        st.error(f"Findings store: {md(e)}")
        return
    ag = rater_agreement(ms)
    st.markdown("##### Rater agreement")
    if len(ag.raters) < 2 or not ag.items:
        st.caption("Agreement appears when two or more reviewers have measured the same labelled gaps on this loop.")
        return
    def mm(v) -> str:  # lengths as the app shows them: 2 decimals, "—" where undefined
        return "—" if v is None else f"{v:.2f}"

    # st.dataframe shows cells as plain text (no Markdown), so names go in as they are
    st.dataframe([{"item": r.pop("item"), **{k: mm(v) for k, v in r.items()}} for r in ag.table()],
                 hide_index=True, width="stretch")
    rows = [
        {"pair": f"{b.rater_b} − {b.rater_a}", "n": b.n, "bias (mm)": mm(b.bias_mm),
         "LoA low (mm)": mm(b.loa_low_mm), "LoA high (mm)": mm(b.loa_high_mm)}
        for b in ag.bland_altman
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    icc = "—" if ag.icc_2_1 is None else f"{ag.icc_2_1:.3f}"
    st.caption(f"ICC(2,1), absolute agreement: {icc} over {ag.n_complete_items} item(s) measured by everyone.")
    for n in ag.notes:
        st.caption(md(n))
    pts = [{"mean (mm)": d.mean_mm, "difference (mm)": d.difference_mm, "pair": f"{d.rater_b} − {d.rater_a}",
            "item": d.item} for d in ag.differences]
    try:
        import altair as alt
        import pandas as pd

        df = pd.DataFrame(pts)
        pad = alt.Scale(zero=False, nice=True, padding=24)  # a single point sits inside the plot, not on its edge
        chart = alt.Chart(df).mark_circle(size=70).encode(
            x=alt.X("mean (mm):Q", scale=pad), y=alt.Y("difference (mm):Q", scale=pad), color="pair:N",
            tooltip=["item", "pair", "mean (mm)", "difference (mm)"]
        )
        lines = []
        for b in ag.bland_altman:
            for v, dash in ((b.bias_mm, []), (b.loa_low_mm, [4, 4]), (b.loa_high_mm, [4, 4])):
                if v is not None:
                    lines.append({"y": v, "pair": f"{b.rater_b} − {b.rater_a}", "dash": "bias" if not dash else "LoA"})
        if lines:
            rules = alt.Chart(pd.DataFrame(lines)).mark_rule(strokeDash=[4, 4]).encode(y="y:Q", color="pair:N")
            chart = chart + rules
        st.altair_chart(chart.properties(height=260, title="Bland–Altman: difference vs mean"), width="stretch")
    except ImportError:
        st.scatter_chart(pts, x="mean (mm)", y="difference (mm)")


def study_list(container=None, settings=None, rows=None, tz: str | None = None) -> None:
    """Table of every loop in the store: measurements, reviewers, finding status, last change.

    With ``settings`` (:class:`msus.config.Settings`), an "Open" action opens a listed loop whose
    file is found by name in the samples or the data folder (the sidebar switches to it, and the
    Worklist page goes to Review); otherwise it says in one line where the loop could not be found.
    ``rows`` (default: the whole store) are the rows to show, e.g. the worklist's filtered ones;
    times are shown in the time zone ``tz`` (the browser's; UTC when None).
    """
    from msus.worklist import local_time, zone_name

    box = container or st
    store = store_or_none()
    if store is None:
        return
    if rows is None:
        try:
            rows = store.study_list()
        except MsusError as e:
            box.error(f"Findings store: {md(e)}")
            return
    if not rows:
        box.caption("Nothing measured yet." if tz is None else "No loop matches these filters.")
        return
    names = [r.source_name or r.loop_key[:20] for r in rows]
    box.dataframe(
        [
            {
                "loop": name,
                "frames": r.n_frames,
                "calipers": r.n_measurements,
                "status": r.status + (f" (signed by {r.signed_by})" if r.signed_by else ""),
                "flag": (r.classification or "").replace("_", " "),
                "Δgap (mm)": None if r.retraction_mm is None else round(r.retraction_mm, 2),
                "finding": r.origin,
                "reviewers": ", ".join(r.reviewers),
                f"last change ({zone_name(tz)})": local_time(r.last_change_at, tz),
            }
            for r, name in zip(rows, names)
        ],
        hide_index=True,
        width="stretch",
    )
    if settings is None:
        return
    c1, c2 = box.columns([4, 1], vertical_alignment="bottom")
    k = c1.selectbox("Loop", list(range(len(rows))), format_func=lambda i: f"{i + 1}. {names[i]}",
                     key="msus_study_pick")
    # the click is handled in its callback, before the page script: a player rerun cannot lose it
    c2.button("Open in Review", key="msus_study_open", on_click=_open_listed, args=(rows[k].source_name, settings),
              help="Open this loop (found by its file name in the samples or the data folder)")
    state = app_state()
    note, state.study_note = state.study_note, None
    if note:
        box.info(md(note))


def find_listed_source(source_name: str, settings) -> tuple[str, str] | None:
    """Where a study-list loop's file is: ("Sample", path under the samples folder) or
    ("Server path", path under the data folder), matched by file name; None if in neither.

    A name that is itself a relative path (``sub/loop.dcm``) is matched exactly first.
    """
    from msus.io.listing import find_by_name

    return find_by_name(source_name, (("Sample", settings.samples_dir), ("Server path", settings.loops_dir)))


def _open_listed(source_name: str, settings) -> None:
    """Button callback: point the sidebar's open widgets at the listed loop (opened this run)."""
    found = find_listed_source(source_name, settings)
    if found is None:
        shown = source_name or "this loop"
        app_state().study_note = (
            f"{shown} is not in the samples or the data folder; open it from the sidebar (upload or PACS).")
        return
    kind, rel = found
    app_state().goto_review = True  # the Worklist page switches to Review
    st.session_state["msus_open_kind"] = kind
    if kind == "Sample":
        st.session_state["msus_sample"] = rel
    else:
        st.session_state["msus_path_pick"] = rel
