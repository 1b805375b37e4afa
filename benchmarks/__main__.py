"""Run every benchmark (or those named) and print one line per figure.

Each ``benchmarks/bench_*.py`` module exposes ``run() -> list[Figure]``.  A figure carries its
own baseline, measured in the same run, and the ratio value/baseline (or whatever the goal
compares), so numbers from different machines stay comparable.

    python -m benchmarks                 # all
    python -m benchmarks synth loading   # modules bench_synth.py and bench_loading.py
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from benchmarks.common import Figure, format_figure


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if any(a in ("-h", "--help") for a in argv):
        print("usage: python -m benchmarks [NAME ...]\n\nRun every benchmark, or those named, one line per figure "
              f"(name, value, unit, baseline, ratio, note).\nbenchmarks: {', '.join(names)}")
        return 0
    wanted = argv or names
    unknown = [w for w in wanted if w not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    print(f"{'name':<44} {'value':>12} {'unit':<10} {'baseline':>12} {'ratio':>8}  note")
    for name in wanted:
        t0 = time.perf_counter()
        mod = importlib.import_module(f"benchmarks.bench_{name}")
        figures: list[Figure] = mod.run()
        for f in figures:
            print(format_figure(f), flush=True)
        print(f"# {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
