"""Streamlit pieces for the DICOMweb archive: the "PACS" source and the outbox status.

* :func:`search_panel` — search form (patient ID / name, dates, accession), result table, pick a
  loop; returns a :class:`msus.ui.sources.Source` of kind ``"pacs"`` once the user presses *Open*.
* :func:`open_source` — the :class:`msus.Cine` for that Source (frames arrive on demand; cached).
* :func:`outbox_status` — how many reports wait, and a button to send them now.

Session state keys: ``msus_pacs_results`` (last search, list of dicts), ``msus_pacs_instances``
(study UID → instances), ``msus_pacs_choice`` (the opened loop).  Every archive failure is shown
as one line (``st.error``) within the configured timeout; nothing is logged.
"""

from __future__ import annotations

import streamlit as st

from msus.errors import MsusError, PacsError
from msus.pacs_config import configured, load_config
from msus.ui.text import md

RESULTS_KEY = "msus_pacs_results"
INSTANCES_KEY = "msus_pacs_instances"
CHOICE_KEY = "msus_pacs_choice"
NOT_CONFIGURED = "No archive configured: set MSUS_PACS_URL (or MSUS_PACS_CONFIG) and restart msus."


def available() -> bool:
    """True when an archive is configured (the app may then offer the "PACS" source)."""
    return configured()


def _archive():
    from msus.io.dicomweb import Archive

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
    from msus.ui.sources import Source

    ch = st.session_state.get(CHOICE_KEY)
    if not ch:
        return None
    key = f"pacs:{ch['url']}|{ch['study']}|{ch['series']}|{ch['sop']}"
    return Source("pacs", ch["name"], key)


@st.cache_resource(max_entries=4, show_spinner="Fetching the loop from the archive…")
def _open_cached(key: str):
    url, study, series, sop = key[len("pacs:"):].split("|")
    from msus.io.dicomweb import Archive

    cfg = load_config()
    if cfg.url != url:
        raise PacsError("the archive configuration changed; search again")
    return Archive(cfg).open_cine(study, series, sop)


def open_source(src):
    """The :class:`msus.Cine` of a ``"pacs"`` Source (first frame ready, the rest on demand)."""
    if getattr(src, "kind", None) != "pacs":
        raise PacsError("not a PACS source")
    return _open_cached(src.key)


def _flush_quietly() -> None:
    """Send waiting reports after a successful search (the archive just answered)."""
    from msus.outbox import Outbox

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
    from msus.outbox import Outbox

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

