"""DICOM with a video transfer syntax (MPEG-2, H.264, HEVC) → :class:`~msus.cine.Cine`.

Such files hold one encapsulated video stream for all frames (DICOM PS3.5 §8.2; the stream may be
split over several fragments), not one fragment per frame.  Opening lists the fragments with
``pydicom.encaps`` (seeks only, :func:`msus.io.dicom.encaps.scan_fragments`), presents their data as one seekable byte stream without copying
it, and hands that stream to :class:`msus.io.video.VideoReader` (FFmpeg probes whether it is an
elementary stream, an MPEG program/transport stream or an MP4).  Frames are then decoded lazily
and frame-exactly as for any video; timing, ultrasound regions, calibration and metadata come from
the DICOM header as for every other transfer syntax.
"""

from __future__ import annotations

from pydicom import uid

from msus.errors import CorruptFile
from msus.io._source import BufferReader
from msus.io.dicom.encaps import element_value, scan_fragments

#: Video transfer syntaxes → the codec family they carry.
VIDEO_SYNTAXES = {
    **dict.fromkeys((uid.MPEG2MPML, uid.MPEG2MPMLF, uid.MPEG2MPHL, uid.MPEG2MPHLF), "mpeg2video"),
    **dict.fromkeys((uid.MPEG4HP41, uid.MPEG4HP41F, uid.MPEG4HP41BD, uid.MPEG4HP41BDF, uid.MPEG4HP422D,
                     uid.MPEG4HP422DF, uid.MPEG4HP423D, uid.MPEG4HP423DF, uid.MPEG4HP42STEREO,
                     uid.MPEG4HP42STEREOF), "h264"),
    **dict.fromkeys((uid.HEVCMP51, uid.HEVCM10P51), "hevc"),
}


def is_video_syntax(ts) -> bool:
    return str(ts) in VIDEO_SYNTAXES


class FragmentStream(BufferReader):
    """A read-only, seekable file object over the data of encapsulated fragments (no copy)."""

    def __init__(self, buf, fragments: list[tuple[int, int]]):
        self._frags = fragments
        self._starts = []
        total = 0
        for _, ln in fragments:
            self._starts.append(total)
            total += ln
        super().__init__(buf, total)

    def _slice(self, pos: int, end: int) -> bytes:
        import bisect

        out = []
        k = bisect.bisect_right(self._starts, pos) - 1
        while pos < end and 0 <= k < len(self._frags):
            off, ln = self._frags[k]
            a = pos - self._starts[k]
            b = min(ln, end - self._starts[k])
            out.append(self._buf[off + a:off + b])
            pos = self._starts[k] + b
            k += 1
        return b"".join(bytes(o) for o in out)


def video_fragments(blob, start: int, name: str) -> list[tuple[int, int]]:
    """``(offset, length)`` of each fragment's data, the pixel data value starting at ``start``
    (the offset table, if any, is of no use: one stream, all frames)."""
    _, frags = scan_fragments(blob.buf, start, name, keep_partial=True)
    frags = [f for f in frags if f[1]]
    if not frags:
        raise CorruptFile(f"{name}: the DICOM video holds no data")
    return frags


def open_video(blob, pos: int, ts, p: dict):
    """The :class:`~msus.io.video.VideoReader` over the one video stream of a DICOM file whose
    pixel element's tag is at ``pos``, checked against the header's pixel facts ``p``; and the
    header-versus-stream warnings."""
    from msus.io.video import VideoReader

    name = blob.name
    start, length = element_value(blob.buf, pos, ts, name)
    if length is not None:
        raise CorruptFile(f"{name}: video pixel data must be encapsulated (undefined length)")
    frags = video_fragments(blob, start, name)
    reader = VideoReader(lambda: FragmentStream(blob.buf, frags), name)
    try:
        if (reader.height, reader.width) != (p["rows"], p["columns"]):
            raise CorruptFile(f"{name}: the video stream is {reader.width}×{reader.height} but the header says "
                              f"{p['columns']}×{p['rows']}")
    except BaseException:
        reader.close()
        raise
    warnings = []
    if reader.n != p["number_of_frames"]:
        warnings.append(f"the header says {p['number_of_frames']} frames but the video stream holds "
                        f"{reader.n}; the stream's count is used")
    return reader, warnings


def rgb_decoder(reader):
    """Colour frames even when the stream itself is grey (a YBR header over a grey stream)."""
    if not reader.grey:
        return reader.decode

    def decode(i: int):
        import numpy as np

        g = reader.decode(i)
        return np.repeat(g[..., None], 3, axis=2)

    return decode
