"""Streamlit panels around the player: open, study header, view, measurements, calibration.

Each panel reads and changes a :class:`msus.ui.review.Review`; none does image processing.
"""

from __future__ import annotations

import streamlit as st

from msus.config import Settings
from msus.errors import MsusError
from msus.measure import LABEL_CONTRACTION, LABEL_REST, LABEL_THICKNESS, ROLE_OTHER
from msus.meta import patient_fields
from msus.ui import sources
from msus.ui.review import Review
from msus.ui.text import md

NO_LABEL = "—"  # shown for a caliper of role "other" (an empty cell would read "None")
LABEL_CHOICES = [NO_LABEL, LABEL_REST, LABEL_CONTRACTION, LABEL_THICKNESS]
UPLOAD_TYPES = None  # content is sniffed, not judged by extension


# ---- open ---------------------------------------------------------------------------------
def _pacs_available() -> bool:
    from msus.ui import pacs_panel

    return pacs_panel.available()  # a broken configuration shows up in the PACS panel itself


def open_panel(settings: Settings) -> sources.Source | None:
    """Sidebar: choose a sample, upload a file, type a server path, or search the PACS."""
    st.sidebar.markdown("### Open a loop")
    samples = sources.list_loops(settings.samples_dir)
    kinds = ["Sample", "Upload", "Server path"] + (["PACS"] if _pacs_available() else [])
    kind = st.sidebar.radio("Source", kinds, horizontal=True, key="msus_open_kind", label_visibility="collapsed")
    if kind == "PACS":
        from msus.ui import pacs_panel

        return pacs_panel.search_panel(st.sidebar)
    if kind == "Sample":
        if not samples:
            st.sidebar.info("No bundled samples found; upload a file or open a server path.")
            return None
        names = [str(p.relative_to(settings.samples_dir)) for p in samples]
        if st.session_state.get("msus_sample") in names:  # chosen before (or by the worklist): no default
            name = st.sidebar.selectbox("Sample loop", names, key="msus_sample")
        else:
            st.session_state.pop("msus_sample", None)
            name = st.sidebar.selectbox("Sample loop", names, index=sources.default_sample_index(names),
                                        key="msus_sample")
        return sources.path_source("sample", settings.samples_dir / name)
    if kind == "Upload":
        up = st.sidebar.file_uploader(
            f"DICOM, video or image file (up to {settings.upload_limit_mb} MB)",
            type=UPLOAD_TYPES,
            max_upload_size=settings.upload_limit_mb,
            key="msus_upload",
        )
        if up is None:
            return None
        return sources.upload_source(up, settings.upload_limit_mb)
    st.sidebar.caption(f"Data folder (MSUS_LOOPS_DIR): {md(settings.loops_dir)}")
    listed = [str(p.relative_to(settings.loops_dir)) for p in sources.list_loops(settings.loops_dir)]
    if listed:
        pick = st.sidebar.selectbox("Files in the data folder", [""] + listed, key="msus_path_pick")
    else:
        pick = ""
    typed = st.sidebar.text_input("Path (inside the data folder)", value=pick, key=f"msus_path_{pick}")
    if not typed.strip():
        return None
    return sources.path_source("path", sources.resolve_under(settings.loops_dir, typed))


# ---- header -------------------------------------------------------------------------------
def _scanner(meta: dict) -> str:
    parts = [str(meta.get(k, "")).strip() for k in ("Manufacturer", "ManufacturerModelName")]
    text = " ".join(p for p in parts if p)
    return text or "unknown scanner"


_STYLE = """
<style>
.block-container { padding-top: 3.2rem; padding-bottom: 1rem; }
.msus-study { display: flex; flex-wrap: wrap; gap: 6px 8px; align-items: center; font-size: 0.95rem; }
.msus-chip { padding: 2px 10px; border-radius: 4px; background: #151a20; border: 1px solid #252c34; color: #cfd8dc; }
.msus-name { font-weight: 700; color: #fff; background: none; border: none; padding-left: 0; font-size: 1.05rem; }
.msus-cal-ok { color: #a5d6a7; border-color: #2e7d32; background: #0f2413; font-weight: 600; }
.msus-cal-none { color: #ffcc80; border-color: #ef6c00; background: #2a1a07; font-weight: 600; }
</style>
"""


def page_style() -> None:
    """Tighter page margins and the study-bar chips (the dark theme is in .streamlit/config.toml)."""
    st.markdown(_STYLE, unsafe_allow_html=True)


def _chip(text: str, cls: str = "") -> str:
    from html import escape

    return f'<span class="msus-chip {cls}">{escape(text)}</span>'


def calibration_chip(cal) -> str:
    if cal.calibrated:
        return _chip(f"{cal.badge()} · source {cal.source}", "msus-cal-ok")
    return _chip("UNCALIBRATED · lengths in px", "msus-cal-none")


