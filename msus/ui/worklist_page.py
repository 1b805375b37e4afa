"""The Worklist page: every stored loop, filtered by flag, status, reviewer and date; times in
the browser's time zone; *Open in Review* takes a listed loop to the Review page.

Filtering is :func:`msus.worklist.filter_rows`; the table and the Open action are
:func:`msus.ui.store_panels.study_list`.  Widget keys: ``msus_wl_flags``, ``msus_wl_status``,
``msus_wl_reviewers``, ``msus_wl_dates``; :attr:`msus.ui.session.AppState.goto_review` is set by the
Open callback.
"""

from __future__ import annotations

import logging
import streamlit as st

logger = logging.getLogger(__name__)


def browser_timezone() -> str | None:
    """The browser's IANA time zone (``st.context.timezone``); None outside a browser session."""
    try:
        return st.context.timezone or None
    except Exception:  # no browser context (AppTest, bare script)
        logger.debug("browser_timezone: no browser context (AppTest, bare script)", exc_info=True)
        return None


def _filters(rows, tz):
    from msus import worklist as W

    flags = sorted({W.flag_of(r) for r in rows})
    reviewers = sorted({n for r in rows for n in r.reviewers})
    c = st.columns([3, 2, 3, 2], vertical_alignment="bottom")
    chosen_flags = c[0].multiselect("Flag", flags, key="msus_wl_flags", placeholder="any flag")
    statuses = c[1].multiselect("Status", list(W.STATUSES), key="msus_wl_status", placeholder="any status")
    who = c[2].multiselect("Reviewer", reviewers, key="msus_wl_reviewers", placeholder="any reviewer")
    days = c[3].date_input("Last change", value=(), key="msus_wl_dates", format="YYYY-MM-DD",
                           help=f"Days in your time zone ({W.zone_name(tz)}); pick one day or a range.")
    days = tuple(days) if isinstance(days, (tuple, list)) else (days,)
    since = days[0] if days else None
    until = days[1] if len(days) > 1 else since
    return W.WorklistFilter(tuple(chosen_flags), tuple(statuses), tuple(who), since, until, tz)


def render() -> None:
    from msus import worklist as W
    from msus.config import load_settings
    from msus.errors import MsusError
    from msus.ui import guard, navigation, store_panels
    from msus.ui.session import app_state

    state = app_state()
    if state.goto_review:  # set by the Open callback
        state.goto_review = False
        navigation.go_review()
    settings = load_settings()
    guard.panel(store_panels.reviewer_chooser)
    st.markdown("### Worklist")
    tz = browser_timezone()
    try:
        rows = store_panels.get_store().study_list()
    except MsusError as e:
        from msus.ui.text import md

        st.error(f"Findings store: {md(e)}")
        return
    if not rows:
        st.caption("Nothing measured yet: open a loop on the Review page and measure it.")
        return
    f = _filters(rows, tz)
    shown = W.filter_rows(rows, f)
    st.caption(f"{len(shown)} of {len(rows)} loop(s) · times in {W.zone_name(tz)}")
    store_panels.study_list(settings=settings, rows=shown, tz=tz or "UTC")
