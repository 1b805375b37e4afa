"""Reports waiting to go to the archive: never lost, never sent twice.

Every DICOM object msus sends to a PACS (the SR report, the annotated loop) goes through the
outbox.  :func:`send` first stores the object's bytes in a local table (``pacs_outbox``, part of the
msus store's schema — :class:`msus.store.models.OutboxRow`, Alembic revision ``0002`` — by default
in the SQLite file in ``MSUS_DATA_DIR``) and only then tries STOW-RS.
If the archive is unreachable, slow or answers 5xx the row stays ``queued`` and
:meth:`Outbox.flush` sends it later.

*Never lost*: the bytes are committed locally before any network traffic; a row leaves
``queued`` only when the archive confirmed it holds the instance.  An archive that refuses the
object for good (malformed, conflicting) marks it ``rejected``, kept with the reason until
:meth:`Outbox.requeue`.

*Never sent twice*: rows are keyed by (archive URL, SOPInstanceUID).  A sender first claims a row
(an atomic ``queued → sending`` update, so two app sessions cannot both send it), then asks the
archive (QIDO-RS) whether it already holds that SOPInstanceUID — which covers a send whose
confirmation was lost (connection cut after the archive stored it) — and POSTs only when it does
not.  A claim left behind by a crash goes stale after :data:`msus.pacs.lock.STALE_CLAIM_S` and is retried the
same careful way.

Statuses: ``queued`` → ``sending`` → ``sent`` | ``queued`` (retry later) | ``rejected``.

*Repaired copies*: a file with stray top-level delimiter items (e.g. ``(FFFE,E0DD)``, common in
real archives, refused by DCMTK-based archives) is queued as a repaired in-memory copy without
them (:func:`msus.io.repair.repaired_bytes`); the user's file is never modified.  The row's
``note`` and the :class:`SendResult` ``warnings`` name the dropped tags (tags only, no PHI).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from msus.errors import MsusError, PacsError, PacsRejected, PacsUnavailable, StoreError
from msus.measure import now_iso
from msus.pacs.lock import SenderLock, sender_gone, stale_before
from msus.pacs.outbox_items import STATUSES, FlushResult, OutboxItem, SendResult, item_of
from msus.pacs.payload import prepared as prepare, sop_header
from msus.store.engine import make_engine, resolve_url
from msus.store.migrate import upgrade
from msus.store.models import OutboxRow

logger = logging.getLogger(__name__)

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def default_engine(url: str | None = None) -> Engine:
    """The msus store's engine for ``url`` (default ``MSUS_DATABASE_URL`` or the data folder's SQLite file).

    One engine per URL per process.
    """
    url = resolve_url(url)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = make_engine(url)
            _ENGINES[url] = engine
    return engine


class Outbox:
    """The queue of DICOM objects to send, in the store database.

    Parameters
    ----------
    engine
        SQLAlchemy engine; default :func:`default_engine` (``MSUS_DATABASE_URL`` or the SQLite
        file in ``MSUS_DATA_DIR``).
    """

    def __init__(self, engine: Engine | None = None):
        self.engine = engine or default_engine()
        try:  # the table is part of the store's schema (migration 0002); a no-op when current
            upgrade(self.engine)
        except MsusError:
            raise
        except Exception as exc:
            logger.debug("opening the outbox failed", exc_info=True)
            raise StoreError(f"cannot open the PACS outbox: {type(exc).__name__}: {exc}") from exc

    def _run(self, fn, write: bool = False):
        try:
            conn = self.engine.connect()
            if write:
                conn = conn.execution_options(msus_write=True)
            with conn, Session(bind=conn) as session:
                with session.begin():
                    return fn(session)
        except MsusError:
            raise
        except Exception as exc:
            logger.debug("an outbox transaction failed", exc_info=True)
            raise StoreError(f"PACS outbox: {type(exc).__name__}: {exc}") from exc

    # ---- queueing -------------------------------------------------------------------------
    def enqueue(self, obj, archive_url: str, *, kind: str = "dicom", label: str = "") -> OutboxItem:
        """Store ``obj`` (file path, bytes or pydicom Dataset) for sending to ``archive_url``.

        Queuing the same SOPInstanceUID for the same archive again changes nothing and returns
        the existing row (whatever its status): an instance is sent at most once.
        A file with stray top-level delimiter items is queued repaired (see the module docs).
        """
        return self._enqueue(prepare(obj), archive_url, kind=kind, label=label)

    def _enqueue(self, prepared: tuple[bytes, str, str], archive_url: str, *, kind: str, label: str) -> OutboxItem:
        data, label2, note = prepared
        ds = sop_header(data, "nothing queued")
        sop = str(ds.SOPInstanceUID)
        label = (label or label2)[:200]

        def fn(session):
            row = session.scalars(
                select(OutboxRow).where(OutboxRow.archive_url == archive_url, OutboxRow.sop_instance_uid == sop)
            ).first()
            if row is None:
                now = now_iso()
                row = OutboxRow(
                    archive_url=archive_url, sop_instance_uid=sop,
                    study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
                    series_instance_uid=str(ds.get("SeriesInstanceUID", "") or ""),
                    sop_class_uid=str(ds.get("SOPClassUID", "") or ""),
                    kind=kind, label=label, payload=data, size_bytes=len(data), status="queued",
                    attempts=0, posts=0, last_error="", note=note, created_at=now, updated_at=now,
                )
                session.add(row)
                session.flush()
            return item_of(row)

        return self._run(fn, write=True)

    def items(self, status: str | None = None, archive_url: str | None = None) -> list[OutboxItem]:
        """Rows, oldest first (payloads not loaded)."""
        if status is not None and status not in STATUSES:
            raise PacsError(f"outbox status must be one of {', '.join(STATUSES)}")

        def fn(session):
            q = select(OutboxRow).order_by(OutboxRow.id)
            if status:
                q = q.where(OutboxRow.status == status)
            if archive_url:
                q = q.where(OutboxRow.archive_url == archive_url)
            return [item_of(r) for r in session.scalars(q)]

        return self._run(fn)

    def get(self, sop_instance_uid: str, archive_url: str) -> OutboxItem | None:
        def fn(session):
            row = session.scalars(
                select(OutboxRow).where(
                    OutboxRow.archive_url == archive_url, OutboxRow.sop_instance_uid == sop_instance_uid
                )
            ).first()
            return item_of(row) if row else None

        return self._run(fn)

    def pending(self, archive_url: str | None = None) -> int:
        """Rows still to send (``queued`` or ``sending``)."""
        return sum(1 for i in self.items(archive_url=archive_url) if i.status in ("queued", "sending"))

    def requeue(self, sop_instance_uid: str, archive_url: str) -> OutboxItem:
        """Put a ``rejected`` row back in the queue (after fixing the cause)."""

        def fn(session):
            row = session.scalars(
                select(OutboxRow).where(
                    OutboxRow.archive_url == archive_url, OutboxRow.sop_instance_uid == sop_instance_uid
                )
            ).first()
            if row is None:
                raise PacsError(f"no outbox entry for {sop_instance_uid}")
            if row.status == "rejected":
                row.status = "queued"
                row.updated_at = now_iso()
            return item_of(row)

        return self._run(fn, write=True)

    # ---- sending --------------------------------------------------------------------------
    def _claim(self, row_id: int, *, takeover: bool = False) -> bytes | None:
        """Atomically take a row for sending; its payload, or None if someone else has it.

        ``takeover``: the row's sender is known dead (its lock was free), take a ``sending`` row now.
        """
        stale = stale_before() if not takeover else "9999"

        def fn(session):
            res = session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id == row_id,
                    (OutboxRow.status == "queued") | ((OutboxRow.status == "sending") & (OutboxRow.updated_at < stale)),
                )
                .values(status="sending", attempts=OutboxRow.attempts + 1, updated_at=now_iso())
            )
            if res.rowcount != 1:
                return None
            return session.get(OutboxRow, row_id).payload

        return self._run(fn, write=True)

    def _finish(self, row_id: int, status: str, *, error: str = "", note: str = "", posted: bool = False) -> None:
        def fn(session):
            row = session.get(OutboxRow, row_id)
            row.status = status
            row.updated_at = now_iso()
            if posted:
                row.posts += 1
            if error:
                row.last_error = error
            if note:
                row.note = note
            if status == "sent":
                row.sent_at = row.updated_at
                row.last_error = ""

        self._run(fn, write=True)

    def _send_row(self, archive, row_id: int, sop: str, study: str) -> tuple[str, str]:
        """Send one claimed row: (outcome, message) with outcome sent/already/retry/rejected/busy."""
        lock = SenderLock(self.engine, row_id)
        if not lock.acquire():  # a live sender on this machine has it
            if self._status(row_id) == "sending":
                return "busy", "another sender has it"
        payload = self._claim(row_id, takeover=lock.held)
        if payload is None:
            lock.release()
            return "busy", "another sender has it"
        try:
            return self._post_claimed(archive, row_id, sop, study, payload)
        finally:
            lock.release()

    def _status(self, row_id: int) -> str | None:
        def fn(session):
            row = session.get(OutboxRow, row_id)
            return None if row is None else row.status

        return self._run(fn)

    def _post_claimed(self, archive, row_id: int, sop: str, study: str, payload: bytes) -> tuple[str, str]:
        posted = False
        try:
            if archive.has_instance(sop, study or None):
                self._finish(row_id, "sent", note="already in the archive; not sent again")
                return "already", "already in the archive"
            posted = True
            archive.store([payload])
        except PacsUnavailable as exc:
            # The POST may or may not have reached the archive: the next flush asks it first.
            self._finish(row_id, "queued", error=str(exc), posted=posted)
            return "retry", str(exc)
        except PacsRejected as exc:
            status = "queued" if getattr(exc, "http_status", None) in (401, 403) else "rejected"
            self._finish(row_id, status, error=str(exc), posted=posted)
            return ("retry" if status == "queued" else "rejected"), str(exc)
        except PacsError as exc:
            self._finish(row_id, "rejected", error=str(exc), posted=posted)
            return "rejected", str(exc)
        except BaseException:
            self._finish(row_id, "queued", error="interrupted", posted=posted)
            raise
        self._finish(row_id, "sent", posted=True)
        return "sent", "sent"

    def flush(self, archive, *, limit: int | None = None) -> FlushResult:
        """Send queued rows for ``archive`` (a :class:`msus.pacs.client.Archive`), oldest first.

        Stops early when the archive is unreachable (the rest would fail the same way).
        """
        url = archive.config.url
        cutoff = stale_before()
        todo = [
            i for i in self.items(archive_url=url)
            if i.status == "queued" or (i.status == "sending" and (i.updated_at < cutoff or sender_gone(self.engine, i.id)))
        ]
        if limit is not None:
            todo = todo[: int(limit)]
        sent, already, retry, rejected = [], [], [], []
        for it in todo:
            outcome, msg = self._send_row(archive, it.id, it.sop_instance_uid, it.study_instance_uid)
            if outcome == "sent":
                sent.append(it.sop_instance_uid)
            elif outcome == "already":
                already.append(it.sop_instance_uid)
            elif outcome == "retry":
                retry.append((it.sop_instance_uid, msg))
                break
            elif outcome == "rejected":
                rejected.append((it.sop_instance_uid, msg))
        return FlushResult(
            sent=tuple(sent), already_in_archive=tuple(already), retry_later=tuple(retry),
            rejected=tuple(rejected), remaining=self.pending(url),
        )


def send(obj, archive, *, outbox: Outbox | None = None, kind: str = "dicom", label: str = "") -> SendResult:
    """Queue ``obj`` for ``archive`` and try to send it now.

    Returns a :class:`SendResult`; never raises for network trouble (the object stays queued
    and the result says so).  Raises :class:`PacsError` only when ``obj`` is not DICOM.
    """
    outbox = outbox or Outbox()
    prepared = prepare(obj)
    warnings = (prepared[2],) if prepared[2] else ()
    item = outbox._enqueue(prepared, archive.config.url, kind=kind, label=label)
    sop = item.sop_instance_uid
    result = _result_with(warnings)
    if item.status == "sent":
        return result("already_in_archive", sop, "already sent to the archive; not sent again", item)
    if item.status == "rejected":
        return result(
            "rejected", sop,
            f"the archive refused it earlier ({item.last_error}); fix the cause, then: msus pacs outbox --requeue {sop}",
            item,
        )
    outcome, msg = outbox._send_row(archive, item.id, sop, item.study_instance_uid)
    item = outbox.get(sop, archive.config.url) or item
    if outcome == "sent":
        return result("sent", sop, f"sent to {archive.config.host}", item)
    if outcome == "already":
        return result("already_in_archive", sop, "the archive already holds it; not sent again", item)
    if outcome == "rejected":
        return result("rejected", sop, f"{msg} (kept in the outbox)", item)
    if outcome == "busy":
        return result("queued", sop, "being sent by another session", item)
    return result("queued", sop, f"{msg}; queued, will be sent again later (msus pacs outbox --flush)", item)


def _result_with(warnings: tuple[str, ...]):
    def make(status: str, sop: str, message: str, item: OutboxItem) -> SendResult:
        return SendResult(status, sop, message, item, warnings)

    return make
