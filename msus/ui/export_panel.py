"""Streamlit Export panel: every export format as a download.

The app calls ``export_panel.render(cine, source, analysis=result)`` (``source``: the app's
:class:`msus.ui.sources.Source`, or a path; ``result``: the analysis shown on the page, or None).
It exports what the store holds for the loop (:func:`msus.export.gather`) — the saved finding
and calipers — or, when nothing is stored, the analysis shown on the page, marked as automatic.
It never runs the analysis itself: with nothing saved and no analysis run it says so (the export
then holds the loop's facts only; *Analyze* in the Tear analysis panel gives it a finding).
Every format is written by :func:`msus.export.formats.write`, as by ``msus export``.  SR and the
de-identified bundle need a DICOM source; an upload is written to a temporary file for them
(deleted after).
A prepared SR or DICOM video can be sent to the archive ("Send to PACS", through the outbox).
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
#: Prepared exports that can go to the archive, and their outbox kind.
PACS_KINDS = {"sr": "sr", "dicom-video": "video"}
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


def build(fmt: str, cine, source, *, start=None, stop=None, analysis=None) -> tuple[bytes, str, bool]:
    """(file bytes, suggested file name, automatic?) for one format."""
    blob, name, data = _build(fmt, cine, source, start=start, stop=stop, analysis=analysis)
    return blob, name, data is not None and data.automatic


def _build(fmt: str, cine, source, *, start=None, stop=None, analysis=None):
    """(file bytes, suggested file name, the ExportData written or None for the loop itself)."""
    from msus.export import gather
    from msus.export.formats import SUFFIX, write
    from msus.ui.store_access import get_store

    if fmt == "dicom-video":  # the loop itself: no findings in it, no analysis needed
        data = None
    else:
        try:
            store = get_store()
        except MsusError:
            store = None
        data = gather(cine, store, analyze=False, analysis=analysis)  # the saved record; never a silent re-run
    stem = Path(getattr(source, "name", "") or "loop").stem or "loop"
    # a de-identified bundle never carries the source's name (names often hold the patient's)
    name = "deid-bundle.zip" if fmt == "bundle" else f"{stem}-{fmt}{SUFFIX[fmt]}"
    with tempfile.TemporaryDirectory(prefix="msus-export-") as d:
        tmp = Path(d)
        src = _source_file(source, tmp)
        if src is None and fmt == "sr":  # a loop opened from the archive: its header is the SR's source
            src = getattr(cine, "pacs_header", None)
        out = write(fmt, cine, data, src if src is not None else tmp / "none", tmp / name, start=start, stop=stop)
        return Path(out).read_bytes(), name, data


def _origin_note(data) -> str | None:
    """One line on what the export holds when it is not a reviewed record (None when it is)."""
    if data is None:
        return None
    if data.automatic:
        return "Nothing saved for this loop yet: this export holds the automatic analysis (not reviewed)."
    if data.finding is None and not data.measurements:
        return ("Nothing saved for this loop and no analysis run: this export holds the loop's facts only. "
                "Run Analyze (Tear analysis) or measure to give it a finding.")
    return None


def render(cine, source, container=None, analysis=None) -> None:
    """The Export panel: pick a format (and an A–B range for video), prepare, download.

    Draws into ``container`` (default: the page); the app places it inside its own expander.
    ``analysis`` is the analysis result on the page (exported when nothing is saved).
    """
    from msus.ui.session import app_state

    box = container or st
    state = app_state()
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
                    blob, name, data = _build(fmt, cine, source, start=start, stop=stop, analysis=analysis)
                state.export_ready = (fmt, name, blob, _origin_note(data))
            except MsusError as e:
                box.error(md(e))
    ready = state.export_ready
    if ready and ready[0] == fmt:
        _, name, blob, note = ready
        if note:
            box.info(note)
        box.download_button(f"Download {md(name)}", blob, file_name=name, mime=MIME[fmt], key="msus_export_dl",
                            on_click="ignore")  # a download needs no run: one would race the next click
        if fmt in PACS_KINDS:  # the prepared DICOM object, through the outbox (never lost, never sent twice)
            from msus.ui import pacs_panel

            pacs_panel.send_to_pacs_button(blob, kind=PACS_KINDS[fmt], key=f"msus_export_pacs_{fmt}", container=box)
