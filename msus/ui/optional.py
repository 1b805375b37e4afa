"""Panels that other parts of msus add to the app (store, analysis, export, PACS, teaching).

``call("store_panels", "connect", cine, review, reviewer)`` runs the function when the module
``msus.ui.store_panels`` is installed, and turns any failure into one ``st.error`` line, so an
optional panel can never take the viewer down with it.  Returns the function's result, or None.
"""

from __future__ import annotations

import importlib
import importlib.util

import streamlit as st

from msus.errors import MsusError
from msus.ui.text import md


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"msus.ui.{module}") is not None
    except (ImportError, ValueError):
        return False


def call(module: str, function: str, *args, **kwargs):
    """``msus.ui.<module>.<function>(*args, **kwargs)`` if installed; failures → one line."""
    if not available(module):
        return None
    try:
        mod = importlib.import_module(f"msus.ui.{module}")
        fn = getattr(mod, function, None)
        if fn is None:
            return None
        return fn(*args, **kwargs)
    except MsusError as e:
        st.error(md(e))
    except Exception as e:  # an optional panel's bug: one line, never a traceback
        st.error(f"The {module.replace('_', ' ')} could not be shown ({type(e).__name__}).")
    return None
