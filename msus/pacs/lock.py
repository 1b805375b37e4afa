"""Who is sending an outbox row right now: an advisory file lock, and when a claim goes stale.

A sender claims a row in the database (``queued → sending``) and holds :class:`SenderLock` while it
sends.  A claim whose sender died is taken over at once when its lock is free (same machine), or
after :data:`STALE_CLAIM_S` otherwise (the archive is asked first either way, so nothing is sent
twice).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from msus.store.engine import data_dir

#: A ``sending`` claim older than this (s) is considered abandoned (the sender crashed).
STALE_CLAIM_S = 300.0


class SenderLock:
    """An advisory lock (``fcntl.flock``) a sender holds on one row while it sends it.

    The kernel drops the lock when the sender dies (even ``kill -9``), so a later flush on the
    same machine that can take the lock knows the ``sending`` row was abandoned and takes it
    over at once, instead of waiting :data:`STALE_CLAIM_S` (the archive de-duplicates anyway).
    Lock files live in ``<data dir>/outbox-locks``, named by the store URL and the row id.
    """

    def __init__(self, engine, row_id: int):
        url = str(getattr(engine, "url", ""))
        tag = hashlib.sha256(url.encode()).hexdigest()[:12]
        self.path = data_dir() / "outbox-locks" / f"{tag}-{int(row_id)}.lock"
        self._fh = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when a live sender holds it (or locks are unavailable)."""
        try:
            import fcntl

            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+b")
        except (ImportError, OSError):
            return False
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fh is not None

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the flock
            self._fh = None
            try:
                self.path.unlink()
            except OSError:
                pass


def sender_gone(engine, row_id: int) -> bool:
    """True when no live process on this machine holds the row's sender lock."""
    lock = SenderLock(engine, row_id)
    if lock.acquire():
        lock._fh.close()  # only probing: the sender that claims it takes the lock again
        lock._fh = None
        return True
    return False


def stale_before() -> str:
    """Time stamp before which a ``sending`` claim counts as abandoned (:data:`STALE_CLAIM_S` ago)."""
    return (datetime.now(timezone.utc) - timedelta(seconds=STALE_CLAIM_S)).isoformat(timespec="milliseconds")