def study_header(cine, review: Review, name: str) -> None:
    """One bar of study facts and the calibration badge; patient fields behind a toggle."""
    meta = dict(getattr(cine, "meta", {}) or {})
    cal = review.calibration_for(review.frame_index)
    timing = "file timing" if getattr(cine, "timing_source", "file") != "default" else "no timing in file: assumed"
    chips = [
        _chip(name, "msus-name"),
        _chip(f"{_scanner(meta)} · {cine.kind}"),
        _chip(f"{len(cine)} frame{'' if len(cine) == 1 else 's'}"),
        _chip(f"{cine.fps:.1f} fps ({timing})"),
        _chip(f"{cine.columns}×{cine.rows} px"),
        calibration_chip(cal),
    ]
    c = st.columns([8, 2], vertical_alignment="center")
    c[0].markdown(f'<div class="msus-study">{"".join(chips)}</div>', unsafe_allow_html=True)
    show = c[1].toggle("Patient fields", value=False, key="msus_show_phi")
    for w in getattr(cine, "warnings", []) or []:
        st.caption(f"⚠ {md(w)}")
    if show:  # one compact line, formatted for reading (the player stays where it is)
        fields = patient_fields(meta)
        if fields:  # one row: a column per field
            st.table({md(label): [md(text)] for label, text in fields})
        else:
            st.caption("No patient fields in this file.")


# ---- view ---------------------------------------------------------------------------------
def view_controls(review: Review) -> None:
    """Single / side-by-side, difference or overlay, and jumping to the marked frames."""
    c = st.columns([2.3, 3.0, 1.3, 3.2], vertical_alignment="bottom")
    pair = c[0].segmented_control(
        "View", ["Single", "Rest | Contraction"], default="Rest | Contraction" if review.view == "pair" else "Single",
        key="msus_view_sel",
    )
    review.view = "pair" if pair == "Rest | Contraction" else "single"
    mode = c[1].segmented_control(
        "Compare", ["Side by side", "Difference", "Overlay"],
        default={"side": "Side by side", "difference": "Difference", "overlay": "Overlay"}[review.pair_mode],
        key="msus_pair_mode", disabled=review.view != "pair",
    )
    review.pair_mode = {"Difference": "difference", "Overlay": "overlay"}.get(mode, "side")
    r, k = review.rest_frame, review.contraction_frame
    c[2].markdown(f"Rest: **{'—' if r is None else r + 1}**  \nContraction: **{'—' if k is None else k + 1}**")
    with c[3]:
        g = st.columns(2)
        if g[0].button("Go to rest", disabled=r is None, key="msus_go_rest", width="stretch"):
            review.view = "single"
            review.seek(r)
        if g[1].button("Go to contraction", disabled=k is None, key="msus_go_con", width="stretch"):
            review.view = "single"
            review.seek(k)
    hint = st.empty()  # always there, so the player below keeps its place in the page
    if review.view == "pair" and (r is None or k is None):
        hint.caption("Mark the rest and contraction frames in the player (buttons or R / C keys) to choose the pair.")
    elif r is not None and r == k:  # a pair of one frame measures no retraction
        hint.warning(f"Rest and contraction are the same frame ({r + 1}): mark the other one on another frame.")


# ---- measurements -------------------------------------------------------------------------
def retraction_card(review: Review) -> None:
    """Δgap (retraction) in large type — the finding's value (:meth:`Review.record`) — or what is missing."""
    from msus.record import retraction

    r = retraction(*review.record())
    if r is None:
        st.metric("Retraction Δgap", "—", help="needs one caliper with the role 'gap at rest' and one 'gap at contraction'")
        st.caption("Give a caliper the role *gap at rest* and one *gap at contraction* to get Δgap.")
        return
    st.metric("Retraction Δgap", r.delta.replace(" (uncalibrated)", ""), help="gap at contraction − gap at rest")
    if not r.calibrated:
        st.caption("uncalibrated — px, not mm")
    fr = lambda i: "" if i is None else f" (frame {int(i) + 1})"  # noqa: E731
    st.caption(f"rest {md(r.rest)}{fr(r.rest_frame)} → contraction {md(r.contraction)}{fr(r.contraction_frame)} "
               f"— {md(r.whose)}")


