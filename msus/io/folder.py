"""Folders → one :class:`~msus.cine.Cine`.

* Single-frame DICOM files of **one series** become one loop, ordered by InstanceNumber, then
  acquisition/content time, then file name.  Several series in one folder are refused with a
  message listing them, unless ``series=`` (SeriesNumber or SeriesInstanceUID) picks one.
  Timing: acquisition/content times when they increase strictly, else the first file's
  FrameTime/CineRate, else the default.  Calibration: the first file's (a warning when files
  disagree).
* A folder holding exactly one multi-frame DICOM (plus anything non-image) opens that file.
* Image files (PNG, JPEG, TIFF, BMP...) become a loop in natural name order (``f2`` before
  ``f10``).
Files are recognised by content; hidden files and non-image files are ignored.
"""

from __future__ import annotations

import re
import warnings as _warnings
from pathlib import Path

import numpy as np

from msus.cine import Cine
from msus.errors import CorruptFile, MsusError, TooLarge, UnsupportedFormat
from msus.io.dicom import MAX_FRAMES

MAX_FILES = MAX_FRAMES


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _head(p: Path, n: int = 512) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def load_folder(folder: Path, *, series=None, cache_frames: int | None = None, **_ignored) -> Cine:
    from msus.io.content import sniff

    files = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")), key=_natural_key)
    if len(files) > MAX_FILES:
        raise TooLarge(f"{folder.name}: more than {MAX_FILES} files in the folder")
    kinds: dict[str, list[Path]] = {}
    for p in files:
        k = sniff(_head(p))
        kinds.setdefault(k or "unknown", []).append(p)
    if kinds.get("dicom"):
        return _dicom_folder(folder, kinds["dicom"], series, cache_frames)
    if kinds.get("image"):
        from msus.io.images import images_cine

        return images_cine(kinds["image"], folder.name, cache_frames=cache_frames)
    if kinds.get("unknown"):  # FFmpeg recognises videos itself
        kinds["video"] = [p for p in kinds["unknown"] if _is_video(p)]
    if kinds.get("video"):
        if len(kinds["video"]) == 1:
            return _one_video(kinds["video"][0], cache_frames)
        raise UnsupportedFormat(f"{folder.name}: the folder holds {len(kinds['video'])} videos; open one file")
    if kinds.get("zip"):
        raise UnsupportedFormat(f"{folder.name}: the folder holds only zip archives; unpack them first")
    raise UnsupportedFormat(f"{folder.name}: the folder holds no DICOM files, videos or images")


def _one_video(path: Path, cache_frames: int | None) -> Cine:
    from msus.io._source import open_file
    from msus.io.video import load_video

    blob = open_file(path)
    try:
        return load_video(blob, cache_frames=cache_frames)
    except BaseException:
        blob.close()
        raise


def _is_video(path: Path) -> bool:
    from msus.io._source import open_file
    from msus.io.video import probe

    blob = open_file(path)
    try:
        return len(blob) > 0 and probe(blob)
    finally:
        blob.close()


def _time_s(ds) -> float | None:
    """Seconds since midnight (plus days) from AcquisitionDateTime / AcquisitionTime / ContentTime."""
    for kw in ("AcquisitionDateTime", "FrameAcquisitionDateTime"):
        v = str(ds.get(kw, "") or "")
        if len(v) >= 14:
            return _tm(v[8:]) + _day(v[:8]) * 86400 if _tm(v[8:]) is not None else None
    for date_kw, time_kw in (("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime")):
        t = _tm(str(ds.get(time_kw, "") or ""))
        if t is not None:
            return t + _day(str(ds.get(date_kw, "") or "")) * 86400
    return None


def _day(d: str) -> int:
    try:
        import datetime as dt

        return dt.date(int(d[:4]), int(d[4:6]), int(d[6:8])).toordinal()
    except (ValueError, IndexError):
        return 0


def _tm(t: str) -> float | None:
    t = t.strip().split("+")[0].split("-")[0]
    m = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d+)?", t)
    if not m:
        return None
    h, mi, s, frac = m.groups()
    return int(h) * 3600 + int(mi or 0) * 60 + int(s or 0) + float(frac or 0)


def _read_headers(paths: list[Path]) -> list[tuple]:
    """(path, dataset or None when damaged, pixel data position or None) of each DICOM file."""
    from msus.io._source import open_file
    from msus.io.dicom import read_header

    out = []
    for p in paths:
        try:
            blob = open_file(p)
        except MsusError:
            out.append((p, None, None))
            continue
        try:
            ds, pos = read_header(blob)
        except MsusError:
            ds, pos = None, None  # damaged or not an image: ignored in a folder
        finally:
            blob.close()
        out.append((p, ds, pos))  # pos None: DICOMDIR, SR, presentation states...
    return out


