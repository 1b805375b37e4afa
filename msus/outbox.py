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
not.  A claim left behind by a crash goes stale after :data:`STALE_CLAIM_S` and is retried the
same careful way.

Statuses: ``queued`` → ``sending`` → ``sent`` | ``queued`` (retry later) | ``rejected``.

*Repaired copies*: a file with stray top-level delimiter items (e.g. ``(FFFE,E0DD)``, common in
real archives, refused by DCMTK-based archives) is queued as a repaired in-memory copy without
them (:func:`msus.io.repair.repaired_bytes`); the user's file is never modified.  The row's
``note`` and the :class:`SendResult` ``warnings`` name the dropped tags (tags only, no PHI).
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pydicom
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from msus.errors import MsusError, PacsError, PacsRejected, PacsUnavailable, StoreError
from msus.io.repair import repaired_bytes
from msus.measure import now_iso
from msus.store.engine import make_engine, resolve_url
from msus.store.models import OutboxRow  # noqa: F401 (the table, created by store migration 0002)

logger = logging.getLogger(__name__)

STATUSES = ("queued", "sending", "sent", "rejected")
#: A ``sending`` claim older than this (s) is considered abandoned (the sender crashed).
STALE_CLAIM_S = 300.0


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


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id, archive_url=row.archive_url, sop_instance_uid=row.sop_instance_uid,
        study_instance_uid=row.study_instance_uid, series_instance_uid=row.series_instance_uid,
        kind=row.kind, label=row.label, size_bytes=row.size_bytes, status=row.status,
        attempts=row.attempts, posts=row.posts, last_error=row.last_error, note=row.note,
        created_at=row.created_at, updated_at=row.updated_at, sent_at=row.sent_at,
    )


class _SenderLock:
    """An advisory lock (``fcntl.flock``) a sender holds on one row while it sends it.

    The kernel drops the lock when the sender dies (even ``kill -9``), so a later flush on the
    same machine that can take the lock knows the ``sending`` row was abandoned and takes it
    over at once, instead of waiting :data:`STALE_CLAIM_S` (the archive de-duplicates anyway).
    Lock files live in ``<data dir>/outbox-locks``, named by the store URL and the row id.
    """

    def __init__(self, engine, row_id: int):
        import hashlib

        from msus.store.engine import data_dir

        url = str(getattr(engine, "url", ""))
        tag = hashlib.sha256(url.encode()).hexdigest()[:12]
        self.path = data_dir() / "outbox-locks" / f"{tag}-{int(row_id)}.lock"
        self._fh = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when a live sender holds it (or locks are unavailable)."""
        try:
            import fcntl

            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+b")
        except (ImportError, OSError):
            return False
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._fh = fh
        return True

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the flock
            self._fh = None
            try:
                self.path.unlink()
            except OSError:
                pass


def _sender_gone(engine, row_id: int) -> bool:
    """True when no live process on this machine holds the row's sender lock."""
    lock = _SenderLock(engine, row_id)
    if lock.acquire():
        lock._fh.close()  # only probing: the sender that claims it takes the lock again
        lock._fh = None
        return True
    return False


def _stale_before() -> str:
    """Time stamp before which a ``sending`` claim counts as abandoned (:data:`STALE_CLAIM_S` ago)."""
    return (datetime.now(timezone.utc) - timedelta(seconds=STALE_CLAIM_S)).isoformat(timespec="milliseconds")


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
        from msus.store.migrate import upgrade

        self.engine = engine or default_engine()
        try:  # the table is part of the store's schema (migration 0002); a no-op when current
            upgrade(self.engine)
        except MsusError:
            raise
        except Exception as exc:
            logger.debug("opening the outbox failed", exc_info=True)
            raise StoreError(f"cannot open the PACS outbox: {type(exc).__name__}: {exc}") from exc

    def _run(self, fn, write: bool = False):
        from sqlalchemy.orm import Session

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
        return self._enqueue(_prepared(obj), archive_url, kind=kind, label=label)

    def _enqueue(self, prepared: tuple[bytes, str, str], archive_url: str, *, kind: str, label: str) -> OutboxItem:
        data, label2, note = prepared
        ds = _header(data)
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
            return _item(row)

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
            return [_item(r) for r in session.scalars(q)]

        return self._run(fn)

    def get(self, sop_instance_uid: str, archive_url: str) -> OutboxItem | None:
        def fn(session):
            row = session.scalars(
                select(OutboxRow).where(
                    OutboxRow.archive_url == archive_url, OutboxRow.sop_instance_uid == sop_instance_uid
                )
            ).first()
            return _item(row) if row else None

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
            return _item(row)

        return self._run(fn, write=True)

    # ---- sending --------------------------------------------------------------------------
    def _claim(self, row_id: int, *, takeover: bool = False) -> bytes | None:
        """Atomically take a row for sending; its payload, or None if someone else has it.

        ``takeover``: the row's sender is known dead (its lock was free), take a ``sending`` row now.
        """
        stale = _stale_before() if not takeover else "9999"

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
        lock = _SenderLock(self.engine, row_id)
        if not lock.acquire():  # a live sender on this machine has it
            if self._status(row_id) == "sending":
                return "busy", "another sender has it"
        payload = self._claim(row_id, takeover=lock._fh is not None)
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
        """Send queued rows for ``archive`` (a :class:`msus.io.dicomweb.Archive`), oldest first.

        Stops early when the archive is unreachable (the rest would fail the same way).
        """
        url = archive.config.url
        cutoff = _stale_before()
        todo = [
            i for i in self.items(archive_url=url)
            if i.status == "queued" or (i.status == "sending" and (i.updated_at < cutoff or _sender_gone(self.engine, i.id)))
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
    prepared = _prepared(obj)
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


def _prepared(obj) -> tuple[bytes, str, str]:
    """(bytes to queue, label, note): the object's bytes, repaired in memory when needed."""
    data, label = _payload(obj)
    fixed, removed = repaired_bytes(data)
    note = ""
    if removed:
        note = (f"dropped unreadable top-level element{'s' if len(removed) > 1 else ''} "
                f"{', '.join(removed[:8])} from the copy sent (the source file is unchanged)")
    return fixed, label, note


def _payload(obj) -> tuple[bytes, str]:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj), ""
    if isinstance(obj, pydicom.Dataset):
        buf = io.BytesIO()
        try:
            obj.save_as(buf, enforce_file_format=True)
        except Exception as exc:
            logger.debug("_payload: cannot encode the dataset", exc_info=True)
            raise PacsError(f"cannot encode the DICOM object to queue it: {exc}") from exc
        return buf.getvalue(), str(obj.get("SeriesDescription", "") or "")
    path = Path(obj)
    try:
        if path.exists() and not path.is_file():
            raise PacsError(f"cannot send {path.name}: not a regular file (a pipe, device or folder)")
        return path.read_bytes(), path.name
    except OSError as exc:
        raise PacsError(f"cannot read {path.name}: {exc.strerror or exc}") from exc


def _header(data: bytes) -> pydicom.Dataset:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        uid = str(ds.SOPInstanceUID)
    except Exception as exc:
        logger.debug("_header: not DICOM", exc_info=True)
        raise PacsError("not a DICOM object with a SOP Instance UID: nothing queued") from exc
    from msus.io.dicomweb import check_uid

    check_uid(uid, "SOP instance UID")
    return ds
