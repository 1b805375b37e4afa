"""Alembic environment: msus passes an open connection (inside its own transaction)."""

from __future__ import annotations

from alembic import context

from msus.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # invoked from the alembic command line
        from msus.store.engine import make_engine, resolve_url

        engine = make_engine(resolve_url())
        with engine.begin() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
            context.run_migrations()
        engine.dispose()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("msus migrations run online only")
run()
