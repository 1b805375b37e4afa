"""Streamlit page for the teaching mode: case picker, blind reveal, viewing aids, hand-outs.

Call :func:`render` from the app (or a standalone script).  All logic lives in
:mod:`msus.teaching`; this page only shows a :class:`~msus.teaching.Session` and turns widget
values into its transitions.  State lives in ``st.session_state`` under keys starting with
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

import io
import logging
from pathlib import Path

import numpy as np
import streamlit as st

from msus import teaching as T
from msus.errors import MsusError
from msus.terms import length_label
from msus.ui.text import md, md_rows

logger = logging.getLogger(__name__)

KEY = "teach_session"
PRESENT = "teach_presentation"
USE_PLAYER = "teach_use_player"
REVIEWS = "teach_reviews"  # review key -> learner Review of the player
CURRENT = "teach_current_review"
TOKENS = "teach_tokens"  # review key -> frame-route token
LEARNER_COLOUR = (255, 140, 0)  # orange
EXPERT_COLOUR = (40, 220, 90)  # green
SPEEDS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0)
GIF_MAX_WIDTH = 480

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


# ---- data helpers (cached) ---------------------------------------------------------------------


def _load(path: str):
    """A case's loop, open among the app's open loops (bounded, the least recently used closed)."""
    import msus
    from msus.ui.sources import open_loops

    return open_loops().get(f"teaching:{path}", lambda: msus.load(path))


def _default_samples_dir() -> Path:
    from msus.config import load_settings

    return load_settings().samples_dir


def _rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    return np.array(frame)


def draw_caliper(frame: np.ndarray, cal: T.Caliper | None, colour, label: str = "", below: bool = False) -> np.ndarray:
    """A copy of ``frame`` (RGB) with a caliper line, end crosses and a label burned in."""
    import cv2

    out = _rgb(frame)
    if cal is None:
        return out
    th = max(1, round(out.shape[1] / 400))
    p1 = (int(round(cal.x1)), int(round(cal.y1)))
    p2 = (int(round(cal.x2)), int(round(cal.y2)))
    cv2.line(out, p1, p2, colour, th, cv2.LINE_AA)
    for p in (p1, p2):
        cv2.drawMarker(out, p, colour, cv2.MARKER_CROSS, 6 * th + 6, th, cv2.LINE_AA)
    if label:
        if below:
            org = (min(p1[0], p2[0]), min(out.shape[0] - 4, max(p1[1], p2[1]) + 10 * th + 14))
        else:
            org = (min(p1[0], p2[0]), max(12, min(p1[1], p2[1]) - 6 * th))
        cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * th + 0.1, colour, th, cv2.LINE_AA)
    return out


def difference_view(rest: np.ndarray, con: np.ndarray) -> np.ndarray:
    """|contraction − rest| (grey), stretched so moving stumps stand out (uint8 H×W)."""
    a = _rgb(rest).astype(np.int16).mean(axis=2)
    b = _rgb(con).astype(np.int16).mean(axis=2)
    d = np.abs(b - a)
    hi = float(np.percentile(d, 99.5)) or 1.0
    return np.clip(d * (255.0 / hi), 0, 255).astype(np.uint8)


@st.cache_resource(max_entries=16, show_spinner=False)
def _still(path: str, frame_index: int):
    """A one-frame loop holding only the static frame (the learner cannot scrub to others)."""
    from msus.cine import Cine

    cine = _load(path)
    i = int(frame_index)
    return Cine.from_frames(
        np.asarray(cine.frame(i))[None], calibration=cine.calibration_for(i), kind=cine.kind,
        source_name="static frame",
    )


def _learner_review_class():
    """A :class:`msus.ui.review.Review` whose calipers stay in the teaching session.

    The app's review notifies listeners (the findings store) of every caliper; a learner's
    answer must never reach the clinical store, so adding/moving/deleting here is local.
    """
    from msus.measure import make_measurement
    from msus.ui.review import Review, _point

    class LearnerReview(Review):
        def add_caliper(self, frame_index, p1, p2, label=None):
            i = self._check_frame(frame_index)
            cal = self.calibration_for(i)
            p1, p2 = _point(p1), _point(p2)
            self._refuse_across_regions(cal, p1, p2)
            m = make_measurement(cal, i, p1, p2, label=label or "learner", shape=self.shape)
            self.measurements.append(m)
            return m

        def move_caliper(self, measurement_id, p1, p2):
            k = self.find(measurement_id)
            old = self.measurements[k]
            m = old.moved(self.calibration_for(old.frame_index), _point(p1), _point(p2), shape=self.shape)
            self.measurements[k] = m
            return m

        def relabel(self, measurement_id, label):
            k = self.find(measurement_id)
            self.measurements[k] = self.measurements[k].relabel(label)
            return self.measurements[k]

        def delete(self, measurement_id):
            self.measurements.pop(self.find(measurement_id))

    return LearnerReview


def _apply_log(log) -> None:
    """Player callback: the learner's new events go to the review on screen."""
    rv = st.session_state.get(REVIEWS, {}).get(st.session_state.get(CURRENT))
    if rv is not None:
        rv.handle_log(log)


