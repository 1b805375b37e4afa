"""The Review page: open a loop (sidebar), play and measure it, analyse, save the finding, export.

Reads top to bottom: settings → open panel → `msus.load` (cached) → study bar → view controls →
the cine player → measurements, Δgap, manual calibration → analysis → finding → agreement →
export.  Every ``MsusError`` becomes one ``st.error`` line; anything else is caught by a last-resort
handler that still prints one line (never a traceback).
"""

from __future__ import annotations

import logging
import time

import streamlit as st

logger = logging.getLogger(__name__)


def render() -> None:
    from msus.config import load_settings
    from msus.errors import MsusError
    from msus.ui import (analysis_panel, export_panel, guard, others, pacs_panel, panels, player, session,
                         sources, store_panels)
    from msus.ui.text import md

    t0 = time.perf_counter()
    try:
        settings = load_settings()
        source = panels.open_panel(settings) or st.session_state.get("msus_source")  # keep the open loop
        reviewer = guard.panel(store_panels.reviewer_chooser)
        guard.panel(pacs_panel.outbox_status, st.sidebar)
        if source is None:
            st.info("Open a loop from the sidebar: a bundled sample, an upload, or a file in the data folder.")
            return
        cine = sources.open_source(source)
        st.session_state["msus_source"] = source
        review = session.review_for(cine, source.key)
        guard.panel(store_panels.connect, cine, review, reviewer)  # autosave, restore calipers
        url, token = session.frame_url(cine, source.key, settings.jpeg_quality)

        with st.container():  # one slot: the patient fields opening never shifts the player below
            panels.study_header(cine, review, source.name)
        viewer = st.container()  # filled after the analysis panel, so its overlays show at once
        result = guard.panel(analysis_panel.render, cine, review)  # tear analysis
        with viewer:
            with st.container():  # messages have their own slot, so the player keeps its place
                for level, text in review.take_messages():
                    {"error": st.error, "info": st.info, "success": st.success}.get(level, st.warning)(md(text))
            with st.container():  # other readers' calipers and the saved outline (fixed slot)
                guard.panel(others.render, cine, review, reviewer, result)
            panels.view_controls(review)
            player.render(player.player_data(cine, review, url, loop_id=token), on_log=session.on_player_log)
            left, right = st.columns([5, 2], gap="large")
            with left:
                st.markdown("##### Measurements")
                panels.measurements_table(review)
            with right:
                panels.retraction_card(review)
                with st.expander("Manual calibration", expanded=not review.file_calibration.calibrated):
                    panels.calibration_panel(review)
        guard.panel(store_panels.finding_panel, cine, review, reviewer, result)
        guard.panel(store_panels.agreement_panel, cine)
        with st.expander("Export"):
            guard.panel(export_panel.render, cine, source, analysis=result)
    except MsusError as e:
        st.error(md(e))
    except Exception as e:  # the edge: one line, never a traceback (the log keeps it)
        logger.exception("unexpected error on the Review page")
        st.error(f"Unexpected problem ({type(e).__name__}); the loop could not be shown. Try another file.")
    finally:
        st.session_state["msus_run_ms"] = (time.perf_counter() - t0) * 1000  # server time of this run
