"""Opening a loop the PACS search picked: one cached :class:`msus.Cine` per archived loop.

Its own small module so that :mod:`msus.ui.sources` (which opens every kind of source) and
:mod:`msus.ui.pacs_panel` (which makes the ``"pacs"`` Source) do not import each other.
"""

from __future__ import annotations

import streamlit as st

from msus.errors import PacsError
from msus.pacs.client import Archive
from msus.pacs.config import load_config


@st.cache_resource(max_entries=4, show_spinner="Fetching the loop from the archive…")
def _open_cached(key: str):
    url, study, series, sop = key[len("pacs:"):].split("|")
    cfg = load_config()
    if cfg.url != url:
        raise PacsError("the archive configuration changed; search again")
    return Archive(cfg).open_cine(study, series, sop)


def open_source(src):
    """The :class:`msus.Cine` of a ``"pacs"`` Source (first frame ready, the rest on demand)."""
    if getattr(src, "kind", None) != "pacs":
        raise PacsError("not a PACS source")
    return _open_cached(src.key)
