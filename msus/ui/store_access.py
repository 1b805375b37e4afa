"""The app's findings store: one per resolved URL for the life of the server."""

from __future__ import annotations

import streamlit as st

from msus.errors import MsusError
from msus.ui.text import md


@st.cache_resource(show_spinner=False)
def _open(url: str):
    from msus.store import open_store

    return open_store(url)


def get_store():
    """The process-wide store (``MSUS_DATABASE_URL`` or the SQLite file in ``MSUS_DATA_DIR``).

    One store per resolved URL, kept for the life of the server (``st.cache_resource``).
    """
    from msus.store import resolve_url

    return _open(resolve_url())


def store_or_none():
    try:
        return get_store()
    except MsusError as e:
        st.sidebar.error(f"Findings store unavailable: {md(e)}")
        return None
