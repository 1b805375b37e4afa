"""``msus pacs``: search the DICOMweb archive, fetch loops, send reports, manage the outbox.

The archive comes from ``MSUS_PACS_URL`` / ``MSUS_PACS_CONFIG`` (see :mod:`msus.pacs.config`).
"""

from __future__ import annotations

import argparse
import sys

from msus.commands import print_json
from msus.errors import PacsError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "pacs",
        help="search the DICOMweb archive (PACS), fetch loops, send reports",
        description="Talk to the DICOMweb archive configured by MSUS_PACS_URL or MSUS_PACS_CONFIG.",
    )
    acts = p.add_subparsers(dest="pacs_action", metavar="ACTION")
    acts.required = True

    s = acts.add_parser("search", help="find ultrasound studies (QIDO-RS)")
    s.add_argument("--patient-id")
    s.add_argument("--patient-name", help="prefix, or a pattern with * and ?")
    s.add_argument("--date-from", metavar="YYYYMMDD")
    s.add_argument("--date-to", metavar="YYYYMMDD")
    s.add_argument("--accession")
    s.add_argument("--modality", default="US", help="modality in study (default US; 'any' for all)")
    s.add_argument("--limit", type=int, default=200)
    s.add_argument("--json", action="store_true")

    i = acts.add_parser("instances", help="list a study's series and instances with frame counts")
    i.add_argument("study_uid", metavar="STUDY_UID")
    i.add_argument("series_uid", metavar="SERIES_UID", nargs="?")
    i.add_argument("--json", action="store_true")

    f = acts.add_parser("fetch", help="save a study, series or instance as DICOM files (WADO-RS)")
    f.add_argument("study_uid", metavar="STUDY_UID")
    f.add_argument("series_uid", metavar="SERIES_UID", nargs="?")
    f.add_argument("sop_uid", metavar="SOP_UID", nargs="?")
    f.add_argument("--out", required=True, metavar="DIR", help="folder for <SOPInstanceUID>.dcm files")
    f.add_argument("--json", action="store_true")

    d = acts.add_parser("send", help="send DICOM files (SR report, annotated loop) through the outbox (STOW-RS)")
    d.add_argument("files", metavar="FILE", nargs="+")
    d.add_argument("--kind", default="dicom", choices=("sr", "video", "dicom"))
    d.add_argument("--json", action="store_true")

    o = acts.add_parser("outbox", help="list the reports waiting to be sent, or send them now")
    o.add_argument("--flush", action="store_true", help="send everything queued now")
    o.add_argument("--status", choices=("queued", "sending", "sent", "rejected"))
    o.add_argument("--requeue", metavar="SOP_UID", help="put a rejected report back in the queue")
    o.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    from msus.pacs.client import Archive

    with Archive() as archive:
        return {
            "search": _search,
            "instances": _instances,
            "fetch": _fetch,
            "send": _send,
            "outbox": _outbox,
        }[args.pacs_action](archive, args)


def _search(archive, args) -> int:
    modality = None if (args.modality or "").lower() in ("", "any", "*") else args.modality
    studies = archive.search_studies(
        patient_id=args.patient_id, patient_name=args.patient_name, date_from=args.date_from,
        date_to=args.date_to, accession_number=args.accession, modality=modality, limit=args.limit,
    )
    if args.json:
        print_json({"archive": archive.config.url, "studies": [s.to_dict() for s in studies]})
        return 0
    if not studies:
        print("no matching studies")
        return 0
    print(f"{'date':<10} {'patient id':<16} {'patient name':<24} {'accession':<12} {'mod':<8} {'ser/inst':<9} study UID")
    for s in studies:
        counts = f"{s.n_series if s.n_series is not None else '?'}/{s.n_instances if s.n_instances is not None else '?'}"
        print(
            f"{s.study_date:<10} {s.patient_id[:16]:<16} {s.patient_name[:24]:<24} {s.accession_number[:12]:<12} "
            f"{','.join(s.modalities)[:8]:<8} {counts:<9} {s.study_uid}"
        )
    return 0


def _instances(archive, args) -> int:
    insts = archive.list_instances(args.study_uid, args.series_uid)
    if args.json:
        print_json({"study_uid": args.study_uid, "instances": [i.to_dict() for i in insts]})
        return 0
    if not insts:
        print("no instances")
        return 0
    print(f"{'#':>6} {'frames':>6} {'size':>9}  series UID / SOP instance UID")
    for i in insts:
        size = f"{i.columns}x{i.rows}" if i.is_image else "-"
        num = "" if i.instance_number is None else str(i.instance_number)
        print(f"{num:>6} {i.n_frames:>6} {size:>9}  {i.series_uid} {i.sop_uid}")
    return 0


def _fetch(archive, args) -> int:
    if args.sop_uid and not args.series_uid:
        raise PacsError("fetching one instance needs STUDY_UID SERIES_UID SOP_UID")
    paths = archive.fetch(args.study_uid, args.series_uid, args.sop_uid, out_dir=args.out)
    if args.json:
        print_json({"files": [str(p) for p in paths]})
    else:
        for p in paths:
            print(p)
        print(f"{len(paths)} file(s) in {args.out}", file=sys.stderr)
    return 0


def _send(archive, args) -> int:
    from msus.pacs.outbox import Outbox, send

    outbox = Outbox()
    results = [send(f, archive, outbox=outbox, kind=args.kind) for f in args.files]
    if args.json:
        print_json({
            "archive": archive.config.url,
            "results": [
                {"file": f, "status": r.status, "sop_instance_uid": r.sop_instance_uid, "message": r.message,
                 "warnings": list(r.warnings)}
                for f, r in zip(args.files, results)
            ],
            "pending": outbox.pending(archive.config.url),
        })
    else:
        for f, r in zip(args.files, results):
            print(f"{f}: {r.status} — {r.message}")
            for w in r.warnings:
                print(f"{f}: warning: {w}")
    failed = [r for r in results if not r.delivered]
    if failed:
        raise PacsError(f"{len(failed)} of {len(results)} not delivered: {failed[0].message}")
    return 0


def _outbox(archive, args) -> int:
    from msus.pacs.outbox import Outbox

    outbox = Outbox()
    url = archive.config.url
    flushed = None
    if args.requeue:
        outbox.requeue(args.requeue, url)
    if args.flush:
        flushed = outbox.flush(archive)
    items = outbox.items(status=args.status, archive_url=url)
    if args.json:
        print_json({
            "archive": url,
            "items": [i.to_dict() for i in items],
            "flush": flushed.to_dict() if flushed else None,
            "pending": outbox.pending(url),
        })
    else:
        if flushed is not None:
            print(
                f"sent {len(flushed.sent)}, already in archive {len(flushed.already_in_archive)}, "
                f"rejected {len(flushed.rejected)}, still queued {flushed.remaining}"
            )
        if not items:
            print("outbox is empty")
        for i in items:
            err = f"  ({i.last_error})" if i.last_error and i.status != "sent" else ""
            print(f"{i.status:<9} {i.kind:<6} {i.attempts:>2} tries  {i.sop_instance_uid}  {i.label}{err}")
    if flushed is not None and flushed.retry_later:
        raise PacsError(f"{flushed.remaining} report(s) still queued: {flushed.retry_later[0][1]}")
    return 0
