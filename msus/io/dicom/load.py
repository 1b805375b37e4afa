"""DICOM files → :class:`~msus.cine.Cine`, decoding only the frames asked for.

:func:`load_dicom` reads the header, indexes the pixel data (byte ranges of native frames, the
fragments of encapsulated ones) and builds the Cine; :func:`cine_from_dataset` builds a Cine from
an already-read header plus a per-frame bytes fetcher, so other sources (DICOMweb frame retrieval)
reuse the same decoding and calibration.
"""

from __future__ import annotations

import logging
import warnings as _warnings
from typing import Callable

import numpy as np

from msus.cine import Cine
from msus.errors import CorruptFile, UnsupportedFormat
from msus.io.dicom.decode import FrameDecoder
from msus.io.dicom.encaps import element_value, index_encapsulated_frames
from msus.io.dicom.header import native_frame_bytes, pixel_params, read_header, short, transfer_syntax_of
from msus.io.dicom.video import is_video_syntax, open_video, rgb_decoder

logger = logging.getLogger(__name__)


def cine_from_dataset(
    ds,
    frame_bytes: Callable[[int], bytes] | None,
    *,
    source_name: str = "",
    n_frames: int | None = None,
    transfer_syntax=None,
    close: Callable[[], None] | None = None,
    warnings=(),
    decode: Callable[[int], np.ndarray] | None = None,
    **cine_kwargs,
) -> Cine:
    """A :class:`Cine` from a read header and a per-frame fetcher of stored bytes.

    Parameters
    ----------
    ds
        pydicom Dataset with at least the Image Pixel module (pixel data may be absent).
    frame_bytes
        ``frame_bytes(i) -> bytes``: the stored bytes of frame ``i`` (0-based) — one frame's
        compressed bitstream for encapsulated syntaxes, its raw bytes for native ones (as DICOMweb
        frame retrieval returns them).  ``None``: take frames from ``ds.PixelData`` in memory.
    source_name
        Shown in messages (file name; never PHI).
    n_frames
        Overrides NumberOfFrames.
    transfer_syntax
        UID of the bytes ``frame_bytes`` returns (defaults to the dataset's).
    close
        Called by ``Cine.close()``.
    decode
        ``decode(i) -> np.ndarray``: display-ready frame ``i``, for pixel data that is not one
        stored frame per fetch (a DICOM video stream); ``frame_bytes`` is then ignored.
    """
    from pydicom.uid import UID

    from msus.calibration import calibration_from_dataset, frame_calibrations_from_dataset
    from msus.io.timing import dicom_frame_times
    from msus.meta import dicom_meta

    name = source_name or "<dicom>"
    ts = UID(str(transfer_syntax)) if transfer_syntax else transfer_syntax_of(ds)
    p = pixel_params(ds, name)
    nf = int(n_frames) if n_frames else p["number_of_frames"]
    p["number_of_frames"] = nf
    if decode is None:
        decode, decode_grey = _decoders(ds, ts, p, name, frame_bytes)
        if decode_grey is not None:
            cine_kwargs.setdefault("decode_grey", decode_grey)
    warn = list(warnings)
    with _warnings.catch_warnings():  # pydicom's value-validation chatter is not for users
        _warnings.simplefilter("ignore")
        times, timing_source, twarn = dicom_frame_times(ds, nf)
        calibration = calibration_from_dataset(ds, rows=p["rows"], columns=p["columns"])
        frame_cals = frame_calibrations_from_dataset(ds, nf, rows=p["rows"], columns=p["columns"])
        meta = dicom_meta(ds)
    warn += twarn
    pi = p["photometric_interpretation"]
    out_pi = {1: "MONOCHROME2", 3: "RGB"}[p["out_spp"]]
    meta.update(stored_photometric=pi, display_photometric=out_pi)
    return Cine(
        n_frames=nf,
        rows=p["rows"],
        columns=p["columns"],
        samples_per_pixel=p["out_spp"],
        decode=decode,
        frame_times_ms=times,
        timing_source=timing_source,
        calibration=calibration,
        frame_calibrations=frame_cals,
        meta=meta,
        kind="dicom",
        photometric=pi,
        transfer_syntax=str(ts),
        source_name=source_name,
        uid=str(ds.get("SOPInstanceUID", "") or "") or None,
        warnings=warn,
        close=close,
        **cine_kwargs,
    )


