"""Ultrasound loops from a DICOMweb archive (PACS): search, open frame by frame, fetch, store.

Built on :mod:`dicomweb_client`.  Every request has a bounded timeout (:class:`PacsConfig`)
and every failure becomes a one-line :mod:`msus.errors` exception:

* :class:`~msus.errors.PacsUnavailable` — refused, timed out, dropped mid-transfer, or HTTP 5xx /
  408 / 429: worth retrying later (the outbox does).
* :class:`~msus.errors.PacsRejected` — the archive answered and said no (bad credentials, not
  found, malformed request).

Opening a loop (:meth:`Archive.open_cine`) reads the instance header with WADO-RS metadata, then
fetches frames on demand with WADO-RS ``/frames/N``, asking for the archive's own transfer
syntax (``transfer-syntax=*``) so compressed frames travel compressed; the first frame shows
after one small request while a background thread fetches the rest into a bounded local cache.

Nothing here logs patient data; messages name the archive host and UIDs only.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pydicom
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from msus.errors import LoadError, PacsError, PacsRejected, PacsUnavailable
from msus.lru import ByteLRU
from msus.pacs_config import PacsConfig, load_config

logger = logging.getLogger(__name__)

# Transfer syntaxes we can tell apart from a frame's bytes.
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
RLE = "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"

#: Accept header media types: the frame as stored (any transfer syntax) ...
NATIVE_FRAMES = (("application/octet-stream", "*"),)
#: ... or, when the archive cannot serve that, uncompressed little endian (always supported).
UNCOMPRESSED_FRAMES = (("application/octet-stream", EXPLICIT_LE),)
NATIVE_INSTANCE = (("application/dicom", "*"),)

#: Frames per request of the background prefetcher: the first batch is small so the next frames
#: come soon, later ones grow (archives that re-read the instance per request pay that less often).
PREFETCH_FIRST_BATCH = 4
#: Later batches grow up to about this many bytes per request (and at most PREFETCH_MAX_BATCH).
PREFETCH_TARGET_BYTES = 32 * 2**20
PREFETCH_MAX_BATCH = 256
#: Search results returned at most per query (the archive may cap lower).
DEFAULT_SEARCH_LIMIT = 200

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DATE_RE = re.compile(r"^\d{8}$")

STUDY_FIELDS = (
    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "PatientID", "PatientName",
    "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)
SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances")
INSTANCE_FIELDS = ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "NumberOfFrames", "Rows", "Columns")


# ---- small values ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyInfo:
    """One study found by QIDO-RS (``patient_name`` is PHI: show it, never log it)."""

    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str  # YYYYMMDD or ""
    study_time: str
    accession_number: str
    description: str
    modalities: tuple[str, ...]
    n_series: int | None
    n_instances: int | None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["modalities"] = list(self.modalities)
        return d


@dataclass(frozen=True)
class SeriesInfo:
    study_uid: str
    series_uid: str
    modality: str
    series_number: int | None
    description: str
    n_instances: int | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class InstanceInfo:
    """One instance; ``n_frames`` is NumberOfFrames (1 when the archive does not say)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    instance_number: int | None
    n_frames: int
    rows: int | None
    columns: int | None

    @property
    def is_image(self) -> bool:
        return self.rows is not None and self.columns is not None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["is_image"] = self.is_image
        return d


@dataclass(frozen=True)
class StoreResult:
    """What STOW-RS stored: SOP Instance UIDs stored and (uid, reason) refused."""

    stored: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


def _first(item: dict, tag: str, default=None):
    """First value of a DICOM JSON attribute (PN as its alphabetic string)."""
    v = item.get(tag, {}).get("Value")
    if not v:
        return default
    x = v[0]
    if isinstance(x, dict):
        return x.get("Alphabetic", default)
    return x


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _instance_info(item: dict, study_uid: str, series_uid: str, sop_uid: str) -> "InstanceInfo":
    """An :class:`InstanceInfo` from one QIDO-RS instance answer (DICOM JSON) and its UIDs."""
    return InstanceInfo(
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        sop_class_uid=str(_first(item, "00080016", "") or ""),
        instance_number=_int(_first(item, "00200013")),
        n_frames=_int(_first(item, "00280008")) or 1,
        rows=_int(_first(item, "00280010")),
        columns=_int(_first(item, "00280011")),
    )


