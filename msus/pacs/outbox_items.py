"""What the outbox reports: one row (:class:`OutboxItem`), one flush, one send.

Statuses: ``queued`` → ``sending`` → ``sent`` | ``queued`` (retry later) | ``rejected``.
``to_dict`` gives the JSON keys of ``msus pacs outbox --json`` (README).
"""

from __future__ import annotations

from dataclasses import dataclass

from msus.store.models import OutboxRow

STATUSES = ("queued", "sending", "sent", "rejected")


@dataclass(frozen=True)
class OutboxItem:
    """One row of the outbox (without its payload)."""

    id: int
    archive_url: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    kind: str
    label: str
    size_bytes: int
    status: str
    attempts: int
    posts: int
    last_error: str
    note: str
    created_at: str
    updated_at: str
    sent_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FlushResult:
    """What one :meth:`Outbox.flush` did (SOP Instance UIDs)."""

    sent: tuple[str, ...] = ()
    already_in_archive: tuple[str, ...] = ()
    retry_later: tuple[tuple[str, str], ...] = ()  # (uid, reason)
    rejected: tuple[tuple[str, str], ...] = ()
    remaining: int = 0  # rows still queued for this archive

    def to_dict(self) -> dict:
        return {
            "sent": list(self.sent),
            "already_in_archive": list(self.already_in_archive),
            "retry_later": [{"sop_instance_uid": u, "reason": r} for u, r in self.retry_later],
            "rejected": [{"sop_instance_uid": u, "reason": r} for u, r in self.rejected],
            "remaining": self.remaining,
        }


@dataclass(frozen=True)
class SendResult:
    """Outcome of :func:`send`: ``status`` is ``sent``, ``already_in_archive``, ``queued`` or ``rejected``."""

    status: str
    sop_instance_uid: str
    message: str
    item: OutboxItem
    #: What was changed on the way (e.g. dropped stray elements); tags only, no PHI.
    warnings: tuple[str, ...] = ()

    @property
    def delivered(self) -> bool:
        return self.status in ("sent", "already_in_archive")


def item_of(row: OutboxRow) -> OutboxItem:
    """The :class:`OutboxItem` of a row (its payload left out)."""
    return OutboxItem(
        id=row.id, archive_url=row.archive_url, sop_instance_uid=row.sop_instance_uid,
        study_instance_uid=row.study_instance_uid, series_instance_uid=row.series_instance_uid,
        kind=row.kind, label=row.label, size_bytes=row.size_bytes, status=row.status,
        attempts=row.attempts, posts=row.posts, last_error=row.last_error, note=row.note,
        created_at=row.created_at, updated_at=row.updated_at, sent_at=row.sent_at,
    )
