"""Frames of an archived loop: which encoding they came in, the bounded cache, the prefetcher.

Opening a loop (:meth:`msus.pacs.client.Archive.open_cine`) reads the instance header with WADO-RS
metadata (:func:`dataset_from_metadata`), then fetches frames on demand with WADO-RS
``/frames/N``, asking for the archive's own transfer syntax (``transfer-syntax=*``) so compressed
frames travel compressed.  dicomweb-client drops each part's content type, so the transfer syntax
is read from the bytes (:func:`sniff_frame_syntax`).  The first frame shows after one small
request while a background thread (:class:`RemoteFrames`) fetches the rest into a
:class:`FrameCache` bounded in bytes.  :func:`cine_from_remote` builds the
:class:`msus.cine.Cine` with the DICOM reader's own header handling.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID, ExplicitVRLittleEndian, JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit,
    JPEGLSLossless, JPEGLosslessSV1, RLELossless,
)

from msus.errors import LoadError, PacsError, PacsRejected
from msus.io.dicom import sof_marker
from msus.io.dicom import cine_from_dataset
from msus.lru import ByteLRU

logger = logging.getLogger(__name__)

#: Accept header media types: the frame as stored (any transfer syntax) ...
NATIVE_FRAMES = (("application/octet-stream", "*"),)
#: ... or, when the archive cannot serve that, uncompressed little endian (always supported).
UNCOMPRESSED_FRAMES = (("application/octet-stream", ExplicitVRLittleEndian),)

#: Frames per request of the background prefetcher: the first batch is small so the next frames
#: come soon, later ones grow (archives that re-read the instance per request pay that less often).
PREFETCH_FIRST_BATCH = 4
#: Later batches grow up to about this many bytes per request (and at most PREFETCH_MAX_BATCH).
PREFETCH_TARGET_BYTES = 32 * 2**20
PREFETCH_MAX_BATCH = 256


# ---- frame bytes: which transfer syntax did the archive send? -------------------------------
def sniff_frame_syntax(data: bytes, expected_raw_bytes: int, photometric: str = "") -> UID:
    """Transfer syntax UID of one frame's bytes, judged by content.

    Parameters
    ----------
    data
        The frame as the archive sent it.
    expected_raw_bytes
        Size in bytes of the frame uncompressed (Rows × Columns × samples × bytes per sample).
    photometric
        The header's PhotometricInterpretation (picks lossy vs reversible JPEG 2000).
    """
    n = len(data)
    if n == expected_raw_bytes:
        return ExplicitVRLittleEndian
    head = bytes(data[:16])
    if head[:2] == b"\xff\xd8":
        marker = sof_marker(bytes(data[:65536]))
        if marker == 0xF7:
            return JPEGLSLossless
        if marker in (0xC3, 0xC7):
            return JPEGLosslessSV1
        if marker == 0xC1:
            return JPEGExtended12Bit
        return JPEGBaseline8Bit
    if head[:4] == b"\xff\x4f\xff\x51" or head[4:8] == b"jP  ":
        return JPEG2000 if photometric == "YBR_ICT" else JPEG2000Lossless
    if n >= 64:
        segments = int.from_bytes(head[:4], "little")
        first = int.from_bytes(head[4:8], "little")
        if 1 <= segments <= 15 and first == 64:
            return RLELossless
    if n > expected_raw_bytes and n - expected_raw_bytes <= 1:  # odd length padded to even
        return ExplicitVRLittleEndian
    raise LoadError(f"the archive sent a frame of {n} bytes in an unrecognised encoding")


# ---- the header: DICOM JSON -> pydicom Dataset ----------------------------------------------
_PIXEL_TAGS = {"7FE00010", "7FE00008", "7FE00009"}


def dataset_from_metadata(meta: dict, bulk: Callable[[str], bytes] | None = None) -> Dataset:
    """A pydicom Dataset from WADO-RS DICOM JSON metadata.

    Parameters
    ----------
    meta
        DICOM JSON of one instance.
    bulk
        ``bulk(uri) -> bytes`` fetches bulk data (palette lookup tables, ICC profiles...); pixel
        data is never fetched here (frames come on demand).  ``None`` leaves bulk data empty.
    """

    def handler(tag, vr=None, uri=None):
        if uri is None:  # pydicom's one-argument form
            tag, uri = None, tag
        if bulk is None or (tag is not None and str(tag).upper() in _PIXEL_TAGS):
            return b""
        return bulk(uri)

    try:
        ds = Dataset.from_json(meta, bulk_data_uri_handler=handler)
    except PacsError:
        raise
    except Exception as exc:  # malformed JSON from the archive
        logger.debug("dataset_from_metadata: malformed JSON from the archive", exc_info=True)
        raise PacsRejected(f"the archive sent unreadable instance metadata ({type(exc).__name__})") from exc
    return ds


# ---- the frame cache and prefetcher ---------------------------------------------------------
class FrameCache(ByteLRU):
    """Frame bytes by 0-based index, least recently used dropped beyond ``max_bytes`` (the newest
    frame is kept even when it alone is larger)."""

    def __init__(self, max_bytes: int):
        super().__init__(int(max_bytes), keep_newest=True)


class RemoteFrames:
    """Frames of one archived instance, fetched on demand and prefetched in the background.

    Parameters
    ----------
    archive
        The :class:`msus.pacs.client.Archive` to fetch from (the prefetcher gets its own
        connection, ``archive.clone()``).
    study_uid, series_uid, sop_uid
        The instance.
    header
        The instance header (for sizes and photometric interpretation).
    n_frames
        NumberOfFrames.
    cache_bytes
        Bound on frame bytes kept locally.
    """

    def __init__(self, archive, study_uid: str, series_uid: str, sop_uid: str,
                 header: Dataset, n_frames: int, cache_bytes: int):
        self.archive = archive
        self.uids = (study_uid, series_uid, sop_uid)
        self.header = header
        self.n_frames = int(n_frames)
        self.cache = FrameCache(cache_bytes)
        self.mode = "native"  # or "uncompressed" when the archive cannot send frame 1 as stored
        self.error: PacsError | None = None  # last background failure (foreground re-raises its own)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fetched_frames = 0
        self._fg_lock = threading.Lock()
        spp = int(header.get("SamplesPerPixel", 1))
        bits = int(header.get("BitsAllocated", 8))
        rows, cols = int(header.Rows), int(header.Columns)
        self.raw_frame_bytes = rows * cols * spp * max(1, bits // 8)
        if header.get("PhotometricInterpretation") == "YBR_FULL_422":
            self.raw_frame_bytes_422 = rows * cols * 2 * max(1, bits // 8)
        else:
            self.raw_frame_bytes_422 = None

    # -- fetching
    #: HTTP answers to the native request that mean "cannot serve the stored encoding".
    FALLBACK_STATUSES = (400, 406, 415, 500, 501)

    def _fetch(self, archive, indices: Sequence[int]) -> list[bytes]:
        numbers = [i + 1 for i in indices]
        if self.mode == "native":
            try:
                parts = archive.retrieve_frames(*self.uids, numbers, media_types=NATIVE_FRAMES)
            except PacsError as exc:
                # Decided once, on the first frame: the Cine is built for one encoding.
                if self.fetched_frames or getattr(exc, "http_status", None) not in self.FALLBACK_STATUSES:
                    raise
                parts = archive.retrieve_frames(*self.uids, numbers, media_types=UNCOMPRESSED_FRAMES)
                self.mode = "uncompressed"
        else:
            parts = archive.retrieve_frames(*self.uids, numbers, media_types=UNCOMPRESSED_FRAMES)
        if len(parts) != len(numbers):
            raise PacsRejected(f"the archive sent {len(parts)} frames for {len(numbers)} requested")
        out = [bytes(b) for b in parts]
        for i, b in zip(indices, out):
            self.cache.put(i, b)
        self.fetched_frames += len(out)
        return out

    def get(self, i: int) -> bytes:
        """Bytes of frame ``i`` (0-based): from the cache, else one WADO-RS request.

        Callers on several threads (the app serves frames concurrently) share one connection,
        one request at a time; the prefetcher has its own.
        """
        hit = self.cache.get(i)
        if hit is not None:
            return hit
        with self._fg_lock:
            hit = self.cache.get(i)
            if hit is not None:
                return hit
            return self._fetch(self.archive, [i])[0]

    def syntax_of(self, data: bytes) -> tuple[str, str]:
        """(transfer syntax, photometric interpretation) to decode ``data`` with."""
        pi = str(self.header.get("PhotometricInterpretation", "MONOCHROME2"))
        if self.raw_frame_bytes_422 is not None and len(data) == self.raw_frame_bytes_422:
            return ExplicitVRLittleEndian, pi
        ts = sniff_frame_syntax(data, self.raw_frame_bytes, pi)
        if self.mode == "uncompressed" and ts == ExplicitVRLittleEndian and pi.startswith("YBR_FULL"):
            pi = "RGB"  # the archive decompressed for us; decoders emit RGB
        return ts, pi

    # -- background
    def start_prefetch(self) -> None:
        if self._thread is not None or self.n_frames <= 1:
            return
        self._thread = threading.Thread(target=self._prefetch, name="msus-pacs-prefetch", daemon=True)
        self._thread.start()

    def _prefetch(self) -> None:
        worker = self.archive.clone()
        try:
            first = self.cache.get(0)
            per_frame = max(1, len(first) if first else self.raw_frame_bytes)
            budget = min(PREFETCH_TARGET_BYTES, self.cache.max_bytes)
            cap = max(1, min(PREFETCH_MAX_BATCH, budget // per_frame))
            i, size = 0, min(PREFETCH_FIRST_BATCH, cap)
            while i < self.n_frames and not self._stop.is_set():
                batch = [j for j in range(i, min(i + size, self.n_frames)) if j not in self.cache]
                i += size
                size = min(cap, size * 2)
                if not batch:
                    continue
                if self.cache.nbytes >= self.cache.max_bytes:
                    break  # bounded: the rest is fetched on demand
                try:
                    self._fetch(worker, batch)
                except PacsError as exc:
                    self.error = exc
                    break
        finally:
            worker.close()

    def wait(self, timeout_s: float) -> bool:
        """Wait (bounded) for the prefetcher; True when it has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.archive.config.timeout_s + 1)
        self.cache.clear()


# ---- building the Cine ----------------------------------------------------------------------
def cine_from_remote(remote: RemoteFrames, source_name: str = ""):
    """A :class:`msus.cine.Cine` whose frames come through ``remote`` (frame 1 fetched now).

    Header handling — timing, calibration, photometric conversion, metadata — is the DICOM
    reader's (:func:`msus.io.dicom.cine_from_dataset`), so a loop opened from the archive and the
    same file opened from disk give the same Cine.
    """
    header = remote.header
    first = remote.get(0)
    ts, pi = remote.syntax_of(first)
    if pi != header.get("PhotometricInterpretation"):
        header = Dataset(header)
        header.PhotometricInterpretation = pi
        header.PlanarConfiguration = 0

    def frame_bytes(i: int) -> bytes:
        data = remote.get(i)
        got, _ = remote.syntax_of(data)
        if got != ts:
            raise PacsRejected(f"the archive changed the frame encoding mid-loop (frame {i + 1})")
        return data

    warnings = []
    if remote.mode == "uncompressed":
        warnings.append("the archive could not send frames as stored; fetched them uncompressed")
    return cine_from_dataset(
        header, frame_bytes, source_name=source_name, transfer_syntax=ts, close=remote.close, warnings=warnings
    )
