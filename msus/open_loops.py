"""Loops a long-running process (the app) keeps open, shared and bounded (``MSUS_MAX_OPEN_LOOPS``).

:class:`OpenLoops` maps a content key to an open :class:`msus.Cine`.  Opening one more than
``max_open`` closes the least recently used loop — its file handle and decoded frames are
released, not merely forgotten — and :meth:`OpenLoops.discard` closes one on demand (the app
does when no live session holds it any more).  Thread-safe; a loop is opened outside the lock, so
a slow open never blocks other sessions.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Callable

logger = logging.getLogger(__name__)


class OpenLoops:
    """At most ``max_open`` open loops, least recently used closed first.

    Parameters
    ----------
    max_open
        How many loops stay open at once (at least 1).
    on_close
        Called with each loop this set closes (before it is closed), e.g. to drop its frames
        from the browser frame store.
    """

    def __init__(self, max_open: int, on_close: Callable[[object], None] | None = None):
        self.max_open = max(1, int(max_open))
        self._on_close = on_close
        self._loops: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._loops)

    def __contains__(self, key: str) -> bool:
        return key in self._loops

    def get(self, key: str, opener: Callable[[], object]):
        """The open loop for ``key``, opened with ``opener()`` when it is not open yet."""
        with self._lock:
            if key in self._loops:
                self._loops.move_to_end(key)
                return self._loops[key]
        cine = opener()  # outside the lock: decoding a header can take a while
        with self._lock:
            if key in self._loops:  # another session opened it meanwhile: keep theirs
                self._loops.move_to_end(key)
                extra, cine = cine, self._loops[key]
            else:
                self._loops[key] = cine
                extra = None
            evicted = []
            while len(self._loops) > self.max_open:
                evicted.append(self._loops.popitem(last=False)[1])
        for old in ([extra] if extra is not None else []) + evicted:
            self._close(old)
        return cine

    def discard(self, key: str) -> None:
        """Close the loop of ``key`` (nothing when it is not open)."""
        with self._lock:
            cine = self._loops.pop(key, None)
        if cine is not None:
            self._close(cine)

    def close_all(self) -> None:
        with self._lock:
            loops = list(self._loops.values())
            self._loops.clear()
        for cine in loops:
            self._close(cine)

    def _close(self, cine) -> None:
        if self._on_close is not None:
            self._on_close(cine)
        cine.close()
