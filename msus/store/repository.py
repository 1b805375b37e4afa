"""Repository functions the app and CLI call on every change.

Every call is one short transaction that also appends to the audit log, so whatever a call
returned is on disk (SQLite ``synchronous=FULL``; PostgreSQL's own commit durability).

Concurrency is optimistic: each measurement and finding carries a ``version``; an update or
delete names the version it was based on and succeeds only if the row still has it
(``UPDATE … WHERE id = :id AND version = :expected``), else :class:`StoreConflict` is raised with
the current version, so two reviewers never overwrite each other's work silently.  A measurement
belongs to the reviewer who made it: another reviewer adds their own caliper (a second rater)
instead of moving someone else's.
"""

from __future__ import annotations

import dataclasses
import json
import threading

from sqlalchemy import insert, select, update
from sqlalchemy.orm import sessionmaker

from msus.errors import StoreError
from msus.measure import KINDS, Measurement
from msus.store.engine import describe, make_engine, resolve_url
from msus.store.findings import Findings
from msus.store.identity import LoopIdentity, identify
from msus.store.listing import Listing
from msus.store.models import AuditEvent, Loop, MeasurementRow, Reviewer, Series, Study
from msus.store.rows import (loop_ref, loop_select, m_columns, m_live_at, m_snapshot,
                             to_stored_measurement)
from msus.store.signing import Signing
from msus.store.tx import transaction
from msus.store.values import LoopRef, StoreConflict, StoredMeasurement, now_iso


