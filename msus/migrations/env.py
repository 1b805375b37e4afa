"""Alembic environment: msus passes an open connection (inside its own transaction)."""

from __future__ import annotations

from alembic import context

from msus.store.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    """Autogenerate only looks at msus.store's own tables (a shared database may hold other tables)."""
    if type_ == "table" and reflected and compare_to is None:
        return name in target_metadata.tables
    return True


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # invoked from the alembic command line
        from msus.store.engine import make_engine, resolve_url

        engine = make_engine(resolve_url())
        with engine.begin() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, include_object=include_object)
            context.run_migrations()
        engine.dispose()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("msus migrations run online only")
run()
