"""Where a loop comes from: bundled samples, an upload, or a path under the data folder.

Loading goes through :func:`msus.load`; open loops are shared by all sessions (never copied) in
one :class:`msus.open_loops.OpenLoops` keyed by what identifies the content (path + size + mtime,
or the upload's hash): at most ``MSUS_MAX_OPEN_LOOPS`` stay open, the least recently used beyond
that is closed, and a loop no live session holds is closed too.
What a folder lists and which paths are allowed are :mod:`msus.io.listing`'s rules.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import msus
from msus.errors import LoadError, MsusError, TooLarge
from msus.io.listing import default_sample_index, list_loops, resolve_under  # noqa: F401  (the pickers' rules)
from msus.open_loops import OpenLoops

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A loop the user asked for. ``key`` identifies its content for caching and stores."""

    kind: str  # sample | upload | path
    name: str  # shown to the user (file name, never a patient field)
    key: str
    path: Path | None = None
    upload: object | None = None  # a Streamlit UploadedFile (a BytesIO), read only on a cache miss


def path_source(kind: str, path: Path) -> Source:
    st_ = path.stat()
    return Source(kind, path.name, f"{kind}:{path}:{st_.st_size}:{st_.st_mtime_ns}", path=path)


def upload_source(uploaded, limit_mb: int) -> Source:
    """A Source for a Streamlit UploadedFile, refused beyond ``limit_mb``.

    Its key is the upload's id and size (no hashing of up to a GB on every rerun).
    """
    size = getattr(uploaded, "size", None)
    if size is None:
        size = len(uploaded.getbuffer())
    if size > limit_mb * 1024 * 1024:
        raise TooLarge(f"{uploaded.name} is {size / 2**20:.0f} MB; the upload limit is {limit_mb} MB (MSUS_UPLOAD_LIMIT_MB)")
    ident = getattr(uploaded, "file_id", None) or hashlib.sha256(uploaded.getbuffer()).hexdigest()[:32]
    return Source("upload", uploaded.name, f"upload:{ident}:{size}", upload=uploaded)


_LOOPS: OpenLoops | None = None
_LOOPS_LOCK = threading.Lock()


def open_loops() -> OpenLoops:
    """The process-wide open loops (bounded by ``MSUS_MAX_OPEN_LOOPS``)."""
    global _LOOPS
    with _LOOPS_LOCK:
        if _LOOPS is None:
            from msus.config import load_settings
            from msus.ui import frames

            _LOOPS = OpenLoops(load_settings().max_open_loops, on_close=lambda c: frames.store().forget(c))
        return _LOOPS


def _load_cached(key: str, path: str | None, upload, name: str):
    def opener():
        with st.spinner("Opening the loop…"):
            if path is not None:
                return msus.load(path)
            data = io.BytesIO(bytes(upload.getbuffer()))
            data.name = name  # messages name the user's file, not "<stream>"
            return msus.load(data)

    return open_loops().get(key, opener)


# ---- a session's loops are released when it ends ---------------------------------------------
_HOLDERS: dict[tuple, set[int]] = {}  # cache arguments -> ids of live sessions that opened the loop
_ENDED: list[int] = []  # sessions collected since the last run (noted by the garbage collector)
_HOLDER_KEY = "msus_loop_holder"
_HOLDER_IDS = iter(range(1, 1 << 62))


class _Holder:
    """Lives in one session's ``st.session_state``; when Streamlit drops the session it is collected."""

    def __init__(self, ident: int):
        self.id = ident


def _hold(args: tuple) -> None:
    import weakref

    h = st.session_state.get(_HOLDER_KEY)
    if h is None:
        h = _Holder(next(_HOLDER_IDS))
        weakref.finalize(h, _ENDED.append, h.id)
        st.session_state[_HOLDER_KEY] = h
    _HOLDERS.setdefault(args, set()).add(h.id)
    while _ENDED:  # loops no live session holds leave the cache (and their memory with them)
        gone = _ENDED.pop()
        for a in [a for a, ids in _HOLDERS.items() if gone in ids]:
            _HOLDERS[a].discard(gone)
            if not _HOLDERS[a]:
                del _HOLDERS[a]
                open_loops().discard(a[0])


def open_source(src: Source):
    """The :class:`msus.Cine` for ``src`` (cached across reruns and sessions; released from the
    cache once no live session holds it)."""
    if src.kind == "pacs":  # the archive's own cached, on-demand loader
        from msus.ui import pacs_source

        return pacs_source.open_source(src)
    try:
        args = (src.key, str(src.path) if src.path else None, src.upload, src.name)
        cine = _load_cached(*args)
        try:
            _hold(args)
        except Exception:  # outside a Streamlit session (bare calls): nothing to release later
            logger.debug("open_source: outside a Streamlit session (bare calls): nothing to release later", exc_info=True)
            pass
        return cine
    except MsusError:
        raise
    except (ImportError, AttributeError) as e:  # the io package not installed/complete
        raise LoadError(f"cannot open {src.name}: the loader is unavailable ({type(e).__name__})") from e
    except MemoryError:
        raise TooLarge(f"{src.name} does not fit in memory") from None
