"""The table of a batch (``msus batch --out TABLE``): one row per loop, as CSV and Parquet.

Columns: :data:`msus.batch.BASE_COLUMNS` (``source``, ``series``, ``status`` — ``analysed``,
``skipped`` or ``failed`` —, ``error``, ``digest``, ``loop_key``, ``finding_id``, the timings
``load_s``, ``analyze_s``, ``store_s``, ``total_s``, ``worker``, ``batch_id``), then every scalar
key of ``msus analyze --json`` (``classification``, ``gap_rest_mm``…).  Lengths in ``*_mm``
columns are empty when the loop is uncalibrated (the ``*_px`` twins are always there).
"""

from __future__ import annotations

from pathlib import Path

from msus.export.atomic import write_atomic


def columns(rows: list[dict]) -> list[str]:
    """The table's columns: the base columns, then the analysis keys in the order first seen."""
    from msus.batch import ANALYSIS_COLUMNS, BASE_COLUMNS

    cols = list(BASE_COLUMNS)
    for k in [k for r in rows for k in r] + list(ANALYSIS_COLUMNS):  # ANALYSIS_COLUMNS: even if none analysed
        if k not in cols:
            cols.append(k)
    return cols


def table_paths(out: str | Path) -> tuple[Path, Path]:
    """``TABLE`` → (``TABLE.csv``, ``TABLE.parquet``); a given .csv/.parquet suffix is dropped first."""
    p = Path(out)
    if p.suffix.lower() in (".csv", ".parquet"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".csv"), p.with_name(p.name + ".parquet")


def write_table(rows: list[dict], out: str | Path) -> tuple[Path, Path]:
    """Write the rows as ``TABLE.csv`` and ``TABLE.parquet`` (each whole or not at all)."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = columns(rows)
    csv_path, pq_path = table_paths(out)

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: "" if r.get(k) is None else r.get(k) for k in cols})

    schema = pa.schema([(c, _arrow_type([r.get(c) for r in rows])) for c in cols])
    table = pa.Table.from_pylist([{c: _cast(r.get(c), schema.field(c).type) for c in cols} for r in rows],
                                 schema=schema)
    write_atomic(csv_path, write_csv)
    write_atomic(pq_path, lambda tmp: pq.write_table(table, tmp))
    return csv_path, pq_path


def _arrow_type(values):
    import pyarrow as pa

    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.string()
    if kinds <= {bool}:
        return pa.bool_()
    if kinds <= {int}:
        return pa.int64()
    if kinds <= {int, float}:
        return pa.float64()
    return pa.string()


def _cast(v, typ):
    import pyarrow as pa

    if v is None:
        return None
    if typ == pa.float64():
        return float(v)
    if typ == pa.string() and not isinstance(v, str):
        return str(v)
    return v


def summary(rows: list[dict], wall_s: float) -> dict:
    """Counts per status and per classification, the failures, and the throughput."""
    by_status = {s: 0 for s in ("analysed", "skipped", "failed")}
    by_class: dict[str, int] = {}
    for r in rows:
        by_status[r.get("status", "failed")] = by_status.get(r.get("status", "failed"), 0) + 1
        if r.get("status") != "failed" and r.get("classification"):
            by_class[r["classification"]] = by_class.get(r["classification"], 0) + 1
    return {
        "loops": len(rows),
        **by_status,
        "classifications": dict(sorted(by_class.items())),
        "failures": [{"source": r["source"], "error": r.get("error", "")} for r in rows if r.get("status") == "failed"],
        "wall_s": round(wall_s, 3),
        "loops_per_minute": round(60.0 * len(rows) / wall_s, 2) if wall_s > 0 else None,
    }
