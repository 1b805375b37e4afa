"""Alembic migrations of the findings store, shipped inside the package.

:func:`msus.store.open_store` runs them programmatically on every open (a no-op when the
schema is current).  Developers add a revision with::

    .venv/bin/alembic -c msus/migrations/alembic.ini revision -m "what changes"
"""
