"""``msus info PATH [--json]``: what a source holds — geometry, timing, calibration, warnings.

Never prints PHI: only technical header facts (no names, IDs, dates or UIDs).
"""

from __future__ import annotations

from msus.commands import print_json


def add_parser(sub):
    p = sub.add_parser("info", help="describe a cine loop: frames, timing, calibration",
                       description="Describe a cine loop (DICOM, video, image stack): frames, geometry, "
                                   "timing, calibration regions and warnings. No patient data is printed.")
    p.add_argument("path", metavar="PATH", help="DICOM file, video, image, or folder of them")
    p.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    return p


def info_dict(cine) -> dict:
    """The ``msus info --json`` document for an opened :class:`~msus.cine.Cine`."""
    cal = cine.calibration
    has_timing = cine.timing_source != "default"
    warnings = list(dict.fromkeys([*cine.warnings, *cal.warnings]))
    return {
        "kind": cine.kind,
        "frames": cine.n_frames,
        "rows": cine.rows,
        "columns": cine.columns,
        "samples_per_pixel": cine.samples_per_pixel,
        "fps": round(float(cine.fps), 6),
        "frame_times_ms": [round(float(t), 6) for t in cine.frame_times_ms] if has_timing else None,
        "timing_source": cine.timing_source,
        "photometric": cine.photometric,
        "transfer_syntax": cine.transfer_syntax,
        "codec": codec_of(cine),
        "calibration": {
            "source": cal.source,
            "detail": cal.detail,
            "mm_per_px_x": cal.mm_per_px_x,
            "mm_per_px_y": cal.mm_per_px_y,
            "regions": [r.to_dict() for r in cal.regions],
            "warnings": list(cal.warnings),
        },
        "per_frame_calibration_frames": sorted(cine.frame_calibrations),
        "scanner": " ".join(str(cine.meta.get(k, "")) for k in ("Manufacturer", "ManufacturerModelName")).strip()
        or None,
        "warnings": warnings,
    }


_DICOM_CODECS = (  # transfer syntax prefix → codec of its pixel data
    ("1.2.840.10008.1.2.4.5", "jpeg"), ("1.2.840.10008.1.2.4.57", "jpeg-lossless"),
    ("1.2.840.10008.1.2.4.70", "jpeg-lossless"), ("1.2.840.10008.1.2.4.8", "jpeg-ls"),
    ("1.2.840.10008.1.2.4.9", "jpeg2000"), ("1.2.840.10008.1.2.4.20", "htj2k"), ("1.2.840.10008.1.2.5", "rle"),
)


def codec_of(cine) -> str | None:
    """What the pixels are compressed with: the video codec (FFmpeg's name: ``h264``, ``hevc``,
    ``mpeg2video``, ``wmv2``…), a DICOM image codec (``jpeg``, ``jpeg-ls``, ``jpeg2000``, ``rle``…),
    ``uncompressed``, or None when unknown (images)."""
    if cine.meta.get("codec"):
        return str(cine.meta["codec"])
    ts = cine.transfer_syntax or ""
    if cine.kind != "dicom" or not ts:
        return None
    for prefix, name in _DICOM_CODECS:
        if ts.startswith(prefix):
            return name
    return "uncompressed" if ts.startswith("1.2.840.10008.1.2") else None


def _ts_name(uid: str | None) -> str:
    if not uid:
        return "-"
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else uid


def summary(cine, d: dict) -> str:
    shape = f"{d['rows']}×{d['columns']}" + (" RGB" if d["samples_per_pixel"] == 3 else " grey")
    lines = [f"{cine.source_name or '-'}: {d['kind']}, {d['frames']} frame(s) of {shape}"]
    if d["scanner"]:
        lines.append(f"  scanner:     {d['scanner']}")
    if d["kind"] == "dicom":
        codec = f" ({d['codec']})" if d.get("codec") and d["codec"] != "uncompressed" else ""
        lines.append(f"  encoding:    {_ts_name(d['transfer_syntax'])}{codec}, {d['photometric']}")
    elif d["transfer_syntax"]:
        lines.append(f"  encoding:    {d['transfer_syntax']}")
    if d["frame_times_ms"] is None:
        lines.append(f"  timing:      none in the file; {d['fps']:.3g} fps assumed")
    else:
        lines.append(f"  timing:      {d['fps']:.4g} fps from {d['timing_source']}, "
                     f"{cine.duration_ms / 1000:.2f} s")
    cal = cine.calibration
    if cal.source == "us_region":
        lines.append(f"  calibration: ultrasound regions ({len(cal.regions)})")
    elif cal.source == "none":
        lines.append("  calibration: none — lengths in px (uncalibrated)")
    else:
        lines.append(f"  calibration: {cal.badge()}")
    for r in d["calibration"]["regions"]:
        scale = ("%.4f × %.4f mm/px" % (r["mm_per_px_x"], r["mm_per_px_y"])
                 if r["mm_per_px_x"] is not None and r["mm_per_px_y"] is not None else "not calibrated in cm")
        lines.append(f"    #{r['index'] + 1} {r['spatial_format']:<8} x {r['x0']}–{r['x1']}, y {r['y0']}–{r['y1']}: {scale}")
    if d["per_frame_calibration_frames"]:
        lines.append(f"  per-frame calibration on {len(d['per_frame_calibration_frames'])} frame(s)")
    for w in d["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def run(args) -> int:
    import msus

    with msus.load(args.path) as cine:
        d = info_dict(cine)
        if args.json:
            print_json(d)
        else:
            print(summary(cine, d))
    return 0
