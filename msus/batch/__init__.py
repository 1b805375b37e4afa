"""Cohort analysis on Dask: every loop of a folder tree or PACS query, analysed and stored once.

::

    from msus.batch import BatchSettings, batch_items, cluster, run_batch
    items = batch_items("scans/")                     # or "pacs:modality=US&date=20250101-20250131"
    with cluster(workers=2) as client:                # LocalCluster, or cluster(scheduler="tcp://host:8786")
        rows = run_batch(items, client, BatchSettings.local())

One Dask task per loop, the same :func:`msus.analysis.analyze` as ``msus analyze``; the engine is
Dask distributed's, nothing home-made.  The modules, each importable from here:

* :mod:`msus.batch.sources` — what a batch runs over (``batch_items``: a folder tree or a
  ``pacs:`` query);
* :mod:`msus.batch.task` — one loop's task (``process_loop``: load, digest, analyse, store once)
  and ``BatchSettings``, the table's columns;
* :mod:`msus.batch.workers` — the cluster (``cluster``) and each worker's set-up
  (``NativeThreads``: native thread pools limited to the worker's Dask threads);
* :mod:`msus.batch.run` — running the tasks (``run_batch`` on Dask, ``run_plain`` in this process).
"""

from __future__ import annotations

from msus.batch.run import RETRIES, failed_row, run_batch, run_plain
from msus.batch.sources import (PACS_KEYS, PACS_PREFIX, BatchItem, batch_items, describe, folder_items,
                                pacs_items, parse_pacs_query)
from msus.batch.task import (ANALYSIS_COLUMNS, BASE_COLUMNS, REVIEWER, STATUSES, BatchSettings, process_loop,
                             scalar_keys)
from msus.batch.workers import (NativeThreads, cluster, dashboard_link, default_workers, memory_per_worker,
                                native_thread_counts, native_threads)

__all__ = ["ANALYSIS_COLUMNS", "BASE_COLUMNS", "PACS_KEYS", "PACS_PREFIX", "REVIEWER", "RETRIES", "STATUSES",
           "BatchItem", "BatchSettings", "NativeThreads", "batch_items", "cluster", "dashboard_link",
           "default_workers", "describe", "failed_row", "folder_items", "memory_per_worker", "native_thread_counts",
           "native_threads", "pacs_items", "parse_pacs_query", "process_loop", "run_batch", "run_plain",
           "scalar_keys"]
