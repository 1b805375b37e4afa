"""The few named keys the app keeps in ``st.session_state``.

``msus_reviews``  dict loop key → :class:`~msus.ui.review.Review` (last few loops, so switching
                  back keeps the measurements)
``msus_current``  loop key of the loop on screen
``msus_tokens``   dict loop key → frame-route token of this browser session
``msus_source``   the last :class:`~msus.ui.sources.Source` opened (kept on screen while the user
                  picks another kind of source)
``msus_run_ms``   server time of the last script run (diagnostics, benchmark)
"""

from __future__ import annotations

import streamlit as st

from msus.ui import frames
from msus.ui.review import Review

MAX_REVIEWS = 8


def review_for(cine, loop_key: str) -> Review:
    """The Review of ``loop_key`` in this session (created on first open)."""
    reviews: dict = st.session_state.setdefault("msus_reviews", {})
    rv = reviews.get(loop_key)
    if rv is None or rv.n_frames != len(cine):
        rv = Review.for_cine(cine, loop_key)
        reviews[loop_key] = rv
        while len(reviews) > MAX_REVIEWS:
            reviews.pop(next(iter(reviews)))
    st.session_state["msus_current"] = loop_key
    return rv


def current_review() -> Review | None:
    key = st.session_state.get("msus_current")
    return st.session_state.get("msus_reviews", {}).get(key)


def frame_url(cine, loop_key: str, quality: int) -> tuple[str, str]:
    """(URL prefix for the player's frame requests, token) for this session and loop."""
    tokens: dict = st.session_state.setdefault("msus_tokens", {})
    token = frames.store().register(cine, quality=quality, token=tokens.get(loop_key), **frames.session_binding())
    tokens[loop_key] = token
    base = st.get_option("server.baseUrlPath") or ""
    return frames.frame_url_base(token, base), token


def on_player_log(log) -> None:
    """Component callback: apply the player's new events to the Review on screen."""
    rv = current_review()
    if rv is not None:
        token = st.session_state.get("msus_tokens", {}).get(st.session_state.get("msus_current"))
        rv.handle_log(log, loop_id=token)
