"""The store read whole: the audit log and the study list (methods of :class:`msus.store.Store`)."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from msus.store.models import AuditEvent, FindingRow, Loop, MeasurementRow, Reviewer
from msus.store.rows import loop_select
from msus.store.values import AuditEntry, StudyListRow, finding_origin, head_of

_LIST_VALUES = ("gap_rest_mm", "gap_contraction_mm", "retraction_mm", "signed_by", "amendment_no")


class Listing:
    """Audit log and study list (mixed into :class:`msus.store.Store`)."""

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
            loops = conn.execute(loop_select().order_by(Loop.id)).all()
            counts = dict(
                conn.execute(
                    select(MeasurementRow.loop_id, func.count())
                    .where(MeasurementRow.deleted_at.is_(None))
                    .group_by(MeasurementRow.loop_id)
                ).all()
            )
            who: dict[int, set] = {}
            for model in (MeasurementRow, FindingRow):  # whoever measured or saved a finding
                for loop_id, name in conn.execute(
                    select(model.loop_id, Reviewer.name).join(Reviewer, model.reviewer_id == Reviewer.id)
                    .where(model.deleted_at.is_(None)).distinct()
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
