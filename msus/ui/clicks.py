"""Buttons whose click survives an interrupted run.

A Streamlit button is True only in the run its click starts. The player asks for a rerun when a
frame settles; if that arrives while the click's run is busy (an analysis, an export, a store
write), the run is interrupted and the click is lost. :func:`button` remembers the click in the
session from the button's callback (which runs before the page script), so the next run still
sees it; :func:`handled` forgets it once the action has run (or failed with an ordinary error).
"""

from __future__ import annotations

from contextlib import contextmanager

import streamlit as st


def _pending_key(key: str) -> str:
    return f"{key}__pending"


def _remember(pending: str) -> None:
    st.session_state[pending] = True


def button(label: str, key: str, container=None, scope: str = "", **kwargs) -> bool:
    """``st.button`` that stays pressed until :func:`handled` completes.

    Parameters
    ----------
    label, key
        As for ``st.button`` (``key`` is required: it names the remembered click).
    container
        Where to draw it (default: the page).
    scope
        Extra text that ties the remembered click to one thing (e.g. a loop key), so a click
        on one loop is not carried to another.
    **kwargs
        Passed to ``st.button`` (``help``, ``disabled``, ``type`` …; not ``on_click``).
    """
    pending = _pending_key(f"{key}|{scope}")
    pressed = (container or st).button(label, key=key, on_click=_remember, args=(pending,), **kwargs)
    return bool(pressed or st.session_state.get(pending))


def forget(key: str, scope: str = "") -> None:
    """Drop a remembered click of ``key`` (in ``scope``)."""
    st.session_state.pop(_pending_key(f"{key}|{scope}"), None)


@contextmanager
def handled(key: str, scope: str = ""):
    """Run a click's action: the click is forgotten when the block ends or raises an ordinary
    exception (never retried on every rerun); an interrupt (a ``BaseException`` such as
    Streamlit's rerun) keeps it, so the next run finishes the action. Call ``st.rerun()``
    after the block, not inside it."""
    try:
        yield
    except Exception:
        forget(key, scope)
        raise
    forget(key, scope)
