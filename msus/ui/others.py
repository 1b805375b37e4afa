"""What other readers saved on the loop on screen: their calipers (a toggle per reviewer, each
named) and the saved analysis' defect outline, drawn in the player on open and after a reload.

``render(cine, review, reviewer, live_analysis)`` adds player shapes to ``review.extra_shapes``
(dashed, labelled "<reviewer>: <length>"); the saved outline is drawn only when no analysis was
run in this session (``live_analysis`` None), so it never doubles the live one.  Widget keys:
``msus_show_<n>`` (one toggle per other reviewer).
"""

from __future__ import annotations

import streamlit as st

from msus.errors import MsusError

#: One colour per other reviewer, in order of their names (the reviewer's own calipers are yellow).
COLORS = ("#ce93d8", "#80cbc4", "#ffab91", "#90caf9", "#c5e1a5")
OUTLINE = "#ef5350"


def _shapes_for(ms, who: str, colour: str) -> list[dict]:
    return [{"kind": "line", "points": [[m.x1, m.y1], [m.x2, m.y2]], "label": f"{who}: {m.distance.label}",
             "color": colour, "frame": m.frame_index, "closed": False, "dash": True} for m in ms]


def _outline_shapes(finding) -> list[dict]:
    out = []
    for frame, pts in ((finding.extra or {}).get("outlines_px") or {}).items():
        if pts:
            out.append({"kind": "polyline", "points": [list(map(float, p)) for p in pts],
                        "label": f"defect (saved, {finding.reviewer})", "color": OUTLINE, "frame": int(frame),
                        "closed": True, "dash": False})
    return out


def render(cine, review, reviewer: str | None, live_analysis=None) -> None:
    """Toggles for the other reviewers' calipers; their shapes and the saved outline to the player."""
    from msus.record import other_readers
    from msus.ui.store_access import get_store
    from msus.ui.text import md

    try:
        store = get_store()
        ref = store.register_loop(cine)
        saved = store.measurements(ref)
        finding = store.latest_finding(ref) if live_analysis is None else None
    except MsusError:
        return  # the store panels say why, once
    by = other_readers([s.measurement for s in saved], reviewer, mine=(m.id for m in review.measurements))
    shapes = _outline_shapes(finding) if finding is not None else []
    if by:
        # one row, each toggle as wide as its label (the whole name, never cut to "Ana S…"), wrapping
        row = st.container(horizontal=True, vertical_alignment="center", gap="medium")
        row.caption("Other readers' calipers", width="content")
        for k, (who, ms) in enumerate(sorted(by.items())):
            colour = COLORS[k % len(COLORS)]
            if row.toggle(f"{md(who)} ({len(ms)})", value=True, key=f"msus_show_{k}", width="content",
                          help=f"Show the calipers {md(who)} saved on this loop (dashed)"):
                shapes += _shapes_for(ms, who, colour)
    review.extra_shapes = list(review.extra_shapes) + shapes
