"""``msus batch`` throughput: a plain in-process loop vs Dask with 1 and 2 worker processes.

The same 40 phantom loops (300 × 400 px, 40 frames, full / partial / intact) are analysed and
stored by each engine twice (orders plain-1-2-default then default-2-1-plain, best time of each,
fresh SQLite store each time): by :func:`msus.batch.run_plain` (the tasks one after the other in
this process, no Dask), then by :func:`msus.batch.run_batch` on a LocalCluster of 1 and of 2
workers.  Goals: 2 workers ≥ 1.7 × the plain loop (on a 2-core machine); Dask's per-task overhead
(a 1-worker batch's wall time minus the time spent inside its tasks, per loop) ≤ 5 % of the
analysis of one 300-frame loop.  Peak memory per worker is the largest resident set a worker
reached.

The plain loop runs with ``one_thread=True``: its BLAS and OpenCV pools limited to one thread, as
in every Dask worker (:class:`msus.batch.workers.NativeThreads`).  The baseline is then the same
one-thread analysis the workers run, and the ratios measure what the engine gives (parallel loops,
minus Dask's overhead) rather than how many threads OpenCV happens to start.  The plain loop with
the libraries' default pools (a thread per core, as ``msus analyze`` runs one loop; "default") is
reported too, for information: it is what one loop at a time costs without ``msus batch``.

The cores each engine got (CPU seconds / wall seconds) are printed too: on a shared machine a
ratio below the goal with fewer than 2 cores used is the machine's load, not the engine's.

Cluster start-up is not counted (it happens once per batch, before the first task).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure

N_LOOPS = 40
GEOMETRY = dict(rows=300, columns=400, mm_per_px=0.12, muscle_depth_mm=6.0, muscle_thickness_mm=16.0, fps=16.0)


def _write_loops(folder: Path) -> None:
    from msus.samples import SampleSpec, write_sample
    from msus.synth import SynthParams

    tears = [dict(tear="full", gap_rest_mm=5.0, gap_contraction_mm=10.0),
             dict(tear="partial", partial_fraction=0.5, gap_rest_mm=8.0, gap_contraction_mm=8.0), dict(tear="none")]
    for k in range(N_LOOPS):
        params = SynthParams(n_frames=40, seed=500 + k, **tears[k % 3], **GEOMETRY)
        write_sample(SampleSpec(f"bench_{k:02d}", "dicom", "batch benchmark loop", params), folder)


def _analysis_of_300_frames(folder: Path) -> float:
    """Seconds :func:`msus.analysis.analyze` takes on one 300-frame loop (best of 2), in one thread
    as in a worker."""
    import msus
    from msus.analysis import analyze
    from msus.batch import native_threads
    from msus.samples import SampleSpec, write_sample
    from msus.synth import SynthParams

    params = SynthParams(tear="full", gap_rest_mm=5.0, gap_contraction_mm=10.0, n_frames=300, seed=7, **GEOMETRY)
    path = write_sample(SampleSpec("bench_300", "dicom", "300 frames", params), folder)[0]
    best = float("inf")
    for _ in range(2):
        with msus.load(path) as cine, native_threads(1):
            t = time.perf_counter()
            analyze(cine)
            best = min(best, time.perf_counter() - t)
    return best


def _peak_rss(client) -> float:
    """Largest resident set (MB) any worker process reached (ru_maxrss of its own process)."""
    def peak() -> int:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    return max(client.run(peak).values()) / 1024.0


def _cpu_s(client) -> float:
    """CPU seconds the worker processes have used so far (user + system, all workers)."""
    def used() -> float:
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    return sum(client.run(used).values())


def run() -> list[Figure]:
    from msus.batch import BatchSettings, cluster, folder_items, run_batch, run_plain

    tmp = Path(tempfile.mkdtemp(prefix="msus-bench-batch-"))
    _write_loops(tmp / "loops")
    items = folder_items(tmp / "loops")
    assert len(items) == N_LOOPS
    t300 = _analysis_of_300_frames(tmp)

    def settings(tag: str) -> BatchSettings:
        return BatchSettings.local(store_url=f"sqlite:///{tmp / (tag + '.sqlite3')}")

    timed = {"plain": float("inf"), "plain-default": float("inf"), 1: float("inf"), 2: float("inf")}
    dask_overhead_s, peaks, cores = float("inf"), {}, {}
    for order in (("plain", 1, 2, "plain-default"), ("plain-default", 2, 1, "plain")):  # best of each order
        for n in order:
            s = settings(f"{n}-{len(peaks)}-{order[0]}")
            if isinstance(n, str):
                t, cpu = time.perf_counter(), time.process_time()
                rows = run_plain(items, s, one_thread=n == "plain")
                wall = time.perf_counter() - t
                cores[n] = max(cores.get(n, 0.0), (time.process_time() - cpu) / wall)
                timed[n] = min(timed[n], wall)
            else:
                with cluster(workers=n, dashboard=None) as client:
                    client.submit(sum, [1]).result()  # workers up and warm
                    t, cpu = time.perf_counter(), _cpu_s(client)
                    rows = run_batch(items, client, s)
                    wall = time.perf_counter() - t
                    cores[n] = max(cores.get(n, 0.0), (_cpu_s(client) - cpu) / wall)
                    timed[n] = min(timed[n], wall)
                    peaks[n] = max(peaks.get(n, 0.0), _peak_rss(client))
                if n == 1:  # what Dask adds around the tasks: wall time not spent inside them
                    dask_overhead_s = min(dask_overhead_s, (wall - sum(r["total_s"] for r in rows)) / N_LOOPS)
            assert all(r["status"] == "analysed" for r in rows), [r["error"] for r in rows if r["error"]]
            if n == 1:
                in_task = [r["total_s"] - r["analyze_s"] for r in rows]  # load, digest and store write, per loop
    per_min = {k: 60.0 * N_LOOPS / v for k, v in timed.items()}
    return [
        Figure("batch plain in-process loop", per_min["plain"], "loops/min",
               note=f"{N_LOOPS} loops of 40 frames; native pools of one thread, as in a worker"),
        Figure("batch plain loop, default threads", per_min["plain-default"], "loops/min", per_min["plain"],
               per_min["plain-default"] / per_min["plain"], "BLAS/OpenCV thread per core; baseline: one-thread plain"),
        Figure("batch dask 1 worker", per_min[1], "loops/min", per_min["plain"], per_min[1] / per_min["plain"],
               "baseline: plain loop"),
        Figure("batch dask 2 workers", per_min[2], "loops/min", per_min["plain"], per_min[2] / per_min["plain"],
               "baseline: plain loop; goal ratio >= 1.7 on 2 cores"),
        Figure("batch dask overhead per task (1 worker)", 1000.0 * dask_overhead_s, "ms/loop", 1000.0 * t300,
               dask_overhead_s / t300, "wall minus time inside tasks; baseline: one-thread analysis of one "
               "300-frame loop; goal ratio <= 0.05"),
        Figure("batch load+digest+store per task", 1000.0 * statistics.median(in_task), "ms/loop", 1000.0 * t300,
               statistics.median(in_task) / t300, "median; baseline: analysis of one 300-frame loop"),
        Figure("batch cores used (2 workers)", cores[2], "cores", cores["plain"], cores[2] / cores["plain"],
               "worker CPU s / wall s, best run; baseline: the one-thread plain loop's; below 2: the machine is "
               "shared"),
        Figure("batch peak memory per worker (2 workers)", peaks[2], "MB", peaks[1], peaks[2] / peaks[1],
               "baseline: the single worker's peak"),
    ]
