"""Serving a loop's frames to the browser player as JPEG over HTTP.

Sending frames inside the component's data would re-serialise hundreds of MB-scale payloads on
every rerun; instead the player fetches ``<base>/msus/frames/<token>/<index>.jpg`` once per frame
and keeps the decoded images in the page.  The route is mounted on ``st.App`` (see ``app.py``).

Security and memory:

* ``token`` is ``secrets.token_urlsafe(24)``, minted per (browser session, loop); the route
  answers 404 for any token it does not hold, so a URL cannot be guessed or reused across
  sessions once evicted.
* A token is bound to the browser that opened the session: the digest of Streamlit's own
  ``_streamlit_xsrf`` cookie (read with the public ``st.context.cookies``) is kept with it and
  the route answers 404 to a request without the same cookie — the URL alone, copied into
  another browser, shows nothing.  (With XSRF protection turned off there is no such cookie
  and the token is a bearer token again.)
* A token expires with its Streamlit session: a lease object lives in the session's
  ``st.session_state``; when Streamlit drops the session (its tab closed, after
  ``server.disconnectedSessionTTL``), the lease is garbage collected and every token of the
  session is revoked.
* The :class:`FrameStore` is bounded twice: at most ``max_tokens`` registrations, and at most
  ``max_bytes`` of encoded JPEG kept across loops (one :class:`msus.lru.ByteLRU`), the least
  recently served frames dropped first.
  An evicted frame is simply encoded again on the next request while its token is alive.

The store is one per process (:func:`store`), shared by the HTTP route (which runs outside any
Streamlit script) and the script runs.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import logging
import secrets
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

from msus.export.jpeg import encode_jpeg
from msus.lru import ByteLRU

from msus.errors import MsusError

logger = logging.getLogger(__name__)

ROUTE_PREFIX = "/msus/frames"
#: Streamlit's XSRF cookie: set per browser by the Streamlit server, sent with every same-origin request.
BROWSER_COOKIE = "_streamlit_xsrf"


def _digest(cookie: str | None) -> str | None:
    return hashlib.sha256(cookie.encode()).hexdigest() if isinstance(cookie, str) and cookie else None


@dataclass
class _Loop:
    cine: object
    quality: int
    lock: threading.Lock = field(default_factory=threading.Lock)  # one decode at a time per loop


class FrameStore:
    """Tokens → loops, with a byte-bounded LRU cache of encoded frames.

    Parameters
    ----------
    max_bytes
        Upper bound on encoded JPEG bytes kept across all loops.
    max_tokens
        Upper bound on live tokens (oldest are revoked first).
    max_loops
        Upper bound on loops referenced (the least recently used loop and its tokens go first),
        so the store never keeps decoded loops alive that the app's cache has let go.
    """

    def __init__(self, max_bytes: int = 768 << 20, max_tokens: int = 256, max_loops: int = 12):
        self.max_tokens = int(max_tokens)
        self.max_loops = max(1, int(max_loops))
        self._tokens: OrderedDict[str, int] = OrderedDict()  # token -> loop key
        self._bound: dict[str, tuple[str | None, int | None]] = {}  # token -> (browser digest, session)
        self._loops: OrderedDict[int, _Loop] = OrderedDict()  # id(cine) -> loop, LRU order
        self._jpegs = ByteLRU(int(max_bytes), keep_newest=True)  # (loop key, index) -> JPEG bytes
        self._lock = self._jpegs.lock

    # ---- registration ---------------------------------------------------------------------
    def register(self, cine, quality: int = 90, token: str | None = None, *, browser: str | None = None,
                 session: int | None = None) -> str:
        """Make ``cine`` fetchable; returns the (new or reused) token for it.

        Pass the token a session already holds for this loop to keep its URLs stable.
        ``browser`` (the browser's cookie value) and ``session`` (a session id) bind the token:
        see :meth:`jpeg` and :meth:`revoke_session`.
        """
        key = id(cine)
        bound = (_digest(browser), session)
        with self._lock:
            if (token is not None and self._tokens.get(token) == key and key in self._loops
                    and self._bound.get(token, (None, None)) == bound):
                self._tokens.move_to_end(token)
                self._loops.move_to_end(key)
                return token
            if key not in self._loops:
                self._loops[key] = _Loop(cine, int(quality))
            self._loops.move_to_end(key)
            token = secrets.token_urlsafe(24)
            self._tokens[token] = key
            self._bound[token] = bound
            while len(self._tokens) > self.max_tokens:
                self._bound.pop(self._tokens.popitem(last=False)[0], None)
            while len(self._loops) > self.max_loops:
                old = next(iter(self._loops))
                for t in [t for t, k in self._tokens.items() if k == old]:
                    del self._tokens[t]
                    self._bound.pop(t, None)
                self._drop_loop(old)
            self._drop_orphans()
            return token

    def revoke_session(self, session: int) -> None:
        """Revoke every token registered for ``session`` (the session ended)."""
        with self._lock:
            for t in [t for t, (_b, s) in self._bound.items() if s == session]:
                self._tokens.pop(t, None)
                del self._bound[t]
            self._drop_orphans()

    def forget(self, cine) -> None:
        """Drop a loop that is being closed, with its tokens and encoded frames."""
        key = id(cine)
        with self._lock:
            for t in [t for t, k in self._tokens.items() if k == key]:
                del self._tokens[t]
                self._bound.pop(t, None)
            if key in self._loops:
                self._drop_loop(key)

    def _drop_orphans(self) -> None:
        live = set(self._tokens.values())
        for key in [k for k in self._loops if k not in live]:
            self._drop_loop(key)

    def _drop_loop(self, key: int) -> None:  # under the lock
        del self._loops[key]
        self._jpegs.discard_where(lambda k: k[0] == key)

    # ---- serving --------------------------------------------------------------------------
    def jpeg(self, token: str, index: int, browser: str | None = None) -> bytes | None:
        """Encoded frame ``index`` of the loop behind ``token``; None if unknown, out of range, or
        asked by another browser than the one the token was minted for (``browser``: its cookie)."""
        with self._lock:
            want = self._bound.get(token, (None, None))[0]
            if want is not None and _digest(browser) != want:
                return None
            key = self._tokens.get(token)
            loop = self._loops.get(key) if key is not None else None
            if loop is None:
                return None
            self._loops.move_to_end(key)
            hit = self._jpegs.get((key, index))
        if hit is not None:
            return hit
        if not 0 <= index < len(loop.cine):
            return None
        with loop.lock:  # readers may share one file handle: never decode one loop twice at once
            hit = self._jpegs.get((key, index))
            if hit is not None:
                return hit
            data = encode_jpeg(loop.cine.frame(index), loop.quality)
        with self._lock:
            if self._loops.get(key) is loop:  # not dropped meanwhile
                self._jpegs.put((key, index), data)
        return data

    @property
    def max_bytes(self) -> int:
        return self._jpegs.max_bytes

    @property
    def nbytes(self) -> int:
        return self._jpegs.nbytes

    def __contains__(self, token: str) -> bool:
        return token in self._tokens


_STORE: FrameStore | None = None
_STORE_LOCK = threading.Lock()


def store() -> FrameStore:
    """The process-wide frame store (sized from :func:`msus.config.load_settings`)."""
    global _STORE
    with _STORE_LOCK:
        if _STORE is None:
            from msus.config import load_settings

            s = load_settings()
            _STORE = FrameStore(max_bytes=s.frame_store_mb << 20, max_loops=2 * s.max_open_loops)
        return _STORE


class _Lease:
    """Lives in one session's ``st.session_state``; its collection revokes the session's tokens."""

    def __init__(self, ident: int):
        self.id = ident


_LEASE_KEY = "msus_frame_lease"
_LEASE_IDS = itertools.count(1)


_ENDED: list[int] = []  # sessions whose lease was collected; their tokens are revoked on the next run


def _session_ended(ident: int) -> None:
    # runs inside the garbage collector, possibly while this thread holds a store lock: only note it
    _ENDED.append(ident)


def _revoke_ended() -> None:
    while _ENDED:
        ident = _ENDED.pop()
        if _STORE is not None:
            _STORE.revoke_session(ident)


def session_binding() -> dict:
    """``register`` keywords binding a token to this browser and this Streamlit session."""
    import streamlit as st

    lease = st.session_state.get(_LEASE_KEY)
    if lease is None:
        lease = _Lease(next(_LEASE_IDS))
        weakref.finalize(lease, _session_ended, lease.id)
        st.session_state[_LEASE_KEY] = lease
        gc.collect(0)  # sessions that ended since: their leases go (and their tokens with them)
    _revoke_ended()
    try:
        browser = st.context.cookies.get(BROWSER_COOKIE)
    except Exception:  # no browser (bare script runs, AppTest)
        logger.debug("no browser context", exc_info=True)
        browser = None
    return {"browser": browser, "session": lease.id}


def frame_url_base(token: str, base_url_path: str = "") -> str:
    """URL prefix the player appends ``<index>.jpg`` to."""
    base = "/" + base_url_path.strip("/") if base_url_path.strip("/") else ""
    return f"{base}{ROUTE_PREFIX}/{token}/"


def routes(base_url_path: str | None = None):
    """Starlette routes serving frames, for ``st.App(..., routes=routes())``.

    st.App mounts user routes at the server root, so the route carries ``server.baseUrlPath``
    itself (the same prefix :func:`frame_url_base` puts in the player's URLs).
    """
    from starlette.responses import Response
    from starlette.routing import Route

    if base_url_path is None:
        try:
            import streamlit as st

            base_url_path = st.get_option("server.baseUrlPath") or ""
        except Exception:  # pragma: no cover - config not loadable: serve at the root
            logger.warning("server.baseUrlPath unreadable; frames served at the root", exc_info=True)
            base_url_path = ""

    def serve(request):  # sync: Starlette runs it in a worker thread (cv2 releases the GIL)
        token = request.path_params["token"]
        try:
            index = int(request.path_params["index"])
        except ValueError:
            return Response(status_code=404)
        try:
            data = store().jpeg(token, index, browser=request.cookies.get(BROWSER_COOKIE))
        except MsusError:  # a frame that cannot be decoded: the player skips it and says so
            logger.info("frame %d not decodable", index, exc_info=True)
            return Response(status_code=422)
        except Exception:  # the edge of the frame route: a bug is logged, the player skips the frame
            logger.exception("serving frame %d failed", index)
            return Response(status_code=422)
        if data is None:
            return Response(status_code=404)
        return Response(
            data,
            media_type="image/jpeg",
            headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    prefix = frame_url_base("{token}", base_url_path)
    return [Route(prefix + "{index}.jpg", serve, methods=["GET"])]
