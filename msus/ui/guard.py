"""The app's edge for one panel: its failure is one line on the page, the log keeps the traceback.

``guard.panel(store_panels.connect, cine, review, reviewer)`` runs the panel: an
:class:`msus.errors.MsusError` becomes one ``st.error`` with its message; anything else (a bug)
one ``st.error`` naming the panel and the exception type, logged with its traceback.  The rest of
the page is still drawn.  Returns the panel's result, or None when it failed.
"""

from __future__ import annotations

import logging

import streamlit as st

from msus.errors import MsusError
from msus.ui.text import md

logger = logging.getLogger(__name__)


def _name(fn) -> str:
    module = getattr(fn, "__module__", "") or ""
    return module.rsplit(".", 1)[-1].replace("_", " ") or "panel"


def panel(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; failures → one line on the page (and the traceback in the log)."""
    try:
        return fn(*args, **kwargs)
    except MsusError as e:
        logger.info("%s: %s", _name(fn), type(e).__name__, exc_info=True)
        st.error(md(e))
    except Exception as e:  # the edge: a panel's bug never takes the page down
        logger.exception("unexpected error in the %s", _name(fn))
        st.error(f"The {_name(fn)} could not be shown ({type(e).__name__}).")
    return None
