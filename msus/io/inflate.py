"""Deflated DICOM (1.2.840.10008.1.2.1.99): inflated in a stream, capped, to a temporary file.

pydicom inflates a deflated dataset whole in memory before reading even its header, so a 3 MB
file can ask for gigabytes.  Here the file meta (never deflated) is read first, the rest is
inflated with ``zlib.decompressobj(...).decompress(data, max_length)`` in 1 MB steps into an
unlinked temporary file, refused with :class:`~msus.errors.TooLarge` beyond
``MSUS_MAX_INFLATE_MB`` (:mod:`msus.limits`), and the result — the same dataset as Explicit VR
Little Endian — is memory-mapped like any other file, so its frames are sliced lazily.
"""

from __future__ import annotations

import io
import logging
import mmap
import struct
import tempfile
import zlib

from msus.errors import CorruptFile, TooLarge

logger = logging.getLogger(__name__)

DEFLATED = "1.2.840.10008.1.2.1.99"
_STEP = 1 << 20
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def meta_end(buf) -> int | None:
    """Offset just past the file meta group (0002,xxxx) of a Part 10 file, else None."""
    if bytes(buf[128:132]) != b"DICM":
        return None
    pos, n = 132, len(buf)
    while pos + 8 <= n:
        group = struct.unpack("<H", bytes(buf[pos:pos + 2]))[0]
        if group != 0x0002:
            return pos
        vr = bytes(buf[pos + 4:pos + 6])
        if vr in _LONG_VRS:
            if pos + 12 > n:
                return None
            pos += 12 + struct.unpack("<I", bytes(buf[pos + 8:pos + 12]))[0]
        else:
            pos += 8 + struct.unpack("<H", bytes(buf[pos + 6:pos + 8]))[0]
    return None


def is_deflated(buf) -> bool:
    """True when the file meta names the deflated transfer syntax (read without inflating)."""
    end = meta_end(buf)
    return end is not None and DEFLATED.encode() in bytes(buf[132:end])


def _inflate_into(out, data: memoryview, name: str, cap: int, wbits: int) -> int:
    d = zlib.decompressobj(wbits)
    written, pos = 0, 0
    pending = b""
    while True:
        if not pending:
            if pos >= len(data):
                break
            pending, pos = data[pos:pos + _STEP], pos + _STEP
        piece = d.decompress(pending, _STEP)
        pending = d.unconsumed_tail
        written += len(piece)
        if written > cap:
            raise TooLarge(f"{name}: the deflated dataset inflates beyond the {cap >> 20} MB limit "
                           "(setting MSUS_MAX_INFLATE_MB)")
        out.write(piece)
        if d.eof:
            break
    return written


def inflate_to_blob(blob):
    """A :class:`~msus.io._source.Blob` of ``blob``'s dataset, inflated, as Explicit VR Little Endian."""
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import ExplicitVRLittleEndian

    from msus.io._source import Blob
    from msus.limits import limits

    end = meta_end(blob.buf)
    if end is None:
        raise CorruptFile(f"{blob.name}: the deflated DICOM has no readable file meta")
    try:
        from pydicom.dataset import FileMetaDataset
        from pydicom.filereader import read_dataset

        meta = FileMetaDataset(read_dataset(io.BytesIO(bytes(blob.buf[132:end])), False, True))
    except Exception as exc:
        logger.debug("the deflated file meta cannot be read", exc_info=True)
        raise CorruptFile(f"{blob.name}: the deflated DICOM's file meta cannot be read ({type(exc).__name__})") from exc
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    head = io.BytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=False)
    cap = limits().max_inflate_bytes
    tmp = tempfile.TemporaryFile(prefix="msus-inflated-")
    try:
        tmp.write(head.getvalue())
        data = memoryview(blob.buf)[end:]
        try:
            _inflate_into(tmp, data, blob.name, cap, -zlib.MAX_WBITS)  # DICOM: raw deflate (RFC 1951)
        except zlib.error:
            tmp.seek(len(head.getvalue()))
            tmp.truncate()
            try:
                _inflate_into(tmp, data, blob.name, cap, zlib.MAX_WBITS | 32)  # some writers add a zlib header
            except zlib.error:
                raise CorruptFile(f"{blob.name}: the deflated data is damaged") from None
        finally:
            data.release()
        tmp.flush()
        mm = mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ)
    except BaseException:
        tmp.close()
        raise

    def closer():
        mm.close()
        tmp.close()
        blob.close()

    return Blob(mm, blob.name, None, closer)
