"""Widgets of the teaching page: the learner's player, the call and gap inputs, the clip, the hand-outs.

Everything shown is computed by :mod:`msus.teaching` (and drawn / written by :mod:`msus.export`);
these functions only place widgets and turn their values into library calls.  Session keys:
``teach_reviews`` (review key → the learner's :class:`~msus.ui.review.Review`),
``teach_current_review``, ``teach_tokens`` (review key → frame-route token), ``teach_use_player``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

from msus import teaching as T
from msus.errors import MsusError
from msus.measure import Measurement
from msus.teaching.reveal import SPEEDS, clip_gif, pair_view
from msus.terms import length_label
from msus.ui.review import Review
from msus.ui.text import md

USE_PLAYER = "teach_use_player"
REVIEWS = "teach_reviews"  # review key -> learner Review of the player
CURRENT = "teach_current_review"
TOKENS = "teach_tokens"  # review key -> frame-route token


def show_error(exc: Exception) -> None:
    """One line for the learner (an :class:`~msus.errors.MsusError`'s message, else its type)."""
    st.error(md(exc) if isinstance(exc, MsusError) else f"{type(exc).__name__}: {md(exc)}")


def load(path: str):
    """A case's loop, open among the app's open loops (bounded, the least recently used closed)."""
    import msus
    from msus.ui.sources import open_loops

    return open_loops().get(f"teaching:{path}", lambda: msus.load(path))


@st.cache_resource(max_entries=16, show_spinner=False)
def still(path: str, frame_index: int):
    """A one-frame loop holding only the static frame (the learner cannot scrub to others)."""
    from msus.cine import Cine

    cine = load(path)
    i = int(frame_index)
    return Cine.from_frames(
        np.asarray(cine.frame(i))[None], calibration=cine.calibration_for(i), kind=cine.kind,
        source_name="static frame",
    )


def _apply_log(log) -> None:
    """Player callback: the learner's new events go to the review on screen."""
    rv = st.session_state.get(REVIEWS, {}).get(st.session_state.get(CURRENT))
    if rv is not None:
        rv.handle_log(log)


def player(cine, review_key: str, *, shapes=(), setup=None, controls=None):
    """Mount the app's cine player on ``cine``; returns its (learner) review, or None.

    None when the player is not installed or the page runs without it (``use_player=False``).
    """
    if not st.session_state.get(USE_PLAYER, True):
        return None
    try:
        from msus.ui import frames, player
    except ImportError:
        return None
    reviews: dict = st.session_state.setdefault(REVIEWS, {})
    rv = reviews.get(review_key)
    if rv is None:
        rv = Review.for_cine(cine, review_key, caliper_label="learner")  # no listeners: never the store
        if setup is not None:
            setup(rv)
        reviews[review_key] = rv
        while len(reviews) > 6:
            reviews.pop(next(iter(reviews)))
    st.session_state[CURRENT] = review_key
    if controls is not None:  # widgets that change what the player shows go first
        controls(rv)
    tokens: dict = st.session_state.setdefault(TOKENS, {})
    token = frames.store().register(cine, quality=90, token=tokens.get(review_key), **frames.session_binding())
    tokens[review_key] = token
    url = frames.frame_url_base(token, st.get_option("server.baseUrlPath") or "")
    data = player.player_data(cine, rv, url, loop_id=token, shapes=list(shapes))
    data["max_height_frac"] = 0.5  # leave room for the learner's answer below the image
    player.render(data, on_log=_apply_log)
    for _level, text in rv.take_messages():
        st.warning(md(text))
    return rv


@st.cache_data(max_entries=16, show_spinner=False)
def loop_gif(path: str, a: int, b: int, speed: float, ping_pong: bool) -> bytes:
    """The A–B range as an animated GIF at ``speed`` × the native rate (browser-side playback)."""
    return clip_gif(load(path), a, b, speed, ping_pong)



def call_widget(key: str, default: str | None = None) -> str:
    opts = list(T.CLASSIFICATIONS)
    idx = opts.index(default) if default in opts else 0
    return st.radio("Your call", opts, index=idx, format_func=T.CALL_LABELS.get, key=key, horizontal=True)


def learner_caliper(rv, frame_map=None, skip_frame=None) -> Measurement | None:
    """The learner's last caliper on the player (frame index mapped back to the loop's).

    ``skip_frame``: ignore calipers on that frame (the static frame, in the LOOP step).
    """
    ms = [m for m in (rv.measurements if rv is not None else []) if m.frame_index != skip_frame]
    if not ms:
        return None
    c = ms[-1]
    if frame_map is not None:
        c = replace(c, frame_index=int(frame_map))
    return c


def gap_widget(key: str, what: str, caliper: Measurement | None) -> tuple[float | None, Measurement | None]:
    """(gap in mm, caliper): the player's caliper when placed, else a typed estimate."""
    if caliper is not None:
        if caliper.length_mm is None:
            st.warning("Your caliper is uncalibrated (px only); type the gap in mm instead.")
        else:
            st.markdown(f"Your caliper on {what}: **{caliper.length_mm:.1f} mm** (drag its ends to adjust).")
            return caliper.length_mm, caliper
    see = st.checkbox(f"I see a gap — estimate it on {what}", key=key + "_on",
                      help="Or place a caliper with two clicks on the image.")
    if not see:
        return None, None
    g = st.number_input("Gap (mm)", min_value=0.0, max_value=200.0, value=0.0, step=0.1, format="%.1f", key=key)
    return g, None


def prepared_clip(c: T.Case, cine, k: str) -> None:
    """The room's clip: A–B on the contraction, slow motion, ping-pong (an animated image)."""
    a0, b0 = c.ab_range
    cols = st.columns([2, 1, 1])
    with cols[0]:
        a, b = st.slider("A–B range (frames)", 1, cine.n_frames, (a0 + 1, b0 + 1), key=k + "_ab")
    with cols[1]:
        speed = st.select_slider("Speed", options=SPEEDS, value=0.25, format_func=lambda v: f"{v:g}×", key=k + "_speed")
    with cols[2]:
        pp = st.toggle("Ping-pong", value=True, key=k + "_pp")
    try:
        gif = loop_gif(c.source, a - 1, b - 1, float(speed), bool(pp))
        st.image(gif, caption=f"A–B frames {a}–{b} at {speed:g}× {'ping-pong' if pp else 'loop'}", width="stretch")
    except MsusError as exc:
        show_error(exc)


def side_by_side(c: T.Case, cine, show_diff: bool, learner=None, expert=None, contraction=None) -> None:
    view = pair_view(c, cine, learner=learner or (None, None), expert=expert or (None, None), contraction=contraction)
    cols = st.columns(3 if show_diff else 2)
    cols[0].image(view.rest, caption=f"Static (rest) frame {view.rest_frame + 1}", width="stretch")
    cols[1].image(view.contraction, caption=f"Contraction frame {view.contraction_frame + 1}", width="stretch")
    if show_diff:
        cols[2].image(view.difference, caption="Difference |contraction − rest|", width="stretch")


def mm(v) -> str:
    return length_label(v, None)


def handouts(c: T.Case, cine, s: T.Session) -> None:
    """De-identified bundle and annotated MP4/GIF of the case, via :mod:`msus.export`."""
    with st.expander("Hand-outs for this case"):
        st.caption("Built from the case's de-identified loop; nothing here carries patient data.")
        _export_buttons(c, cine, key=f"teach_{s.index}_ho")


def _export_buttons(c: T.Case, cine, key: str) -> None:
    cols = st.columns(4)
    a, b = c.ab_range
    cols[0].download_button(
        f"Annotated GIF (frames {a + 1}–{b + 1})", lambda: T.case_video_bytes(c, cine, "gif"), file_name=f"{c.id}.gif",
        mime="image/gif", key=key + "_gif", on_click="ignore",
    )
    cols[1].download_button(
        f"Annotated MP4 (frames {a + 1}–{b + 1})", lambda: T.case_video_bytes(c, cine, "mp4"), file_name=f"{c.id}.mp4",
        mime="video/mp4", key=key + "_mp4", on_click="ignore",
    )
    if getattr(cine, "kind", "") != "dicom":
        cols[2].caption("De-identified bundle: DICOM loops only.")
    else:
        cols[2].download_button(
            "De-identified bundle (zip)", lambda: T.case_bundle_bytes(c, cine), file_name=f"{c.id}_bundle.zip",
            mime="application/zip", key=key + "_bundle", on_click="ignore",
        )
    cols[3].download_button(
        "Case sheet (JSON)", T.case_sheet_bytes(c), file_name=f"{c.id}.json",
        mime="application/json", key=key + "_sheet", on_click="ignore",
    )