def _player(cine, review_key: str, *, shapes=(), setup=None, controls=None):
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
        rv = _learner_review_class().for_cine(cine, review_key)
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
def _loop_gif(path: str, a: int, b: int, speed: float, ping_pong: bool) -> bytes:
    """The A–B range as an animated GIF at ``speed`` × the native rate (browser-side playback)."""
    import cv2
    from PIL import Image

    cine = _load(path)
    a, b = max(0, a), min(cine.n_frames - 1, b)
    idx = list(range(a, b + 1))
    if ping_pong and len(idx) > 2:
        idx += idx[-2:0:-1]
    scale = min(1.0, GIF_MAX_WIDTH / cine.columns)
    imgs = []
    for i in idx:
        f = _rgb(cine.frame(i))
        if scale < 1.0:
            f = cv2.resize(f, (round(cine.columns * scale), round(cine.rows * scale)), interpolation=cv2.INTER_AREA)
        imgs.append(Image.fromarray(f).convert("L" if not cine.is_color else "RGB").convert("P"))
    t = cine.frame_times_ms
    durs = []
    for k, i in enumerate(idx):
        j = idx[k + 1] if k + 1 < len(idx) else idx[0]
        dt = abs(float(t[j] - t[i])) if j != i else 1000.0 / cine.fps
        durs.append(max(20, int(round((dt or 1000.0 / cine.fps) / speed))))
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=durs, loop=0)
    return buf.getvalue()


# ---- page pieces --------------------------------------------------------------------------------


def _session() -> T.Session | None:
    return st.session_state.get(KEY)


def _set(session: T.Session | None) -> None:
    st.session_state[KEY] = session
    st.rerun()


def _error(exc: Exception) -> None:
    st.error(md(exc) if isinstance(exc, MsusError) else f"{type(exc).__name__}: {md(exc)}")


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


def _call_widget(key: str, default: str | None = None) -> str:
    opts = list(T.CLASSIFICATIONS)
    idx = opts.index(default) if default in opts else 0
    return st.radio("Your call", opts, index=idx, format_func=T.CALL_LABELS.get, key=key, horizontal=True)


def _learner_caliper(rv, frame_map=None, skip_frame=None) -> T.Caliper | None:
    """The learner's last caliper on the player (frame index mapped back to the loop's).

    ``skip_frame``: ignore calipers on that frame (the static frame, in the LOOP step).
    """
    ms = [m for m in (rv.measurements if rv is not None else []) if m.frame_index != skip_frame]
    if not ms:
        return None
    c = T.Caliper.from_measurement(ms[-1])
    if frame_map is not None:
        from dataclasses import replace

        c = replace(c, frame_index=int(frame_map))
    return c


def _gap_widget(key: str, what: str, caliper: T.Caliper | None) -> tuple[float | None, T.Caliper | None]:
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
    rv = _player(_still(c.source, i), _rkey(s, T.STATIC))
    if rv is None:
        st.image(cine.frame(i), caption=f"Static frame {i + 1} of {cine.n_frames}", width="stretch")
    k = f"teach_{s.index}_static"
    call = _call_widget(k + "_call")
    gap, cal = _gap_widget(k + "_gap", "this frame", _learner_caliper(rv, frame_map=i))
    if st.button("Commit and play the loop", type="primary", key=k + "_commit"):
        try:
            _set(s.commit_static(call, gap, cal))
        except MsusError as exc:
            _error(exc)


def _prepared_clip(c: T.Case, cine, k: str) -> None:
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
        gif = _loop_gif(c.source, a - 1, b - 1, float(speed), bool(pp))
        st.image(gif, caption=f"A–B frames {a}–{b} at {speed:g}× {'ping-pong' if pp else 'loop'}", width="stretch")
    except MsusError as exc:
        _error(exc)


def _cal_label(who: str, c: T.Caliper | None) -> str:
    if c is None or c.length_mm is None:
        return who
    return f"{who} {c.length_mm:.1f} mm"


