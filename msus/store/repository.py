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
import uuid

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from msus.calibration import Distance
from msus.errors import FindingLocked, StoreError
from msus.measure import KINDS, Measurement
from msus.store.engine import describe, make_engine, resolve_url
from msus.store.identity import LoopIdentity, identify
from msus.store.models import AuditEvent, FindingRow, Loop, MeasurementRow, Reviewer, Series, Study
from msus.store.signing import Signing
from msus.store.values import (
    AuditEntry,
    head_of,
    LoopRef,
    STATUSES,
    StoreConflict,
    StoredFinding,
    StoredMeasurement,
    StudyListRow,
    SIGNED,
    _opt_float,
    finding_columns,
    finding_snapshot,
    finding_origin,
    now_iso,
)


def _m_snapshot(r: MeasurementRow) -> dict:
    return {
        "frame_index": r.frame_index,
        "x1": r.x1,
        "y1": r.y1,
        "x2": r.x2,
        "y2": r.y2,
        "length_px": r.length_px,
        "length_mm": r.length_mm,
        "calibration_source": r.calibration_source,
        "region_index": r.region_index,
        "label": r.label,
        "role": r.role,
        "note": r.note,
        "kind": r.kind,
        "version": r.version,
    }


def _m_columns(m: Measurement) -> dict:
    """The ``measurements`` columns that come from the caliper itself (ends, length, calibration, label)."""
    d = m.distance
    return dict(
        frame_index=int(m.frame_index),
        x1=float(m.x1),
        y1=float(m.y1),
        x2=float(m.x2),
        y2=float(m.y2),
        length_px=float(d.distance_px),
        length_mm=_opt_float(d.distance_mm),
        calibration_source=d.calibration_source,
        region_index=d.region_index,
        mm_per_px_x=_opt_float(d.mm_per_px_x),
        mm_per_px_y=_opt_float(d.mm_per_px_y),
        warnings=json.dumps(list(d.warnings)),
        label=m.label,
        role=m.role,
        note=m.note,
        kind=m.kind,
    )


def _m_live_at(measurement_id: str, expected_version: int) -> tuple:
    """WHERE conditions of an optimistic write: this caliper, still at that version, not deleted."""
    return (
        MeasurementRow.id == measurement_id,
        MeasurementRow.version == int(expected_version),
        MeasurementRow.deleted_at.is_(None),
    )


_LIST_VALUES = ("gap_rest_mm", "gap_contraction_mm", "retraction_mm", "signed_by", "amendment_no")
_BASELINE = ("rest_frame", "contraction_frame", "gap_rest_mm", "gap_contraction_mm", "gap_rest_px",
             "gap_contraction_px", "retraction_mm", "classification", "reasons")


def _baseline(cols: dict) -> dict:
    """The values a finding was saved with (the analysis'), kept for :func:`msus.record.finding_values`."""
    return {k: cols.get(k) for k in _BASELINE}


def _locked_text(row) -> str:
    return (f"this finding is {row.status} (signed by {row.signed_by or 'a reviewer'}) and can no longer be changed; "
            "amend it to record a change")


