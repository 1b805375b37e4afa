"""Findings store: time to save one caliper (p50/p99), SQLite and PostgreSQL, 10 concurrent writers.

Figures (baseline measured in the same run: one writer alone on the same database; ratio =
value / baseline, i.e. how much 10 concurrent writers slow each save):

* ``store sqlite save p50 / p99 (10 writers)`` — SQLite file, WAL, synchronous=FULL.
* ``store postgresql save p50 / p99 (10 writers)`` — a throw-away PostgreSQL server (Debian
  binaries, fsync on) on loopback; skipped with a note when the binaries are missing.

Each save is :meth:`msus.store.Store.add_measurement` (one transaction: the row + its audit
entry), followed by a move of the same caliper (:meth:`update_measurement` with its version),
so both kinds of write are in the sample.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure

WRITERS = 10
SAVES_PER_WRITER = 30


def _cine():
    from msus.calibration import Calibration
    from msus.cine import Cine

    rng = np.random.default_rng(0)
    return Cine.from_frames(rng.integers(0, 255, (10, 60, 80), dtype=np.uint8), fps=20, calibration=Calibration.manual(0.1))


def _writer(store, loop_key, who: str, n: int, out: list):
    from msus.calibration import Calibration
    from msus.measure import make_measurement

    cal = Calibration.manual(0.1)
    for i in range(n):
        m = make_measurement(cal, i % 10, (i % 70, 5), (i % 70 + 5, 30), label=f"{who}-{i}")
        t0 = time.perf_counter()
        saved = store.add_measurement(loop_key, m, reviewer=who)
        out.append(time.perf_counter() - t0)
        moved = m.moved(cal, (i % 70 + 1, 5))
        t0 = time.perf_counter()
        store.update_measurement(moved, expected_version=saved.version, reviewer=who)
        out.append(time.perf_counter() - t0)


def _measure(url: str) -> tuple[np.ndarray, np.ndarray]:
    from msus.store import open_store

    store = open_store(url)
    ref = store.register_loop(_cine())
    for k in range(WRITERS):
        store.reviewer_id(f"writer {k}")
    single: list[float] = []
    _writer(store, ref.key, "writer solo", SAVES_PER_WRITER, single)
    lat: list[list[float]] = [[] for _ in range(WRITERS)]
    ts = [threading.Thread(target=_writer, args=(store, ref.key, f"writer {k}", SAVES_PER_WRITER, lat[k])) for k in range(WRITERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    store.close()
    return np.array(single) * 1000, np.concatenate([np.array(x) for x in lat]) * 1000


def _figures(name: str, single: np.ndarray, multi: np.ndarray) -> list[Figure]:
    out = []
    for q in (50, 99):
        b = float(np.percentile(single, q))
        v = float(np.percentile(multi, q))
        out.append(Figure(f"store {name} save p{q} ({WRITERS} writers)", v, "ms", b, v / b,
                          f"baseline: 1 writer p{q}; {len(multi)} saves (add + move) by {WRITERS} threads"))
    return out


def run() -> list[Figure]:
    figs: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="msus-bench-store-") as d:
        figs += _figures("sqlite", *_measure(f"sqlite:///{Path(d) / 'bench.sqlite3'}"))
    try:
        from tests.pgtemp import TempPostgres, find_bindir

        if find_bindir() is None:
            raise RuntimeError("PostgreSQL binaries not installed")
        with TempPostgres(fsync=True) as pg:
            figs += _figures("postgresql", *_measure(pg.create_database("bench")))
    except Exception as exc:
        figs.append(Figure("store postgresql save p50 (skipped)", float("nan"), "ms", note=f"skipped: {exc}"))
    return figs
