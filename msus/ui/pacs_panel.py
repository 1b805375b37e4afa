"""Streamlit pieces for the DICOMweb archive (:mod:`msus.pacs`): the "PACS" source and the "Send to PACS" button.

* :func:`search_panel` — search form (patient ID / name, dates, accession), result table, pick a
  loop; returns a :class:`msus.ui.sources.Source` of kind ``"pacs"`` once the user presses *Open*.
* :func:`open_source` — the :class:`msus.Cine` for that Source (frames arrive on demand; cached).
* :func:`send_to_pacs_button` — for the Export panel: sends a DICOM object through the outbox.
* :func:`outbox_status` — how many reports wait, and a button to send them now.

Session state keys: ``msus_pacs_results`` (last search, list of dicts), ``msus_pacs_instances``
(study UID → instances), ``msus_pacs_choice`` (the opened loop).  Every archive failure is shown
as one line (``st.error``) within the configured timeout; nothing is logged.
"""

from __future__ import annotations

import streamlit as st

from msus.errors import MsusError, PacsError
from msus.pacs.client import Archive
from msus.pacs.config import configured, load_config
from msus.pacs.outbox import Outbox, send
from msus.ui.pacs_source import open_source  # noqa: F401 (documented here: pacs_panel.open_source)
from msus.ui.sources import Source
from msus.ui.text import md

RESULTS_KEY = "msus_pacs_results"
INSTANCES_KEY = "msus_pacs_instances"
CHOICE_KEY = "msus_pacs_choice"
NOT_CONFIGURED = "No archive configured: set MSUS_PACS_URL (or MSUS_PACS_CONFIG) and restart msus."


def available() -> bool:
    """True when an archive is configured (the app may then offer the "PACS" source)."""
    return configured()


def _archive():
    return Archive(load_config())


def _date(d) -> str | None:
    return d.strftime("%Y%m%d") if d else None


def search_panel(container=None):
    """Search form, result table and loop picker; the chosen loop as a Source, else None."""
    c = container or st.sidebar
    if not available():
        c.info(NOT_CONFIGURED)
        return None
    try:
        cfg = load_config()
    except PacsError as e:
        c.error(md(e))
        return None
    c.caption(f"Archive: {md(cfg.describe())}")
    with c.form("msus_pacs_search", border=False):
        pid = st.text_input("Patient ID", key="msus_pacs_pid")
        name = st.text_input("Patient name (start of)", key="msus_pacs_name")
        d1, d2 = st.columns(2)
        date_from = d1.date_input("From", value=None, key="msus_pacs_from", format="YYYY-MM-DD")
        date_to = d2.date_input("To", value=None, key="msus_pacs_to", format="YYYY-MM-DD")
        acc = st.text_input("Accession number", key="msus_pacs_acc")
        submitted = st.form_submit_button("Search", type="primary")
    if submitted:
        try:
            with _archive() as a, st.spinner("Searching the archive…"):
                studies = a.search_studies(
                    patient_id=pid or None, patient_name=name or None, date_from=_date(date_from),
                    date_to=_date(date_to), accession_number=acc or None,
                )
            st.session_state[RESULTS_KEY] = [s.to_dict() for s in studies]
            st.session_state[INSTANCES_KEY] = {}
        except MsusError as e:
            c.error(md(e))
            return _current_choice()
        _flush_quietly()
    studies = st.session_state.get(RESULTS_KEY)
    if studies is None:
        return _current_choice()
    if not studies:
        c.info("No ultrasound studies match.")
        return _current_choice()
    rows = [
        {
            "date": s["study_date"], "patient ID": s["patient_id"], "patient": s["patient_name"],
            "accession": s["accession_number"], "description": s["description"],
            "series/inst": f"{s['n_series'] or '?'}/{s['n_instances'] or '?'}",
        }
        for s in studies
    ]
    picked = c.dataframe(rows, hide_index=True, on_select="rerun", selection_mode="single-row", key="msus_pacs_table")
    sel = list(getattr(getattr(picked, "selection", None), "rows", []) or [])
    if not sel:
        c.caption(f"{len(studies)} studies · pick one to list its loops")
        return _current_choice()
    study = studies[sel[0]]
    loops = _instances(study["study_uid"], c)
    if not loops:
        return _current_choice()
    labels = [
        f"series {i['series_number'] if i.get('series_number') is not None else '?'} · #{i['instance_number'] or '?'} · "
        f"{i['n_frames']} frame{'s' if i['n_frames'] != 1 else ''} · {i['columns']}×{i['rows']}"
        for i in loops
    ]
    k = c.selectbox("Loop", range(len(loops)), format_func=lambda j: labels[j], key=f"msus_pacs_loop_{study['study_uid']}")
    if c.button("Open", type="primary", key="msus_pacs_open"):
        inst = loops[k]
        st.session_state[CHOICE_KEY] = {
            "url": cfg.url, "study": study["study_uid"], "series": inst["series_uid"], "sop": inst["sop_uid"],
            "name": f"PACS {study['study_date'] or ''} · {labels[k]}".strip(),
        }
    return _current_choice()