def _side_by_side(c: T.Case, cine, show_diff: bool, learner=None, expert=None, contraction=None) -> None:
    r = c.static_frame_index
    k = contraction if contraction is not None else (
        c.answer.contraction_frame if c.answer.contraction_frame is not None else c.ab_range[1])
    fr, fk = cine.frame(r), cine.frame(k)
    cols = st.columns(3 if show_diff else 2)
    lr, lk = learner or (None, None)
    er, ek = expert or (None, None)
    def both(f, e, l):
        out = draw_caliper(f, e, EXPERT_COLOUR, _cal_label("expert", e))
        return draw_caliper(out, l, LEARNER_COLOUR, _cal_label("you", l), below=True)

    rest_img, con_img = both(fr, er, lr), both(fk, ek, lk)
    cols[0].image(rest_img, caption=f"Static (rest) frame {r + 1}", width="stretch")
    cols[1].image(con_img, caption=f"Contraction frame {k + 1}", width="stretch")
    if show_diff:
        cols[2].image(difference_view(fr, fk), caption="Difference |contraction − rest|", width="stretch")


def _loop_step(s: T.Session, cine) -> None:
    c = s.case
    k = f"teach_{s.index}_loop"
    prior = s.static_answer
    st.info(f"Your static call: **{T.CALL_LABELS[prior.classification]}**"
            + (f", gap {prior.gap_mm:.1f} mm" if prior.gap_mm is not None else ", no gap measured")
            + ". Watch the loop; you may revise. Measure the gap where the ends are furthest apart.")

    def setup(rv):
        rv.rest_frame = c.static_frame_index
        rv.frame_index = c.static_frame_index

    def controls(rv):
        from msus.ui import panels

        panels.view_controls(rv)

    rv = _player(cine, _rkey(s, T.LOOP), setup=setup, controls=controls)
    if rv is not None:
        st.caption("Player: Space plays, ←/→ step, A / B set the range, speed down to 0.1×, ping-pong; "
                   "mark the contraction frame (C) to compare it with the static frame side by side.")
    with st.expander("Prepared clip for the room: A–B on the contraction, slow motion", expanded=rv is None):
        _prepared_clip(c, cine, k)
    if rv is None and st.toggle("Static frame and the widest frame side by side", value=False, key=k + "_sbs"):
        _side_by_side(c, cine, show_diff=st.toggle("Difference view", value=True, key=k + "_diff"))
    call = _call_widget(k + "_call", default=prior.classification)
    cal_now = _learner_caliper(rv, skip_frame=c.static_frame_index)
    if cal_now is not None and cal_now.frame_index != rv.frame_index and rv.frame_index is not None:
        st.caption(f"Your caliper is on frame {cal_now.frame_index + 1}.")
    gap, cal = _gap_widget(k + "_gap", "the contraction frame", cal_now)
    if st.button("Reveal the expert finding", type="primary", key=k + "_commit"):
        try:
            _set(s.commit_loop(call, gap, cal))
        except MsusError as exc:
            _error(exc)


def _mm(v) -> str:
    return length_label(v, None)


def _line_caliper(frame_index, length_mm, like: T.Caliper | None) -> T.Caliper | None:
    """A learner's typed gap drawn where the expert's caliper lies (offset below it), if known."""
    if length_mm is None or like is None or not like.length_mm or not like.length_px:
        return None
    px_per_mm = like.length_px / like.length_mm
    cx, cy = (like.x1 + like.x2) / 2, (like.y1 + like.y2) / 2 + 12
    ux, uy = (like.x2 - like.x1) / like.length_px, (like.y2 - like.y1) / like.length_px
    h = length_mm * px_per_mm / 2
    return T.Caliper(frame_index, cx - ux * h, cy - uy * h, cx + ux * h, cy + uy * h, length_mm)


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
    m[1].metric("Expert Δgap", "none" if intact else _mm(c.answer.retraction_mm))
    if sc.static_correct:  # nothing to catch: the static call was already right
        m[2].metric("Static call", "right", help="right on the static frame already; the loop confirmed it"
                    if sc.final_correct else "right on the static frame; changed after the loop")
    else:
        m[2].metric("Caught on the loop", "yes" if sc.caught_on_loop else "no",
                    help="static call wrong, final call right" if sc.caught_on_loop else "wrong before and after the loop")
    rows = [
        {"gap": "on the static frame", "you": _mm(sc.learner_gap_static_mm),
         "expert": "none" if intact else _mm(sc.expert_gap_static_mm), "difference": _mm(sc.gap_static_error_mm)},
    ]
    if sc.contraction_frame_index is not None and sc.expert_gap_contraction_mm is not None:
        rows.append({"gap": f"at contraction (frame {sc.contraction_frame_index + 1})", "you": _mm(sc.learner_gap_contraction_mm),
                     "expert": _mm(sc.expert_gap_contraction_mm), "difference": _mm(sc.gap_contraction_error_mm)})
    st.table(md_rows(rows))
    if c.answer.reasons:
        st.markdown("**Reasons for the flag**\n" + "\n".join(f"- {md(r)}" for r in c.answer.reasons))
    lr = s.static_answer.caliper or _line_caliper(c.static_frame_index, sc.learner_gap_static_mm, c.answer.rest_caliper)
    lk = s.final_answer.caliper or _line_caliper(sc.contraction_frame_index, sc.learner_gap_contraction_mm, c.answer.contraction_caliper)
    st.caption("Calipers: **green** expert, **orange** yours.")
    diff = st.toggle("Difference view", value=False, key=f"teach_{s.index}_rdiff")
    _side_by_side(c, cine, show_diff=diff, learner=(lr, lk), expert=(c.answer.rest_caliper, c.answer.contraction_caliper))
    st.markdown(f"**Teaching point.** {md(c.teaching_point)}")
    with st.expander("Score breakdown"):
        st.table([{"item": k, "points": f"{v:g}"} for k, v in sc.breakdown])
    _handouts(c, cine, s)
    last = s.index + 1 >= len(s.cases)
    if st.button("Finish the session" if last else "Next case", type="primary", key=f"teach_{s.index}_next"):
        _set(s.next_case())


