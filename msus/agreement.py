"""Rater agreement: several reviewers measuring the same gaps.

An *item* is one thing measured by several reviewers: a caliper label on a loop ("gap at rest" on
loop X).  Each reviewer's latest calibrated caliper with that label is their value for the item.
Only lengths in mm are compared (an uncalibrated caliper is left out, and said so).

* **Per-measurement differences** for every pair of reviewers.
* **Bland–Altman** for every pair: bias = mean(B − A), limits of agreement = bias ± 1.96 SD of the
  differences (Bland & Altman, Lancet 1986).
* **ICC(2,1)**: two-way random effects, absolute agreement, single rater (Shrout & Fleiss 1979),
  over the items every reviewer measured; ICC(3,1) (consistency) beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class PairDifference:
    item: str
    rater_a: str
    rater_b: str
    value_a_mm: float
    value_b_mm: float

    @property
    def difference_mm(self) -> float:
        """B − A in mm."""
        return self.value_b_mm - self.value_a_mm

    @property
    def mean_mm(self) -> float:
        return (self.value_a_mm + self.value_b_mm) / 2.0


@dataclass(frozen=True)
class BlandAltman:
    rater_a: str
    rater_b: str
    n: int
    bias_mm: float
    sd_mm: float | None  # None with a single item
    loa_low_mm: float | None
    loa_high_mm: float | None


@dataclass(frozen=True)
class Agreement:
    raters: tuple[str, ...]
    items: tuple[str, ...]
    values_mm: tuple[tuple[float | None, ...], ...]  # items × raters
    differences: tuple[PairDifference, ...]
    bland_altman: tuple[BlandAltman, ...]
    icc_2_1: float | None  # absolute agreement, single rater; None with < 2 complete items
    icc_3_1: float | None  # consistency, single rater
    n_complete_items: int
    notes: tuple[str, ...] = ()

    def table(self) -> list[dict]:
        """One row per item: the value of each rater in mm (None where not measured)."""
        return [
            {"item": item, **{r: v for r, v in zip(self.raters, row)}} for item, row in zip(self.items, self.values_mm)
        ]

    def to_dict(self) -> dict:
        return {
            "raters": list(self.raters),
            "items": self.table(),
            "differences": [
                {
                    "item": d.item,
                    "rater_a": d.rater_a,
                    "rater_b": d.rater_b,
                    "value_a_mm": d.value_a_mm,
                    "value_b_mm": d.value_b_mm,
                    "difference_mm": d.difference_mm,
                    "mean_mm": d.mean_mm,
                }
                for d in self.differences
            ],
            "bland_altman": [ba.__dict__.copy() for ba in self.bland_altman],
            "icc_2_1": self.icc_2_1,
            "icc_3_1": self.icc_3_1,
            "n_complete_items": self.n_complete_items,
            "notes": list(self.notes),
        }


def icc(matrix) -> tuple[float | None, float | None]:
    """(ICC(2,1), ICC(3,1)) of an items × raters matrix without missing values.

    Returns (None, None) with fewer than 2 items or 2 raters, or no variance at all.
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2 or not np.all(np.isfinite(x)):
        return None, None
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_err = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    d2 = msr + (k - 1) * mse + k * (msc - mse) / n
    d3 = msr + (k - 1) * mse
    icc2 = (msr - mse) / d2 if d2 > 0 else None
    icc3 = (msr - mse) / d3 if d3 > 0 else None
    return icc2, icc3


def _item_name(m, loop_key: str | None) -> str:
    label = m.label or f"frame {m.frame_index + 1}"
    return f"{loop_key[:16]}… {label}" if loop_key else label


def rater_agreement(measurements: Iterable) -> Agreement:
    """Agreement between the reviewers of ``measurements``.

    ``measurements`` are :class:`msus.measure.Measurement` or
    :class:`msus.store.StoredMeasurement` (whose ``loop_key`` then separates items of several
    loops; items of a single loop are named by their label alone).  For each (loop, label) and reviewer the latest caliper counts.
    """
    latest: dict[tuple[str, str], tuple[str, float]] = {}
    notes: list[str] = []
    order: list[str] = []
    raters: list[str] = []
    measurements = list(measurements)
    one_loop = len({getattr(obj, "loop_key", None) for obj in measurements}) <= 1  # items named by label alone
    for obj in measurements:
        m = getattr(obj, "measurement", obj)
        loop_key = None if one_loop else getattr(obj, "loop_key", None)
        who = m.reviewer or "(unnamed)"
        item = _item_name(m, loop_key)
        if m.length_mm is None:
            notes.append(f"{who}'s caliper '{item}' is uncalibrated (px only) and is left out")
            continue
        if item not in order:
            order.append(item)
        if who not in raters:
            raters.append(who)
        prev = latest.get((item, who))
        if prev is None or str(m.created_at) >= prev[0]:
            latest[(item, who)] = (str(m.created_at), float(m.length_mm))
    raters_t = tuple(sorted(raters))
    items = [it for it in order if sum((it, r) in latest for r in raters_t) >= 2]
    values = tuple(tuple(latest[(it, r)][1] if (it, r) in latest else None for r in raters_t) for it in items)
    diffs: list[PairDifference] = []
    bas: list[BlandAltman] = []
    for a, b in combinations(raters_t, 2):
        pair = [
            PairDifference(it, a, b, latest[(it, a)][1], latest[(it, b)][1])
            for it in items
            if (it, a) in latest and (it, b) in latest
        ]
        diffs.extend(pair)
        if pair:
            d = np.array([p.difference_mm for p in pair])
            bias = float(d.mean())
            sd = float(d.std(ddof=1)) if d.size >= 2 else None
            bas.append(
                BlandAltman(
                    a, b, int(d.size), bias, sd,
                    None if sd is None else bias - 1.96 * sd,
                    None if sd is None else bias + 1.96 * sd,
                )
            )
    complete = [row for row in values if all(v is not None for v in row)]
    i2, i3 = icc(complete) if len(raters_t) >= 2 else (None, None)
    if len(raters_t) < 2:
        notes.append("fewer than two reviewers measured in mm; nothing to compare")
    elif len(complete) < 2:
        notes.append("ICC needs at least two items measured by every reviewer")
    clean = lambda v: None if v is None or not math.isfinite(v) else float(v)  # noqa: E731
    return Agreement(raters_t, tuple(items), values, tuple(diffs), tuple(bas), clean(i2), clean(i3), len(complete), tuple(notes))
