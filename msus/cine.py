"""The :class:`Cine` value: one multi-frame acquisition, frames decoded lazily.

Frames come out as ``uint8`` arrays, H×W (grey) or H×W×3 (RGB); photometric conversion
(YBR → RGB, MONOCHROME1 inversion, palette lookup) is done by the reader's decoder.
Frame index is 0-based in code and shown 1-based to users.
"""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from typing import Callable, Iterator, Sequence

import numpy as np

from msus.calibration import Calibration
from msus.errors import LoadError
from msus.lru import ByteLRU

#: Frame rate assumed when a source carries no timing at all (documented in README).
DEFAULT_FPS = 30.0
#: Frames kept decoded per loop (at most; the shared byte bound, MSUS_FRAME_CACHE_MB, comes first).
DEFAULT_CACHE_FRAMES = 64


def to_grey(frame: np.ndarray) -> np.ndarray:
    """An H×W uint8 grey image of a frame: grey frames as they are, colour frames' luma.

    The one RGB → grey conversion of msus (ITU-R BT.601 weights, ``cv2.COLOR_RGB2GRAY``, rounded
    as OpenCV rounds); analysis, export and the decoders' fallbacks all call it.
    """
    f = np.asarray(frame)
    if f.ndim == 2:
        return f if f.dtype == np.uint8 else f.astype(np.uint8)
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(f, np.uint8), cv2.COLOR_RGB2GRAY)


class FrameCache:
    """Decoded frames of every open loop, least recently used dropped beyond ``max_bytes``.

    One per process (:data:`FRAME_CACHE`), so the memory decoded frames hold is bounded in
    bytes however many loops are open (``MSUS_FRAME_CACHE_MB``, see :mod:`msus.limits`).
    Each loop also keeps at most its own ``cache_frames`` frames.  A frame larger than the
    whole bound is returned but not kept.
    """

    def __init__(self, max_bytes: int | None = None):
        self._max_bytes = max_bytes
        self._lru = ByteLRU(lambda: self.max_bytes, size=lambda a: a.nbytes, on_evict=self._evicted)
        self._per_loop: dict[int, OrderedDict[int, None]] = {}
        self._lock = self._lru.lock

    @property
    def max_bytes(self) -> int:
        if self._max_bytes is not None:
            return self._max_bytes
        from msus.limits import limits

        return limits().frame_cache_bytes

    @property
    def nbytes(self) -> int:
        return self._lru.nbytes

    def get(self, loop: int, i):  # i: a frame index, or ("grey", index) for a luma plane
        with self._lock:
            hit = self._lru.get((loop, i))
            if hit is not None:
                self._per_loop[loop].move_to_end(i)
            return hit

    def put(self, loop: int, i: int, arr: np.ndarray, max_frames: int) -> None:
        with self._lock:
            if (loop, i) in self._lru or not self._lru.put((loop, i), arr):
                return  # already held, or larger than the whole bound: returned but not kept
            mine = self._per_loop.setdefault(loop, OrderedDict())
            mine[i] = None
            while len(mine) > max_frames:
                self._pop(loop, next(iter(mine)))

    def _evicted(self, key, _arr) -> None:  # the byte bound dropped it (under the lock)
        loop, i = key
        self._forget(loop, i)

    def _forget(self, loop: int, i) -> None:
        mine = self._per_loop.get(loop)
        if mine is not None:
            mine.pop(i, None)
            if not mine:
                del self._per_loop[loop]

    def _pop(self, loop: int, i) -> None:
        self._lru.pop((loop, i))
        self._forget(loop, i)

    def drop(self, loop: int) -> None:
        """Forget every frame of one loop (closed or garbage collected)."""
        with self._lock:
            for i in list(self._per_loop.get(loop, ())):
                self._pop(loop, i)

    def indices(self, loop: int) -> tuple[int, ...]:
        """Frame indices of one loop held now, least recently used first."""
        with self._lock:
            return tuple(k for k in self._per_loop.get(loop, ()) if isinstance(k, int))  # not the luma planes


#: The process-wide decoded-frame cache.
FRAME_CACHE = FrameCache()
_LOOP_IDS = itertools.count(1)


