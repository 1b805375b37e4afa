"""One short transaction of the store: ``sessionmaker.begin()``, database failures as one line.

:func:`transaction` is what :class:`msus.store.Store` runs every call in.  Inside, the block gets a
:class:`sqlalchemy.orm.Session` (committed when the block ends, rolled back when it raises);
SQLAlchemy's errors leave it as :class:`~msus.errors.StoreError` (one line, the URL without its
password) or :class:`~msus.store.values.StoreConflict` (an integrity violation: a key taken
meanwhile), chained to the original for the log.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from msus.errors import StoreError
from msus.store.engine import describe
from msus.store.values import StoreConflict


@contextmanager
def transaction(sessions: sessionmaker, url: str, lock=None):
    """``with transaction(sessions, url) as session:`` — one transaction, whole or nothing.

    ``lock`` (a :class:`threading.Lock`) is held for the whole transaction: SQLite allows one
    writer at a time, and this process' threads queue on it instead of on the busy timeout.
    """
    if lock is not None:
        lock.acquire()
    try:
        with sessions.begin() as session:
            _connect(session, url)
            yield session
    except IntegrityError as exc:
        raise StoreConflict(f"conflicting write: {short(exc)}") from exc
    except OperationalError as exc:
        raise StoreError(f"database write failed on {describe(url)}: {short(exc)}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {short(exc)}") from exc
    finally:
        if lock is not None:
            lock.release()


def _connect(session: Session, url: str) -> None:
    try:
        session.connection()
    except OperationalError as exc:
        raise StoreError(f"cannot reach the database {describe(url)}: {short(exc)}") from exc


def once_id(once_key: str) -> str:
    """The finding id of an idempotent write (:meth:`Store.save_finding` ``once_key``)."""
    return "once-" + hashlib.sha256(str(once_key).encode()).hexdigest()[:40]


def short(exc) -> str:
    """A database error in one short line (the driver's message, without SQLAlchemy's wrapping)."""
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(orig).split())[:200]
