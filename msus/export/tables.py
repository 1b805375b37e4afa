"""JSON and CSV of measurements and findings, with units and calibration provenance.

JSON (``msus.export/1``)::

    {"format": "msus.export/1", "msus_version", "exported_at", "automatic", "disclaimer",
     "units": {...},
     "loop": {"key", "study_key", "series_key", "source_name", "n_frames", "fps", "calibration"},
     "measurements": [{"id", "reviewer", "kind", "label", "frame_index", "x1", "y1", "x2", "y2",
                       "length_px", "length_mm", "calibration_source", "region_index",
                       "mm_per_px_x", "mm_per_px_y", "warnings", "created_at",
                       "role", "note", "read"}],
     "finding": {"classification", "reasons", "rest_frame", "contraction_frame", "gap_rest_mm",
                 "gap_contraction_mm", "gap_rest_px", "gap_contraction_px", "retraction_mm",
                 "defect_thickness_fraction", "calibration_source", "status", "kind",
                 "reviewer", "reader", "signed_by", "signed_at", "supersedes", "amendment_no",
                 "amendment_reason", "history", ...} | null}

``role`` is what the caliper measures (gap at rest, gap at contraction, muscle thickness, other),
``note`` free text; ``read`` says what the caliper is to the finding: ``finding`` (its value is the
finding's), ``reader`` (the reader's, not used), ``second read`` (another reviewer's: for
agreement, never in the finding) or ``automatic``.  The finding's gaps are the values of its
``finding`` calipers (or the automatic analysis' where the reader has none); ``status`` is
draft, final or amended (a signed amendment; ``history`` lists the versions it replaces).

CSV: one row per caliper (``record=measurement``) and one per finding (``record=finding``), the
columns in :data:`CSV_COLUMNS`; lengths in ``*_mm`` columns are empty when uncalibrated.
Frame indices are 0-based everywhere (the app shows them 1-based).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from msus import __version__
from msus.export import DISCLAIMER, ExportData
from msus.export.atomic import write_atomic

UNITS = {
    "x1": "px (column, 0-based, pixel centres at integers)",
    "y1": "px (row)",
    "length_px": "px",
    "length_mm": "mm (null when uncalibrated)",
    "gap_*_mm": "mm",
    "retraction_mm": "mm (gap at contraction minus gap at rest)",
    "defect_thickness_fraction": "1 (share of the muscle thickness, 0..1)",
    "frame_index": "0-based",
}

CSV_COLUMNS = (
    "record", "loop_key", "id", "reviewer", "kind", "status", "label", "frame_index",
    "x1", "y1", "x2", "y2", "length_px", "length_mm", "calibration_source", "region_index",
    "mm_per_px_x", "mm_per_px_y", "classification", "rest_frame", "contraction_frame",
    "gap_rest_mm", "gap_contraction_mm", "gap_rest_px", "gap_contraction_px", "retraction_mm",
    "defect_thickness_fraction", "reasons", "warnings", "created_at", "automatic",
    "role", "note", "read", "signed_by", "signed_at", "amendment_no",
)

_FINDING_KEYS = (
    "id", "classification", "reasons", "rest_frame", "contraction_frame", "gap_rest_mm",
    "gap_contraction_mm", "gap_rest_px", "gap_contraction_px", "retraction_mm",
    "defect_thickness_fraction", "calibration_source", "status", "kind", "reviewer", "version",
    "created_at", "updated_at", "signed_by", "signed_at", "supersedes", "amendment_no", "amendment_reason",
)


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return _clean(v.item())
        except (TypeError, ValueError):
            pass
    return v


def to_json_dict(data: ExportData) -> dict:
    """The JSON export as a dict."""
    ms = []
    for _, m, read in data.caliper_reads():
        d = m.to_dict()
        ms.append({
            "id": d["id"], "reviewer": d["reviewer"], "kind": d["kind"], "label": d["label"],
            "frame_index": d["frame_index"], "x1": d["x1"], "y1": d["y1"], "x2": d["x2"], "y2": d["y2"],
            "length_px": d["length_px"], "length_mm": d["length_mm"],
            "calibration_source": d["calibration_source"], "region_index": d["region_index"],
            "mm_per_px_x": d["mm_per_px_x"], "mm_per_px_y": d["mm_per_px_y"],
            "warnings": d["warnings"], "created_at": d["created_at"],
            "role": d["role"], "note": d["note"], "read": read,
        })
    finding = None
    if data.finding:
        finding = {k: data.finding.get(k) for k in _FINDING_KEYS}
        finding["reasons"] = list(finding.get("reasons") or [])
        finding["disclaimer"] = DISCLAIMER
        finding["reader"] = data.reader
        finding["history"] = list(data.finding.get("history") or [])
        for k in ("peetrons", "bamic"):
            v = data.finding.get(k) or (data.finding.get("extra") or {}).get(k)
            if v:
                finding[k] = v
    return _clean({
        "format": "msus.export/1",
        "msus_version": __version__,
        "exported_at": data.exported_at,
        "automatic": data.automatic,
        "disclaimer": DISCLAIMER,
        "units": UNITS,
        "loop": {
            "key": data.loop_key, "study_key": data.study_key, "series_key": data.series_key,
            "source_name": data.source_name, "n_frames": data.n_frames, "fps": data.fps,
            "calibration": data.calibration,
        },
        "measurements": ms,
        "finding": finding,
        "notes": list(data.notes),
    })


def json_bytes(data: ExportData) -> bytes:
    return (json.dumps(to_json_dict(data), indent=2, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")


def csv_rows(data: ExportData) -> list[dict]:
    d = to_json_dict(data)
    rows = []
    for m in d["measurements"]:
        row = {k: m.get(k) for k in CSV_COLUMNS if k in m}
        row.update(record="measurement", loop_key=data.loop_key, warnings="; ".join(m["warnings"]),
                   automatic=data.automatic)
        rows.append(row)
    f = d["finding"]
    if f:
        row = {k: f.get(k) for k in CSV_COLUMNS if k in f}
        row.update(record="finding", loop_key=data.loop_key, reasons="; ".join(f["reasons"]),
                   automatic=data.automatic)
        rows.append(row)
    return rows


def csv_text(data: ExportData) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in csv_rows(data):
        w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def write_json(data: ExportData, out) -> Path:
    return _write(Path(out), json_bytes(data))


def write_csv(data: ExportData, out) -> Path:
    return _write(Path(out), csv_text(data).encode("utf-8"))


def _write(path: Path, blob: bytes) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(blob))