def _decoders(ds, ts, p, name, frame_bytes):
    """``decode(i)`` (display-ready frame ``i``) and ``decode_grey(i)`` (its luma, or None) over
    the stored bytes ``frame_bytes(i)`` returns (the dataset's own pixel data when None)."""
    decoder = FrameDecoder(ds, ts, p, name)
    if frame_bytes is None:
        frame_bytes = _in_memory_frames(ds, ts, p, name)

    def decode(i: int) -> np.ndarray:
        return decoder(frame_bytes(i), i)

    if decoder.decode_grey is None:
        return decode, None
    return decode, lambda i: decoder.decode_grey(frame_bytes(i), i)


def _in_memory_frames(ds, ts, p, name) -> Callable[[int], bytes]:
    if "PixelData" not in ds:
        raise UnsupportedFormat(f"{name}: the DICOM file holds no pixel data (not an image)")
    data = ds.PixelData
    return frame_fetcher(memoryview(data), 0, len(data), ts, p, name, ds,
                         undefined=ts.is_encapsulated)


def frame_fetcher(buf, start: int, length: int | None, ts, p: dict, name: str, ds, *, undefined: bool):
    """``fetch(i) -> bytes`` over pixel data stored at ``buf[start:]``; validates sizes first."""
    nf = p["number_of_frames"]
    if ts.is_encapsulated:
        if not undefined:
            raise CorruptFile(f"{name}: compressed pixel data must have undefined length")
        frames = index_encapsulated_frames(buf, start, nf, ts, name, ds)

        def fetch(i: int) -> bytes:
            parts = frames[i]
            if len(parts) == 1:
                off, ln = parts[0]
                return bytes(buf[off:off + ln])
            return b"".join(bytes(buf[o:o + n]) for o, n in parts)

        return fetch
    if undefined:
        raise CorruptFile(f"{name}: native pixel data with undefined length")
    per = native_frame_bytes(p)
    need = per * nf if p["bits_allocated"] != 1 else (p["rows"] * p["columns"] * p["samples_per_pixel"] * nf + 7) // 8
    have = min(length, len(buf) - start)
    if have < need:
        raise CorruptFile(
            f"{name}: pixel data holds {have} bytes but the header needs {need} "
            f"({nf} frames of {p['rows']}×{p['columns']}); file truncated?"
        )
    if p["bits_allocated"] == 1:
        packed = bytes(buf[start:start + need])

        def fetch1(i: int) -> bytes:
            bits = np.unpackbits(np.frombuffer(packed, np.uint8), bitorder="little")
            n = p["rows"] * p["columns"] * p["samples_per_pixel"]
            return np.packbits(bits[i * n:(i + 1) * n], bitorder="little").tobytes()

        return fetch1

    def fetch(i: int) -> bytes:
        off = start + i * per
        return bytes(buf[off:off + per])

    return fetch


