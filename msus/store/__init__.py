"""The findings store: loops, reviewers, measurements, findings and an append-only audit log.

::

    from msus.store import open_store
    store = open_store()                      # MSUS_DATABASE_URL, else <data dir>/msus.sqlite3
    saved = store.add_measurement(cine, m, reviewer="Dr A")
    saved = store.update_measurement(moved, expected_version=saved.version, reviewer="Dr A")
    store.save_finding(cine, finding, reviewer="Dr A", kind="automatic")

See ``docs/store.md`` for the schema, concurrency and durability guarantees.
"""

from __future__ import annotations

from msus.store.engine import data_dir, resolve_url
from msus.store.identity import LoopIdentity, content_hash, identify
from msus.store.repository import Store
from msus.store.values import (
    CLASSIFICATIONS,
    STATUSES,
    SIGNED,
    AuditEntry,
    LoopRef,
    StoreConflict,
    StoredFinding,
    StoredMeasurement,
    StudyListRow,
    analysis_finding,
    finding_origin,
)

__all__ = [
    "CLASSIFICATIONS",
    "STATUSES",
    "AuditEntry",
    "LoopIdentity",
    "LoopRef",
    "Store",
    "StoreConflict",
    "StoredFinding",
    "StoredMeasurement",
    "StudyListRow",
    "SIGNED",
    "analysis_finding",
    "content_hash",
    "data_dir",
    "finding_origin",
    "identify",
    "open_store",
    "resolve_url",
]


def open_store(url: str | None = None) -> Store:
    """Open (creating and migrating on first use) the store at ``url`` or the configured one."""
    return Store(url)