def _instances(study_uid: str, c) -> list[dict]:
    cache = st.session_state.setdefault(INSTANCES_KEY, {})
    if study_uid not in cache:
        try:
            with _archive() as a:
                series = {s.series_uid: s for s in a.list_series(study_uid)}
                insts = [i for i in a.list_instances(study_uid) if i.is_image]
        except MsusError as e:
            c.error(md(e))
            return []
        cache[study_uid] = [
            dict(i.to_dict(), series_number=getattr(series.get(i.series_uid), "series_number", None)) for i in insts
        ]
    loops = cache[study_uid]
    if not loops:
        c.info("That study holds no images.")
    return sorted(loops, key=lambda i: -i["n_frames"])


def _current_choice():
    ch = st.session_state.get(CHOICE_KEY)
    if not ch:
        return None
    key = f"pacs:{ch['url']}|{ch['study']}|{ch['series']}|{ch['sop']}"
    return Source("pacs", ch["name"], key)


# ---- sending -----------------------------------------------------------------------------------
def send_to_pacs_button(
    payload,
    *,
    kind: str = "sr",
    label: str = "Send to PACS",
    key: str = "msus_pacs_send",
    container=None,
):
    """A button that sends ``payload`` to the archive through the outbox.

    Parameters
    ----------
    payload
        DICOM bytes, a pydicom Dataset, a file path — or a zero-argument callable returning one,
        called only when the button is pressed (build the SR or the annotated series lazily).
    kind
        ``"sr"``, ``"video"`` or ``"dicom"`` (shown in the outbox).

    Returns
    -------
    msus.pacs.outbox.SendResult or None
        None until pressed (or when no archive is configured).
    """
    c = container or st
    if not available():
        c.button(label, disabled=True, key=key, help=NOT_CONFIGURED)
        return None
    if not c.button(label, key=key):
        return None
    try:
        obj = payload() if callable(payload) else payload
        with _archive() as a, st.spinner("Sending to the archive…"):
            res = send(obj, a, kind=kind)
    except MsusError as e:
        c.error(md(e))
        return None
    if res.status == "sent":
        c.success(f"Sent to the archive ({md(res.message)}).")
    elif res.status == "already_in_archive":
        c.info("The archive already holds it; not sent again.")
    elif res.status == "queued":
        c.warning(f"Not sent yet — {md(res.message)}")
    else:
        c.error(md(res.message))
    return res


def annotated_loop_payload(cine, data, *, start: int | None = None, stop: int | None = None):
    """A zero-argument callable that builds the annotated loop as a new DICOM series.

    For ``send_to_pacs_button(annotated_loop_payload(cine, export_data), kind="video")``: the
    frames are annotated and JPEG-encoded one at a time only when the button is pressed.

    Parameters
    ----------
    cine
        The open loop (its ``meta`` supplies the patient and study of the new series).
    data
        :class:`msus.export.ExportData` with the calipers and outlines to burn in.
    start, stop
        0-based frame range (stop exclusive); None means the whole loop.
    """

    from msus.export.secondary_capture import annotated_loop_series

    def build():
        return annotated_loop_series(cine, data, start=start, stop=stop)

    return build


def _flush_quietly() -> None:
    """Send waiting reports after a successful search (the archive just answered)."""
    try:
        with _archive() as a:
            ob = Outbox()
            if ob.pending(a.config.url):
                ob.flush(a, limit=10)
    except MsusError:
        pass


def outbox_status(container=None) -> int:
    """A caption with the number of reports waiting and a button to send them; returns that number."""
    if not available():
        return 0
    c = container or st.sidebar
    try:
        cfg = load_config()
        ob = Outbox()
        n = ob.pending(cfg.url)
    except MsusError as e:
        c.caption(f"Outbox: {md(e)}")
        return 0
    if n == 0:
        return 0
    c.caption(f"📤 {n} report{'s' if n != 1 else ''} waiting for the archive")
    if c.button("Send waiting reports now", key="msus_pacs_flush"):
        try:
            with _archive() as a:
                r = ob.flush(a)
            if r.retry_later:
                c.warning(md(r.retry_later[0][1]))
            else:
                c.success(f"Sent {len(r.sent) + len(r.already_in_archive)}.")
            n = r.remaining
        except MsusError as e:
            c.error(md(e))
    return n