def check_uid(uid: str, what: str = "UID") -> str:
    """``uid`` stripped, or :class:`PacsError` when it is not a DICOM UID."""
    u = str(uid or "").strip()
    if not (u and len(u) <= 64 and _UID_RE.match(u)):
        raise PacsError(f"{what} {u!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return u


def date_range(date_from: str | None, date_to: str | None) -> str | None:
    """QIDO StudyDate range ``YYYYMMDD-YYYYMMDD`` (open ends allowed), or None."""
    for d in (date_from, date_to):
        if d and not _DATE_RE.match(d):
            raise PacsError(f"dates must be YYYYMMDD, got {d!r}")
    if date_from and date_to and date_from > date_to:
        raise PacsError(f"the date range is empty: {date_from} is after {date_to}")
    if not date_from and not date_to:
        return None
    if date_from == date_to:
        return date_from
    return f"{date_from or ''}-{date_to or ''}"


# ---- frame bytes: which transfer syntax did the archive send? -------------------------------
def sniff_frame_syntax(data: bytes, expected_raw_bytes: int, photometric: str = "") -> str:
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
        return EXPLICIT_LE
    head = bytes(data[:16])
    if head[:2] == b"\xff\xd8":
        marker = _jpeg_sof(data)
        if marker == 0xF7:
            return JPEG_LS
        if marker in (0xC3, 0xC7):
            return JPEG_LOSSLESS_SV1
        if marker == 0xC1:
            return JPEG_EXTENDED
        return JPEG_BASELINE
    if head[:4] == b"\xff\x4f\xff\x51" or head[4:8] == b"jP  ":
        return J2K if photometric == "YBR_ICT" else J2K_LOSSLESS
    if n >= 64:
        segments = int.from_bytes(head[:4], "little")
        first = int.from_bytes(head[4:8], "little")
        if 1 <= segments <= 15 and first == 64:
            return RLE
    if n > expected_raw_bytes and n - expected_raw_bytes <= 1:  # odd length padded to even
        return EXPLICIT_LE
    raise LoadError(f"the archive sent a frame of {n} bytes in an unrecognised encoding")


def _jpeg_sof(data: bytes) -> int | None:
    """The SOFn marker code of a JPEG stream (0xC0 baseline, 0xF7 JPEG-LS ...)."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            i += 1
            continue
        code = data[i + 1]
        if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7):
            return code
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7 or code == 0xFF:
            i += 2 if code != 0xFF else 1
            continue
        seg = int.from_bytes(data[i + 2 : i + 4], "big")
        i += 2 + seg
    return None


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
        The :class:`Archive` to fetch from (the prefetcher gets its own connection).
    study_uid, series_uid, sop_uid
        The instance.
    header
        The instance header (for sizes and photometric interpretation).
    n_frames
        NumberOfFrames.
    cache_bytes
        Bound on frame bytes kept locally.
    """

    def __init__(self, archive: "Archive", study_uid: str, series_uid: str, sop_uid: str,
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

    def _fetch(self, archive: "Archive", indices: Sequence[int]) -> list[bytes]:
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
            return EXPLICIT_LE, pi
        ts = sniff_frame_syntax(data, self.raw_frame_bytes, pi)
        if self.mode == "uncompressed" and ts == EXPLICIT_LE and pi.startswith("YBR_FULL"):
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


# ---- the archive ----------------------------------------------------------------------------
class Archive:
    """A DICOMweb archive: QIDO-RS search, WADO-RS retrieval, STOW-RS storage.

    Parameters
    ----------
    config
        Where and how to connect; default :func:`msus.pacs_config.load_config` (environment).
    session
        A :class:`requests.Session` to use (tests pass one to count requests).
    """

    def __init__(self, config: PacsConfig | None = None, session: requests.Session | None = None):
        self.config = config or load_config()
        self._session = session or requests.Session()
        s = self._session
        s.verify = self.config.verify_tls
        if self.config.verify_tls is not True:
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's verify
            # setting (psf/requests#3829); a configured CA bundle (or "off") must win.
            merge = s.merge_environment_settings
            verify = self.config.verify_tls

            def merge_keeping_verify(url, proxies, stream, _verify, cert):
                out = merge(url, proxies, stream, _verify, cert)
                out["verify"] = verify
                return out

            s.merge_environment_settings = merge_keeping_verify
        if self.config.auth == "basic":
            s.auth = (self.config.user, self.config.password)
        elif self.config.auth == "bearer":
            s.headers["Authorization"] = f"Bearer {self.config.token}"
        s.headers.setdefault("User-Agent", "msus")
        from dicomweb_client import DICOMwebClient

        try:
            self.client = DICOMwebClient(self.config.url, session=s, timeout=self.config.timeouts)
        except ValueError as exc:
            raise PacsError(f"the archive URL is not usable: {exc}") from exc
        # No silent exponential back-off: every call ends within the configured timeout.
        self.client.set_http_retry_params(retry=False)

    def clone(self) -> "Archive":
        """Another connection to the same archive (for a background thread)."""
        return Archive(self.config)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- error mapping
    @contextlib.contextmanager
    def _errors(self, what: str):
        host = self.config.host
        try:
            yield
        except requests.exceptions.SSLError:
            raise _rejected(
                f"{what}: the TLS certificate of {host} could not be verified "
                "(set MSUS_PACS_VERIFY_TLS to a CA bundle path)"
            ) from None
        except requests.exceptions.Timeout:
            raise _unavailable(
                f"{what}: the archive at {host} did not answer within {self.config.timeout_s:g} s"
            ) from None
        except requests.exceptions.HTTPError as exc:
            raise _http_error(what, host, exc.response) from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise _unavailable(f"{what}: the transfer from {host} was interrupted") from None
        except requests.exceptions.ConnectionError:
            raise _unavailable(f"{what}: cannot reach the archive at {host} (connection refused or dropped)") from None
        except requests.exceptions.RequestException as exc:
            raise _unavailable(f"{what}: request to {host} failed ({type(exc).__name__})") from exc
        except (ValueError, KeyError, IndexError) as exc:
            raise _rejected(f"{what}: unexpected answer from the archive at {host} ({exc})") from exc

    # -- QIDO-RS
    def _qido(self, path: str, params: dict) -> list[dict]:
        """GET ``{url}/{path}?params`` as DICOM JSON.

        Wildcards (``*``, ``?``) and list commas are sent literally: a percent-encoded ``%2A`` is
        not a wildcard to every archive (Orthanc matches it literally), and dicomweb-client's
        search helpers encode it.
        """
        from urllib.parse import urlencode

        query = urlencode(params, doseq=True, safe="*?,")
        r = self._session.get(
            f"{self.config.url}/{path}?{query}",
            headers={"Accept": "application/dicom+json, application/json"},
            timeout=self.config.timeouts,
        )
        r.raise_for_status()
        if not r.content:
            return []
        body = r.json()
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list):
            raise ValueError("QIDO-RS answer is not a JSON array")
        return body

    def ping(self) -> None:
        """Raise a :class:`PacsError` unless the archive answers a minimal QIDO-RS query."""
        with self._errors("checking the archive"):
            self._qido("studies", {"limit": 1, "includefield": ["StudyInstanceUID"]})

    def search_studies(
        self,
        *,
        patient_id: str | None = None,
        patient_name: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        accession_number: str | None = None,
        modality: str | None = "US",
        limit: int = DEFAULT_SEARCH_LIMIT,
        study_uid: str | None = None,
    ) -> list[StudyInfo]:
        """QIDO-RS study search (ultrasound studies by default).

        ``patient_name`` without wildcards matches names that start with it
        (``"DOE"`` → ``DOE*``); dates are ``YYYYMMDD`` and inclusive; ``study_uid`` matches
        one study.
        """
        filters: dict[str, str] = {}
        if study_uid:
            filters["StudyInstanceUID"] = check_uid(study_uid, "study UID")
        if patient_id:
            filters["PatientID"] = patient_id.strip()
        if patient_name:
            name = patient_name.strip()
            filters["PatientName"] = name if any(c in name for c in "*?") else name + "*"
        rng = date_range(date_from, date_to)
        if rng:
            filters["StudyDate"] = rng
        if accession_number:
            filters["AccessionNumber"] = accession_number.strip()
        if modality:
            filters["ModalitiesInStudy"] = modality
        with self._errors("searching the archive"):
            items = self._qido("studies", {**filters, "includefield": list(STUDY_FIELDS), "limit": int(limit)})
        out = []
        for it in items:
            uid = _first(it, "0020000D")
            if not uid:
                continue
            mods = it.get("00080061", {}).get("Value") or []
            out.append(
                StudyInfo(
                    study_uid=uid,
                    patient_id=str(_first(it, "00100020", "") or ""),
                    patient_name=str(_first(it, "00100010", "") or ""),
                    study_date=str(_first(it, "00080020", "") or ""),
                    study_time=str(_first(it, "00080030", "") or ""),
                    accession_number=str(_first(it, "00080050", "") or ""),
                    description=str(_first(it, "00081030", "") or ""),
                    modalities=tuple(str(m) for m in mods),
                    n_series=_int(_first(it, "00201206")),
                    n_instances=_int(_first(it, "00201208")),
                )
            )
        out.sort(key=lambda s: (s.study_date, s.study_time), reverse=True)
        return out

    def list_series(self, study_uid: str, *, modality: str | None = None, body_part: str | None = None) -> list[SeriesInfo]:
        """Series of a study, optionally only those of one modality and BodyPartExamined."""
        study_uid = check_uid(study_uid, "study UID")
        filters = {k: v.strip() for k, v in (("Modality", modality), ("BodyPartExamined", body_part)) if v}
        with self._errors("listing series"):
            items = self._qido(f"studies/{study_uid}/series", {**filters, "includefield": list(SERIES_FIELDS)})
        out = [
            SeriesInfo(
                study_uid=study_uid,
                series_uid=_first(it, "0020000E"),
                modality=str(_first(it, "00080060", "") or ""),
                series_number=_int(_first(it, "00200011")),
                description=str(_first(it, "0008103E", "") or ""),
                n_instances=_int(_first(it, "00201209")),
            )
            for it in items
            if _first(it, "0020000E")
        ]
        out.sort(key=lambda s: (s.series_number is None, s.series_number or 0, s.series_uid))
        return out

    def list_instances(self, study_uid: str, series_uid: str | None = None) -> list[InstanceInfo]:
        """Instances of a study (or one series) with their frame counts."""
        study_uid = check_uid(study_uid, "study UID")
        if series_uid is not None:
            series_uid = check_uid(series_uid, "series UID")
        with self._errors("listing instances"):
            path = f"studies/{study_uid}/series/{series_uid}/instances" if series_uid else f"studies/{study_uid}/instances"
            items = self._qido(path, {"includefield": list(INSTANCE_FIELDS)})
        out = []
        for it in items:
            sop = _first(it, "00080018")
            ser = _first(it, "0020000E") or series_uid
            if not sop or not ser:
                continue
            out.append(_instance_info(it, study_uid, ser, sop))
        out.sort(key=lambda i: (i.series_uid, i.instance_number is None, i.instance_number or 0))
        return out

    def find_instance(self, sop_uid: str, study_uid: str | None = None) -> InstanceInfo | None:
        """The instance with this SOP Instance UID if the archive holds it, else None."""
        sop_uid = check_uid(sop_uid, "SOP instance UID")
        with self._errors("looking for an instance"):
            path = f"studies/{check_uid(study_uid, 'study UID')}/instances" if study_uid else "instances"
            items = self._qido(path, {"SOPInstanceUID": sop_uid, "includefield": list(INSTANCE_FIELDS)})
        for it in items:
            if _first(it, "00080018") == sop_uid:
                return _instance_info(it, _first(it, "0020000D") or study_uid or "", _first(it, "0020000E") or "", sop_uid)
        return None

    def has_instance(self, sop_uid: str, study_uid: str | None = None) -> bool:
        return self.find_instance(sop_uid, study_uid) is not None

    # -- WADO-RS
    def metadata(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """The instance header (WADO-RS metadata) as a pydicom Dataset."""
        uids = _uids(study_uid, series_uid, sop_uid)
        with self._errors("reading instance metadata"):
            meta = self.client.retrieve_instance_metadata(*uids)
        return dataset_from_metadata(meta, bulk=self.bulk_data)

    def bulk_data(self, uri: str) -> bytes:
        """Bytes of one bulk data element named by a BulkDataURI.

        Archives often write their own idea of their host name into these URIs (Orthanc omits
        the port), so a URI under ``/studies/`` is re-rooted on the configured archive URL.
        """
        marker = uri.find("/studies/")
        url = self.config.url + uri[marker:] if marker >= 0 else uri
        if not url.startswith(self.config.url):
            raise PacsRejected(f"the archive pointed to bulk data outside {self.config.host}")
        with self._errors("reading bulk data"):
            parts = self.client.retrieve_bulkdata(url, media_types=(("application/octet-stream", "*"),))
        return bytes(parts[0]) if parts else b""

    def retrieve_frames(self, study_uid, series_uid, sop_uid, numbers: Sequence[int], media_types=NATIVE_FRAMES) -> list[bytes]:
        """Frames by 1-based number, as the archive sends them (see ``media_types``)."""
        with self._errors(f"fetching frame {numbers[0]}" if len(numbers) == 1 else f"fetching frames {numbers[0]}–{numbers[-1]}"):
            return self.client.retrieve_instance_frames(
                study_uid, series_uid, sop_uid, frame_numbers=list(numbers), media_types=media_types
            )

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """The whole instance, in the transfer syntax the archive stores it in."""
        uids = _uids(study_uid, series_uid, sop_uid)
        with self._errors("retrieving an instance"):
            return self.client.retrieve_instance(*uids, media_types=NATIVE_INSTANCE)

    def fetch(self, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None,
              out_dir: Path | str = ".") -> list[Path]:
        """Save instances (a whole study, a series or one instance) as ``OUT/<SOPInstanceUID>.dcm``.

        Files already there are kept (same UID, same instance); new files are written to a
        temporary name first, so an interrupted fetch never leaves a half file.
        """
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PacsError(f"cannot create {out}: {exc.strerror or exc}") from exc
        if sop_uid:
            if not series_uid:
                raise PacsError("fetching one instance needs its series UID too")
            targets = [(check_uid(series_uid, "series UID"), check_uid(sop_uid, "SOP instance UID"))]
            study_uid = check_uid(study_uid, "study UID")
        else:
            targets = [(i.series_uid, i.sop_uid) for i in self.list_instances(study_uid, series_uid)]
            if not targets:
                raise PacsRejected("the archive holds no instances for that study/series")
        written = []
        for ser, sop in targets:
            path = out / f"{sop}.dcm"
            if path.exists():
                written.append(path)
                continue
            ds = self.retrieve_instance(study_uid, ser, sop)
            tmp = out / f".{sop}.{uuid.uuid4().hex[:8]}.part"
            try:
                ds.save_as(tmp, enforce_file_format=True)
                tmp.replace(path)
            except Exception as exc:
                logger.debug("fetch: writing a fetched instance failed", exc_info=True)
                tmp.unlink(missing_ok=True)
                raise PacsError(f"cannot write {path.name}: {exc}") from exc
            written.append(path)
        return written

    def open_cine(self, study_uid: str, series_uid: str, sop_uid: str, *, prefetch: bool = True):
        """Open an archived loop as a :class:`msus.cine.Cine` with frames fetched on demand.

        The header comes first (one WADO-RS metadata request); ``cine.frame(i)`` then costs one
        ``/frames/i+1`` request unless the background prefetcher already brought it.  Frame
        bytes stay in a local cache bounded by ``config.cache_mb``.  The returned Cine carries
        ``pacs_header`` (the instance header Dataset) and ``remote_frames`` (the fetcher, or None
        when the whole instance had to be fetched).
        """
        uids = _uids(study_uid, series_uid, sop_uid)
        header = self.metadata(*uids)
        if "Rows" not in header or "Columns" not in header:
            raise PacsRejected("that instance holds no image (no Rows/Columns): not a loop")
        n = int(header.get("NumberOfFrames", 1) or 1)
        name = f"{self.config.host}/{uids[2]}"
        remote = RemoteFrames(self, *uids, header=header, n_frames=n, cache_bytes=int(self.config.cache_mb * 2**20))
        try:
            cine = cine_from_remote(remote, source_name=name)
            cine.frame(0)
        except PacsError:
            remote.close()
            raise
        except LoadError as exc:
            # Some archives drop header elements from their JSON metadata (e.g. palette lookup
            # table descriptors).  The whole instance always carries them: fall back to it.
            remote.close()
            return self._open_whole(uids, name, reason=str(exc))
        cine.remote_frames = remote  # the fetcher and its cache, for status displays and tests
        cine.pacs_header = header  # the instance header (e.g. for the SR that references it)
        if prefetch:
            remote.start_prefetch()
        return cine

    def _open_whole(self, uids: tuple[str, str, str], name: str, reason: str):
        from msus.io.dicom import cine_from_dataset

        ds = self.retrieve_instance(*uids)
        warning = f"the archive's metadata was not enough to decode frames ({reason}); fetched the whole instance"
        cine = cine_from_dataset(ds, None, source_name=name, warnings=[warning])
        cine.frame(0)
        cine.remote_frames = None
        cine.pacs_header = ds
        return cine

    # -- STOW-RS
    def store(self, items: Iterable[bytes | Dataset | Path | str]) -> StoreResult:
        """Store DICOM instances (file bytes, paths or Datasets) with STOW-RS.

        File bytes are sent as they are (no re-encoding).  Raises :class:`PacsRejected` when the
        archive refuses every instance, :class:`PacsUnavailable` when it cannot be reached.
        """
        parts, uids = [], []
        for item in items:
            data = _as_bytes(item)
            uids.append(_sop_uid_of(data))
            parts.append(data)
        if not parts:
            return StoreResult(stored=())
        boundary = uuid.uuid4().hex
        body = io.BytesIO()
        for p in parts:
            body.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            body.write(p)
            body.write(b"\r\n")
        body.write(f"--{boundary}--\r\n".encode())
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        }
        url = f"{self.config.url}/studies"
        with self._errors("sending to the archive"):
            r = self._session.post(url, data=body.getvalue(), headers=headers, timeout=self.config.timeouts)
            if r.status_code >= 400 and r.status_code != 409:
                r.raise_for_status()
            answer = Dataset()
            if r.content and "json" in r.headers.get("Content-Type", ""):
                try:
                    answer = Dataset.from_json(r.json())
                except Exception:
                    logger.debug("store: the STOW-RS answer is not readable JSON", exc_info=True)
                    answer = Dataset()
        stored = tuple(str(x.ReferencedSOPInstanceUID) for x in answer.get("ReferencedSOPSequence", []) if "ReferencedSOPInstanceUID" in x)
        failed = tuple(
            (str(x.get("ReferencedSOPInstanceUID", "")), f"failure reason {x.get('FailureReason', '?')}")
            for x in answer.get("FailedSOPSequence", [])
        )
        if r.status_code == 409 or (failed and not stored):
            reason = failed[0][1] if failed else f"HTTP {r.status_code}"
            raise _rejected(f"the archive at {self.config.host} refused the instance ({reason})")
        if not stored and not failed:
            stored = tuple(uids)  # a 200 without a body: the archive accepted them
        warnings = ()
        if r.status_code == 202 or failed:
            warnings = (f"the archive stored {len(stored)} of {len(uids)} instances",)
        return StoreResult(stored=stored, failed=failed, warnings=warnings)


def _uids(study_uid, series_uid, sop_uid) -> tuple[str, str, str]:
    return (
        check_uid(study_uid, "study UID"),
        check_uid(series_uid, "series UID"),
        check_uid(sop_uid, "SOP instance UID"),
    )


def _as_bytes(item) -> bytes:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, Dataset):
        buf = io.BytesIO()
        try:
            item.save_as(buf, enforce_file_format=True)
        except Exception as exc:
            logger.debug("_as_bytes: cannot encode the dataset", exc_info=True)
            raise PacsError(f"cannot encode the DICOM instance to send it: {exc}") from exc
        return buf.getvalue()
    path = Path(item)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PacsError(f"cannot read {path.name}: {exc.strerror or exc}") from exc