# ---- the store -------------------------------------------------------------------------------------
class Store(Signing):
    """The findings store on one database (see :func:`open_store`).  Thread-safe."""

    def __init__(self, url: str | None = None, *, migrate: bool = True):
        self.url = resolve_url(url)
        self.engine = make_engine(self.url)
        self._write = self.engine.execution_options(msus_write=True)
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
        return _Tx(self._write if write else self.engine, self.url, lock)

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
            row = conn.execute(
                select(Loop, Series.key, Study.key)
                .join(Series, Loop.series_id == Series.id)
                .join(Study, Series.study_id == Study.id)
                .where(Loop.key == key)
            ).first()
        if row is None:
            return None
        lp, series_key, study_key = row
        return LoopRef(lp.id, lp.key, series_key, study_key, lp.kind, lp.source_name, lp.n_frames, lp.rows, lp.columns, lp.fps)

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
            _m_columns(m), id=m.id, loop_id=ref.id, reviewer_id=rid, created_at=m.created_at or ts, updated_at=ts, version=1
        )
        try:
            with self._tx() as conn:
                self._check_unlocked(conn, ref.id, self._name(who))
                conn.execute(insert(MeasurementRow).values(**values))
                self._audit(conn, self._name(who), "create", "measurement", m.id, ref.id, None, _m_snapshot(MeasurementRow(**values)))
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
            before = _m_snapshot(row)
            values = dict(_m_columns(m), updated_at=ts, version=MeasurementRow.version + 1)
            res = conn.execute(update(MeasurementRow).where(*_m_live_at(m.id, expected_version)).values(**values))
            if res.rowcount != 1:
                cur = conn.execute(select(MeasurementRow.version, MeasurementRow.deleted_at).where(MeasurementRow.id == m.id)).first()
                state = "deleted" if cur.deleted_at else f"changed (now version {cur.version})"
                raise StoreConflict(
                    f"measurement was {state} since you loaded version {expected_version}; reload it",
                    current_version=cur.version,
                )
            new_row = conn.execute(select(MeasurementRow).where(MeasurementRow.id == m.id)).scalar_one()
            self._audit(conn, who, "update", "measurement", m.id, row.loop_id, before, _m_snapshot(new_row))
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
                .where(*_m_live_at(measurement_id, expected_version))
                .values(deleted_at=ts, updated_at=ts, version=MeasurementRow.version + 1)
            )
            if res.rowcount != 1:
                raise StoreConflict(
                    f"measurement was changed or deleted since you loaded version {expected_version}; reload it",
                    current_version=row.version,
                )
            self._audit(conn, who, "delete", "measurement", measurement_id, row.loop_id, _m_snapshot(row), None)
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
        return [self._to_stored_m(r, name, ref.key) for r, name in rows]

    @staticmethod
    def _to_stored_m(r: MeasurementRow, reviewer: str, loop_key: str) -> StoredMeasurement:
        dist = Distance(
            r.length_px,
            r.length_mm,
            r.calibration_source,
            r.region_index,
            r.mm_per_px_x,
            r.mm_per_px_y,
            tuple(json.loads(r.warnings or "[]")),
        )
        m = Measurement(r.frame_index, r.x1, r.y1, r.x2, r.y2, dist, r.label, r.kind, reviewer, r.id, r.created_at,
                        role=r.role or "", note=r.note or "")
        return StoredMeasurement(m, r.version, loop_key, r.updated_at)

    @staticmethod
    def _check_measurement(m: Measurement, ref: LoopRef) -> None:
        if m.kind not in KINDS:
            raise StoreError(f"unknown measurement kind {m.kind!r}")
        if not 0 <= int(m.frame_index) < ref.n_frames:
            raise StoreError(f"frame {int(m.frame_index)} is outside the loop ({ref.n_frames} frames)")

    # ---- findings -----------------------------------------------------------------------------
    def save_finding(self, loop, finding, *, reviewer: str, kind: str = "manual", status: str = "draft",
                     once_key: str | None = None) -> StoredFinding:
        """Save a new finding (the analysis dataclass, or a dict with the same keys).

        With ``once_key`` the write is idempotent: the finding's id is derived from the key, and
        a second save with the same key (a retried batch task, another worker) returns the
        finding already saved instead of adding another.
        """
        if kind not in KINDS:
            raise StoreError(f"unknown finding kind {kind!r}")
        if status not in STATUSES[:2]:  # "amended" is given by signing an amendment
            raise StoreError(f"unknown status {status!r} (draft or final)")
        who = self._name(reviewer)
        rid = self.reviewer_id(who)
        ref = self._loop_ref(loop)
        cols, extra = finding_columns(finding)
        extra["automatic"] = _baseline(cols)
        ts = now_iso()
        fid = once_id(once_key) if once_key else uuid.uuid4().hex
        values = dict(
            cols,
            id=fid,
            loop_id=ref.id,
            reviewer_id=rid,
            reasons=json.dumps(cols["reasons"]),
            kind=kind,
            status=status,
            extra=json.dumps(extra),
            created_at=ts,
            updated_at=ts,
            version=1,
            amendment_no=0,
        )
        if status == "final":
            values.update(signed_by=who, signed_at=ts)
        try:
            with self._tx() as conn:
                if not once_key or conn.execute(select(FindingRow.id).where(FindingRow.id == fid)).scalar() is None:
                    self._refuse_over_signed(conn, ref.id)
                    values.update(self._computed(conn, ref.id, values, who))
                    conn.execute(insert(FindingRow).values(**values))
                    self._audit(conn, who, "create", "finding", fid, ref.id, None, finding_snapshot(FindingRow(**values)))
        except StoreConflict:
            if not once_key:
                raise
            return self._finding(fid)  # written meanwhile by a concurrent writer with the same key
        return self._finding(fid)

    def update_finding(
        self,
        finding_id: str,
        changes=None,
        *,
        expected_version: int,
        reviewer: str,
        status: str | None = None,
        kind: str | None = None,
    ) -> StoredFinding:
        """Change a finding (new values and/or status) if it is still at ``expected_version``.

        ``changes`` is a finding dataclass or dict (all its known fields replace the stored ones);
        ``status="final"`` marks it final.  A final finding is read-only.
        """
        who = self._name(reviewer)
        self.reviewer_id(who)
        if status is not None and status not in STATUSES[:2]:
            raise StoreError(f"unknown status {status!r} (draft or final)")
        if kind is not None and kind not in KINDS:
            raise StoreError(f"unknown finding kind {kind!r}")
        ts = now_iso()
        with self._tx() as conn:
            row = conn.execute(select(FindingRow).where(FindingRow.id == finding_id)).scalar()
            if row is None or row.deleted_at:
                raise StoreError(f"finding {finding_id} is not saved")
            if row.status in SIGNED and row.version == int(expected_version):
                raise FindingLocked(_locked_text(row))
            if row.superseded_by and row.version == int(expected_version):
                raise FindingLocked("this finding was amended; change its newest version instead")
            before = finding_snapshot(row)
            old_status, old_version = row.status, row.version
            values: dict = {"updated_at": ts, "version": FindingRow.version + 1}
            extra = json.loads(row.extra or "{}")
            if changes is not None:
                cols, new_extra = finding_columns(changes)
                extra = {**new_extra, "automatic": _baseline(cols)}
                values.update(cols, reasons=json.dumps(cols["reasons"]))
            if kind is not None:
                values["kind"] = kind
            current = {**{k: getattr(row, k) for k in ("classification", "defect_thickness_fraction", "kind")},
                       "reasons": json.loads(row.reasons or "[]"), **values, "extra": json.dumps(extra)}
            values.update(self._computed(conn, row.loop_id, current, self._reviewer_name(conn, row.reviewer_id)))
            if status == "final":
                values.update(status="amended" if row.supersedes else "final", signed_by=who, signed_at=ts)
            elif status is not None:
                values["status"] = status
            res = conn.execute(
                update(FindingRow)
                .where(FindingRow.id == finding_id, FindingRow.version == int(expected_version))
                .values(**values)
            )
            if res.rowcount != 1:
                raise StoreConflict(
                    f"finding was changed since you loaded version {expected_version} (now version {old_version}); reload it",
                    current_version=old_version,
                )
            new = conn.execute(select(FindingRow).where(FindingRow.id == finding_id)).scalar_one()
            action = "finalize" if status == "final" and old_status not in SIGNED else "update"
            self._audit(conn, who, action, "finding", finding_id, row.loop_id, before, finding_snapshot(new))
        return self._finding(finding_id)

    def finalize_finding(self, finding_id: str, *, expected_version: int, reviewer: str) -> StoredFinding:
        """Mark a finding final (draft → final), recorded in the audit log under ``reviewer``."""
        return self.update_finding(finding_id, expected_version=expected_version, reviewer=reviewer, status="final")

    def findings(self, loop) -> list[StoredFinding]:
        """Saved findings of a loop, oldest first."""
        ref = self._loop_ref(loop)
        with self._tx(False) as conn:
            rows = conn.execute(
                select(FindingRow, Reviewer.name)
                .join(Reviewer, FindingRow.reviewer_id == Reviewer.id)
                .where(FindingRow.loop_id == ref.id, FindingRow.deleted_at.is_(None))
                .order_by(FindingRow.created_at, FindingRow.id)
            ).all()
        return [self._to_finding(r, name, ref.key) for r, name in rows]

    def latest_finding(self, loop) -> StoredFinding | None:
        """The loop's current finding: the newest signed one or amendment not amended since, else
        the most recent draft (:func:`msus.store.values.head_of`)."""
        return head_of(self.findings(loop))

    def _finding(self, finding_id: str) -> StoredFinding:
        with self._tx(False) as conn:
            r, name, key = conn.execute(
                select(FindingRow, Reviewer.name, Loop.key)
                .join(Reviewer, FindingRow.reviewer_id == Reviewer.id)
                .join(Loop, FindingRow.loop_id == Loop.id)
                .where(FindingRow.id == finding_id)
            ).one()
        return self._to_finding(r, name, key)

    @staticmethod
    def _to_finding(r: FindingRow, reviewer: str, loop_key: str) -> StoredFinding:
        return StoredFinding(
            id=r.id,
            loop_key=loop_key,
            reviewer=reviewer,
            classification=r.classification,
            reasons=tuple(json.loads(r.reasons or "[]")),
            status=r.status,
            kind=r.kind,
            version=r.version,
            created_at=r.created_at,
            updated_at=r.updated_at,
            rest_frame=r.rest_frame,
            contraction_frame=r.contraction_frame,
            gap_rest_mm=r.gap_rest_mm,
            gap_contraction_mm=r.gap_contraction_mm,
            gap_rest_px=r.gap_rest_px,
            gap_contraction_px=r.gap_contraction_px,
            retraction_mm=r.retraction_mm,
            defect_thickness_fraction=r.defect_thickness_fraction,
            calibration_source=r.calibration_source,
            extra=json.loads(r.extra or "{}"),
            signed_by=r.signed_by,
            signed_at=r.signed_at,
            supersedes=r.supersedes,
            superseded_by=r.superseded_by,
            amendment_no=int(r.amendment_no or 0),
            amendment_reason=r.amendment_reason,
        )

    # ---- audit and study list -----------------------------------------------------------------
    def audit(self, loop=None, *, limit: int | None = None) -> list[AuditEntry]:
        """The audit log (oldest first), optionally for one loop."""
        q = select(AuditEvent).order_by(AuditEvent.id)
        if loop is not None:
            q = q.where(AuditEvent.loop_id == self._loop_ref(loop).id)
        if limit:
            q = q.limit(int(limit))
        with self._tx(False) as conn:
            rows = conn.execute(q).scalars().all()
        return [
            AuditEntry(
                r.id,
                r.at,
                r.reviewer,
                r.action,
                r.entity,
                r.entity_id,
                r.loop_id,
                None if r.before is None else json.loads(r.before),
                None if r.after is None else json.loads(r.after),
            )
            for r in rows
        ]

    def study_list(self) -> list[StudyListRow]:
        """Every stored loop with its measurement count, reviewers, finding status and last change."""
        with self._tx(False) as conn:
            loops = conn.execute(
                select(Loop, Series.key, Study.key)
                .join(Series, Loop.series_id == Series.id)
                .join(Study, Series.study_id == Study.id)
                .order_by(Loop.id)
            ).all()
            counts = dict(
                conn.execute(
                    select(MeasurementRow.loop_id, func.count())
                    .where(MeasurementRow.deleted_at.is_(None))
                    .group_by(MeasurementRow.loop_id)
                ).all()
            )
            who: dict[int, set] = {}
            for loop_id, name in conn.execute(
                select(MeasurementRow.loop_id, Reviewer.name)
                .join(Reviewer, MeasurementRow.reviewer_id == Reviewer.id)
                .where(MeasurementRow.deleted_at.is_(None))
                .distinct()
            ).all():
                who.setdefault(loop_id, set()).add(name)
            for loop_id, name in conn.execute(
                select(FindingRow.loop_id, Reviewer.name)
                .join(Reviewer, FindingRow.reviewer_id == Reviewer.id)
                .where(FindingRow.deleted_at.is_(None))
                .distinct()
            ).all():
                who.setdefault(loop_id, set()).add(name)
            per_loop: dict[int, list] = {}
            for r in conn.execute(
                select(FindingRow).where(FindingRow.deleted_at.is_(None)).order_by(FindingRow.created_at, FindingRow.id)
            ).scalars():
                per_loop.setdefault(r.loop_id, []).append(r)
            fnd = {loop_id: head_of(rows) for loop_id, rows in per_loop.items()}
            last = dict(
                conn.execute(select(AuditEvent.loop_id, func.max(AuditEvent.at)).group_by(AuditEvent.loop_id)).all()
            )
        out = []
        for lp, series_key, study_key in loops:
            n = int(counts.get(lp.id, 0))
            head = fnd.get(lp.id)
            status = head.status if head is not None else ("measured" if n else "new")
            out.append(
                StudyListRow(
                    lp.key, study_key, series_key, lp.source_name, lp.kind, lp.n_frames, n,
                    tuple(sorted(who.get(lp.id, ()))), status, head.classification if head else None, last.get(lp.id),
                    **({} if head is None else {k: getattr(head, k) for k in _LIST_VALUES}),
                    origin="" if head is None else finding_origin(head.kind, json.loads(head.extra or "{}")),
                )
            )
        return out

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
        lp, series_key, study_key = conn.execute(
            select(Loop, Series.key, Study.key)
            .join(Series, Loop.series_id == Series.id)
            .join(Study, Series.study_id == Study.id)
            .where(Loop.id == loop_id)
        ).one()
        return LoopRef(lp.id, lp.key, series_key, study_key, lp.kind, lp.source_name, lp.n_frames, lp.rows, lp.columns, lp.fps)


