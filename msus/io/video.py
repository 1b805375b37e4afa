"""Video containers (MP4, MOV, AVI, MKV...) → :class:`~msus.cine.Cine` via PyAV.

Opening demuxes the stream once *without decoding* to list every frame's presentation timestamp
(pts × time_base → ms) and where the keyframes are.  ``frame(i)`` then decodes on demand: it
continues the running decoder when ``i`` is just ahead of the last decoded frame (playback), and
otherwise seeks to the keyframe at or before frame ``i`` and decodes forward.  Only the
:class:`~msus.cine.Cine` cache (bounded) holds decoded frames.
"""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np

from msus.cine import Cine
from msus.errors import CorruptFile, MissingDecoder, TooLarge, UnsupportedFormat
from msus.io.dicom import MAX_FRAME_SAMPLES, MAX_FRAMES, MAX_LOOP_BYTES

#: Decode forward instead of seeking when the wanted frame is at most this far ahead.
FORWARD_DECODE_LIMIT = 48
_GREY_FORMATS = ("gray", "gray8", "gray10le", "gray12le", "gray16le", "gray16be", "ya8")


def content_uid(buf) -> str:
    """A stable id for content without a DICOM UID: ``sha256:<first 32 hex digits>``."""
    h = hashlib.sha256()
    n = len(buf)
    step = 1 << 24
    for off in range(0, n, step):
        h.update(buf[off:off + step])
    return "sha256:" + h.hexdigest()[:32]


class _Reader:
    def __init__(self, blob):
        import av

        self.name = blob.name
        self._lock = threading.Lock()
        self._file = None
        try:
            if blob.path is not None:
                self.container = av.open(str(blob.path), mode="r")
            else:
                self._file = io.BytesIO(bytes(blob.buf))
                self.container = av.open(self._file, mode="r")
        except av.error.InvalidDataError:
            raise CorruptFile(f"{blob.name}: the video container is damaged or not a video") from None
        except av.FFmpegError as exc:
            raise CorruptFile(f"{blob.name}: cannot open the video ({_msg(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise UnsupportedFormat(f"{blob.name}: the file holds no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        cc = self.stream.codec_context
        if cc is None or not getattr(cc, "name", None):
            raise MissingDecoder(f"{blob.name}: no decoder for this video codec in PyAV (pip install av)")
        self.width, self.height = int(cc.width or 0), int(cc.height or 0)
        if self.width < 1 or self.height < 1:
            raise CorruptFile(f"{blob.name}: the video stream has no frame size")
        if self.width * self.height * 3 > MAX_FRAME_SAMPLES:
            raise TooLarge(f"{blob.name}: {self.width}×{self.height} video frames are beyond the size limit")
        from msus.limits import check_frame

        check_frame(blob.name, self.height, self.width, 3)  # MSUS_MAX_FRAME_MB, before any frame is decoded
        self.grey = str(getattr(cc, "pix_fmt", "") or "") in _GREY_FORMATS
        self.codec = cc.name
        self._index()
        self._gen = None
        self._next = None  # index of the frame the running decoder yields next

    def _index(self) -> None:
        pts, keys = [], []
        try:
            for pkt in self.container.demux(self.stream):
                if pkt.size == 0:
                    continue
                p = pkt.pts if pkt.pts is not None else pkt.dts
                pts.append(p)
                keys.append(bool(pkt.is_keyframe))
                if len(pts) > MAX_FRAMES:
                    raise TooLarge(f"{self.name}: more than {MAX_FRAMES} video frames")
        except TooLarge:
            raise
        except Exception as exc:
            if not pts:
                raise CorruptFile(f"{self.name}: the video cannot be read ({_msg(exc)})") from None
            # a damaged tail: keep the frames before it
        if not pts:
            raise CorruptFile(f"{self.name}: the video holds no frames")
        if len(pts) * self.width * self.height * 3 > MAX_LOOP_BYTES:
            raise TooLarge(f"{self.name}: the decoded video would exceed the loop size limit")
        from msus.limits import check_frame

        check_frame(self.name, self.height, self.width, 3, len(pts))  # MSUS_MAX_LOOP_MB
        self.has_pts = all(p is not None for p in pts)
        if self.has_pts:
            order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
            self.pts = np.asarray(pts, dtype=np.int64)[order]
            key_pts = np.asarray([p for p, k in zip(pts, keys) if k], dtype=np.int64)
            self.key_pts = np.sort(key_pts) if key_pts.size else self.pts[:1]
        else:
            self.pts = None
            self.key_pts = None
        self.n = len(pts)
        self._pts_to_index = {int(p): i for i, p in enumerate(self.pts)} if self.has_pts else {}

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
    def _seek_to(self, i: int) -> None:
        if self.has_pts:
            target = int(self.pts[i])
            k = np.searchsorted(self.key_pts, target, side="right") - 1
            seek_pts = int(self.key_pts[max(k, 0)])
            self.container.seek(seek_pts, stream=self.stream, backward=True, any_frame=False)
            self._next = None  # learn the position from decoded pts
        else:
            self.container.seek(0, stream=self.stream)
            self._next = 0
        self._gen = self.container.decode(self.stream)

    def _to_array(self, fr) -> np.ndarray:
        fmt = "gray" if self.grey else "rgb24"
        if fr.width != self.width or fr.height != self.height:
            return fr.to_ndarray(format=fmt, width=self.width, height=self.height)
        return fr.to_ndarray(format=fmt)

    def decode(self, i: int) -> np.ndarray:
        with self._lock:
            try:
                return self._decode(i)
            except (CorruptFile, TooLarge):
                raise
            except Exception as exc:
                self._gen = None
                raise CorruptFile(f"{self.name}: frame {i + 1} cannot be decoded ({_msg(exc)})") from None

    def _decode(self, i: int) -> np.ndarray:
        if self._gen is None or self._next is None or not (self._next <= i <= self._next + FORWARD_DECODE_LIMIT):
            self._seek_to(i)
        for attempt in range(2):
            last = None
            for fr in self._gen:
                if self.has_pts and fr.pts is not None:
                    j = self._pts_to_index.get(int(fr.pts))
                    if j is None:  # pts not in the index (edit lists): place by order
                        j = int(np.searchsorted(self.pts, int(fr.pts)))
                else:
                    j = self._next if self._next is not None else 0
                self._next = j + 1
                if j < i:
                    last = fr
                    continue
                return self._to_array(fr)
            if last is not None and attempt == 1:
                return self._to_array(last)
            self._seek_to(0 if not self.has_pts else i)
            if not self.has_pts:
                self._next = 0
        raise CorruptFile(f"{self.name}: frame {i + 1} cannot be decoded (stream ends early)")

    def close(self) -> None:
        with self._lock:
            try:
                self.container.close()
            except Exception:
                pass


def _msg(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def load_video(blob, *, cache_frames: int | None = None, **_ignored) -> Cine:
    """Open a video held in a :class:`~msus.io._source.Blob` (frames decoded on demand)."""
    reader = _Reader(blob)
    try:
        times, source = reader.frame_times_ms()
        warnings = []
        if times is None:
            warnings.append("the video carries no usable timestamps; default frame rate assumed")
        meta = {
            "container": reader.container.format.name if reader.container.format else "",
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
