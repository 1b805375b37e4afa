"""One task of a batch: one loop loaded, analysed and its finding stored once (:func:`process_loop`).

The task is the same :func:`msus.analysis.analyze` as ``msus analyze``.  Because Dask may run it
twice (its worker died after writing, before reporting), the store write is idempotent
(:meth:`msus.store.Store.save_finding` ``once_key``: the finding's id comes from the loop, its
content digest and, with ``redo``, the batch), so a retried task never writes twice.

Each result is saved as a draft *automatic* finding of reviewer :data:`REVIEWER`; the batch facts
live in the finding's ``extra["batch"]`` (``digest``, ``batch_id``, ``date``, ``source``).  A loop
whose content digest already has a batch finding is skipped unless ``redo``; a loop whose finding
a reviewer signed is never re-analysed.  A loop that fails gets its one-line error in its row.
One store and one archive connection per worker process are reused by its tasks.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

from msus.batch.sources import BatchItem
from msus.errors import MsusError

logger = logging.getLogger(__name__)

REVIEWER = "msus batch"
#: Columns every row has, before the analysis columns (``msus analyze --json`` scalar keys).
BASE_COLUMNS = ("source", "series", "status", "error", "digest", "loop_key", "finding_id", "load_s", "analyze_s",
                "store_s", "total_s", "worker", "batch_id")
#: ``msus analyze --json`` scalar keys, for a table in which no loop was analysed.
ANALYSIS_COLUMNS = ("classification", "rest_frame", "contraction_frame", "rest_frame_source",
                    "contraction_frame_source", "gap_rest_mm", "gap_contraction_mm", "retraction_mm", "gap_rest_px",
                    "gap_contraction_px", "retraction_px", "defect_thickness_fraction", "disclaimer", "peetrons",
                    "bamic", "calibration_source", "calibration", "n_frames", "tracked", "fb_error_px",
                    "fb_error_mm")
STATUSES = ("analysed", "skipped", "failed")


@dataclass(frozen=True)
class BatchSettings:
    """What every task of one batch shares (pickled to the workers).

    ``store_url`` / ``pacs_config`` None: the worker's own environment (``MSUS_DATABASE_URL``,
    ``MSUS_PACS_*``) — the way for workers of an existing cluster.
    """

    batch_id: str
    date: str  # YYYY-MM-DD (UTC) the batch started: "automatic, batch of <date>"
    store_url: str | None = None
    pacs_config: object | None = None
    redo: bool = False
    analyze_kwargs: dict = field(default_factory=dict)

    @classmethod
    def new(cls, **kw) -> "BatchSettings":
        return cls(batch_id=uuid.uuid4().hex, date=time.strftime("%Y-%m-%d", time.gmtime()), **kw)

    @classmethod
    def local(cls, **kw) -> "BatchSettings":
        """Settings for workers on this machine: this process's store and archive configuration."""
        from msus.store import resolve_url

        if "pacs_config" not in kw:
            with contextlib.suppress(MsusError):
                from msus.pacs.config import load_config

                kw["pacs_config"] = load_config()
        return cls.new(store_url=kw.pop("store_url", None) or resolve_url(), **kw)


def process_loop(item: BatchItem, settings: BatchSettings) -> dict:
    """Analyse one loop and store its finding; the table row (never raises for a bad loop)."""
    t0 = time.perf_counter()
    row: dict = {"source": item.source, "series": item.series or "", "status": "failed", "error": "",
                 "batch_id": settings.batch_id, "worker": _worker_name()}
    try:
        with _open(item, settings) as cine:
            row["load_s"] = time.perf_counter() - t0
            _analyse_and_store(cine, item, settings, row)
    except MsusError as exc:
        row["error"] = str(exc)
    except Exception as exc:  # a bug or a library error: one line in the row, the traceback in the log
        logger.exception("batch: a loop failed (%s)", type(exc).__name__)  # never the path: it may name the patient
        row["error"] = " ".join(f"unexpected {type(exc).__name__}: {exc}".split())[:300]
    row["total_s"] = time.perf_counter() - t0
    return row