def _handouts(c: T.Case, cine, s: T.Session) -> None:
    """De-identified bundle and annotated MP4/GIF of the case, via :mod:`msus.export`."""
    with st.expander("Hand-outs for this case"):
        st.caption("Built from the case's de-identified loop; nothing here carries patient data.")
        _export_buttons(c, cine, key=f"teach_{s.index}_ho")


def _video_bytes(c: T.Case, cine, fmt: str):
    def make() -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="msus-teach-") as d:
            return T.write_case_video(c, cine, Path(d) / f"case.{fmt}", fmt).read_bytes()

    return make


def _bundle_bytes(c: T.Case, cine, writer):
    def make() -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="msus-teach-") as d:
            out = Path(writer(c.source, T.case_export_data(c, cine), Path(d) / "bundle.zip"))
            return out.read_bytes()

    return make


def _export_buttons(c: T.Case, cine, key: str) -> None:
    import json

    try:
        from msus.export import video  # noqa: F401, PLC0415
    except ImportError:
        st.info("Video exports are not available in this installation.")
        video = None
    cols = st.columns(4)
    a, b = c.ab_range
    if video is not None:
        cols[0].download_button(
            f"Annotated GIF (frames {a + 1}–{b + 1})", _video_bytes(c, cine, "gif"), file_name=f"{c.id}.gif",
            mime="image/gif", key=key + "_gif", on_click="ignore",
        )
        cols[1].download_button(
            f"Annotated MP4 (frames {a + 1}–{b + 1})", _video_bytes(c, cine, "mp4"), file_name=f"{c.id}.mp4",
            mime="video/mp4", key=key + "_mp4", on_click="ignore",
        )
    from msus.export.bundle import write_bundle

    if getattr(cine, "kind", "") != "dicom":
        cols[2].caption("De-identified bundle: DICOM loops only.")
    else:
        cols[2].download_button(
            "De-identified bundle (zip)", _bundle_bytes(c, cine, write_bundle), file_name=f"{c.id}_bundle.zip",
            mime="application/zip", key=key + "_bundle", on_click="ignore",
        )
    cols[3].download_button(
        "Case sheet (JSON)", json.dumps(T.case_sheet(c), indent=2).encode("utf-8"), file_name=f"{c.id}.json",
        mime="application/json", key=key + "_sheet", on_click="ignore",
    )


def _summary(s: T.Session) -> None:
    t = s.summary()
    st.subheader("Session summary" + (f" — {md(t.learner)}" if t.learner else ""))
    m = st.columns(5)
    m[0].metric("Score", f"{t.points:g} / {t.max_points:g}")
    m[1].metric("Percent", f"{t.percent:.0f} %")
    m[2].metric("Final calls right", f"{t.n_final_correct} / {t.n_cases}")
    m[3].metric("Caught on the loop", str(t.n_caught_on_loop), help="static call wrong, final call right")
    m[4].metric("Mean gap error", _mm(t.mean_abs_gap_error_mm))
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
    st.session_state[USE_PLAYER] = bool(use_player)
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
        cine = _load(s.case.source)
    except MsusError as exc:
        _error(exc)
        if st.button("Abandon the session", key="teach_abandon"):
            _set(None)
        return
    {T.STATIC: _static_step, T.LOOP: _loop_step, T.REVEAL: _reveal_step}[s.stage](s, cine)
    if s.scores:
        st.caption(f"Running score: {sum(x.points for x in s.scores):g} / {sum(x.max_points for x in s.scores):g}")
