"""Run the packaged Alembic migrations programmatically (on every open; a no-op when current).

The upgrade runs inside one write transaction that holds the database's write lock
(SQLite ``BEGIN IMMEDIATE``; a PostgreSQL transaction-level advisory lock), so several processes
opening a new database at once migrate it exactly once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from msus.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
_ADVISORY_KEY = 0x6D737573  # "msus"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    head = head_revision()
    try:
        if revision == "head" and current_revision(engine) == head:
            return
        cfg = alembic_config()
        with engine.execution_options(msus_write=True).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        raise StoreError(f"cannot prepare the database: {' '.join(str(orig).split())[:200]}") from exc
