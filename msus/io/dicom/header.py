"""The DICOM header: sniffing, reading it (pixel data left in place), the transfer syntax, the
validated Image Pixel facts, the window and the palette of a dataset."""

from __future__ import annotations

import logging
import struct
import warnings as _warnings

import numpy as np

from msus.errors import CorruptFile, MsusError, TooLarge, UnsupportedFormat

logger = logging.getLogger(__name__)

#: Refuse before allocating: one decoded frame may hold at most this many samples
#: (rows × columns × samples per pixel) ...
MAX_FRAME_SAMPLES = 16384 * 16384
#: ... and a loop at most this many frames.
MAX_FRAMES = 200_000
#: ... and the decoded loop (uint8) at most this many bytes (a loop is decoded lazily, but the
#: app and analysis may touch every frame).
MAX_LOOP_BYTES = 64 * 2**30

_PIXEL_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")
_FLOAT_PIXEL_TAGS = (b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00", b"\x7f\xe0\x00\x08", b"\x7f\xe0\x00\x09")


def looks_like_dicom(head: bytes) -> bool:
    """True for Part 10 files (``DICM`` at 128) and for raw datasets without the preamble."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    if head[:4] == b"DICM":
        return True
    group = struct.unpack("<H", head[:2])[0]
    if group not in (0x0002, 0x0008):
        return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():  # explicit VR
        return True
    # implicit VR: a plausible (small) length for a header element
    length = struct.unpack("<I", head[4:8])[0]
    return length < 1024


def read_header(blob):
    """Read the dataset up to the pixel data; return ``(ds, pixel_element_offset)``.

    ``pixel_element_offset`` is the file offset of the (7FE0,0010) tag, or ``None`` when the
    dataset has no pixel data at top level.
    """
    import pydicom

    fp = blob.stream()
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
    except MsusError:
        raise
    except Exception as exc:  # pydicom raises many types for damaged headers
        logger.debug("read_header: pydicom raises many types for damaged headers", exc_info=True)
        raise CorruptFile(f"{blob.name}: cannot read the DICOM header ({short(exc)})") from exc
    pos = fp.tell()
    if len(ds) == 0 or not hasattr(ds, "file_meta"):
        raise UnsupportedFormat(f"{blob.name}: not a DICOM file")
    tag = bytes(blob.buf[pos:pos + 4])
    if tag in _PIXEL_TAGS:
        return ds, pos
    if tag in _FLOAT_PIXEL_TAGS:
        raise UnsupportedFormat(f"{blob.name}: float pixel data is not an ultrasound image")
    return ds, None


def short(exc: Exception) -> str:
    """An exception's message on one line, at most 160 characters (for a user-facing error)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


def transfer_syntax_of(ds):
    """The dataset's transfer syntax UID; without file meta, the encoding pydicom read it in."""
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if not ts:
        implicit, little = getattr(ds, "original_encoding", (None, None))
        little = True if little is None else little
        if implicit or implicit is None:
            return UID(ImplicitVRLittleEndian)
        return UID(ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    return UID(str(ts))


def _int(ds, kw, default=None):
    v = ds.get(kw, default)
    try:
        return int(v) if v is not None and v != "" else default
    except (TypeError, ValueError):
        return default


def _frame_count(ds, name: str) -> int:
    nf_raw = ds.get("NumberOfFrames", 1)
    try:
        nf = int(nf_raw) if nf_raw not in (None, "") else 1
    except (TypeError, ValueError):
        raise CorruptFile(f"{name}: invalid NumberOfFrames") from None
    if nf < 1:
        raise CorruptFile(f"{name}: NumberOfFrames is {nf}")
    return nf


def pixel_params(ds, name: str) -> dict:
    """Validated image-pixel facts of a dataset (raises on absurd or missing values)."""
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if not rows or not cols or rows < 1 or cols < 1:
        raise CorruptFile(f"{name}: the header has no valid Rows/Columns")
    spp = _int(ds, "SamplesPerPixel", 1)
    if spp not in (1, 3):
        raise UnsupportedFormat(f"{name}: {spp} samples per pixel is not supported (1 or 3)")
    ba = _int(ds, "BitsAllocated", 8)
    if ba not in (1, 8, 16, 32):
        raise UnsupportedFormat(f"{name}: {ba} bits allocated is not supported")
    bs = _int(ds, "BitsStored", ba) or ba
    if not 1 <= bs <= ba:
        bs = ba
    pr = _int(ds, "PixelRepresentation", 0) or 0
    if pr not in (0, 1):
        raise CorruptFile(f"{name}: invalid PixelRepresentation {pr}")
    pi = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if not pi:
        pi = "MONOCHROME2" if spp == 1 else "RGB"
    planar = _int(ds, "PlanarConfiguration", 0) or 0
    nf = _frame_count(ds, name)
    if rows * cols * spp > MAX_FRAME_SAMPLES:
        raise TooLarge(f"{name}: a {rows}×{cols}×{spp} frame is beyond the {MAX_FRAME_SAMPLES} sample limit")
    if nf > MAX_FRAMES:
        raise TooLarge(f"{name}: {nf} frames is beyond the {MAX_FRAMES} frame limit")
    out_spp = 3 if (spp == 3 or pi == "PALETTE COLOR") else 1
    if rows * cols * out_spp * nf > MAX_LOOP_BYTES:
        raise TooLarge(f"{name}: {nf} frames of {rows}×{cols} is beyond the {MAX_LOOP_BYTES >> 30} GiB loop limit")
    from msus.limits import check_frame

    check_frame(name, rows, cols, out_spp, nf)  # the byte limits (MSUS_MAX_FRAME_MB, MSUS_MAX_LOOP_MB)
    return dict(
        rows=rows, columns=cols, samples_per_pixel=spp, bits_allocated=ba, bits_stored=bs,
        pixel_representation=pr, photometric_interpretation=pi, planar_configuration=planar,
        number_of_frames=nf, out_spp=out_spp,
    )


def native_frame_bytes(p: dict) -> int:
    """Bytes one native (uncompressed) frame occupies."""
    rows, cols, spp, ba = p["rows"], p["columns"], p["samples_per_pixel"], p["bits_allocated"]
    if p["photometric_interpretation"] == "YBR_FULL_422" and spp == 3:
        return rows * cols * 2 * (ba // 8)
    if ba == 1:
        return (rows * cols * spp + 7) // 8  # frames of 1-bit data are packed back to back
    return rows * cols * spp * (ba // 8)


def header_window(ds, p) -> tuple[float, float] | None:
    """(low, high) stored values from WindowCenter/WindowWidth (first pair), with Rescale."""
    try:
        wc, ww = ds.get("WindowCenter"), ds.get("WindowWidth")
        if wc is None or ww is None:
            return None
        wc = float(wc[0] if hasattr(wc, "__len__") and not isinstance(wc, str) else wc)
        ww = float(ww[0] if hasattr(ww, "__len__") and not isinstance(ww, str) else ww)
        if not (np.isfinite(wc) and np.isfinite(ww)) or ww <= 0:
            return None
        slope = float(ds.get("RescaleSlope", 1) or 1)
        icpt = float(ds.get("RescaleIntercept", 0) or 0)
        lo, hi = wc - 0.5 - (ww - 1) / 2, wc - 0.5 + (ww - 1) / 2
        lo, hi = (lo - icpt) / slope, (hi - icpt) / slope
        return (min(lo, hi), max(lo, hi))
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None


def palette_dataset(ds, name: str):
    """A small dataset holding only the palette LUT elements (for apply_color_lut)."""
    from pydicom.dataset import Dataset, FileMetaDataset

    m = Dataset()
    m.file_meta = FileMetaDataset()
    m.file_meta.TransferSyntaxUID = transfer_syntax_of(ds)
    m.set_original_encoding(m.file_meta.TransferSyntaxUID.is_implicit_VR,
                            m.file_meta.TransferSyntaxUID.is_little_endian)
    found = False
    for tag in list(ds.keys()):
        if tag.group == 0x0028 and 0x1101 <= tag.element <= 0x1223 or tag == 0x00281199:
            try:
                elem = ds[tag]
            except Exception:
                logger.debug("palette_dataset: an unreadable palette element, skipped", exc_info=True)
                continue
            m.add(elem)
            found = True
    if not found or "RedPaletteColorLookupTableDescriptor" not in m:
        raise CorruptFile(f"{name}: PALETTE COLOR image without a colour lookup table")
    return m
