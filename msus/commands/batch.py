"""``msus batch SOURCE [--out TABLE] [--scheduler ADDRESS] [--workers N] [--json] [--redo]``.

Analyses every loop of a folder tree, or of a PACS query (``pacs:modality=US&date=…``, see
:mod:`msus.batch.sources`), on Dask (:mod:`msus.batch`): a local cluster by default, or an
existing one with ``--scheduler tcp://host:8786``.  Each result is stored as a draft automatic
finding (once per loop content: a re-run skips what is done unless ``--redo``) and is one row of
``TABLE.csv`` and ``TABLE.parquet`` (:mod:`msus.export.cohort`).

Progress: a bar on a terminal; with ``--json`` JSON lines on stdout — ``{"event": "start", …}``,
one ``{"event": "loop", …}`` per loop, then ``{"event": "summary", …}``.  Exit status 0 when the
batch ran to the end, whatever its loops gave (failures are in the table and the summary).
"""

from __future__ import annotations

import json
import sys
import time


def add_parser(sub):
    p = sub.add_parser(
        "batch",
        help="analyse every loop of a folder tree or PACS query on Dask; store the findings, write a table",
        description="Cohort analysis: every loop under SOURCE (a folder, or pacs:KEY=VALUE&... on the configured "
        "archive) is analysed like 'msus analyze', saved to the findings store as a draft automatic finding, "
        "and written as one row of TABLE.csv and TABLE.parquet.",
    )
    p.add_argument("source", metavar="SOURCE",
                   help="a folder (or file), or pacs: plus filters, e.g. pacs:modality=US&date=20250101-20250131"
                        "&body_part=THIGH (keys: modality, date, date_from, date_to, body_part, patient_id, study_uid, "
                        "accession, limit)")
    p.add_argument("--out", metavar="TABLE", default=None,
                   help="table path without suffix (default msus-batch-<UTC date-time> here)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="submit to an existing Dask scheduler, e.g. tcp://host:8786 (workers use their own "
                        "MSUS_DATABASE_URL and MSUS_PACS_* settings)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: one per core); with --scheduler, workers to wait for")
    p.add_argument("--redo", action="store_true", help="analyse again loops that already have a batch finding")
    p.add_argument("--json", action="store_true", help="JSON-lines progress and summary on stdout")
    return p


def _emit(obj) -> None:
    from msus.commands import _clean

    sys.stdout.write(json.dumps(_clean(obj), allow_nan=False) + "\n")
    sys.stdout.flush()


def run(args) -> int:
    from msus.batch import BatchSettings, cluster, dashboard_link, describe, run_batch
    from msus.export.cohort import summary, table_paths, write_table

    t0 = time.perf_counter()
    what = describe(args.source)
    out = args.out or time.strftime("msus-batch-%Y%m%d-%H%M%S", time.gmtime())
    items, pacs_config = _items(args.source)
    if args.scheduler:
        settings = BatchSettings.new(redo=args.redo)
    else:
        settings = BatchSettings.local(redo=args.redo, **({"pacs_config": pacs_config} if pacs_config else {}))
    rows: list = []
    if items:
        with cluster(args.scheduler, args.workers) as client:
            n_workers = len(client.scheduler_info().get("workers", {}))
            link = dashboard_link(client)
            start = {"event": "start", "source": what, "loops": len(items), "workers": n_workers, "dashboard": link,
                     "scheduler": args.scheduler or "local", "batch_id": settings.batch_id, "date": settings.date}
            if args.json:
                _emit(start)
            else:
                print(f"msus batch: {len(items)} loop(s) from {what} on {n_workers} worker(s)"
                      + (f"; dashboard {link}" if link else ""), file=sys.stderr, flush=True)
            with _progress(len(items), args.json) as on_row:
                rows = run_batch(items, client, settings, on_row=on_row)
    elif args.json:
        _emit({"event": "start", "source": what, "loops": 0, "workers": 0, "dashboard": None,
               "scheduler": args.scheduler or "local", "batch_id": settings.batch_id, "date": settings.date})
    csv_path, pq_path = write_table(rows, out)
    summ = summary(rows, time.perf_counter() - t0)
    if args.json:
        _emit({"event": "summary", **summ, "table": {"csv": str(csv_path), "parquet": str(pq_path)}})
    else:
        _print_summary(summ, table_paths(out))
    return 0


def _items(source: str):
    """The batch items and, for a PACS query, the archive configuration used to list them."""
    from msus.batch import PACS_PREFIX, batch_items

    if not str(source).startswith(PACS_PREFIX):
        return batch_items(source), None
    from msus.pacs.client import Archive

    with Archive() as archive:
        return batch_items(source, archive), archive.config


class _progress:
    """``with _progress(n, json) as on_row``: a tqdm bar on a terminal, JSON lines with --json."""

    def __init__(self, total: int, as_json: bool):
        self.total, self.as_json, self.bar = total, as_json, None

    def __enter__(self):
        if not self.as_json and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="loop", file=sys.stderr, dynamic_ncols=True)
        return self.on_row

    def on_row(self, row: dict, done: int) -> None:
        if self.as_json:
            _emit({"event": "loop", "done": done, "total": self.total, "source": row.get("source"),
                   "status": row.get("status"), "classification": row.get("classification"),
                   "error": row.get("error") or None, "total_s": row.get("total_s")})
        elif self.bar is not None:
            self.bar.set_postfix_str(f"{row.get('status')}: {row.get('source')}"[-60:], refresh=False)
            self.bar.update(1)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


def _print_summary(summ: dict, paths) -> None:
    w = sys.stdout.write
    w(f"loops: {summ['loops']}  analysed {summ['analysed']}, skipped (already done) {summ['skipped']}, "
      f"failed {summ['failed']}\n")
    for cls, n in summ["classifications"].items():
        w(f"  {cls}: {n}\n")
    for f in summ["failures"]:
        w(f"  failed: {f['source']}: {f['error']}\n")
    rate = summ["loops_per_minute"]
    w(f"time: {summ['wall_s']:.1f} s" + (f" ({rate:.1f} loops/min)" if rate else "") + "\n")
    w(f"table: {paths[0]} and {paths[1]}\n")
    w("classifications are flags for review, not diagnoses\n")
