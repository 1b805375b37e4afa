"""The few named keys the app keeps in ``st.session_state`` (besides its widgets' keys).

``msus_reviews``   dict loop key → :class:`~msus.ui.review.Review` (last few loops, so switching
                   back keeps the measurements; each review carries its autosave link)
``msus_current``   loop key of the loop on screen
``msus_tokens``    dict loop key → frame-route token of this browser session
``msus_source``    the last :class:`~msus.ui.sources.Source` opened (kept on screen while the user
                   picks another kind of source)
``msus_run_ms``    server time of the last script run (diagnostics, benchmark)
``msus_app``       :class:`AppState`: the reviewer, the sign confirmation, the prepared export…
``msus_analysis``  dict loop key → :class:`AnalysisState` (the analysis panel's result and decisions)

Widget keys are ``msus_<widget>``; a remembered click is ``<key>|<scope>__pending``
(:mod:`msus.ui.clicks`); ``msus_frame_lease`` and ``msus_loop_holder`` are the session's lifetime
tokens (:mod:`msus.ui.frames`, :mod:`msus.ui.sources`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from msus.ui import frames
from msus.ui.review import Review

MAX_REVIEWS = 8


@dataclass
class AppState:
    """What the app remembers in one browser session besides the reviews (``msus_app``)."""

    reviewer: str = ""  # the reviewer name chosen in this session
    saved_analyses: set = field(default_factory=set)  # digests of analysis results already offered to the store
    confirm_final: str | None = None  # id of the finding whose "Mark final" awaits its confirmation
    study_note: str | None = None  # one line from the study list's Open action (shown once)
    goto_review: bool = False  # the study list's Open action asks the Worklist page to go to Review
    export_ready: tuple | None = None  # (format, file name, bytes, origin note or None) of the prepared export


@dataclass
class AnalysisState:
    """The analysis panel's state of one loop (``msus_analysis[loop key]``)."""

    result: object = None  # the msus.analysis.AnalysisResult shown, or None
    decisions: dict = field(default_factory=dict)  # suggestion → "accepted" / "rejected" / "edited"
    error: str | None = None
    editing: set = field(default_factory=set)  # suggestions whose Edit step is open


def app_state() -> AppState:
    """This session's :class:`AppState` (created on first use)."""
    return st.session_state.setdefault("msus_app", AppState())


def analysis_state(loop_key: str) -> AnalysisState:
    """The :class:`AnalysisState` of ``loop_key`` in this session (created on first use)."""
    return st.session_state.setdefault("msus_analysis", {}).setdefault(loop_key, AnalysisState())


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