def load_dicom(blob, *, cache_frames: int | None = None, **_ignored) -> Cine:
    """Open a DICOM file held in a :class:`~msus.io._source.Blob` (lazy frames)."""
    name = blob.name
    extra = {} if cache_frames is None else {"cache_frames": cache_frames}
    from msus.io.inflate import inflate_to_blob, is_deflated

    if is_deflated(blob.buf):  # inflated in a capped stream before pydicom sees it (MSUS_MAX_INFLATE_MB)
        return load_dicom(inflate_to_blob(blob), **extra)
    ds, pos = read_header(blob)
    ts = transfer_syntax_of(ds)
    if ts.is_deflated:
        return _load_deflated(blob, **extra)
    if pos is None:
        if _cut_short(ds, blob):  # the last element runs past the end of the file
            raise CorruptFile(f"{name}: the file is truncated ({len(blob)} bytes): it ends before the pixel data "
                              "its header describes")
        raise UnsupportedFormat(f"{name}: the DICOM file holds no pixel data (not an image)")
    if is_video_syntax(ts):
        return load_dicom_video(blob, ds, pos, ts, **extra)
    p = pixel_params(ds, name)
    start, length = element_value(blob.buf, pos, ts, name)
    buf = blob.buf
    if (not ts.is_little_endian and p["bits_allocated"] == 8 and length is not None
            and bytes(buf[pos + 4:pos + 6]) == b"OW"):
        # 8-bit samples in a big-endian OW value are byte-swapped in 16-bit words (small, retired)
        raw = bytearray(buf[start:start + length + (length & 1)])
        raw[0::2], raw[1::2] = raw[1::2], raw[0::2]
        buf, start = bytes(raw), 0
    fetch = frame_fetcher(buf, start, length, ts, p, name, ds, undefined=length is None)
    return cine_from_dataset(ds, fetch, source_name=name, transfer_syntax=ts, close=blob.close, **extra)


def load_dicom_video(blob, ds, pos: int, ts, *, cache_frames: int | None = None) -> Cine:
    """Open a DICOM file whose pixel data is one video stream (frames decoded on demand)."""
    name = blob.name
    p = pixel_params(ds, name)
    reader, warnings = open_video(blob, pos, ts, p)
    try:
        grey_out = p["out_spp"] == 1
        extra = {} if cache_frames is None else {"cache_frames": cache_frames}

        def close():
            reader.close()
            blob.close()

        cine = cine_from_dataset(
            ds, None, source_name=name, n_frames=reader.n, transfer_syntax=ts, close=close,
            warnings=warnings, decode=reader.decode_grey if grey_out else rgb_decoder(reader),
            decode_grey=None if grey_out else reader.decode_grey, **extra)
    except BaseException:
        reader.close()
        raise
    cine.meta.update(codec=reader.codec, container=reader.container_format)
    return cine


def _cut_short(ds, blob) -> bool:
    """True when the dataset's last element claims more bytes than the file holds (a cut file)."""
    try:
        raw = ds.get_item(list(ds.keys())[-1])
        tell, length = raw.value_tell, raw.length
    except Exception:
        logger.debug("_cut_short: cannot locate the last element", exc_info=True)
        return False
    if tell is None or length is None:
        return False
    if length == 0xFFFFFFFF:  # an undefined-length sequence must end with its delimiter
        return bytes(blob.buf[-8:]) != b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    return tell + length > len(blob)


def try_headerless_dicom(blob, **kwargs) -> Cine | None:
    """A DICOM dataset without preamble or file meta that sniffing missed, else None."""
    import pydicom

    try:
        ds = pydicom.dcmread(blob.stream(), stop_before_pixels=True, force=True)
        ok = len(ds) > 0 and "Rows" in ds and "Columns" in ds
    except Exception:
        logger.debug("try_headerless_dicom: not DICOM without a preamble", exc_info=True)
        return None
    if not ok:
        return None
    return load_dicom(blob, **kwargs)


def _load_deflated(blob, **extra) -> Cine:
    """Deflated datasets cannot be sliced in place: inflate and read them whole."""
    import pydicom

    try:
        ds = pydicom.dcmread(blob.stream(), force=True)
    except Exception as exc:
        logger.debug("_load_deflated: cannot read the inflated dataset", exc_info=True)
        raise CorruptFile(f"{blob.name}: cannot read the deflated DICOM ({short(exc)})") from exc
    return cine_from_dataset(ds, None, source_name=blob.name, close=blob.close, **extra)
