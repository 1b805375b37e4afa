"""``msus export PATH --format {json,csv,sr,mp4,gif,pdf,bundle,dicom-video} --out OUT``.

``dicom-video`` writes the loop itself (no annotations) as an H.264 DICOM for the PACS.

Exports what the findings store holds for the loop at PATH; when it holds nothing, the
automatic analysis is run and exported marked as automatic.  ``sr`` and ``bundle`` need a
DICOM source.  The source file is never modified.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from msus.errors import ExportError
from msus.export.formats import SUFFIX, write  # noqa: F401  (msus.commands.export.write: the CLI's writer)


def add_parser(sub):
    from msus.export import FORMATS

    p = sub.add_parser(
        "export",
        help="export measurements and findings (JSON, CSV, DICOM SR, MP4, GIF, PDF, de-identified bundle) "
             "or the loop as an H.264 DICOM video",
        description="Export what the findings store holds for a loop — or, when nothing is stored, its "
        "automatic analysis, marked as automatic.",
    )
    p.add_argument("path", metavar="PATH", help="the loop (DICOM file, video, image or folder)")
    p.add_argument("--format", "-f", required=True, choices=FORMATS, help="what to write")
    p.add_argument("--out", "-o", required=True, metavar="OUT",
                   help="output file (bundle: a .zip, or a new folder)")
    p.add_argument("--start", type=int, default=None, metavar="N", help="mp4/gif: first frame (0-based)")
    p.add_argument("--stop", type=int, default=None, metavar="N", help="mp4/gif: stop before this frame (0-based)")
    p.add_argument("--crop", metavar="X0,Y0,X1,Y1", default=None,
                   help="bundle: keep only this box (0-based px, inclusive) instead of the 2D tissue regions; "
                   "for files without a tissue region")
    p.add_argument("--database", metavar="URL", default=None,
                   help="store URL (default: $MSUS_DATABASE_URL, else the SQLite file in $MSUS_DATA_DIR)")
    p.add_argument("--no-store", action="store_true", help="ignore the store; export the automatic analysis")
    return p


def run(args) -> int:
    import msus
    from msus.export import gather

    src = Path(args.path)
    out = Path(args.out)
    if _resolved(out, "--out") == _resolved(src, "PATH"):
        raise ExportError("--out must not be the source file (msus never modifies sources)")
    crop = None
    if getattr(args, "crop", None):
        from msus.export.deid import parse_crop

        crop = parse_crop(args.crop)
    if args.format == "dicom-video":  # the loop itself: no findings needed
        from msus.export.dicom_video import write_dicom_video

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with msus.load(src) as cine:
                written = write_dicom_video(cine, src, out)
                n = cine.n_frames
        print(f"wrote {written} (dicom-video; {n} frames, H.264)", file=sys.stdout)
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cine = msus.load(src)
        try:
            store = None
            if not args.no_store:
                from msus.store import open_store

                store = open_store(args.database)
            try:
                data = gather(cine, store)
            finally:
                if store is not None:
                    store.close()
            written = write(args.format, cine, data, src, out, start=args.start, stop=args.stop, crop=crop)
        finally:
            cine.close()
    origin = "automatic analysis (not reviewed)" if data.automatic else "the store"
    cls = (data.finding or {}).get("classification") or "no finding"
    print(f"wrote {written} ({args.format}; {len(data.measurements)} calipers, {cls}; from {origin})", file=sys.stdout)
    return 0


def _resolved(p: Path, what: str) -> Path:
    try:
        return p.resolve()
    except (RuntimeError, OSError):  # Python raises RuntimeError on a symlink loop
        raise ExportError(f"{what} {p.name}: a symbolic link loop (the link points back to itself)") from None
