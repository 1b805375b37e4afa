"""Anything FFmpeg reads (MP4, MOV, AVI, MKV, ASF/WMV, MPEG-TS/PS, FLV, OGG, MXF, raw H.264/HEVC/MPEG-2
streams, the video inside a DICOM file...) → :class:`~msus.cine.Cine` via PyAV.

Opening demuxes the stream once *without decoding* and lists every packet in decode order with its
presentation timestamp and keyframe flag.  Frame ``i`` (presentation order) is then decoded on
demand, frame-exactly on every container, without trusting the container's seek:

* each packet fed to the decoder is tagged with its decode-order number (``packet.pts = d``); the
  decoder hands the tag on to the picture the packet produced, so every decoded picture is known;
* with timestamps on every packet, a picture's presentation index is the rank of its packet's pts;
  without (raw elementary streams, as DICOM video often is) it is the starting keyframe's position
  plus the count of pictures decoded since (closed GOPs start with the keyframe itself, which is
  checked);
* random access starts at the last keyframe packet at or before the frame (a seek by timestamp
  where the container supports it, checked against the packet index; otherwise the container is
  reopened and packets are skipped without decoding up to the keyframe) and decodes forward.
  A flagged "keyframe" that does not decode to an intra picture, or a leading picture missing from
  the output (open GOP), sends the decoder back to the keyframe before;
* playback (the next frames) continues the running decoder.

Only the :class:`~msus.cine.Cine` cache (bounded) holds decoded frames.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from typing import Callable

import numpy as np

from msus.cine import Cine
from msus.errors import CorruptFile, MissingDecoder, TooLarge, UnsupportedFormat
from msus.io.dicom.header import MAX_FRAME_SAMPLES, MAX_FRAMES, MAX_LOOP_BYTES

logger = logging.getLogger(__name__)

#: Decode forward instead of repositioning when the wanted frame is at most this far ahead.
FORWARD_DECODE_LIMIT = 48
_GREY_FORMATS = ("gray", "gray8", "gray10le", "gray12le", "gray16le", "gray16be", "ya8")
#: FFmpeg formats that "read" things that are not videos (text, single images, raw data).
_NOT_VIDEO_FORMATS = {"tty", "image2", "data", "bin", "lavfi", "ffmetadata", "srt", "ass", "webvtt",
                      "subviewer", "microdvd", "jacosub", "sami", "realtext", "stl", "pjs", "mpl2", "vplayer",
                      "aqtitle", "lrc", "scc", "mcc", "sup", "idf", "adf", "xbin", "bintext", "txt"}
_NOT_VIDEO_CODECS = {"ansi", "bintext", "xbin", "idf", "text"}
#: Containers whose timestamp seek is reliable enough to try first (checked against the index).
_SEEKABLE = ("mov", "mp4", "matroska", "webm", "avi", "flv", "ogg", "mxf", "nut")


def content_uid(buf) -> str:
    """A stable id for content without a DICOM UID: ``sha256:<first 32 hex digits>``."""
    h = hashlib.sha256()
    n = len(buf)
    step = 1 << 24
    for off in range(0, n, step):
        h.update(buf[off:off + step])
    return "sha256:" + h.hexdigest()[:32]


def opener_for(blob) -> Callable[[], object]:
    """A function returning a fresh thing ``av.open`` reads: the file path, or a stream over the bytes."""
    if blob.path is not None:
        path = str(blob.path)
        return lambda: path
    return blob.stream


def _is_video_format(container) -> bool:
    fmt = container.format.name if container.format else ""
    if any(part in _NOT_VIDEO_FORMATS or part.endswith("_pipe") for part in fmt.split(",")):
        return False
    vs = container.streams.video
    return bool(vs) and (getattr(vs[0].codec_context, "name", "") or "") not in _NOT_VIDEO_CODECS


def probe(blob) -> bool:
    """True when FFmpeg reads the content as a video (used for content it alone recognises)."""
    import av

    try:
        with av.open(opener_for(blob)(), mode="r") as c:
            return _is_video_format(c)
    except Exception:  # not a format FFmpeg knows: not a video
        logger.debug("probe: not a format FFmpeg knows: not a video", exc_info=True)
        return False


class VideoReader:
    """Frame-exact random access to the first video stream of anything FFmpeg opens.

    Parameters
    ----------
    opener
        ``opener()`` returns a path or a fresh seekable binary file object (called again to reopen).
    name
        Shown in messages.
    format
        FFmpeg demuxer to use (``None``: FFmpeg probes the content).
    """

    def __init__(self, opener: Callable[[], object], name: str, format: str | None = None):
        self.name = name
        self._opener = opener
        self._format = format
        self._lock = threading.Lock()
        self.container = None
        self._open_container(first=True)
        cc = self.stream.codec_context
        if cc is None or not getattr(cc, "name", None):
            raise MissingDecoder(f"{name}: no decoder for this video codec in PyAV (pip install av)")
        self.width, self.height = int(cc.width or 0), int(cc.height or 0)
        if self.width < 1 or self.height < 1:
            raise CorruptFile(f"{name}: the video stream has no frame size")
        if self.width * self.height * 3 > MAX_FRAME_SAMPLES:
            raise TooLarge(f"{name}: {self.width}×{self.height} video frames are beyond the size limit")
        from msus.limits import check_frame

        check_frame(name, self.height, self.width, 3)  # MSUS_MAX_FRAME_MB, before any frame is decoded
        self.pix_fmt = str(getattr(cc, "pix_fmt", "") or "")
        self.grey = self.pix_fmt in _GREY_FORMATS
        self.codec = cc.name
        self.container_format = self.container.format.name if self.container.format else ""
        self._index()
        self._reset_state()

    # -- opening ------------------------------------------------------------------------------
    def _open_container(self, first: bool = False) -> None:
        import av

        if self.container is not None:
            try:
                self.container.close()
            except Exception:
                logger.debug("closing the previous container failed", exc_info=True)
            self.container = None
        try:
            c = av.open(self._opener(), mode="r", format=self._format)
        except av.error.InvalidDataError:
            raise CorruptFile(f"{self.name}: the video container is damaged or not a video") from None
        except av.FFmpegError as exc:
            raise CorruptFile(f"{self.name}: cannot open the video ({_msg(exc)})") from exc
        if first and not _is_video_format(c):
            c.close()
            raise UnsupportedFormat(f"{self.name}: the file holds no video stream")
        self.container = c
        self.stream = c.streams.video[0]
        self.stream.thread_type = "AUTO"

    def _index(self) -> None:
        pts, keys, closed = [], [], []
        nal = self.codec in ("h264", "hevc")
        first: list = []  # the first picture, decoded on the way (saves a reopen for frame 1)
        cc = self.stream.codec_context
        try:
            for pkt in self.container.demux(self.stream):
                if pkt.size == 0:
                    continue
                pts.append(pkt.pts)
                keys.append(bool(pkt.is_keyframe))
                closed.append(keys[-1] and (not nal or _starts_closed_gop(bytes(pkt), self.codec)))
                if not first and len(pts) <= FORWARD_DECODE_LIMIT:
                    first = self._first_picture(cc, pkt, len(pts) - 1)
                if len(pts) > MAX_FRAMES:
                    raise TooLarge(f"{self.name}: more than {MAX_FRAMES} video frames")
        except TooLarge:
            raise
        except Exception as exc:
            if not pts:
                raise CorruptFile(f"{self.name}: the video cannot be read ({_msg(exc)})") from exc
            logger.info("damaged video tail after %d packets (%s)", len(pts), type(exc).__name__)
        if not pts:
            raise CorruptFile(f"{self.name}: the video holds no frames")
        n = len(pts)
        if n * self.width * self.height * 3 > MAX_LOOP_BYTES:
            raise TooLarge(f"{self.name}: the decoded video would exceed the loop size limit")
        from msus.limits import check_frame

        check_frame(self.name, self.height, self.width, 3, n)  # MSUS_MAX_LOOP_MB
        self.n = n
        keys[0] = True  # decoding starts at the first packet in any case
        self.keys = np.flatnonzero(np.asarray(keys, dtype=bool))  # decode positions of keyframe packets
        self.has_pts = all(p is not None for p in pts) and len(set(pts)) == n
        if self.has_pts:
            arr = np.asarray(pts, dtype=np.int64)
            order = np.argsort(arr, kind="stable")  # presentation index → decode position
            self.pts = arr[order]
            self.decode_of = order
            self.pres_of = np.empty(n, dtype=np.int64)
            self.pres_of[order] = np.arange(n)
            self._pos_of_pts = {int(p): d for d, p in enumerate(pts)}
        else:
            # no timestamps: a picture's place is counted from the start, which is exact only from
            # a keyframe that opens a closed GOP (H.264/HEVC IDR; an HEVC CRA has leading pictures)
            self.pts = None
            self.decode_of = self.pres_of = np.arange(n)
            self._pos_of_pts = {}
            closed[0] = True
            self.keys = np.flatnonzero(np.asarray(closed, dtype=bool))
        self._bad_keys: set[int] = set()
        self._first = None
        if first and first[0][0] == 0 and _is_intra(first[0][1]):
            tag, fr = first[0]
            self._first = (int(self.pres_of[tag]) if self.has_pts else 0, fr)

    @staticmethod
    def _first_picture(cc, pkt, d: int) -> list:
        """Feed one packet (tagged ``d``) while indexing; the first decoded ``[(tag, picture)]`` or []."""
        try:
            pkt.pts = pkt.dts = d
            return [(fr.pts, fr) for fr in cc.decode(pkt)][:1]
        except Exception:  # indexing must not fail on a picture; decoding proper will say
            logger.debug("_first_picture: indexing must not fail on a picture; decoding proper will say", exc_info=True)
            return [(None, None)]

    # -- timing -------------------------------------------------------------------------------
    def frame_times_ms(self):
        tb = self.stream.time_base
        if self.has_pts and tb is not None and self.n > 1:
            t = (self.pts - self.pts[0]).astype(float) * float(tb) * 1000.0
            if np.all(np.diff(t) > 0):
                return t, "video_pts"
        rate = self.stream.average_rate or self.stream.guessed_rate
        if rate and float(rate) > 0:
            return np.arange(self.n) * (1000.0 / float(rate)), "video_rate"
        return None, None

    # -- decoding -----------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._packets = None  # iterator of (decode position, packet)
        self._fed = 0  # next decode position to feed
        self._start = 0  # decode position the running decoder started at
        self._out = 0  # pictures output since the start
        self._last = -1  # presentation index of the last picture output
        self._pending: list = []  # decoded pictures not handed out yet

    def _start_key(self, i: int) -> int:
        """Decode position of the keyframe to start from for presentation index ``i``."""
        d = int(self.decode_of[i])
        ok = [int(k) for k in self.keys if k <= d and int(self.pres_of[k]) <= i and int(k) not in self._bad_keys]
        return ok[-1] if ok else 0

    def _position(self, k: int) -> None:
        """Make the next packet fed to the decoder the one at decode position ``k``."""
        it = self._seek_near(k) if k > 0 else None
        if it is None:  # reopening is exact on every container: count packets from the start
            self._open_container()
            it = _numbered(0, self._demux())
        else:
            self.stream.codec_context.flush_buffers()
        for d, pkt in it:  # skip without decoding
            if d >= k:
                it = _chain((d, pkt), it)
                break
        self._packets = it
        self._fed, self._start, self._out, self._last, self._pending = k, k, 0, -1, []

    def _seek_near(self, k: int):
        """Numbered packets from a timestamp seek that lands at or before ``k`` (else None)."""
        if not self.has_pts or not any(f in self.container_format for f in _SEEKABLE):
            return None
        try:
            self.container.seek(int(self.pts[self.pres_of[k]]), stream=self.stream, backward=True, any_frame=False)
            it = self._demux()
            pkt0 = next(it, None)
            landed = self._pos_of_pts.get(pkt0.pts) if pkt0 is not None and pkt0.pts is not None else None
        except Exception as exc:  # a seek the container cannot do: reopen instead
            logger.debug("seek failed (%s); reopening", type(exc).__name__)
            return None
        if landed is None or landed > k:
            return None
        return _numbered(landed, _chain(pkt0, it))

    def _demux(self):
        for pkt in self.container.demux(self.stream):
            if pkt.size:
                yield pkt

    def _pictures(self):
        """Decoded pictures with their presentation index, from the current start onwards."""
        cc = self.stream.codec_context
        while True:
            if self._pending:
                yield self._pending.pop(0)
                continue
            if self._packets is None:
                return
            got = next(self._packets, None)
            frames = []
            if got is None:
                self._packets = None
                frames = list(cc.decode(None))
            else:
                d, pkt = got
                if d >= self.n:
                    self._packets = None
                    frames = list(cc.decode(None))
                else:
                    pkt.pts = pkt.dts = d
                    frames = list(cc.decode(pkt))
                    self._fed = d + 1
            for fr in frames:
                tag = fr.pts
                if self._out == 0 and tag != self._start or (self._out == 0 and not _is_intra(fr)):
                    raise _BadStart()
                if self.has_pts and tag is not None and 0 <= tag < self.n:
                    j = int(self.pres_of[tag])
                else:
                    j = self._start + self._out
                self._out += 1
                self._pending.append((j, fr))

    def _decode(self, i: int):
        if self._first is not None and self._first[0] == i:
            return self._first[1]
        for attempt in range(4):
            running = self._packets is not None or self._pending
            if attempt or not (running and self._last < i <= self._last + FORWARD_DECODE_LIMIT):
                self._position(self._start_key(i) if attempt < 3 else 0)
            try:
                for j, fr in self._pictures():
                    self._last = j
                    if j == i:
                        return fr
                    if j > i:  # the wanted picture never came out: start earlier
                        break
            except _BadStart:
                pass
            if self._start == 0:
                break
            self._bad_keys.add(self._start)
        raise CorruptFile(f"{self.name}: frame {i + 1} cannot be decoded (stream ends early)")

    def _to_array(self, fr, grey: bool) -> np.ndarray:
        fmt = "gray" if grey else "rgb24"
        if fr.width != self.width or fr.height != self.height:
            return fr.to_ndarray(format=fmt, width=self.width, height=self.height)
        return fr.to_ndarray(format=fmt)

    def decode(self, i: int) -> np.ndarray:
        """Frame ``i`` (presentation order) as uint8 RGB, or grey for grey streams."""
        return self._get(i, self.grey)

    def decode_grey(self, i: int) -> np.ndarray:
        """Frame ``i`` as uint8 luma (the Y plane, no colour conversion)."""
        return self._get(i, True)

    def _get(self, i: int, grey: bool) -> np.ndarray:
        with self._lock:
            try:
                return self._to_array(self._decode(i), grey)
            except (CorruptFile, TooLarge):
                self._reset_state()
                raise
            except Exception as exc:
                logger.debug("_get: frame decode failed", exc_info=True)
                self._reset_state()
                raise CorruptFile(f"{self.name}: frame {i + 1} cannot be decoded ({_msg(exc)})") from exc

    def close(self) -> None:
        with self._lock:
            try:
                if self.container is not None:
                    self.container.close()
            except Exception:
                logger.debug("close: closing the container failed", exc_info=True)


class _BadStart(Exception):
    """Decoding from the chosen keyframe did not start with that keyframe as an intra picture."""


def _is_intra(fr) -> bool:
    return bool(getattr(fr, "key_frame", False)) or str(getattr(fr, "pict_type", "")).upper().endswith("I")


def _starts_closed_gop(data: bytes, codec: str) -> bool:
    """True when an Annex B packet holds an IDR picture (H.264 NAL type 5; HEVC types 19–20).

    Length-prefixed packets (MP4/MKV) always carry timestamps and never get here; a packet without
    start codes is taken at its container's word.
    """
    found = False
    pos = data.find(b"\x00\x00\x01")
    while 0 <= pos < len(data) - 3:
        found = True
        head = data[pos + 3]
        kind = head & 0x1F if codec == "h264" else (head >> 1) & 0x3F
        if (codec == "h264" and kind == 5) or (codec == "hevc" and kind in (19, 20)):
            return True
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return not found


def _chain(first, rest):
    yield first
    yield from rest


def _numbered(start: int, packets):
    for d, pkt in enumerate(packets, start):
        yield d, pkt


def _msg(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def load_video(blob, *, cache_frames: int | None = None, **_ignored) -> Cine:
    """Open a video held in a :class:`~msus.io._source.Blob` (frames decoded on demand)."""
    reader = VideoReader(opener_for(blob), blob.name)
    try:
        times, source = reader.frame_times_ms()
        warnings = []
        if times is None:
            warnings.append("the video carries no usable timestamps; default frame rate assumed")
        meta = {
            "container": reader.container_format,
            "codec": reader.codec,
            "phi_keys": [],
            "unreadable_elements": [],
        }
        extra = {} if cache_frames is None else {"cache_frames": cache_frames}

        def close():
            reader.close()
            blob.close()

        return Cine(
            n_frames=reader.n,
            rows=reader.height,
            columns=reader.width,
            samples_per_pixel=1 if reader.grey else 3,
            decode=reader.decode,
            decode_grey=reader.decode_grey,
            frame_times_ms=times,
            timing_source=source,
            meta=meta,
            kind="video",
            photometric="MONOCHROME2" if reader.grey else "RGB",
            transfer_syntax=reader.codec,
            source_name=blob.name,
            uid=content_uid(blob.buf),
            warnings=warnings,
            close=close,
            **extra,
        )
    except BaseException:
        reader.close()
        raise
