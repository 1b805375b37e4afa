"""DICOM with a video transfer syntax (MPEG-2, H.264, HEVC) → :class:`~msus.cine.Cine`.

Such files hold one encapsulated video stream for all frames (DICOM PS3.5 §8.2; the stream may be
split over several fragments), not one fragment per frame.  Opening lists the fragments with
``pydicom.encaps`` (seeks only), presents their data as one seekable byte stream without copying
it, and hands that stream to :class:`msus.io.video.VideoReader` (FFmpeg probes whether it is an
elementary stream, an MPEG program/transport stream or an MP4).  Frames are then decoded lazily
and frame-exactly as for any video; timing, ultrasound regions, calibration and metadata come from
the DICOM header as for every other transfer syntax.
"""

from __future__ import annotations

import io
import struct

from msus.errors import CorruptFile

#: Video transfer syntaxes → the codec family they carry.
VIDEO_SYNTAXES = {
    "1.2.840.10008.1.2.4.100": "mpeg2video",  # MPEG2 Main Profile / Main Level
    "1.2.840.10008.1.2.4.100.1": "mpeg2video",  # fragmentable
    "1.2.840.10008.1.2.4.101": "mpeg2video",  # MPEG2 Main Profile / High Level
    "1.2.840.10008.1.2.4.101.1": "mpeg2video",
    "1.2.840.10008.1.2.4.102": "h264",  # MPEG-4 AVC/H.264 High Profile / Level 4.1
    "1.2.840.10008.1.2.4.102.1": "h264",
    "1.2.840.10008.1.2.4.103": "h264",  # BD-compatible High Profile / Level 4.1
    "1.2.840.10008.1.2.4.103.1": "h264",
    "1.2.840.10008.1.2.4.104": "h264",  # High Profile / Level 4.2 for 2D video
    "1.2.840.10008.1.2.4.104.1": "h264",
    "1.2.840.10008.1.2.4.105": "h264",  # High Profile / Level 4.2 for 3D video
    "1.2.840.10008.1.2.4.105.1": "h264",
    "1.2.840.10008.1.2.4.106": "h264",  # Stereo High Profile / Level 4.2
    "1.2.840.10008.1.2.4.106.1": "h264",
    "1.2.840.10008.1.2.4.107": "hevc",  # HEVC/H.265 Main Profile / Level 5.1
    "1.2.840.10008.1.2.4.108": "hevc",  # HEVC/H.265 Main 10 Profile / Level 5.1
}


def is_video_syntax(ts) -> bool:
    return str(ts) in VIDEO_SYNTAXES


class FragmentStream(io.RawIOBase):
    """A read-only, seekable file object over the data of encapsulated fragments (no copy)."""

    def __init__(self, buf, fragments: list[tuple[int, int]]):
        self._buf = buf
        self._frags = fragments
        self._starts = []
        total = 0
        for _, ln in fragments:
            self._starts.append(total)
            total += ln
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, n: int = -1) -> bytes:
        import bisect

        end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
        out = []
        pos = self._pos
        k = bisect.bisect_right(self._starts, pos) - 1
        while pos < end and 0 <= k < len(self._frags):
            off, ln = self._frags[k]
            a = pos - self._starts[k]
            b = min(ln, end - self._starts[k])
            out.append(self._buf[off + a:off + b])
            pos = self._starts[k] + b
            k += 1
        self._pos = max(self._pos, pos)
        return b"".join(bytes(o) for o in out)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def video_fragments(blob, start: int, name: str) -> list[tuple[int, int]]:
    """``(offset, length)`` of each fragment's data, the pixel data value starting at ``start``."""
    from pydicom.encaps import parse_basic_offsets, parse_fragments

    fp = blob.stream()
    fp.seek(start)
    try:
        parse_basic_offsets(fp)  # the offset table (if any) is of no use: one stream, all frames
        _, offsets = parse_fragments(fp)
    except (ValueError, struct.error) as exc:
        raise CorruptFile(f"{name}: encapsulated video data is malformed ({' '.join(str(exc).split())[:120]})") from exc
    frags = []
    n = len(blob.buf)
    for off in offsets:
        (length,) = struct.unpack("<I", bytes(blob.buf[off + 4:off + 8]))
        if off + 8 + length > n:
            if frags:  # a truncated last fragment: keep what is whole (the reader stops there)
                break
            raise CorruptFile(f"{name}: the video data is shorter than its items say (file truncated?)")
        if length:
            frags.append((off + 8, length))
    if not frags:
        raise CorruptFile(f"{name}: the DICOM video holds no data")
    return frags


def load_dicom_video(blob, ds, pos: int, ts, *, cache_frames: int | None = None):
    """Open a DICOM file whose pixel data is one video stream (frames decoded on demand)."""
    from msus.io.dicom import _element_value, cine_from_dataset, pixel_params
    from msus.io.video import VideoReader

    name = blob.name
    p = pixel_params(ds, name)
    start, length = _element_value(blob.buf, pos, ts, name)
    if length is not None:
        raise CorruptFile(f"{name}: video pixel data must be encapsulated (undefined length)")
    frags = video_fragments(blob, start, name)
    reader = VideoReader(lambda: FragmentStream(blob.buf, frags), name)
    try:
        warnings = []
        if (reader.height, reader.width) != (p["rows"], p["columns"]):
            raise CorruptFile(f"{name}: the video stream is {reader.width}×{reader.height} but the header says "
                              f"{p['columns']}×{p['rows']}")
        if reader.n != p["number_of_frames"]:
            warnings.append(f"the header says {p['number_of_frames']} frames but the video stream holds "
                            f"{reader.n}; the stream's count is used")
        grey_out = p["out_spp"] == 1
        extra = {} if cache_frames is None else {"cache_frames": cache_frames}

        def close():
            reader.close()
            blob.close()

        cine = cine_from_dataset(
            ds, None, source_name=name, n_frames=reader.n, transfer_syntax=ts, close=close,
            warnings=warnings, decode=reader.decode_grey if grey_out else _rgb(reader),
            decode_grey=None if grey_out else reader.decode_grey, **extra)
    except BaseException:
        reader.close()
        raise
    cine.meta.update(codec=reader.codec, container=reader.container_format)
    return cine


def _rgb(reader):
    """Colour frames even when the stream itself is grey (a YBR header over a grey stream)."""
    if not reader.grey:
        return reader.decode

    def decode(i: int):
        import numpy as np

        g = reader.decode(i)
        return np.repeat(g[..., None], 3, axis=2)

    return decode
