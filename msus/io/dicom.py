"""DICOM files → :class:`~msus.cine.Cine`, decoding only the frames asked for.

Opening reads the header with pydicom (``stop_before_pixels``), then indexes the pixel data
without decoding it: for native (uncompressed) data each frame is a byte range; for encapsulated
data the item tags are scanned once (seeks only) and frames are mapped to fragments with the
Extended/Basic Offset Table, one fragment per frame, or codec start markers.  ``frame(i)`` then
decodes one frame:

* JPEG baseline/extended, 8 bit: OpenCV's libjpeg-turbo (``cv2.imdecode``), which converts the
  YCbCr of YBR_FULL_422/YBR_FULL to RGB itself (checked against pydicom in the tests);
* every other transfer syntax: pydicom's decoders (``pydicom.pixels``) on that one frame;
* then display conversion exactly once: YBR → RGB, PALETTE COLOR → RGB, MONOCHROME1 inverted,
  more than 8 bits → window (VOI LUT / WindowCenter-Width, else the first frame's min–max).

:func:`cine_from_dataset` builds a Cine from an already-read header plus a per-frame bytes
fetcher, so other sources (DICOMweb frame retrieval) reuse the same decoding and calibration.
"""

from __future__ import annotations

import logging
import struct
import threading
import warnings as _warnings
from typing import Callable

import numpy as np

from msus.cine import Cine
from msus.errors import CorruptFile, LoadError, MissingDecoder, MsusError, TooLarge, UnsupportedFormat

logger = logging.getLogger(__name__)

#: Refuse before allocating: one decoded frame may hold at most this many samples
#: (rows × columns × samples per pixel) ...
MAX_FRAME_SAMPLES = 16384 * 16384
#: ... and a loop at most this many frames.
MAX_FRAMES = 200_000
#: ... and the decoded loop (uint8) at most this many bytes (a loop is decoded lazily, but the
#: app and analysis may touch every frame).
MAX_LOOP_BYTES = 64 * 2**30

NATIVE_SYNTAXES = (
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired)
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian (inflated on open)
)
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"

#: pip package that provides the decoder for a transfer syntax (permissive licences only).
DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pillow",
    "1.2.840.10008.1.2.4.51": "imagecodecs",
    "1.2.840.10008.1.2.4.57": "imagecodecs",
    "1.2.840.10008.1.2.4.70": "imagecodecs",
    "1.2.840.10008.1.2.4.80": "pyjpegls",
    "1.2.840.10008.1.2.4.81": "pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}

_PIXEL_MODULE = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PhotometricInterpretation",
    "PlanarConfiguration",
)
_ITEM = 0xFFFEE000
_SEQ_DELIM = 0xFFFEE0DD