class _Tx:
    """``with`` block: one transaction; database failures become one-line StoreErrors."""

    def __init__(self, engine, url: str, lock=None):
        self._engine = engine
        self._url = url
        self._cm = None
        self._lock = lock

    def __enter__(self) -> Session:
        if self._lock is not None:
            self._lock.acquire()
        try:
            self._cm = self._engine.begin()
            conn = self._cm.__enter__()
        except OperationalError as exc:
            self._release()
            raise StoreError(f"cannot reach the database {describe(self._url)}: {_short(exc)}") from None
        except BaseException:
            self._release()
            raise
        self._session = Session(bind=conn, autoflush=False)
        return self._session

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __exit__(self, et, ev, tb):
        self._session.close()
        try:
            self._cm.__exit__(et, ev, tb)
        except IntegrityError as exc:
            raise StoreConflict(f"conflicting write: {_short(exc)}") from None
        except OperationalError as exc:
            raise StoreError(f"database write failed on {describe(self._url)}: {_short(exc)}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {_short(exc)}") from None
        finally:
            self._release()
        if isinstance(ev, IntegrityError):
            raise StoreConflict(f"conflicting write: {_short(ev)}") from None
        if isinstance(ev, OperationalError):
            raise StoreError(f"database write failed on {describe(self._url)}: {_short(ev)}") from None
        if isinstance(ev, SQLAlchemyError):
            raise StoreError(f"database error: {_short(ev)}") from None
        return False


def once_id(once_key: str) -> str:
    """The finding id of an idempotent write (:meth:`Store.save_finding` ``once_key``)."""
    import hashlib

    return "once-" + hashlib.sha256(str(once_key).encode()).hexdigest()[:40]


def _short(exc) -> str:
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(orig).split())[:200]