class Cine:
    """A cine loop.

    Parameters
    ----------
    n_frames, rows, columns, samples_per_pixel
        Geometry of the decoded frames (samples_per_pixel is 1 or 3).
    decode
        ``decode(i) -> np.ndarray`` returning frame ``i`` as uint8 (H×W or H×W×3).
    decode_grey
        Optional ``decode_grey(i) -> np.ndarray``: frame ``i`` as H×W uint8 luma, decoded without
        colour conversion (JPEG YCbCr, video YUV); used by :meth:`frame_grey`.
    frame_times_ms
        Start time of each frame in ms, first frame 0.  ``None`` means the source has no timing:
        :data:`DEFAULT_FPS` is assumed and ``timing_source`` is ``"default"``.
    calibration
        How px become mm (see :mod:`msus.calibration`).
    meta
        Plain dict of header facts (strings and numbers; PHI keys listed in ``phi_keys``).
    """

    def __init__(
        self,
        *,
        n_frames: int,
        rows: int,
        columns: int,
        samples_per_pixel: int,
        decode: Callable[[int], np.ndarray],
        decode_grey: Callable[[int], np.ndarray] | None = None,
        frame_times_ms: Sequence[float] | None = None,
        timing_source: str | None = None,
        calibration: Calibration | None = None,
        frame_calibrations: dict[int, Calibration] | None = None,
        meta: dict | None = None,
        kind: str = "dicom",
        photometric: str = "MONOCHROME2",
        transfer_syntax: str | None = None,
        source_name: str = "",
        uid: str | None = None,
        warnings: Sequence[str] = (),
        cache_frames: int = DEFAULT_CACHE_FRAMES,
        close: Callable[[], None] | None = None,
    ):
        if n_frames < 1:
            raise LoadError("the source holds no frames")
        self.n_frames = int(n_frames)
        self.rows = int(rows)
        self.columns = int(columns)
        self.samples_per_pixel = int(samples_per_pixel)
        self._decode = decode
        self._decode_grey = decode_grey if self.samples_per_pixel == 3 else None
        if frame_times_ms is None:
            self.frame_times_ms = np.arange(self.n_frames, dtype=float) * (1000.0 / DEFAULT_FPS)
            self.timing_source = "default"
        else:
            t = np.asarray(frame_times_ms, dtype=float)
            if t.shape != (self.n_frames,):
                raise LoadError(f"timing lists {t.size} frames but the loop has {self.n_frames}")
            self.frame_times_ms = t - t[0]
            self.timing_source = timing_source or "file"
        self.calibration = calibration or Calibration.none()
        self.frame_calibrations = dict(frame_calibrations or {})
        self.meta = dict(meta or {})
        self.kind = kind
        self.photometric = photometric
        self.transfer_syntax = transfer_syntax
        self.source_name = source_name
        self.uid = uid
        self.warnings = list(warnings)
        self._cache_frames = max(1, int(cache_frames))
        self._cache_id = next(_LOOP_IDS)  # this loop's frames in FRAME_CACHE
        weakref.finalize(self, FRAME_CACHE.drop, self._cache_id)
        self._close = close

    # ---- frames ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        return (
            f"Cine({self.source_name!r}, kind={self.kind}, frames={self.n_frames}, "
            f"{self.rows}x{self.columns}x{self.samples_per_pixel}, fps={self.fps:.3g}, "
            f"calibration={self.calibration.source})"
        )

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one decoded frame."""
        if self.samples_per_pixel == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples_per_pixel)

    @property
    def is_color(self) -> bool:
        return self.samples_per_pixel == 3

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (0-based; negative counts from the end) as a read-only uint8 array."""
        i = int(i)
        if i < 0:
            i += self.n_frames
        if not 0 <= i < self.n_frames:
            raise IndexError(f"frame {i} out of range (loop has {self.n_frames} frames)")
        hit = FRAME_CACHE.get(self._cache_id, i)
        if hit is not None:
            return hit
        arr = self._decode(i)
        arr = np.ascontiguousarray(arr, dtype=np.uint8)
        if arr.shape != self.shape:
            raise LoadError(f"frame {i + 1} decoded to shape {arr.shape}, header says {self.shape}")
        arr.flags.writeable = False
        FRAME_CACHE.put(self._cache_id, i, arr, self._cache_frames)
        return arr

    @property
    def _cache(self) -> tuple[int, ...]:
        """Indices of this loop's frames held in :data:`FRAME_CACHE` (diagnostics, tests)."""
        return FRAME_CACHE.indices(self._cache_id)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.n_frames):
            yield self.frame(i)

    def grey(self, i: int) -> np.ndarray:
        """Frame ``i`` as H×W uint8 grey (luma for RGB frames), for analysis."""
        return to_grey(self.frame(i))

    def frame_grey(self, i: int) -> np.ndarray:
        """Frame ``i`` as H×W uint8 luma, for grey consumers (analysis, motion).

        Grey loops return :meth:`frame`.  Colour loops whose decoder has a luma-only path (JPEG
        YCbCr, video YUV) decode just the luma plane — no chroma upsampling or colour conversion —
        and cache it beside the colour frames; otherwise the colour frame's luma
        (``cv2.COLOR_RGB2GRAY``).  On grey B-mode pixels (R = G = B) both agree within rounding
        (≤ 2 grey levels); on saturated colour (Doppler) the luma plane is the truer value, as the
        RGB frame clips colours that leave the RGB cube.
        """
        i = int(i)
        if i < 0:
            i += self.n_frames
        if not 0 <= i < self.n_frames:
            raise IndexError(f"frame {i} out of range (loop has {self.n_frames} frames)")
        if self._decode_grey is None:
            return self.grey(i)
        key = ("grey", i)  # beside the colour frames in FRAME_CACHE, under the same byte bound
        hit = FRAME_CACHE.get(self._cache_id, key)
        if hit is not None:
            return hit
        colour = FRAME_CACHE.get(self._cache_id, i)
        if colour is not None:
            return to_grey(colour)
        arr = np.ascontiguousarray(self._decode_grey(i), dtype=np.uint8)
        if arr.shape != (self.rows, self.columns):
            raise LoadError(f"frame {i + 1} decoded to shape {arr.shape}, header says {(self.rows, self.columns)}")
        arr.flags.writeable = False
        FRAME_CACHE.put(self._cache_id, key, arr, self._cache_frames)
        return arr

    # ---- timing ---------------------------------------------------------------------------
    @property
    def fps(self) -> float:
        """Native frame rate from the median frame interval."""
        if self.n_frames < 2:
            return DEFAULT_FPS
        d = np.diff(self.frame_times_ms)
        d = d[d > 0]
        if d.size == 0:
            return DEFAULT_FPS
        return float(1000.0 / np.median(d))

    @property
    def duration_ms(self) -> float:
        if self.n_frames < 2:
            return 1000.0 / self.fps
        return float(self.frame_times_ms[-1] + np.median(np.diff(self.frame_times_ms)))

    def calibration_for(self, i: int) -> Calibration:
        """Calibration of frame ``i`` (per-frame functional groups override the shared one)."""
        return self.frame_calibrations.get(int(i), self.calibration)

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_frames(
        cls,
        frames,
        *,
        fps: float | None = None,
        frame_times_ms: Sequence[float] | None = None,
        calibration: Calibration | None = None,
        **kwargs,
    ) -> "Cine":
        """Wrap in-memory frames (array N×H×W[×3] or a list of equal-shape arrays)."""
        arr = np.asarray(frames)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim not in (3, 4) or arr.shape[0] < 1:
            raise LoadError(f"frames must be N×H×W or N×H×W×3, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            raise LoadError(f"frames must be uint8, got {arr.dtype}")
        if frame_times_ms is None and fps:
            frame_times_ms = np.arange(arr.shape[0]) * (1000.0 / fps)
        spp = 1 if arr.ndim == 3 else arr.shape[3]
        kwargs.setdefault("kind", "array")
        kwargs.setdefault("photometric", "MONOCHROME2" if spp == 1 else "RGB")
        return cls(
            n_frames=arr.shape[0],
            rows=arr.shape[1],
            columns=arr.shape[2],
            samples_per_pixel=spp,
            decode=lambda i: arr[i],
            frame_times_ms=frame_times_ms,
            calibration=calibration,
            **kwargs,
        )

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None
        FRAME_CACHE.drop(self._cache_id)

    def __enter__(self) -> "Cine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
