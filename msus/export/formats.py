"""One export format written to one file: the writer the CLI (``msus export``) and the app's
Export panel share.

``write(fmt, cine, data, source, out)`` dispatches on ``fmt`` (:data:`msus.export.FORMATS`) to the
exporter of that format; :data:`SUFFIX` is each format's file suffix.
"""

from __future__ import annotations

from pathlib import Path

from msus.errors import ExportError

SUFFIX = {"json": ".json", "csv": ".csv", "sr": ".dcm", "mp4": ".mp4", "gif": ".gif", "pdf": ".pdf", "bundle": ".zip",
          "dicom-video": ".dcm"}


def write(fmt: str, cine, data, source: Path, out: Path, *, start=None, stop=None, crop=None) -> Path:
    """Write one export format; returns the path written."""
    if fmt == "json":
        from msus.export.tables import write_json

        return write_json(data, out)
    if fmt == "csv":
        from msus.export.tables import write_csv

        return write_csv(data, out)
    if fmt == "sr":
        from msus.export.sr import write_sr

        if cine.kind != "dicom":
            raise ExportError("a DICOM SR needs a DICOM source (this loop is a video or image stack)")
        return write_sr(data, source, out)
    if fmt == "mp4":
        from msus.export.video import write_mp4

        return write_mp4(cine, data, out, start=start, stop=stop)
    if fmt == "gif":
        from msus.export.video import write_gif

        return write_gif(cine, data, out, start=start, stop=stop)
    if fmt == "pdf":
        from msus.export.report import write_pdf

        return write_pdf(cine, data, out)
    if fmt == "bundle":
        from msus.export.bundle import write_bundle

        if cine.kind != "dicom" or source.is_dir():
            raise ExportError("a de-identified bundle needs a single DICOM file as source")
        return write_bundle(source, data, out, crop=crop)
    if fmt == "dicom-video":
        from msus.export.dicom_video import write_dicom_video

        return write_dicom_video(cine, source, out)
    raise ExportError(f"unknown export format {fmt!r}")
