"""``msus batch`` throughput: a plain in-process loop vs Dask with 1 and 2 worker processes.

The same 40 phantom loops (300 × 400 px, 40 frames, full / partial / intact) are analysed and
stored three times in one run, each time into a fresh SQLite store: by :func:`msus.batch.run_plain`
(the tasks one after the other in this process, no Dask), then by :func:`msus.batch.run_batch` on
a LocalCluster of 1 and of 2 workers.  Goals: 2 workers ≥ 1.7 × the plain loop (on a 2-core
machine); Dask's per-task overhead (1 worker vs plain, per loop) ≤ 5 % of the analysis of one
300-frame loop.  Peak memory per worker is the largest resident set a worker reached.

Cluster start-up is not counted (it happens once per batch, before the first task).
"""

from __future__ import annotations

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
    """Seconds :func:`msus.analysis.analyze` takes on one 300-frame loop (best of 2)."""
    import msus
    from msus.analysis import analyze
    from msus.samples import SampleSpec, write_sample
    from msus.synth import SynthParams

    params = SynthParams(tear="full", gap_rest_mm=5.0, gap_contraction_mm=10.0, n_frames=300, seed=7, **GEOMETRY)
    path = write_sample(SampleSpec("bench_300", "dicom", "300 frames", params), folder)[0]
    best = float("inf")
    for _ in range(2):
        with msus.load(path) as cine:
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


def run() -> list[Figure]:
    from msus.batch import BatchSettings, cluster, run_batch, run_plain
    from msus.batch_sources import folder_items

    tmp = Path(tempfile.mkdtemp(prefix="msus-bench-batch-"))
    _write_loops(tmp / "loops")
    items = folder_items(tmp / "loops")
    assert len(items) == N_LOOPS
    t300 = _analysis_of_300_frames(tmp)

    def settings(tag: str) -> BatchSettings:
        return BatchSettings.local(store_url=f"sqlite:///{tmp / (tag + '.sqlite3')}")

    t = time.perf_counter()
    rows = run_plain(items, settings("plain"))
    plain_s = time.perf_counter() - t
    assert all(r["status"] == "analysed" for r in rows), [r["error"] for r in rows if r["error"]]
    timed, peaks = {}, {}
    for n in (1, 2):
        with cluster(workers=n, dashboard=None) as client:
            client.submit(sum, [1]).result()  # workers up and warm
            t = time.perf_counter()
            rows = run_batch(items, client, settings(f"dask{n}"))
            timed[n] = time.perf_counter() - t
            peaks[n] = _peak_rss(client)
        assert all(r["status"] == "analysed" for r in rows), [r["error"] for r in rows if r["error"]]
    per_min = {k: 60.0 * N_LOOPS / v for k, v in (("plain", plain_s), (1, timed[1]), (2, timed[2]))}
    overhead_s = (timed[1] - plain_s) / N_LOOPS
    return [
        Figure("batch plain in-process loop", per_min["plain"], "loops/min", note=f"{N_LOOPS} loops of 40 frames"),
        Figure("batch dask 1 worker", per_min[1], "loops/min", per_min["plain"], per_min[1] / per_min["plain"],
               "baseline: plain loop"),
        Figure("batch dask 2 workers", per_min[2], "loops/min", per_min["plain"], per_min[2] / per_min["plain"],
               "baseline: plain loop; goal ratio >= 1.7 on 2 cores"),
        Figure("batch per-task overhead (1 worker - plain)", 1000.0 * overhead_s, "ms/loop", 1000.0 * t300,
               overhead_s / t300, "baseline: analysis of one 300-frame loop; goal ratio <= 0.05"),
        Figure("batch peak memory per worker (2 workers)", peaks[2], "MB", peaks[1], peaks[2] / peaks[1],
               "baseline: the single worker's peak"),
    ]
