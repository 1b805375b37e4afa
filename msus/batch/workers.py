"""The workers of a batch: the Dask cluster (:func:`cluster`) and each worker process's set-up.

A local cluster is a ``LocalCluster`` sized to the machine (one process per core, one thread each,
:func:`memory_per_worker` each); ``cluster(scheduler=…)`` connects to an existing one.  On both,
:class:`NativeThreads` (a ``distributed.WorkerPlugin``) limits the worker process's native thread
pools — the BLAS libraries behind numpy / SciPy (through threadpoolctl) and OpenCV's — to the
worker's Dask threads.  Without it each worker process's OpenCV calls start a thread per core
(Dask's nanny sets ``OPENBLAS_NUM_THREADS=1`` and the like for BLAS, e.g. the matrix products of
:mod:`msus.analysis.step_fit`, but OpenCV reads none of them, and a worker without a nanny gets
neither), and two workers on two cores fight over them.
"""

from __future__ import annotations

import contextlib
import logging
import os

from distributed import WorkerPlugin

logger = logging.getLogger(__name__)


def _load_native_libraries() -> None:
    """Load the libraries whose pools are limited: threadpoolctl limits only those loaded.  The
    whole stack a task uses (the analysis: SciPy, scikit-image, OpenCV; the loaders; the store) is
    loaded, so a native pool it brings is limited too, and a worker's first loop does not pay the
    imports."""
    import cv2  # noqa: F401  (its own OpenBLAS, and OpenCV's pool)
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401  (SciPy's OpenBLAS)

    import msus.analysis  # noqa: F401
    import msus.io.dicom  # noqa: F401
    import msus.store  # noqa: F401


@contextlib.contextmanager
def native_threads(n: int = 1):
    """This process's BLAS (threadpoolctl ``threadpool_limits``) and OpenCV (``cv2.setNumThreads``)
    thread pools limited to ``n`` threads while inside; restored after."""
    import cv2
    from threadpoolctl import threadpool_limits

    _load_native_libraries()
    n = max(1, int(n))
    before = cv2.getNumThreads()
    limits = threadpool_limits(limits=n)
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)
        limits.restore_original_limits()


def native_thread_counts() -> dict:
    """The threads this process's native pools may use: ``{"blas": [per library], "opencv": n}``."""
    import cv2
    from threadpoolctl import threadpool_info

    return {"blas": [i["num_threads"] for i in threadpool_info()], "opencv": cv2.getNumThreads()}


class NativeThreads(WorkerPlugin):
    """Limits a worker process's native thread pools to its Dask threads (1 on a local cluster;
    a worker started with ``--nthreads N`` was given N cores), for the worker's whole life."""

    name = "msus-native-threads"

    def setup(self, worker) -> None:
        self._limits = contextlib.ExitStack()  # kept open: the limits hold until teardown
        self._limits.enter_context(native_threads(worker.state.nthreads))

    def teardown(self, worker) -> None:
        limits = getattr(self, "_limits", None)
        if limits is not None:
            limits.close()


# ---- the cluster ----------------------------------------------------------------------------------
def default_workers() -> int:
    """Worker processes of a local cluster: one per core."""
    return max(1, os.cpu_count() or 1)


def memory_per_worker(n_workers: int) -> int:
    """Bytes each local worker may use: 80 % of the machine's memory shared out (the nanny
    restarts a worker that passes it, and the scheduler re-runs its loop)."""
    import psutil

    return int(psutil.virtual_memory().total * 0.8 / max(1, n_workers))


@contextlib.contextmanager
def cluster(scheduler: str | None = None, workers: int | None = None, *, dashboard: str | None = ":0"):
    """A Dask ``Client`` whose workers have :class:`NativeThreads`: on an existing scheduler, or on
    a new ``LocalCluster`` sized to the machine (``workers`` processes, one thread each,
    :func:`memory_per_worker` each).

    With ``scheduler``, ``workers`` is how many workers to wait for (default: at least one).
    """
    from msus.errors import BatchError

    if scheduler:
        with _remote(scheduler, workers) as client:
            client.register_plugin(NativeThreads())
            yield client
        return
    n = workers or default_workers()
    if n < 1:
        raise BatchError("--workers must be at least 1")
    with _local(n, dashboard) as client:
        client.register_plugin(NativeThreads())
        yield client


@contextlib.contextmanager
def _remote(scheduler: str, workers: int | None):
    from distributed import Client

    from msus.errors import BatchError

    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise BatchError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    try:
        try:  # only the wait: a timeout inside the batch is the batch's own error
            client.wait_for_workers(workers or 1, timeout="120s")
        except TimeoutError:
            raise BatchError(f"the Dask scheduler at {scheduler} has fewer than {workers or 1} worker(s)") from None
        yield client
    finally:
        client.close()


@contextlib.contextmanager
def _local(n: int, dashboard: str | None):
    import dask
    from distributed import Client, LocalCluster

    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which also freezes glibc's mmap threshold:
    # every frame-sized array is then a fresh mmap, and the analysis costs ~1.6 x the CPU.  The
    # memory limit (the nanny restarts a worker past it) bounds the memory instead.
    # The admin tick (20 ms) and the system monitor (0.5 s) wake each worker's event loop, which
    # then takes the GIL from the task (bench: 1 worker 0.91 -> 0.94 x the plain loop).
    # The worker's statistical profiler (for the dashboard's Profile page) walks every thread's stack
    # each 10 ms under the GIL: ~15 ms of CPU per 350 ms loop, and the task thread's cache; without it
    # a loop in a worker costs what it costs in-process (bench: 2 workers 1.62-1.70 -> 1.78+ x plain).
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                          "distributed.admin.tick.interval": "500ms",
                          "distributed.admin.system-monitor.interval": "2s",
                          "distributed.worker.profile.enabled": False}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, memory_limit=memory_per_worker(n),
                         dashboard_address=dashboard, silence_logs=logging.ERROR) as lc, \
            Client(lc) as client:
        yield client


def dashboard_link(client) -> str | None:
    """The Dask dashboard's address, or None when there is none (no bokeh, or disabled)."""
    try:
        link = client.dashboard_link
    except Exception:
        logger.debug("dashboard_link: no dashboard", exc_info=True)
        return None
    info = client.scheduler_info()
    return link if (info.get("services") or {}).get("dashboard") else None
