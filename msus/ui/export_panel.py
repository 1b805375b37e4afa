"""Streamlit Export panel: every export format as a download.

The app calls ``export_panel.render(cine, source)`` (``source``: the app's
:class:`msus.ui.sources.Source`, or a path).  It exports what the store holds for the loop, or —
when nothing is stored — the automatic analysis, marked as automatic.  SR and the de-identified
bundle need a DICOM source; an upload is written to a temporary file for them (deleted after).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from msus.errors import MsusError
from msus.ui import clicks
from msus.ui.text import md

LABELS = {
    "json": "JSON (measurements + finding)",
    "csv": "CSV (one row per caliper / finding)",
    "sr": "DICOM SR (TID 1500 measurement report)",
    "mp4": "Annotated video (MP4, H.264)",
    "gif": "Annotated GIF",
    "pdf": "One-page PDF report",
    "bundle": "De-identified teaching bundle (.zip)",
    "dicom-video": "The loop as DICOM video (H.264, for the PACS)",
}
MIME = {"json": "application/json", "csv": "text/csv", "sr": "application/dicom", "mp4": "video/mp4",
        "gif": "image/gif", "pdf": "application/pdf", "bundle": "application/zip",
        "dicom-video": "application/dicom"}


def _source_file(source, tmp: Path) -> Path | None:
    path = getattr(source, "path", None) if not isinstance(source, (str, Path)) else Path(source)
    if path:
        return Path(path)
    upload = getattr(source, "upload", None)
    if upload is not None:
        p = tmp / "source.bin"
        p.write_bytes(upload.getvalue())
        return p
    return None


def build(fmt: str, cine, source, *, start=None, stop=None) -> tuple[bytes, str, bool]:
    """(file bytes, suggested file name, automatic?) for one format."""
    from msus.commands.export import SUFFIX, write
    from msus.export import gather
    from msus.ui.store_panels import get_store

    if fmt == "dicom-video":  # the loop itself: no findings in it, no analysis needed
        data = None
    else:
        try:
            store = get_store()
        except MsusError:
            store = None
        data = gather(cine, store)
    stem = Path(getattr(source, "name", "") or "loop").stem or "loop"
    # a de-identified bundle never carries the source's name (names often hold the patient's)
    name = "deid-bundle.zip" if fmt == "bundle" else f"{stem}-{fmt}{SUFFIX[fmt]}"
    with tempfile.TemporaryDirectory(prefix="msus-export-") as d:
        tmp = Path(d)
        src = _source_file(source, tmp)
        out = write(fmt, cine, data, src or tmp / "none", tmp / name, start=start, stop=stop)
        return Path(out).read_bytes(), name, data is not None and data.automatic


def render(cine, source, container=None) -> None:
    """The Export panel: pick a format (and an A–B range for video), prepare, download.

    Draws into ``container`` (default: the page); the app places it inside its own expander.
    """
    box = container or st
    # every format in sight, one click: a radio (unlike a drop-down list) has no open state that a
    # rerun of the page (the player's, a signing's) can close under the user's pointer
    fmt = box.radio("Format", list(LABELS), format_func=LABELS.get, key="msus_export_format", horizontal=True)
    start = stop = None
    if fmt in ("mp4", "gif") and cine.n_frames > 1:
        a, b = box.slider("Frames (A–B, 1-based)", 1, cine.n_frames, (1, cine.n_frames), key="msus_export_range")
        start, stop = a - 1, b
    if fmt == "bundle":
        box.caption("Header PHI removed (DICOM basic profile), pixels outside the 2D tissue regions blacked out, "
                    "reviewers renamed. Check the video before sharing.")
    # a click survives a player rerun that interrupts its run (msus.ui.clicks)
    if clicks.button("Prepare export", key="msus_export_go", container=box):
        with clicks.handled("msus_export_go"):
            try:
                with st.spinner("Preparing…"):
                    blob, name, automatic = build(fmt, cine, source, start=start, stop=stop)
                st.session_state["msus_export_ready"] = (fmt, name, blob, automatic)
            except MsusError as e:
                box.error(md(e))
    ready = st.session_state.get("msus_export_ready")
    if ready and ready[0] == fmt:
        _, name, blob, automatic = ready
        if automatic:
            box.info("Nothing saved for this loop yet: this export holds the automatic analysis (not reviewed).")
        box.download_button(f"Download {md(name)}", blob, file_name=name, mime=MIME[fmt], key="msus_export_dl")