def _analyse_and_store(cine, item: BatchItem, settings: BatchSettings, row: dict) -> None:
    from msus.analysis import analyze
    from msus.store import analysis_finding, content_hash, identify
    from msus.store.values import head_of

    digest = content_hash(cine)
    ident = identify(cine)
    row.update(digest=digest, loop_key=ident.loop_key)
    store = _store(settings.store_url)
    t = time.perf_counter()
    ref = store.register_loop(cine, identity=ident)
    findings = store.findings(ref)
    head = head_of(findings)
    if head is not None and head.signed:  # a signed finding stands: a batch draft never replaces it
        row.update(_row_from_finding(head), status="skipped", store_s=time.perf_counter() - t,
                   error=f"not re-analysed: the finding is {head.status} (signed by {head.signed_by or 'a reviewer'})")
        return
    done = [f for f in findings if (f.extra.get("batch") or {}).get("digest") == digest]
    mine = [f for f in done if f.extra["batch"].get("batch_id") == settings.batch_id]
    if mine or (done and not settings.redo):  # mine: this task ran before, its worker died before reporting
        row.update(_row_from_finding((mine or done)[-1]), status="analysed" if mine else "skipped",
                   store_s=time.perf_counter() - t)
        return
    t = time.perf_counter()
    result = analyze(cine, **settings.analyze_kwargs)
    row["analyze_s"] = time.perf_counter() - t
    scalars = scalar_keys(result.to_dict())
    row.update(scalars)
    finding = analysis_finding(result)
    finding["analysis"] = {k: v for k, v in scalars.items() if k not in finding}
    finding["batch"] = {"digest": digest, "batch_id": settings.batch_id, "date": settings.date, "source": item.source}
    once = f"batch|{ident.loop_key}|{digest}" + (f"|{settings.batch_id}" if settings.redo else "")
    t = time.perf_counter()
    saved = store.save_finding(ref, finding, reviewer=REVIEWER, kind="automatic", once_key=once)
    row.update(status="analysed", finding_id=saved.id, store_s=time.perf_counter() - t)


def scalar_keys(d: dict) -> dict:
    """The keys of an ``analyze`` JSON whose values are scalars (NaN/inf → None)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        if v is None or isinstance(v, (str, int, float, bool)):
            out[k] = v
    return out


def _row_from_finding(f) -> dict:
    """Row values of a loop skipped because its batch finding is stored."""
    d = {k: getattr(f, k) for k in ("classification", "rest_frame", "contraction_frame", "gap_rest_mm",
                                    "gap_contraction_mm", "retraction_mm", "gap_rest_px", "gap_contraction_px",
                                    "defect_thickness_fraction", "calibration_source")}
    d.update({k: f.extra[k] for k in ("peetrons", "bamic") if k in f.extra})
    d.update(f.extra.get("analysis") or {})
    d["finding_id"] = f.id
    return d


@contextlib.contextmanager
def _open(item: BatchItem, settings: BatchSettings):
    """The item's Cine (closed afterwards); a PACS series of single frames goes through a temp folder."""
    import msus

    if not item.is_pacs:
        kw = {"series": item.series} if item.series else {}
        with msus.load(item.path, **kw) as cine:
            yield cine
        return
    archive = _archive(settings.pacs_config)
    if item.sop_uid:
        cine = archive.open_cine(item.study_uid, item.series_uid, item.sop_uid)
        try:
            yield cine
        finally:
            cine.close()
        return
    tmp = tempfile.mkdtemp(prefix="msus-batch-")
    try:
        archive.fetch(item.study_uid, item.series_uid, out_dir=tmp)
        with msus.load(tmp) as cine:
            yield cine
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# One store and one archive connection per worker process, reused by its tasks.
_LOCK = threading.Lock()
_STORES: dict = {}
_ARCHIVES: dict = {}


def _store(url: str | None):
    from msus.store import open_store, resolve_url

    url = resolve_url(url)
    with _LOCK:
        if url not in _STORES:
            _STORES[url] = open_store(url)
        return _STORES[url]


def _archive(config):
    from msus.pacs.client import Archive

    key = repr(config)
    with _LOCK:
        if key not in _ARCHIVES:
            _ARCHIVES[key] = Archive(config)
        return _ARCHIVES[key]


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"
