"""Findings of the store: save, change, finalize, read (methods of :class:`msus.store.Store`).

A finding's values follow its reader's calipers (:mod:`msus.store.signing`); the analysis' own
values stay in ``extra["automatic"]``.  Every write is one transaction with its audit event.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from sqlalchemy import select, update, insert

from msus.errors import FindingLocked, StoreError
from msus.measure import KINDS
from msus.store.models import FindingRow, Loop, Reviewer
from msus.store.rows import baseline, f_snapshot, locked_text, to_finding
from msus.store.tx import once_id
from msus.store.values import (SIGNED, STATUSES, StoreConflict, StoredFinding, analysis_finding, finding_columns,
                               head_of, now_iso)


class Findings:
    """Saving and reading findings (mixed into :class:`msus.store.Store`)."""

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
        extra["automatic"] = baseline(cols)
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
                    self._audit(conn, who, "create", "finding", fid, ref.id, None, f_snapshot(FindingRow(**values)))
        except StoreConflict:
            if not once_key:
                raise
            return self._finding(fid)  # written meanwhile by a concurrent writer with the same key
        return self._finding(fid)

    def save_analysis(self, loop, result, *, reviewer: str) -> StoredFinding | None:
        """Save an analysis result as the loop's draft automatic finding, once per distinct result.

        The rules: a result without a classification is not a finding; the same result (its
        :func:`analysis_digest`, kept in ``extra["analysis_digest"]``) is saved once; a signed
        finding or an open amendment stands, and a new analysis does not replace it.  Returns the
        finding written, or None when nothing was.
        """
        d = analysis_finding(result)
        if not d.get("classification"):
            return None
        digest = analysis_digest(d)
        latest = self.latest_finding(loop)
        if latest is not None and (latest.extra.get("analysis_digest") == digest or latest.signed or latest.supersedes):
            return None
        return self.save_finding(loop, {**d, "analysis_digest": digest}, reviewer=reviewer, kind="automatic")

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
                raise FindingLocked(locked_text(row))
            if row.superseded_by and row.version == int(expected_version):
                raise FindingLocked("this finding was amended; change its newest version instead")
            before = f_snapshot(row)
            old_status, old_version = row.status, row.version
            values: dict = {"updated_at": ts, "version": FindingRow.version + 1}
            extra = json.loads(row.extra or "{}")
            if changes is not None:
                cols, new_extra = finding_columns(changes)
                extra = {**new_extra, "automatic": baseline(cols)}
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
            self._audit(conn, who, action, "finding", finding_id, row.loop_id, before, f_snapshot(new))
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
        return [to_finding(r, name, ref.key) for r, name in rows]

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
        return to_finding(r, name, key)



def analysis_digest(finding: dict) -> str:
    """A content digest of an analysis finding (:func:`msus.store.analysis_finding`): equal results, equal digests."""
    return hashlib.sha256(json.dumps(finding, sort_keys=True, default=str).encode()).hexdigest()