def _dicom_folder(folder: Path, paths: list[Path], series, cache_frames) -> Cine:
    from msus.io._source import open_file
    from msus.io.dicom import load_dicom, pixel_params

    headers = [(p, ds) for p, ds, pos in _read_headers(paths) if ds is not None and pos is not None]
    if not headers:
        raise UnsupportedFormat(f"{folder.name}: the folder holds no DICOM images")
    groups: dict[str, list] = {}
    for p, ds in headers:
        groups.setdefault(str(ds.get("SeriesInstanceUID", "") or ""), []).append((p, ds))
    if series is not None:
        want = str(series)
        picked = {k: v for k, v in groups.items()
                  if k == want or str(v[0][1].get("SeriesNumber", "")) == want}
        if not picked:
            raise UnsupportedFormat(f"{folder.name}: no series {want} in the folder")
        groups = picked
    if len(groups) > 1:
        desc = ", ".join(
            f"series {v[0][1].get('SeriesNumber', '?')}: {len(v)} file(s)" for v in groups.values()
        )
        raise UnsupportedFormat(
            f"{folder.name}: the folder mixes {len(groups)} series ({desc}); open one series' folder "
            "or pass series=<SeriesNumber>"
        )
    members = next(iter(groups.values()))
    multi = [(p, ds) for p, ds in members if int(ds.get("NumberOfFrames", 1) or 1) > 1]
    if multi:
        if len(members) == 1:
            return load_dicom(open_file(members[0][0]), cache_frames=cache_frames)
        raise UnsupportedFormat(
            f"{folder.name}: the folder holds {len(members)} files of which {len(multi)} are multi-frame loops; "
            "open one file")
    p0 = pixel_params(members[0][1], members[0][0].name)
    for p, ds in members[1:]:
        q = pixel_params(ds, p.name)
        if (q["rows"], q["columns"], q["out_spp"]) != (p0["rows"], p0["columns"], p0["out_spp"]):
            raise UnsupportedFormat(
                f"{folder.name}: {p.name} is {q['rows']}×{q['columns']}, {members[0][0].name} is "
                f"{p0['rows']}×{p0['columns']}; not one loop")

    def key(item):
        p, ds = item
        try:
            inst = int(ds.get("InstanceNumber"))
        except (TypeError, ValueError):
            inst = None
        t = _time_s(ds)
        return (inst is None, inst or 0, t is None, t or 0.0, _natural_key(p))

    members.sort(key=key)
    paths_sorted = [p for p, _ in members]
    warnings: list[str] = []
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        times = [_time_s(ds) for _, ds in members]
    frame_times, timing_source = None, None
    if len(members) > 1 and all(t is not None for t in times) and np.all(np.diff(times) > 0):
        frame_times = (np.asarray(times) - times[0]) * 1000.0
        timing_source = "AcquisitionTime"
    first = load_dicom(open_file(paths_sorted[0]))
    if frame_times is None and first.timing_source not in ("default", None) and len(members) > 1:
        step = 1000.0 / first.fps
        frame_times, timing_source = np.arange(len(members)) * step, first.timing_source
    cal0 = first.calibration
    for p, ds in members[1:]:
        from msus.calibration import calibration_from_dataset

        c = calibration_from_dataset(ds)
        if (c.source, c.regions, c.mm_per_px_x, c.mm_per_px_y) != (cal0.source, cal0.regions, cal0.mm_per_px_x,
                                                                   cal0.mm_per_px_y):
            warnings.append(f"calibration differs between files ({p.name} vs {paths_sorted[0].name}); "
                            "the first file's is used")
            break
    first_frame = first.frame(0)
    first.close()
    spp = 3 if first_frame.ndim == 3 else 1

    def decode(i: int) -> np.ndarray:
        if i == 0:
            return first_frame
        c = load_dicom(open_file(paths_sorted[i]))
        try:
            return c.frame(0)
        finally:
            c.close()

    extra = {} if cache_frames is None else {"cache_frames": cache_frames}
    meta = dict(first.meta)
    meta["files"] = len(members)
    return Cine(
        n_frames=len(members), rows=first.rows, columns=first.columns, samples_per_pixel=spp, decode=decode,
        frame_times_ms=frame_times, timing_source=timing_source, calibration=cal0, meta=meta, kind="dicom",
        photometric=first.photometric, transfer_syntax=first.transfer_syntax, source_name=folder.name,
        uid=str(members[0][1].get("SeriesInstanceUID", "") or "") or first.uid,
        warnings=[*first.warnings, *warnings], **extra,
    )