def measurements_table(review: Review) -> None:
    """Frame, length, role and note (editable), calibration; tick 'delete' to remove.

    The role (gap at rest, gap at contraction, muscle thickness, — for other) is what the finding
    reads; the note is free text and never changes the role.  Locked while the finding is signed.
    """
    if not review.measurements:
        st.caption("No measurements yet: choose the Caliper tool and click two points on the image.")
        return
    if review.locked:
        st.info(f"🔒 {review.locked}")
    rows = []
    for m in review.measurements:
        d = m.distance
        rows.append({
            "frame": m.frame_index + 1,
            "length": d.label,
            "label": m.role if m.role != ROLE_OTHER else NO_LABEL,
            "note": m.note or ("" if m.label in ("", m.role) else m.label),
            "calibration": _cal_text(d),
            "delete": False,
        })
    key = f"msus_table_{len(review.measurements)}_{hash(tuple(m.id for m in review.measurements)) & 0xFFFF}"
    ids = [m.id for m in review.measurements]

    def _apply():
        edits = st.session_state.get(key, {}).get("edited_rows", {})
        for row, change in sorted(edits.items(), key=lambda kv: int(kv[0]), reverse=True):
            mid = ids[int(row)]
            try:
                if change.get("delete"):
                    review.delete(mid)
                    continue
                if "label" in change:
                    text = change["label"] or ""
                    review.set_role(mid, ROLE_OTHER if text in ("", NO_LABEL) else text)
                if "note" in change:
                    review.set_note(mid, change["note"] or "")
            except MsusError as e:
                review.messages.append(("error", str(e)))

    st.data_editor(
        rows,
        key=key,
        on_change=_apply,
        hide_index=True,
        width="stretch",
        disabled=["frame", "length", "calibration"] + (["label", "note", "delete"] if review.locked else []),
        column_config={
            "frame": st.column_config.NumberColumn("Frame", format="%d", width="small"),
            "length": st.column_config.TextColumn("Length"),
            "label": st.column_config.SelectboxColumn("Role", options=LABEL_CHOICES, width="medium",
                                                      help="What the length is; the finding reads its gaps by role"),
            "note": st.column_config.TextColumn("Note", help="Free text; never changes the role"),
            "calibration": st.column_config.TextColumn("Calibration"),
            "delete": st.column_config.CheckboxColumn("Delete", width="small"),
        },
    )
    with st.expander("Free-text note (keeps the role)"):
        c = st.columns([1, 3, 1])
        which = c[0].selectbox("Row", list(range(1, len(ids) + 1)), key="msus_free_row")
        text = c[1].text_input("Note", key="msus_free_text", placeholder="e.g. proximal stump to haematoma edge")
        if c[2].button("Apply", key="msus_free_apply", disabled=bool(review.locked)) and text.strip():
            try:
                review.set_note(ids[which - 1], text)
            except MsusError as e:
                review.messages.append(("error", str(e)))
            st.rerun()


def _cal_text(d) -> str:
    if d.distance_mm is None:
        why = d.warnings[-1] if d.warnings else ""  # the length itself says "px (uncalibrated)"
        return f"none ({why})" if why else "none"
    scale = (f"{d.mm_per_px_x:.4f} mm/px" if abs(d.mm_per_px_x - d.mm_per_px_y) < 5e-5
             else f"{d.mm_per_px_x:.4f}×{d.mm_per_px_y:.4f} mm/px")
    if d.region_index is not None:
        return f"{d.calibration_source} #{d.region_index + 1}, {scale}"
    return f"{d.calibration_source}, {scale}"


# ---- manual calibration -------------------------------------------------------------------
def calibration_panel(review: Review) -> None:
    """Two points clicked with the Calibrate tool + a typed distance → manual calibration."""
    file_cal = review.file_calibration
    st.caption(
        "File calibration: " + (f"{md(file_cal.badge())} ({md(file_cal.source)})" if file_cal.calibrated else "none")
    )
    pts = review.calib_points
    if pts:
        import math

        px = math.dist(pts[0], pts[1])
        st.write(f"Points: ({pts[0][0]:.1f}, {pts[0][1]:.1f}) → ({pts[1][0]:.1f}, {pts[1][1]:.1f}), **{px:.1f} px**")
    else:
        st.caption("Choose **⟷ Calibrate** in the player and click two points on the depth scale.")
    c = st.columns([3, 2], vertical_alignment="bottom")  # a narrow column: stacked, nothing cut off
    mm = c[0].number_input("Known distance (mm)", min_value=0.0, value=10.0, step=1.0, key="msus_cal_mm")
    override = st.checkbox(
        "Use instead of the file's calibration", value=review.manual_override, key="msus_cal_override",
        help="Off: the manual calibration is used only where the file has none.",
    )
    c2 = st.columns([3, 2], vertical_alignment="bottom")  # or a known scale, typed (a video without a depth scale)
    mmpp = c2[0].number_input("…or a known scale (mm/px)", min_value=0.0, value=0.0, step=0.01, format="%.4f",
                              key="msus_cal_mmpp")
    if c[1].button("Apply", key="msus_cal_apply", disabled=not pts, width="stretch"):
        review.set_manual_calibration(mm, override=override)
        st.rerun()
    elif c2[1].button("Apply scale", key="msus_cal_apply_mmpp", disabled=not mmpp, width="stretch"):
        try:
            review.set_manual_mm_per_px(mmpp, override=override)
        except MsusError as e:
            review.messages.append(("error", str(e)))
        st.rerun()
    elif review.manual_calibration is not None:
        review.set_override(override)
    if review.manual_calibration is not None:
        active = review.calibration_for(review.frame_index).source == "manual"
        st.info(f"Manual calibration {md(review.manual_calibration.detail)} — "
                + ("**in use** (source manual)" if active else "not used here: the file's calibration applies"))
        if st.button("Remove manual calibration", key="msus_cal_clear"):
            review.clear_manual_calibration()
            st.rerun()