def _sop_uid_of(data: bytes) -> str:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        return str(ds.SOPInstanceUID)
    except Exception as exc:
        logger.debug("_sop_uid_of: not DICOM", exc_info=True)
        raise PacsError("not a DICOM file (no SOP Instance UID): nothing sent") from exc


def _unavailable(msg: str) -> PacsUnavailable:
    return PacsUnavailable(msg)


def _rejected(msg: str) -> PacsRejected:
    return PacsRejected(msg)


def _http_error(what: str, host: str, response) -> PacsError:
    code = getattr(response, "status_code", 0) or 0
    if code in (401, 403):
        e = _rejected(f"{what}: the archive at {host} refused the credentials (HTTP {code})")
    elif code == 404:
        e = _rejected(f"{what}: not found in the archive at {host} (HTTP 404)")
    elif code in (408, 429) or code >= 500:
        e = _unavailable(f"{what}: the archive at {host} answered HTTP {code}")
    else:
        e = _rejected(f"{what}: the archive at {host} answered HTTP {code}")
    e.http_status = code
    return e


# ---- building the Cine ----------------------------------------------------------------------
def cine_from_remote(remote: RemoteFrames, source_name: str = ""):
    """A :class:`msus.cine.Cine` whose frames come through ``remote`` (frame 1 fetched now).

    Header handling — timing, calibration, photometric conversion, metadata — is the DICOM
    reader's (:func:`msus.io.dicom.cine_from_dataset`), so a loop opened from the archive and the
    same file opened from disk give the same Cine.
    """
    from msus.io.dicom import cine_from_dataset

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


