"""Where the pixel data lies, without decoding: the pixel element's value, the fragments of
encapsulated data (``pydicom.encaps`` over a reader that copies nothing) and which fragments make
each frame (Extended / Basic Offset Table, one fragment per frame, or codec start markers)."""

from __future__ import annotations

import mmap
import struct

import numpy as np

from msus.errors import CorruptFile
from msus.io._source import BufferReader

_LONG_VRS = (b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN", b"UT", b"SQ", b"UC", b"UR")

#: transfer syntax prefix → bytes a frame's first fragment starts with
_FRAME_STARTS = {
    "1.2.840.10008.1.2.4.5": (b"\xff\xd8",),
    "1.2.840.10008.1.2.4.7": (b"\xff\xd8",),
    "1.2.840.10008.1.2.4.8": (b"\xff\xd8",),
    "1.2.840.10008.1.2.4.9": (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP"),
    "1.2.840.10008.1.2.4.20": (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP"),
}


def element_value(buf, pos: int, ts, name: str) -> tuple[int, int | None]:
    """Offset of the value of the element whose tag is at ``pos`` and its length (None when undefined)."""
    e = "<" if ts.is_little_endian else ">"
    # Trust the bytes over the transfer syntax: some writers switch VR encoding mid-file.
    vr_bytes = bytes(buf[pos + 4:pos + 6])
    explicit = len(vr_bytes) == 2 and vr_bytes.isalpha() and vr_bytes.isupper()
    hdr = bytes(buf[pos:pos + (12 if explicit else 8)])
    if len(hdr) < 8:
        raise CorruptFile(f"{name}: truncated before the pixel data")
    if not explicit:
        length, start = struct.unpack("<I", hdr[4:8])[0], pos + 8
    elif hdr[4:6] in _LONG_VRS:
        if len(hdr) < 12:
            raise CorruptFile(f"{name}: truncated before the pixel data")
        length, start = struct.unpack(e + "I", hdr[8:12])[0], pos + 12
    else:
        length, start = struct.unpack(e + "H", hdr[6:8])[0], pos + 8
    return start, (None if length == 0xFFFFFFFF else length)


def scan_fragments(buf, start: int, name: str, *, keep_partial: bool = False) -> tuple[list[int], list[tuple[int, int]]]:
    """Basic Offset Table entries and ``(offset, length)`` of each fragment's data.

    The item tags are read with :mod:`pydicom.encaps` (seeks only).  A missing sequence delimiter
    at the end of the file is tolerated; a fragment running past the end is an error, unless
    ``keep_partial`` (a video stream: the whole fragments before it are kept).
    """
    try:
        try:
            # an mmap reads and seeks in C (3-4x faster on long loops); msus never uses an mmap's
            # own file position elsewhere (Blob.stream() gives readers their own)
            bot, offsets = _items(buf if isinstance(buf, mmap.mmap) else BufferReader(buf), start)
        except ValueError:
            if not isinstance(buf, mmap.mmap):
                raise
            bot, offsets = _items(BufferReader(buf), start)  # an mmap refuses seeks past its end
    except ValueError as exc:
        if "multiple of 4" in str(exc):
            raise CorruptFile(f"{name}: Basic Offset Table has an odd length") from exc
        raise CorruptFile(f"{name}: encapsulated pixel data is malformed ({' '.join(str(exc).split())[:120]})") from exc
    except struct.error as exc:  # cut inside the offset table item
        raise CorruptFile(f"{name}: pixel data is truncated (no fragments)") from exc
    if not offsets:
        return bot, []
    # each item ends where the next begins; only the last one can run past the end of the file
    frags = [(a + 8, b - a - 8) for a, b in zip(offsets, offsets[1:])]
    last = offsets[-1]
    (length,) = struct.unpack("<I", bytes(buf[last + 4:last + 8]))
    if last + 8 + length <= len(buf):
        frags.append((last + 8, length))
    elif not (keep_partial and frags):
        raise CorruptFile(f"{name}: pixel data is shorter than its items say (file truncated?)")
    return bot, frags


def _items(reader, start: int) -> tuple[list[int], list[int]]:
    """Basic Offset Table and the fragments' item-tag offsets, read by ``pydicom.encaps``."""
    from pydicom.encaps import parse_basic_offsets, parse_fragments

    reader.seek(start)
    bot = parse_basic_offsets(reader)
    return bot, parse_fragments(reader)[1]


def index_encapsulated_frames(buf, start: int, n_frames: int, ts, name: str, ds=None) -> list[list[tuple[int, int]]]:
    """For each frame, the ``(offset, length)`` of its fragments' data in ``buf``."""
    bot, frags = scan_fragments(buf, start, name)
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
