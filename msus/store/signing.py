"""Signing and amendments, and the finding's values kept equal to its reader's calipers.

Mixed into :class:`msus.store.Store`:

* **One value.**  After every caliper write of the reader (the finding's reviewer), the loop's
  current draft finding is recomputed by :func:`msus.record.finding_values` in the same
  transaction (audit action ``recompute``), so every view reads the finding's row and sees the
  values the reader's calipers give.  The analysis' own values stay in ``extra["automatic"]``.
* **Locked when signed.**  A final (or amended) finding and the reader's calipers on its loop are
  read-only: writes raise :class:`~msus.errors.FindingLocked`.  Other reviewers may still add
  their own calipers (second reads).
* **Amend.**  :meth:`Signing.amend_finding` opens a new version (a draft with a reason) that
  ``supersedes`` the signed one, which gets ``superseded_by``; the audit log's ``amend`` event
  links them.  Marking the new version final signs it with status ``amended``.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import insert, select, update

from msus.errors import FindingLocked, StoreError
from msus.record import finding_values, reclassify
from msus.store.models import FindingRow, MeasurementRow, Reviewer
from msus.store.rows import to_stored_measurement
from msus.store.values import SIGNED, StoreConflict, head_of, now_iso

REASON_MAX = 500
_COMPUTED = ("rest_frame", "contraction_frame", "gap_rest_mm", "gap_contraction_mm", "gap_rest_px",
             "gap_contraction_px", "retraction_mm", "classification", "reasons", "kind", "extra")


def _loads(v, default):
    if isinstance(v, str):
        return json.loads(v or json.dumps(default))
    return default if v is None else v


class Signing:
    """Signing, amendments and recomputation (methods of :class:`msus.store.Store`)."""

    # ---- the loop's current finding ------------------------------------------------------------
    def _head_row(self, conn, loop_id: int):
        rows = conn.execute(
            select(FindingRow).where(FindingRow.loop_id == loop_id, FindingRow.deleted_at.is_(None))
            .order_by(FindingRow.created_at, FindingRow.id)
        ).scalars().all()
        return head_of(rows)

    def _check_unlocked(self, conn, loop_id: int, owner: str) -> None:
        """Refuse a write to ``owner``'s calipers when they make the loop's signed finding."""
        head = self._head_row(conn, loop_id)
        if head is not None and head.status in SIGNED and self._reviewer_name(conn, head.reviewer_id) == owner:
            raise FindingLocked(
                f"these calipers make a {head.status} finding (signed by {head.signed_by or 'a reviewer'}); "
                "amend the finding to change them")

    def _refuse_over_signed(self, conn, loop_id: int) -> None:
        head = self._head_row(conn, loop_id)
        if head is not None and head.status in SIGNED:
            raise FindingLocked(f"this loop's finding is {head.status} (signed by {head.signed_by or 'a reviewer'}); "
                                "amend it instead of saving a new one")

    def _live_calipers(self, conn, loop_id: int) -> list:
        rows = conn.execute(
            select(MeasurementRow, Reviewer.name).join(Reviewer, MeasurementRow.reviewer_id == Reviewer.id)
            .where(MeasurementRow.loop_id == loop_id, MeasurementRow.deleted_at.is_(None))
            .order_by(MeasurementRow.created_at, MeasurementRow.id)
        ).all()
        return [to_stored_measurement(r, name, "").measurement for r, name in rows]

    def _computed(self, conn, loop_id: int, values: dict, reader: str) -> dict:
        """The finding columns its reader's calipers give (see :mod:`msus.record`)."""
        extra = dict(_loads(values.get("extra"), {}))
        reasons = list(_loads(values.get("reasons"), []))
        base = extra.get("automatic") or {k: values.get(k) for k in _COMPUTED[:7]}
        base.setdefault("classification", values.get("classification"))
        base.setdefault("reasons", reasons)
        vals = finding_values(self._live_calipers(conn, loop_id), reader=reader, automatic=base)
        by_caliper = [v for v in (vals.rest, vals.contraction) if v is not None and v.source == "caliper"]
        kind = values.get("kind") or "manual"
        if by_caliper:
            cols = vals.columns()
            cls, reasons = reclassify({"classification": base.get("classification") or values.get("classification"),
                                       "reasons": base.get("reasons") or reasons,
                                       "defect_thickness_fraction": values.get("defect_thickness_fraction")}, vals)
            if kind == "automatic" and any(v.kind != "automatic" for v in by_caliper):
                kind = "automatic-edited"
        else:
            cols = {k: base.get(k) for k in _COMPUTED[:7]}
            cls, reasons = base.get("classification") or values.get("classification"), list(base.get("reasons") or reasons)
        extra.update(automatic=base, sources=vals.sources(), caliper_ids=list(vals.used_ids))
        return dict(cols, classification=cls, reasons=json.dumps(reasons), kind=kind, extra=json.dumps(extra))

    def _refresh_head(self, conn, loop_id: int, reader: str) -> None:
        """Recompute the loop's current draft finding after a caliper write of its reader."""
        from msus.store.rows import f_snapshot as _f_snapshot

        head = self._head_row(conn, loop_id)
        if head is None or head.status in SIGNED or self._reviewer_name(conn, head.reviewer_id) != reader:
            return
        current = {k: getattr(head, k) for k in _COMPUTED}
        current["defect_thickness_fraction"] = head.defect_thickness_fraction
        new = self._computed(conn, loop_id, current, reader)
        same = [(_loads(new[k], None) == _loads(current[k], None)) if k in ("reasons", "extra") else new[k] == current[k]
                for k in _COMPUTED]
        if all(same):
            return
        before = _f_snapshot(head)
        conn.execute(update(FindingRow).where(FindingRow.id == head.id)
                     .values(**new, updated_at=now_iso(), version=FindingRow.version + 1))
        after = conn.execute(select(FindingRow).where(FindingRow.id == head.id)).scalar_one()
        self._audit(conn, reader, "recompute", "finding", head.id, loop_id, before, _f_snapshot(after))

    # ---- amendments -------------------------------------------------------------------------------
    def amend_finding(self, finding_id: str, *, reason: str, expected_version: int, reviewer: str):
        """Open a new version of a signed finding (a draft amending it, with ``reason``).

        The reader's calipers are writable again until the new version is marked final
        (:meth:`finalize_finding`), which signs it with status ``amended``.  Raises
        :class:`StoreConflict` when the finding changed since ``expected_version``, and
        :class:`~msus.errors.FindingLocked` when it was already amended.
        """
        from msus.store.rows import f_snapshot as _f_snapshot

        who = self._name(reviewer)
        self.reviewer_id(who)
        reason = " ".join(str(reason or "").split())
        if not reason:
            raise StoreError("an amendment needs a reason (what changes and why)")
        if len(reason) > REASON_MAX:
            raise StoreError(f"the reason is too long ({REASON_MAX} characters at most)")
        ts, new_id = now_iso(), uuid.uuid4().hex
        with self._tx() as conn:
            row = conn.execute(select(FindingRow).where(FindingRow.id == finding_id)).scalar()
            if row is None or row.deleted_at:
                raise StoreError(f"finding {finding_id} is not saved")
            if row.version != int(expected_version):
                raise StoreConflict(f"finding was changed since you loaded version {expected_version} "
                                    f"(now version {row.version}); reload it", current_version=row.version)
            if row.superseded_by:
                raise FindingLocked("this finding was already amended; amend its newest version")
            if row.status not in SIGNED:
                raise StoreError("only a signed finding is amended; a draft is changed directly")
            values = {c.name: getattr(row, c.name) for c in FindingRow.__table__.columns}
            values.update(id=new_id, status="draft", signed_by=None, signed_at=None, supersedes=row.id,
                          superseded_by=None, amendment_no=int(row.amendment_no or 0) + 1, amendment_reason=reason,
                          created_at=ts, updated_at=ts, deleted_at=None, version=1)
            conn.execute(insert(FindingRow).values(**values))
            conn.execute(update(FindingRow).where(FindingRow.id == row.id)
                         .values(superseded_by=new_id, version=FindingRow.version + 1))
            self._audit(conn, who, "amend", "finding", new_id, row.loop_id, {**_f_snapshot(row), "id": row.id},
                        {**_f_snapshot(FindingRow(**values)), "id": new_id})
        return self._finding(new_id)

    def finding_chain(self, finding_id: str) -> list:
        """The versions of a finding, oldest first, ending with ``finding_id`` (follows ``supersedes``)."""
        out, seen, fid = [], set(), finding_id
        while fid and fid not in seen:
            seen.add(fid)
            f = self._finding(fid)
            out.append(f)
            fid = f.supersedes
        return out[::-1]
