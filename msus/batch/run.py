"""Running a batch: every item's task on the Dask cluster (:func:`run_batch`), or one after the
other in this process without Dask (:func:`run_plain`, the benchmark's baseline).

Nothing home-made: Dask distributed schedules the tasks, re-runs a task lost with its worker and
retries a task that raised (``retries=``); the rows come back in the items' order.
"""

from __future__ import annotations

import contextlib
import logging

from msus.batch.sources import BatchItem
from msus.batch.task import BatchSettings, process_loop
from msus.batch.workers import native_threads

logger = logging.getLogger(__name__)

#: Retries of a task that raised (a lost worker is handled by the scheduler's allowed-failures).
RETRIES = 2


def run_batch(items: list[BatchItem], client, settings: BatchSettings, on_row=None) -> list[dict]:
    """Submit one task per loop and collect the rows, in ``items`` order.

    ``on_row(row, n_done)`` is called as each loop finishes (progress).  A task that still fails
    after its retries, or whose workers kept dying (``KilledWorker``), gets a failed row.
    """
    from distributed import as_completed

    keys = [f"msus-loop-{settings.batch_id[:12]}-{i}" for i in range(len(items))]
    futures = client.map(process_loop, items, settings=settings, key=keys, retries=RETRIES, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    rows: list[dict | None] = [None] * len(items)
    for n, fut in enumerate(as_completed(futures), 1):
        i = index[fut.key]
        try:
            row = fut.result()
        except Exception as exc:  # KilledWorker, a task that raised RETRIES + 1 times, a lost scheduler
            logger.debug("run_batch: KilledWorker, a task that raised RETRIES + 1 times, a lost scheduler", exc_info=True)
            row = failed_row(items[i], settings, exc)
        rows[i] = row
        fut.release()
        if on_row is not None:
            on_row(row, n)
    return rows


def run_plain(items: list[BatchItem], settings: BatchSettings, on_row=None, *, one_thread: bool = False) -> list[dict]:
    """The same tasks one after the other in this process (no Dask).

    ``one_thread``: with this process's BLAS and OpenCV pools limited to one thread
    (:func:`msus.batch.workers.native_threads`), as in a worker of a local cluster — the same
    analysis the workers run, so the benchmark compares engines, not thread counts.
    """
    rows = []
    with native_threads(1) if one_thread else contextlib.nullcontext():
        for n, item in enumerate(items, 1):
            rows.append(process_loop(item, settings))
            if on_row is not None:
                on_row(rows[-1], n)
    return rows


def failed_row(item: BatchItem, settings: BatchSettings, exc: BaseException) -> dict:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        msg = "the workers running this loop kept dying (out of memory or a crash in a decoder)"
    else:
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    return {"source": item.source, "series": item.series or "", "status": "failed", "error": msg,
            "batch_id": settings.batch_id}
