"""Shared pieces for benchmarks: the Figure record and a timer."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None  # measured in the same run
    ratio: float | None = None  # value / baseline unless stated in note
    note: str = ""  # what the baseline is, and the goal


def format_figure(f: Figure) -> str:
    b = "-" if f.baseline is None else f"{f.baseline:.4g}"
    r = "-" if f.ratio is None else f"{f.ratio:.3f}"
    return f"{f.name:<44} {f.value:>12.4g} {f.unit:<10} {b:>12} {r:>8}  {f.note}"


def best_of(fn, repeat: int = 3) -> float:
    """Best wall time in seconds of ``fn()`` over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
