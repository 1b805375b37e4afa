"""The cine player: a no-build ``st.components.v2`` component (``player_js/*.js``, ``player.css``).

The browser side is a few plain-JavaScript parts under ``player_js/`` (one concern each: DOM,
frames and decode window, clock, input, drawing, HUD; see ``player_js/main.js``), joined in the
order :data:`JS_PARTS` into the one inline module Streamlit loads — no build tooling.  The test API
(``window.__msusPlayer``, ``player_js/testapi.js``) is joined in only when the environment sets
``MSUS_PLAYER_TEST_API=1`` (the browser tests and benchmarks do); the shipped player has no global.

Python sends a small JSON description (frame URLs, timing, calipers, marks, overlay shapes) and
hears back events through the component state ``log`` (see :meth:`msus.ui.review.Review.handle_log`).
Frames themselves travel over the frame route (:mod:`msus.ui.frames`), never in the data.

Extra overlay shapes (for the analysis panel) are dicts::

    {"kind": "line" | "polyline" | "point", "points": [[x, y], ...], "label": "stump",
     "color": "#80deea", "frame": 12, "closed": False, "dash": False}

in full-frame pixel coordinates; ``frame`` None shows the shape on every frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from msus.calibration import Calibration
from msus.ui.review import Review

KEY = "msus_player"
_HERE = Path(__file__).parent
_JS_DIR = _HERE / "player_js"
#: The player's parts, in the order they are joined (each uses only what comes before it, and
#: main.js, last, puts the Player class together and exports the component entry).
JS_PARTS = ("dom.js", "frames.js", "clock.js", "input.js", "draw.js", "hud.js", "main.js")
TEST_API_PART = "testapi.js"
#: Set to 1 to join the test API (``window.__msusPlayer``) into the player (tests, benchmarks).
TEST_API_ENV = "MSUS_PLAYER_TEST_API"
_COMPONENT = None


def player_js(test_api: bool | None = None) -> str:
    """The player's JavaScript: the parts of ``player_js/`` joined in :data:`JS_PARTS` order.

    ``test_api`` None reads :data:`TEST_API_ENV`; True joins ``testapi.js`` before ``main.js``.
    """
    if test_api is None:
        test_api = os.environ.get(TEST_API_ENV, "") == "1"
    parts = list(JS_PARTS)
    if test_api:
        parts.insert(parts.index("main.js"), TEST_API_PART)
    return "\n".join(f"// ---- player_js/{name}\n" + (_JS_DIR / name).read_text(encoding="utf-8") for name in parts)


def _component():
    global _COMPONENT
    if _COMPONENT is None:
        _COMPONENT = st.components.v2.component(
            "msus_player",
            css=(_HERE / "player.css").read_text(encoding="utf-8"),
            js=player_js(),
        )
    return _COMPONENT


def calibration_json(cal: Calibration) -> dict:
    """The one scale the player may preview lengths with while a caliper is drawn, or ``{}``.

    Only a calibration that holds over the whole image (manual, pixel spacing) is given; with
    ultrasound regions the region under each end decides (``Calibration.measure``, here in
    Python), so the player previews px and shows Python's length once the caliper is placed.
    """
    if cal.source == "us_region":
        return {}
    return {"mx": cal.mm_per_px_x, "my": cal.mm_per_px_y}


def badge_text(cal: Calibration) -> str:
    if not cal.calibrated:
        return "UNCALIBRATED · lengths in px"
    return f"{cal.badge()} · source {cal.source}"


def player_data(cine, review: Review, url: str, loop_id: str, shapes: list | None = None) -> dict:
    """The JSON the player component receives (small: no pixels)."""
    cal = review.calibration_for(review.frame_index)
    calipers = []
    for m in review.measurements:
        calipers.append({
            "id": m.id,
            "frame": m.frame_index,
            "p1": [m.x1, m.y1],
            "p2": [m.x2, m.y2],
            "text": m.distance.label,
            "label": m.label,
            "role": m.role,
            "note": m.note,
            "ok": m.distance.calibrated,
        })
    pair = None
    if review.view == "pair":
        r = review.rest_frame if review.rest_frame is not None else 0
        c = review.contraction_frame if review.contraction_frame is not None else len(cine) - 1
        pair = [r, c]
    cp = review.calib_points
    return {
        "loop_id": loop_id,
        "url": url,
        "n": len(cine),
        "width": cine.columns,
        "height": cine.rows,
        "times_ms": [round(float(t), 3) for t in cine.frame_times_ms],
        "fps": cine.fps,
        "start_frame": review.frame_index,
        "badge": badge_text(cal),
        "calibrated": cal.calibrated,
        "cal": calibration_json(cal),
        "calipers": calipers,
        "marks": {"rest": review.rest_frame, "contraction": review.contraction_frame},
        "view": review.view,
        "pair": pair,
        "pair_mode": review.pair_mode,
        "calib_points": {"p1": list(cp[0]), "p2": list(cp[1])} if cp else None,
        "shapes": list(review.extra_shapes) + list(shapes or []),
        "command": review.command,
        "ack": {"sid": review.event_sid, "seq": review.event_seq},
    }


def render(data: dict, on_log) -> None:
    """Mount (or update) the player; ``on_log(log)`` runs before the script when events arrive."""

    def _changed():
        value = st.session_state.get(KEY)
        log = value.get("log") if hasattr(value, "get") else None
        on_log(log)

    _component()(key=KEY, data=data, on_log_change=_changed, height="content")