# ---------------------------------------------------------------------------------------------
# sniffing and header
# ---------------------------------------------------------------------------------------------
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
        raise CorruptFile(f"{blob.name}: cannot read the DICOM header ({_short(exc)})") from exc
    pos = fp.tell()
    if len(ds._dict) == 0 or not hasattr(ds, "file_meta"):
        raise UnsupportedFormat(f"{blob.name}: not a DICOM file")
    tag = bytes(blob.buf[pos:pos + 4])
    if len(tag) == 4 and tag in (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10"):
        return ds, pos
    if len(tag) == 4 and tag in (b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00", b"\x7f\xe0\x00\x08", b"\x7f\xe0\x00\x09"):
        raise UnsupportedFormat(f"{blob.name}: float pixel data is not an ultrasound image")
    return ds, None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


def transfer_syntax_of(ds):
    from pydicom.uid import UID, ImplicitVRLittleEndian

    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if not ts:
        # No file meta: infer from how pydicom read the dataset.
        implicit, little = getattr(ds, "original_encoding", (None, None))
        little = True if little is None else little
        if implicit or implicit is None:
            return UID(ImplicitVRLittleEndian)
        return UID("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")
    return UID(str(ts))


# ---------------------------------------------------------------------------------------------
# pixel data index (no decoding)
# ---------------------------------------------------------------------------------------------
def _element_value(buf, pos: int, ts, name: str) -> tuple[int, int | None]:
    """Offset of the pixel data value and its length (None when undefined)."""
    little = ts.is_little_endian
    e = "<" if little else ">"
    # Trust the bytes over the transfer syntax: some writers switch VR encoding mid-file.
    vr_bytes = bytes(buf[pos + 4:pos + 6])
    explicit = len(vr_bytes) == 2 and vr_bytes.isalpha() and vr_bytes.isupper()
    if explicit:
        hdr = bytes(buf[pos:pos + 12])
        if len(hdr) < 8:
            raise CorruptFile(f"{name}: truncated before the pixel data")
        vr = hdr[4:6]
        if vr in (b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN", b"UT", b"SQ", b"UC", b"UR"):
            if len(hdr) < 12:
                raise CorruptFile(f"{name}: truncated before the pixel data")
            length = struct.unpack(e + "I", hdr[8:12])[0]
            start = pos + 12
        else:
            length = struct.unpack(e + "H", hdr[6:8])[0]
            start = pos + 8
    else:
        hdr = bytes(buf[pos:pos + 8])
        if len(hdr) < 8:
            raise CorruptFile(f"{name}: truncated before the pixel data")
        length = struct.unpack("<I", hdr[4:8])[0]
        start = pos + 8
    return start, (None if length == 0xFFFFFFFF else length)


def _scan_fragments(buf, start: int, name: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Basic Offset Table entries and ``(offset, length)`` of each fragment's data."""
    n = len(buf)
    pos = start
    items: list[tuple[int, int]] = []
    while True:
        if pos + 8 > n:
            if items:  # missing sequence delimiter at end of file: tolerate complete items
                break
            raise CorruptFile(f"{name}: pixel data is truncated (no fragments)")
        tag_group, tag_elem, length = struct.unpack("<HHI", bytes(buf[pos:pos + 8]))
        tag = (tag_group << 16) | tag_elem
        if tag == _SEQ_DELIM:
            break
        if tag != _ITEM:
            if items:  # trailing garbage after the last item
                break
            raise CorruptFile(f"{name}: encapsulated pixel data is malformed (item tag {tag:08X})")
        if length == 0xFFFFFFFF or pos + 8 + length > n:
            raise CorruptFile(f"{name}: pixel data is shorter than its items say (file truncated?)")
        items.append((pos + 8, length))
        pos += 8 + length
    if not items:
        raise CorruptFile(f"{name}: encapsulated pixel data holds no items")
    bot_off, bot_len = items[0]
    bot: list[int] = []
    if bot_len:
        if bot_len % 4:
            raise CorruptFile(f"{name}: Basic Offset Table has an odd length")
        bot = list(struct.unpack(f"<{bot_len // 4}I", bytes(buf[bot_off:bot_off + bot_len])))
    return bot, items[1:]


_FRAME_STARTS = {
    # transfer syntax prefix → bytes a frame's first fragment starts with
    "1.2.840.10008.1.2.4.5": (b"\xff\xd8",),
    "1.2.840.10008.1.2.4.7": (b"\xff\xd8",),
    "1.2.840.10008.1.2.4.8": (b"\xff\xd8",),
    "1.2.840.10008.1.2.4.9": (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP"),
    "1.2.840.10008.1.2.4.20": (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP"),
}


def index_encapsulated_frames(buf, start: int, n_frames: int, ts, name: str, ds=None) -> list[list[tuple[int, int]]]:
    """For each frame, the ``(offset, length)`` of its fragments' data in ``buf``."""
    bot, frags = _scan_fragments(buf, start, name)
    if not frags:
        raise CorruptFile(f"{name}: pixel data holds no image fragments")
    first_item = frags[0][0] - 8  # offsets in BOT/EOT are relative to the first fragment's item tag
    eot = ds.get("ExtendedOffsetTable") if ds is not None else None
    if eot:
        offs = np.frombuffer(bytes(eot), dtype="<u8")
        starts = [int(o) + first_item for o in offs]
        if len(starts) == n_frames:
            return _group_by_starts(frags, starts, name)
    if bot and len(bot) == n_frames:
        return _group_by_starts(frags, [b + first_item for b in bot], name)
    if len(frags) == n_frames:
        return [[f] for f in frags]
    if n_frames == 1:
        return [frags]
    if len(frags) < n_frames:
        raise CorruptFile(
            f"{name}: header says {n_frames} frames but the pixel data holds only {len(frags)} fragments"
        )
    markers = next((m for p, m in _FRAME_STARTS.items() if str(ts).startswith(p)), None)
    if markers:
        starts = [off - 8 for off, ln in frags if any(bytes(buf[off:off + len(m)]) == m for m in markers)]
        if len(starts) == n_frames:
            return _group_by_starts(frags, starts, name)
    raise CorruptFile(
        f"{name}: cannot tell frame boundaries ({len(frags)} fragments for {n_frames} frames, no offset table)"
    )


def _group_by_starts(frags, starts, name) -> list[list[tuple[int, int]]]:
    item_pos = [off - 8 for off, _ in frags]
    where = {p: i for i, p in enumerate(item_pos)}
    out = []
    idx = []
    for k, s in enumerate(starts):
        if s not in where:
            if s > item_pos[-1]:
                raise CorruptFile(
                    f"{name}: pixel data ends before frame {k + 1} of {len(starts)} (file truncated?)")
            raise CorruptFile(f"{name}: offset table points between fragments")
        idx.append(where[s])
    idx.append(len(frags))
    for a, b in zip(idx[:-1], idx[1:]):
        if b <= a:
            raise CorruptFile(f"{name}: offset table is not increasing")
        out.append(frags[a:b])
    return out


# ---------------------------------------------------------------------------------------------
# decoding one frame
# ---------------------------------------------------------------------------------------------
def _int(ds, kw, default=None):
    v = ds.get(kw, default)
    try:
        return int(v) if v is not None and v != "" else default
    except (TypeError, ValueError):
        return default


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
    nf_raw = ds.get("NumberOfFrames", 1)
    try:
        nf = int(nf_raw) if nf_raw not in (None, "") else 1
    except (TypeError, ValueError):
        raise CorruptFile(f"{name}: invalid NumberOfFrames") from None
    if nf < 1:
        raise CorruptFile(f"{name}: NumberOfFrames is {nf}")
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


def missing_decoder_message(ts) -> str:
    pkg = DECODER_PACKAGES.get(str(ts))
    label = getattr(ts, "name", str(ts))
    if pkg:
        return f"no decoder for {label} is installed: pip install {pkg}"
    return f"no decoder for transfer syntax {label} ({ts}) is available"


class FrameDecoder:
    """Decode the stored bytes of one frame to a display-ready uint8 array."""

    def __init__(self, ds, ts, params: dict, name: str):
        self.ds = ds
        self.ts = ts
        self.p = params
        self.name = name
        pi = params["photometric_interpretation"]
        self.fast_jpeg = (
            str(ts) in (JPEG_BASELINE, JPEG_EXTENDED)
            and params["bits_allocated"] == 8
            and pi in ("YBR_FULL_422", "YBR_FULL", "MONOCHROME2", "MONOCHROME1", "RGB")
        )
        #: ``decode_grey(data, index)``: luma only, without chroma (JPEG YCbCr), else None
        self.decode_grey = self._luma if (self.fast_jpeg and pi in ("YBR_FULL_422", "YBR_FULL")
                                          and params["samples_per_pixel"] == 3) else None
        self._window: tuple[float, float] | None = None
        self._window_lock = threading.Lock()
        self._lut_ds = None
        if pi == "PALETTE COLOR":
            self._lut_ds = _palette_dataset(ds, name)
        if not ts.is_encapsulated and str(ts) not in NATIVE_SYNTAXES:
            raise UnsupportedFormat(f"{name}: unknown transfer syntax {ts}")
        #: 12/16-bit and lossless JPEG: libjpeg-turbo 3 through imagecodecs (BSD-3), never GDCM first
        self.wide_jpeg = (not self.fast_jpeg and str(ts) in _WIDE_JPEG
                          and params["bits_allocated"] in (8, 16) and _imagecodecs_jpeg() is not None)
        if ts.is_encapsulated and not self.fast_jpeg and not self.wide_jpeg:
            from pydicom.pixels import get_decoder

            try:
                dec = get_decoder(ts)
            except NotImplementedError:
                raise MissingDecoder(f"{name}: {missing_decoder_message(ts)}") from None
            if not dec.is_available:
                raise MissingDecoder(f"{name}: {missing_decoder_message(ts)}")
            self._decoder = dec
        else:
            self._decoder = None

    # -- stored bytes → array in the stored photometric interpretation ---------------------
    def __call__(self, data: bytes, index: int = 0) -> np.ndarray:
        try:
            arr, pi = self._decode(data)
            return self._display(arr, pi, index)
        except MsusError:
            raise
        except MemoryError:
            raise TooLarge(f"{self.name}: not enough memory to decode frame {index + 1}") from None
        except Exception as exc:
            logger.debug("frame decode failed", exc_info=True)
            raise CorruptFile(f"{self.name}: frame {index + 1} cannot be decoded ({_short(exc)})") from exc

    def _decode(self, data: bytes) -> tuple[np.ndarray, str]:
        p = self.p
        pi = p["photometric_interpretation"]
        if self.fast_jpeg and not (pi == "RGB" and not _libjpeg_keeps_rgb(data)):
            import cv2

            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if img is not None and img.dtype == np.uint8:
                if img.ndim == 3 and img.shape[2] == 3 and p["samples_per_pixel"] == 3:
                    # libjpeg-turbo converts YCbCr → RGB (returned as BGR) for 3-component JPEGs,
                    # and leaves streams marked RGB (Adobe transform 0, ids 'R','G','B') alone
                    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img), "RGB"  # in place: one buffer
                if img.ndim == 2 and p["samples_per_pixel"] == 1:
                    return img, pi
            # libjpeg-turbo refused it: Pillow may still read it (never GDCM on a stream this bad)
            return self._pydicom(data, plugins=["pillow"])
        if self.wide_jpeg:
            return self._libjpeg_wide(data)
        if self.ts.is_encapsulated:
            return self._pydicom(data)
        return self._native(data)

    def _libjpeg_wide(self, data: bytes) -> tuple[np.ndarray, str]:
        """8/12-bit JPEG extended and 2–16-bit JPEG lossless (process 14, SV1) via imagecodecs."""
        self._check_jpeg_header(data)
        arr = _imagecodecs_jpeg().jpeg8_decode(bytes(data))
        p = self.p
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.shape[:2] != (p["rows"], p["columns"]) or (arr.ndim == 3) != (p["samples_per_pixel"] == 3):
            raise CorruptFile(f"{self.name}: a JPEG frame decoded to {arr.shape}, the header says "
                              f"{p['rows']}×{p['columns']}×{p['samples_per_pixel']}")
        if p["pixel_representation"] and arr.dtype == np.uint16:  # signed samples, two's complement
            arr = _mask_bits(arr.view(np.int16), p["bits_stored"], True)
        # libjpeg converts YCbCr to RGB itself; a lossless stream carries no colour transform
        return arr, ("RGB" if arr.ndim == 3 else p["photometric_interpretation"])


    def _luma(self, data: bytes, index: int = 0) -> np.ndarray:
        """The JPEG's Y component: libjpeg skips the chroma's IDCT, upsampling and colour conversion."""
        import cv2

        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
        if img is not None and img.shape == (self.p["rows"], self.p["columns"]):
            return img
        return cv2.cvtColor(self(data, index), cv2.COLOR_RGB2GRAY)

    def _plugins(self, dec) -> list[str]:
        """Plugins to try, GDCM last and only when needed.

        GDCM aborts the whole process (a C++ assertion) on some damaged streams, so it is used
        only for syntaxes no other installed plugin decodes (JPEG lossless), or as a fallback for
        JPEG-family frames whose header has been checked first (12-bit JPEG extended).
        """
        names = list(getattr(dec, "available_plugins", ()) or ())
        first = [n for n in names if n != "gdcm"]
        if "gdcm" in names and not first:
            first.append("gdcm")
        return first

    @property
    def _jpeg_family(self) -> bool:
        return str(self.ts).startswith(("1.2.840.10008.1.2.4.5", "1.2.840.10008.1.2.4.7", "1.2.840.10008.1.2.4.8"))

    def _check_jpeg_header(self, data: bytes) -> None:
        """Refuse a JPEG/JPEG-LS frame whose SOF header does not match the DICOM header."""
        from pydicom.pixels.utils import _get_jpg_parameters

        head = bytes(data[:65536])
        marker = _sof_marker(head)
        want = _SOF_FOR_SYNTAX.get(str(self.ts)[:22], set())
        if marker is None or (want and marker not in want):
            raise CorruptFile(f"{self.name}: a frame is not {self.ts.name} data")
        info = _get_jpg_parameters(head)
        p = self.p
        if not info:
            raise CorruptFile(f"{self.name}: a frame is not a valid JPEG stream")
        if (info.get("height"), info.get("width")) != (p["rows"], p["columns"]):
            raise CorruptFile(
                f"{self.name}: a JPEG frame is {info.get('width')}×{info.get('height')} but the header says "
                f"{p['columns']}×{p['rows']}")
        if info.get("components") not in (p["samples_per_pixel"],):
            raise CorruptFile(f"{self.name}: a JPEG frame has {info.get('components')} components, "
                              f"the header says {p['samples_per_pixel']} samples per pixel")
        if not 2 <= int(info.get("precision", 0)) <= p["bits_allocated"]:
            raise CorruptFile(f"{self.name}: a JPEG frame's precision does not fit the header's bits allocated")

    def _pydicom(self, data: bytes, plugins: list[str] | None = None) -> tuple[np.ndarray, str]:
        from pydicom.encaps import encapsulate
        from pydicom.pixels import get_decoder

        p = self.p
        dec = self._decoder or get_decoder(self.ts)
        if self.ts.is_encapsulated:
            if self._jpeg_family:
                self._check_jpeg_header(data)
            plugins = plugins if plugins is not None else self._plugins(dec)
            if not plugins:
                raise MissingDecoder(f"{self.name}: {missing_decoder_message(self.ts)}")
        else:
            plugins = [""]
        src = encapsulate([bytes(data)]) if self.ts.is_encapsulated else bytes(data)
        opts = dict(
            rows=p["rows"], columns=p["columns"], samples_per_pixel=p["samples_per_pixel"],
            bits_allocated=p["bits_allocated"], bits_stored=p["bits_stored"],
            pixel_representation=p["pixel_representation"],
            photometric_interpretation=p["photometric_interpretation"],
            number_of_frames=1, planar_configuration=p["planar_configuration"],
            pixel_keyword="PixelData", transfer_syntax_uid=self.ts,
        )
        errors = []
        for plugin in plugins:
            try:
                with _warnings.catch_warnings():  # plugin chatter is not for users (rare path)
                    _warnings.simplefilter("ignore")
                    arr, info = dec.as_array(src, index=0, decoding_plugin=plugin, **opts)
                return arr, str(info.get("photometric_interpretation", p["photometric_interpretation"]))
            except Exception as exc:
                logger.debug("_pydicom: decoder plugin failed", exc_info=True)
                errors.append(f"{plugin or 'native'}: {_short(exc)}")
        if errors and all("does not support" in e for e in errors):
            raise MissingDecoder(
                f"{self.name}: no installed permissive decoder supports this {self.ts.name} data "
                f"({p['bits_stored']}-bit, {p['photometric_interpretation']}); convert the file first")
        raise CorruptFile(f"{self.name}: a frame cannot be decoded ({'; '.join(errors)[:200]})")

    def _native(self, data: bytes) -> tuple[np.ndarray, str]:
        p = self.p
        ba, spp, pi = p["bits_allocated"], p["samples_per_pixel"], p["photometric_interpretation"]
        if ba in (8, 16) and not (pi == "YBR_FULL_422" and spp == 3):
            e = "<" if self.ts.is_little_endian else ">"
            dt = np.dtype(("i" if p["pixel_representation"] else "u") + str(ba // 8)).newbyteorder(e)
            arr = np.frombuffer(data, dtype=dt, count=p["rows"] * p["columns"] * spp)
            if spp == 1:
                arr = arr.reshape(p["rows"], p["columns"])
            elif p["planar_configuration"] == 1:
                arr = arr.reshape(spp, p["rows"], p["columns"]).transpose(1, 2, 0)
            else:
                arr = arr.reshape(p["rows"], p["columns"], spp)
            arr = arr.astype(dt.newbyteorder("="), copy=False)
            if ba == 16 and p["bits_stored"] < 16:
                arr = _mask_bits(arr, p["bits_stored"], p["pixel_representation"])
            return arr, pi
        return self._pydicom(data)

    # -- display conversion, exactly once ----------------------------------------------------
    def _display(self, arr: np.ndarray, pi: str, index: int) -> np.ndarray:
        pi = pi.upper()
        if pi in ("YBR_FULL", "YBR_FULL_422"):
            from pydicom.pixels import convert_color_space

            arr = convert_color_space(arr, pi, "RGB")
            pi = "RGB"
        if pi == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            rgb = apply_color_lut(arr, self._lut_ds)
            if rgb.dtype != np.uint8:
                rgb = (rgb.astype(np.uint32) >> self._lut_shift()).astype(np.uint8)
            return rgb
        if arr.ndim == 3:  # RGB / YBR_RCT / YBR_ICT outputs are RGB
            if arr.dtype != np.uint8:
                shift = max(0, self.p["bits_stored"] - 8)
                arr = np.clip(arr.astype(np.int64) >> shift, 0, 255).astype(np.uint8)
            return arr
        grey = self._grey(arr, index)
        if pi == "MONOCHROME1":
            grey = 255 - grey
        return grey

    def _lut_shift(self) -> int:
        """8 for 16-bit palette entries, 0 for 16-bit LUTs that hold 8-bit values (decided once
        from the whole table, so every frame is mapped alike)."""
        if getattr(self, "_shift", None) is None:
            from pydicom.pixels import apply_color_lut

            n = 2 ** min(16, max(8, self.p["bits_stored"]))
            probe = np.arange(n, dtype=np.uint16 if n > 256 else np.uint8)
            table = apply_color_lut(probe, self._lut_ds)
            self._shift = 8 if int(table.max(initial=0)) > 255 else 0
        return self._shift

    def _grey(self, arr: np.ndarray, index: int) -> np.ndarray:
        if arr.dtype == np.uint8 and self.p["bits_stored"] <= 8:
            return arr
        lo_hi = self._window_for(arr)
        lo, hi = lo_hi
        out = (arr.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6))
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def _window_for(self, arr: np.ndarray) -> tuple[float, float]:
        """Grey range mapped to 0–255: the header's window, else the first decoded frame's min–max."""
        with self._window_lock:
            if self._window is None:
                self._window = _header_window(self.ds, self.p) or (float(arr.min()), float(arr.max()))
            return self._window


_WIDE_JPEG = ("1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")


def _imagecodecs_jpeg():
    """The imagecodecs module when its libjpeg-turbo 3 codec is built in, else None."""
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs if getattr(imagecodecs, "JPEG8", None) and imagecodecs.JPEG8.available else None


#: JPEG start-of-frame markers each transfer syntax may carry (first 22 characters of the UID).
_SOF_FOR_SYNTAX = {
    "1.2.840.10008.1.2.4.50": {0xC0, 0xC1},
    "1.2.840.10008.1.2.4.51": {0xC0, 0xC1, 0xC2},
    "1.2.840.10008.1.2.4.57": {0xC3},
    "1.2.840.10008.1.2.4.70": {0xC3},
    "1.2.840.10008.1.2.4.80": {0xF7},
    "1.2.840.10008.1.2.4.81": {0xF7},
}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}


def _libjpeg_keeps_rgb(data: bytes) -> bool:
    """True when libjpeg will not colour-convert this 3-component JPEG (it is marked RGB).

    pydicom treats JPEG data of a PhotometricInterpretation RGB file as RGB (no transform).
    libjpeg agrees only when an Adobe APP14 marker says transform 0, or when there is no JFIF/Adobe
    marker and the component ids are 'R', 'G', 'B'; otherwise it would convert from YCbCr, so such
    frames go to pydicom instead of the fast path.
    """
    from pydicom.pixels.utils import _get_jpg_parameters

    info = _get_jpg_parameters(bytes(data[:65536]))
    if not info:
        return False
    app = info.get("app", {})
    adobe = app.get(b"\xff\xee")
    if adobe is not None and adobe[:5] == b"Adobe" and len(adobe) >= 12:
        return adobe[11] == 0
    if b"\xff\xe0" in app and app[b"\xff\xe0"][:4] == b"JFIF":
        return False
    return info.get("component_ids") == [82, 71, 66]


def _sof_marker(data: bytes) -> int | None:
    """The SOFn marker byte of a JPEG / JPEG-LS stream, or None when the headers are malformed."""
    if data[:2] != b"\xff\xd8":
        return None
    off = 2
    n = len(data)
    while off + 4 <= n:
        if data[off] != 0xFF:
            return None
        m = data[off + 1]
        if m == 0xFF:  # fill byte
            off += 1
            continue
        if m in _SOF:
            return m
        if m in (0xD8, 0xD9) or 0xD0 <= m <= 0xD7:
            return None
        off += 2 + struct.unpack(">H", data[off + 2:off + 4])[0]
    return None


def _mask_bits(arr, bits_stored, signed):
    if signed:
        shift = arr.dtype.itemsize * 8 - bits_stored
        return (arr << shift) >> shift
    return arr & ((1 << bits_stored) - 1)


def _header_window(ds, p) -> tuple[float, float] | None:
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


def _palette_dataset(ds, name: str):
    """A small dataset holding only the palette LUT elements (for apply_color_lut)."""
    from pydicom.dataset import Dataset

    from pydicom.dataset import FileMetaDataset

    m = Dataset()
    m.file_meta = FileMetaDataset()
    m.file_meta.TransferSyntaxUID = transfer_syntax_of(ds)
    m.set_original_encoding(m.file_meta.TransferSyntaxUID.is_implicit_VR,
                            m.file_meta.TransferSyntaxUID.is_little_endian)
    found = False
    for tag in list(ds._dict.keys()):
        if tag.group == 0x0028 and 0x1101 <= tag.element <= 0x1223 or tag == 0x00281199:
            try:
                elem = ds[tag]
            except Exception:
                logger.debug("_palette_dataset: an unreadable palette element, skipped", exc_info=True)
                continue
            m.add(elem)
            found = True
    if not found or "RedPaletteColorLookupTableDescriptor" not in m:
        raise CorruptFile(f"{name}: PALETTE COLOR image without a colour lookup table")
    return m


# ---------------------------------------------------------------------------------------------
# building the Cine
# ---------------------------------------------------------------------------------------------
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
        decoder = FrameDecoder(ds, ts, p, name)
        if frame_bytes is None:
            frame_bytes = _in_memory_frames(ds, ts, p, name)

        def decode(i: int) -> np.ndarray:
            return decoder(frame_bytes(i), i)

        if decoder.decode_grey is not None and "decode_grey" not in cine_kwargs:
            cine_kwargs["decode_grey"] = lambda i: decoder.decode_grey(frame_bytes(i), i)

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
    from msus.io.dicom_video import is_video_syntax, load_dicom_video

    if is_video_syntax(ts):
        return load_dicom_video(blob, ds, pos, ts, **extra)
    p = pixel_params(ds, name)
    start, length = _element_value(blob.buf, pos, ts, name)
    buf = blob.buf
    if (not ts.is_little_endian and p["bits_allocated"] == 8 and length is not None
            and bytes(buf[pos + 4:pos + 6]) == b"OW"):
        # 8-bit samples in a big-endian OW value are byte-swapped in 16-bit words (small, retired)
        raw = bytearray(buf[start:start + length + (length & 1)])
        raw[0::2], raw[1::2] = raw[1::2], raw[0::2]
        buf, start = bytes(raw), 0
    fetch = frame_fetcher(buf, start, length, ts, p, name, ds, undefined=length is None)
    return cine_from_dataset(ds, fetch, source_name=name, transfer_syntax=ts, close=blob.close, **extra)


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
        ok = len(ds._dict) > 0 and "Rows" in ds and "Columns" in ds
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
        raise CorruptFile(f"{blob.name}: cannot read the deflated DICOM ({_short(exc)})") from exc
    return cine_from_dataset(ds, None, source_name=blob.name, close=blob.close, **extra)


__all__ = [
    "cine_from_dataset",
    "frame_fetcher",
    "index_encapsulated_frames",
    "load_dicom",
    "looks_like_dicom",
    "missing_decoder_message",
    "pixel_params",
    "read_header",
    "transfer_syntax_of",
]
