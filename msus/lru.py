"""One least-recently-used cache bounded in bytes, for every cache of frames msus keeps.

:class:`ByteLRU` holds values by key and drops the least recently used once their bytes exceed
``max_bytes`` (a number, or a function read at each write so a setting can change).  Used by the
decoded-frame cache of :mod:`msus.cine`, the archive's frame cache (:mod:`msus.pacs.frames`) and
the player's encoded-JPEG frame store (:mod:`msus.ui.frames`).
Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable


class ByteLRU:
    """Values by key, least recently used dropped beyond ``max_bytes``.

    Parameters
    ----------
    max_bytes
        The bound, in bytes, or a zero-argument function giving it.
    size
        Bytes of one value (default ``len``; ``lambda a: a.nbytes`` for arrays).
    keep_newest
        True: the value just written stays even when it alone exceeds the bound; False: a value
        larger than the whole bound is not kept at all.
    on_evict
        Called as ``on_evict(key, value)`` for each value the bound drops (under the lock).
    """

    def __init__(self, max_bytes: int | Callable[[], int], *, size: Callable[[object], int] = len,
                 keep_newest: bool = False, on_evict: Callable[[Hashable, object], None] | None = None):
        self._max = max_bytes
        self._size = size
        self._keep_newest = keep_newest
        self._on_evict = on_evict
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._bytes = 0
        self.lock = threading.RLock()

    @property
    def max_bytes(self) -> int:
        return int(self._max() if callable(self._max) else self._max)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        with self.lock:
            return key in self._items

    def get(self, key):
        """The value (now the most recently used), or None."""
        with self.lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> bool:
        """Keep ``value`` under ``key`` (replacing one); returns False when it is too big to keep."""
        cap = self.max_bytes
        n = self._size(value)
        if n > cap and not self._keep_newest:
            return False
        with self.lock:
            self.pop(key)
            self._items[key] = value
            self._bytes += n
            while self._bytes > cap and len(self._items) > 1:
                old_key, old = self._items.popitem(last=False)
                self._bytes -= self._size(old)
                if self._on_evict is not None:
                    self._on_evict(old_key, old)
            return True

    def pop(self, key):
        """Remove ``key`` (no eviction callback); returns its value or None."""
        with self.lock:
            value = self._items.pop(key, None)
            if value is not None:
                self._bytes -= self._size(value)
            return value

    def discard_where(self, pred: Callable[[Hashable], bool]) -> int:
        """Remove every key for which ``pred(key)`` is true (no eviction callback); returns how many."""
        with self.lock:
            keys = [k for k in self._items if pred(k)]
            for k in keys:
                self.pop(k)
            return len(keys)

    def clear(self) -> None:
        with self.lock:
            self._items.clear()
            self._bytes = 0