# ---- the annotated loop as a new series ---------------------------------------------------------
#: Patient and study attributes copied from the source loop so the new series joins its study.
STUDY_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
)
MULTIFRAME_TRUE_COLOR_SC = "1.2.840.10008.5.1.4.1.1.7.4"


def annotated_loop_dataset(
    frames: Iterable[np.ndarray],
    frame_times_ms: Sequence[float],
    reference,
    *,
    series_description: str = "msus annotated loop",
    series_number: int = 901,
    jpeg_quality: int = 90,
) -> Dataset:
    """The annotated loop as a new series of the source study, ready for STOW-RS.

    A Multi-frame True Color Secondary Capture instance, JPEG baseline (4:2:2, lossy, flagged),
    annotations burned in (BurnedInAnnotation YES), frame timing kept in FrameTimeVector (ms).

    Parameters
    ----------
    frames
        RGB (H×W×3) or grey (H×W) uint8 frames, all the same shape (e.g.
        :func:`msus.export.video.annotated_frames`).
    frame_times_ms
        Start time of each frame in ms (first 0).
    reference
        The source loop's header: a pydicom Dataset or a Cine ``meta`` dict (keyword → value);
        its patient and study attributes are copied.
    """
    from datetime import datetime

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, generate_uid

    from msus.errors import ExportError

    encoded, shape = [], None
    for f in frames:
        arr = np.asarray(f)
        if arr.dtype != np.uint8:
            raise ExportError(f"annotated frames must be uint8, got {arr.dtype}")
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ExportError(f"annotated frames must be H×W×3 RGB, got shape {arr.shape}")
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise ExportError("annotated frames change size mid-loop")
        buf = io.BytesIO()
        Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=int(jpeg_quality), subsampling=1)
        encoded.append(buf.getvalue())
    if not encoded:
        raise ExportError("no frames to store")
    times = [float(t) for t in frame_times_ms]
    if len(times) != len(encoded):
        raise ExportError(f"{len(times)} frame times for {len(encoded)} frames")

    def ref(keyword):
        if isinstance(reference, Dataset):
            return reference.get(keyword)
        return (reference or {}).get(keyword)

    if not ref("StudyInstanceUID"):
        raise ExportError("the source loop has no StudyInstanceUID: no study to add a series to")
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = MULTIFRAME_TRUE_COLOR_SC
    sop = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    for kw in STUDY_KEYWORDS:
        v = ref(kw)
        if v not in (None, ""):
            setattr(ds, kw, v)
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
               "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        if kw not in ds:
            setattr(ds, kw, "")
    now = datetime.now()
    ds.SOPClassUID = MULTIFRAME_TRUE_COLOR_SC
    ds.SOPInstanceUID = sop
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = int(series_number)
    ds.InstanceNumber = 1
    ds.SeriesDescription = series_description[:64]
    ds.Modality = str(ref("Modality") or "US")
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.BurnedInAnnotation = "YES"
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.Manufacturer = "msus"
    ds.DerivationDescription = "msus: measurements and outlines burned into the source loop"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = len(encoded)
    ds.FrameIncrementPointer = 0x00181065
    ds.FrameTimeVector = [0.0] + [round(b - a, 3) for a, b in zip(times, times[1:])]
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


__all__ = [
    "Archive", "StudyInfo", "SeriesInfo", "InstanceInfo", "StoreResult", "RemoteFrames", "FrameCache",
    "sniff_frame_syntax", "dataset_from_metadata", "check_uid", "date_range",
    "cine_from_remote", "annotated_loop_dataset",
]

