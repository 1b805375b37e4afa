"""Where the store lives and how to connect to it.

* ``MSUS_DATABASE_URL`` — any SQLAlchemy URL (``postgresql+psycopg2://user@host/db`` for a team
  server).  When unset: a SQLite file ``msus.sqlite3`` in the data folder.
* ``MSUS_DATA_DIR`` — the data folder; default a per-user folder (``$XDG_DATA_HOME/msus`` or
  ``~/.local/share/msus`` on Linux, ``~/Library/Application Support/msus`` on macOS,
  ``%LOCALAPPDATA%\\msus`` on Windows; :func:`msus.config.data_dir`).  Created on first use; never
  the repository.

SQLite runs in WAL mode (readers never block the writer) with ``synchronous=FULL`` (a commit is
on disk before the call returns) and a 30 s busy timeout.  Write transactions start with
``BEGIN IMMEDIATE`` so two writers queue for the lock instead of failing on a lock upgrade.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from msus.config import data_dir
from msus.errors import StoreError

DB_FILENAME = "msus.sqlite3"
BUSY_TIMEOUT_S = 30.0


def resolve_url(url: str | None = None) -> str:
    """The database URL: the argument, else ``MSUS_DATABASE_URL``, else the SQLite file."""
    url = url or os.environ.get("MSUS_DATABASE_URL")
    if url:
        return url
    folder = data_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the data folder {folder}: {exc.strerror or exc}") from exc
    return f"sqlite:///{folder / DB_FILENAME}"


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return "(unparseable database URL)"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, FULL sync, busy timeout and BEGIN IMMEDIATE writes."""
    try:
        u = make_url(url)
    except (ArgumentError, ValueError, TypeError) as exc:
        raise StoreError(f"not a database URL: {url!r}") from exc
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            parent = Path(u.database).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"the database folder {parent} does not exist")
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            write = conn.get_execution_options().get("msus_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    except (ImportError, SQLAlchemyError, TypeError, ValueError) as exc:  # missing driver, bad options
        raise StoreError(f"cannot use database {describe(url)}: {exc}") from exc