class Store(Findings, Listing, Signing):
    """The findings store on one database (see :func:`open_store`).  Thread-safe."""

    def __init__(self, url: str | None = None, *, migrate: bool = True):
        self.url = resolve_url(url)
        self.engine = make_engine(self.url)
        # reads and writes: SQLite begins a write with BEGIN IMMEDIATE (the msus_write option)
        self._sessions = sessionmaker(bind=self.engine, autoflush=False, expire_on_commit=False)
        self._write_sessions = sessionmaker(bind=self.engine.execution_options(msus_write=True), autoflush=False, expire_on_commit=False)
        self._ids_lock = threading.Lock()
        # SQLite allows one writer at a time; threads of this process queue here (fair, no
        # polling) and other processes wait on the database's busy timeout.
        self._sqlite_write_lock = threading.Lock()
        self._reviewer_ids: dict[str, int] = {}
        self._loop_refs: dict[str, LoopRef] = {}
        if migrate:
            from msus.store.migrate import upgrade

            upgrade(self.engine)

    def __repr__(self) -> str:
        return f"Store({describe(self.url)})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- transactions ---------------------------------------------------------------------------
    def _tx(self, write: bool = True):
        lock = self._sqlite_write_lock if write and self.dialect == "sqlite" else None
        return transaction(self._write_sessions if write else self._sessions, self.url, lock)

    def _audit(self, conn, reviewer: str, action: str, entity: str, entity_id: str, loop_id, before, after) -> None:
        conn.execute(
            insert(AuditEvent).values(
                at=now_iso(),
                reviewer=reviewer,
                action=action,
                entity=entity,
                entity_id=str(entity_id),
                loop_id=loop_id,
                before=None if before is None else json.dumps(before),
                after=None if after is None else json.dumps(after),
            )
        )

    # ---- reviewers ----------------------------------------------------------------------------
    def reviewer_id(self, name: str, subject: str | None = None) -> int:
        """The id of reviewer ``name`` (created on first use; names are trimmed, case kept)."""
        name = " ".join(str(name or "").split())
        if not name:
            raise StoreError("a reviewer name is required")
        if len(name) > 200:
            raise StoreError("reviewer name is too long (200 characters at most)")
        with self._ids_lock:
            if name in self._reviewer_ids:
                return self._reviewer_ids[name]
        rid = self._get_or_create(Reviewer, {"name": name}, {"subject": subject, "created_at": now_iso()}, name, "reviewer")
        with self._ids_lock:
            self._reviewer_ids[name] = rid
        return rid

    def reviewers(self) -> list[str]:
        with self._tx(False) as conn:
            return list(conn.execute(select(Reviewer.name).order_by(Reviewer.name)).scalars())

    def _get_or_create(self, model, keys: dict, values: dict, who: str, entity: str) -> int:
        for _ in range(3):
            with self._tx(False) as conn:
                found = conn.execute(select(model.id).filter_by(**keys)).scalar()
            if found is not None:
                return int(found)
            try:
                with self._tx() as conn:
                    found = conn.execute(select(model.id).filter_by(**keys)).scalar()
                    if found is not None:
                        return int(found)
                    new_id = conn.execute(insert(model).values(**keys, **values).returning(model.id)).scalar_one()
                    self._audit(conn, who, "create", entity, str(new_id), None, None, {**keys})
                    return int(new_id)
            except StoreConflict:  # somebody created it in between (PostgreSQL unique violation)
                continue
        raise StoreError(f"could not create {entity} {keys}")

    # ---- loops --------------------------------------------------------------------------------
    def register_loop(self, cine, *, identity: LoopIdentity | None = None) -> LoopRef:
        """File a loop under its study and series (idempotent) and return its :class:`LoopRef`."""
        ident = identity or identify(cine)
        with self._ids_lock:
            if ident.loop_key in self._loop_refs:
                return self._loop_refs[ident.loop_key]
        ref = self.loop(ident.loop_key)
        if ref is None:
            ts = now_iso()
            study_id = self._get_or_create(Study, {"key": ident.study_key}, {"created_at": ts}, "msus", "study")
            series_id = self._get_or_create(
                Series, {"key": ident.series_key}, {"study_id": study_id, "created_at": ts}, "msus", "series"
            )
            fps = getattr(cine, "fps", None)
            self._get_or_create(
                Loop,
                {"key": ident.loop_key},
                {
                    "series_id": series_id,
                    "kind": str(getattr(cine, "kind", "") or "")[:16],
                    "source_name": str(getattr(cine, "source_name", "") or "")[-512:],
                    "n_frames": int(cine.n_frames),
                    "rows": int(cine.rows),
                    "columns": int(cine.columns),
                    "fps": float(fps) if fps else None,
                    "created_at": ts,
                },
                "msus",
                "loop",
            )
            ref = self.loop(ident.loop_key)
        with self._ids_lock:
            self._loop_refs[ident.loop_key] = ref
        return ref

    def loop(self, key: str) -> LoopRef | None:
        """The stored loop with this key, or None."""
        with self._tx(False) as conn:
            row = conn.execute(loop_select().where(Loop.key == key)).first()
        return None if row is None else loop_ref(row)

    def _loop_ref(self, loop) -> LoopRef:
        if isinstance(loop, LoopRef):
            return loop
        if isinstance(loop, str):
            with self._ids_lock:
                if loop in self._loop_refs:
                    return self._loop_refs[loop]
            ref = self.loop(loop)
            if ref is None:
                raise StoreError(f"no stored loop with key {loop}")
            with self._ids_lock:
                self._loop_refs[loop] = ref
            return ref
        return self.register_loop(loop)  # a Cine

    # ---- measurements -------------------------------------------------------------------------
    def add_measurement(self, loop, m: Measurement, *, reviewer: str | None = None) -> StoredMeasurement:
        """Save a new caliper on ``loop`` (a Cine, LoopRef or loop key) for ``reviewer``.

        ``reviewer`` defaults to ``m.reviewer``.  Saving the same ``m.id`` twice is refused.
        """
        who = reviewer or m.reviewer
        rid = self.reviewer_id(who)
        ref = self._loop_ref(loop)
        self._check_measurement(m, ref)
        ts = now_iso()
        values = dict(
            m_columns(m), id=m.id, loop_id=ref.id, reviewer_id=rid, created_at=m.created_at or ts, updated_at=ts, version=1
        )
        try:
            with self._tx() as conn:
                self._check_unlocked(conn, ref.id, self._name(who))
                conn.execute(insert(MeasurementRow).values(**values))
                self._audit(conn, self._name(who), "create", "measurement", m.id, ref.id, None, m_snapshot(MeasurementRow(**values)))
                self._refresh_head(conn, ref.id, self._name(who))
        except StoreConflict:  # primary key taken
            raise StoreConflict(f"measurement {m.id} is already saved; update it instead") from None
        return StoredMeasurement(dataclasses.replace(m, reviewer=self._name(who), created_at=values["created_at"]), 1, ref.key, ts)

    def update_measurement(self, m: Measurement, *, expected_version: int, reviewer: str | None = None) -> StoredMeasurement:
        """Replace a saved caliper (moved ends, new label) if it is still at ``expected_version``.

        Raises :class:`StoreConflict` when someone else changed or deleted it meanwhile, and
        :class:`~msus.errors.StoreError` when it belongs to another reviewer.
        """
        who = self._name(reviewer or m.reviewer)
        ts = now_iso()
        with self._tx() as conn:
            row = conn.execute(select(MeasurementRow).where(MeasurementRow.id == m.id)).scalar()
            if row is None:
                raise StoreError(f"measurement {m.id} is not saved")
            owner = self._reviewer_name(conn, row.reviewer_id)
            self._check_owner(owner, who, "move or relabel")
            self._check_unlocked(conn, row.loop_id, owner)
            ref = self._loop_by_id(conn, row.loop_id)
            self._check_measurement(m, ref)
            before = m_snapshot(row)
            values = dict(m_columns(m), updated_at=ts, version=MeasurementRow.version + 1)
            res = conn.execute(update(MeasurementRow).where(*m_live_at(m.id, expected_version)).values(**values))
            if res.rowcount != 1:
                cur = conn.execute(select(MeasurementRow.version, MeasurementRow.deleted_at).where(MeasurementRow.id == m.id)).first()
                state = "deleted" if cur.deleted_at else f"changed (now version {cur.version})"
                raise StoreConflict(
                    f"measurement was {state} since you loaded version {expected_version}; reload it",
                    current_version=cur.version,
                )
            new_row = conn.execute(select(MeasurementRow).where(MeasurementRow.id == m.id)).scalar_one()
            self._audit(conn, who, "update", "measurement", m.id, row.loop_id, before, m_snapshot(new_row))
            self._refresh_head(conn, row.loop_id, owner)
            version = new_row.version
        return StoredMeasurement(dataclasses.replace(m, reviewer=owner), version, ref.key, ts)

    def delete_measurement(self, measurement_id: str, *, expected_version: int, reviewer: str) -> None:
        """Delete a caliper (a tombstone: it stays in the database and the audit log)."""
        who = self._name(reviewer)
        ts = now_iso()
        with self._tx() as conn:
            row = conn.execute(select(MeasurementRow).where(MeasurementRow.id == measurement_id)).scalar()
            if row is None:
                raise StoreError(f"measurement {measurement_id} is not saved")
            self._check_owner(self._reviewer_name(conn, row.reviewer_id), who, "delete")
            self._check_unlocked(conn, row.loop_id, who)
            res = conn.execute(
                update(MeasurementRow)
                .where(*m_live_at(measurement_id, expected_version))
                .values(deleted_at=ts, updated_at=ts, version=MeasurementRow.version + 1)
            )
            if res.rowcount != 1:
                raise StoreConflict(
                    f"measurement was changed or deleted since you loaded version {expected_version}; reload it",
                    current_version=row.version,
                )
            self._audit(conn, who, "delete", "measurement", measurement_id, row.loop_id, m_snapshot(row), None)
            self._refresh_head(conn, row.loop_id, who)

    def measurements(self, loop, *, reviewer: str | None = None, include_deleted: bool = False) -> list[StoredMeasurement]:
        """Saved calipers of a loop (oldest first), optionally one reviewer's."""
        ref = self._loop_ref(loop)
        q = (
            select(MeasurementRow, Reviewer.name)
            .join(Reviewer, MeasurementRow.reviewer_id == Reviewer.id)
            .where(MeasurementRow.loop_id == ref.id)
            .order_by(MeasurementRow.created_at, MeasurementRow.id)
        )
        if not include_deleted:
            q = q.where(MeasurementRow.deleted_at.is_(None))
        if reviewer:
            q = q.where(Reviewer.name == self._name(reviewer))
        with self._tx(False) as conn:
            rows = conn.execute(q).all()
        return [to_stored_measurement(r, name, ref.key) for r, name in rows]

    @staticmethod
    def _check_measurement(m: Measurement, ref: LoopRef) -> None:
        if m.kind not in KINDS:
            raise StoreError(f"unknown measurement kind {m.kind!r}")
        if not 0 <= int(m.frame_index) < ref.n_frames:
            raise StoreError(f"frame {int(m.frame_index)} is outside the loop ({ref.n_frames} frames)")

    # ---- small helpers ------------------------------------------------------------------------
    @staticmethod
    def _name(name) -> str:
        name = " ".join(str(name or "").split())
        if not name:
            raise StoreError("a reviewer name is required")
        return name

    @staticmethod
    def _check_owner(owner: str, who: str, what: str) -> None:
        if owner != who:
            raise StoreError(f"this caliper belongs to {owner}; {who} cannot {what} it (add your own instead)")

    @staticmethod
    def _reviewer_name(conn, rid: int) -> str:
        return conn.execute(select(Reviewer.name).where(Reviewer.id == rid)).scalar_one()

    def _loop_by_id(self, conn, loop_id: int) -> LoopRef:
        return loop_ref(conn.execute(loop_select().where(Loop.id == loop_id)).one())


