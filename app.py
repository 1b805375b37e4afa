"""msus review app (Streamlit). Wires the library together; holds no image processing.

``streamlit run app.py`` imports this file once as a module to find ``app`` (an ``st.App`` that
adds the frame route the browser player fetches JPEG frames from), then runs it as the page
script (``__name__ == "__main__"``) for every session rerun.
"""

import time

import streamlit as st

from msus.ui import frames

if __name__ != "__main__":  # imported by the server: the ASGI app with the frame route
    app = st.App(__file__, routes=frames.routes())


def page() -> None:
    from msus.config import load_settings
    from msus.errors import MsusError
    from msus.ui import optional, panels, player, session, sources
    from msus.ui.text import md

    t0 = time.perf_counter()
    st.set_page_config(page_title="msus · cine review", layout="wide")
    panels.page_style()
    try:
        settings = load_settings()
        if panels.mode_switch() == "Teaching":
            optional.call("teaching_page", "render", settings.samples_dir)
            return
        source = panels.open_panel(settings) or st.session_state.get("msus_source")  # keep the open loop
        reviewer = optional.call("store_panels", "reviewer_chooser")
        optional.call("pacs_panel", "outbox_status", st.sidebar)
        if source is None:
            st.info("Open a loop from the sidebar: a bundled sample, an upload, or a file in the data folder.")
            return
        cine = sources.open_source(source)
        st.session_state["msus_source"] = source
        review = session.review_for(cine, source.key)
        optional.call("store_panels", "connect", cine, review, reviewer)  # autosave, restore calipers
        url, token = session.frame_url(cine, source.key, settings.jpeg_quality)

        panels.study_header(cine, review, source.name)
        viewer = st.container()  # filled after the analysis panel, so its overlays show at once
        result = optional.call("analysis_panel", "render", cine, review)  # tear analysis
        with viewer:
            for level, text in review.take_messages():
                {"error": st.error, "info": st.info, "success": st.success}.get(level, st.warning)(md(text))
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
        optional.call("store_panels", "finding_panel", cine, review, reviewer, result)
        optional.call("store_panels", "agreement_panel", cine)
        with st.expander("Export"):
            optional.call("export_panel", "render", cine, source)
        with st.expander("Study list"):
            optional.call("store_panels", "study_list", None, settings)
    except MsusError as e:
        st.error(md(e))
    except Exception as e:  # last resort: one line, never a traceback (the log keeps it)
        import logging

        logging.getLogger("msus.app").exception("unexpected error on the page")
        st.error(f"Unexpected problem ({type(e).__name__}); the loop could not be shown. Try another file.")
    finally:
        st.session_state["msus_run_ms"] = (time.perf_counter() - t0) * 1000  # server time of this run


if __name__ == "__main__":
    page()
