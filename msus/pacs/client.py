"""The DICOMweb archive client: QIDO-RS search, WADO-RS retrieval and open, STOW-RS storage.

Built on :mod:`dicomweb_client` (its public API: ``retrieve_instance_metadata``,
``retrieve_instance_frames``, ``retrieve_bulkdata``, ``retrieve_instance``).  Two requests are built
here instead: QIDO-RS searches, because dicomweb-client's search helpers percent-encode ``*`` and
``%2A`` is not a wildcard to every archive (Orthanc), and STOW-RS, because ``store_instances``
re-encodes datasets while msus posts the file's bytes unchanged.  Every request has a bounded
timeout (:class:`~msus.pacs.config.PacsConfig`) and every failure becomes a one-line
:mod:`msus.errors` exception (:mod:`msus.pacs.http`).

Frames of an opened loop come on demand through :mod:`msus.pacs.frames`.  Nothing here logs
patient data; messages name the archive host and UIDs only.
"""

from __future__ import annotations

import io
import logging
import uuid
from pathlib import Path
from typing import Iterable, Sequence

import requests
from pydicom.dataset import Dataset

from msus.errors import LoadError, PacsError, PacsRejected
from msus.io.dicom import cine_from_dataset
from msus.pacs.config import PacsConfig, load_config
from msus.pacs.frames import NATIVE_FRAMES, RemoteFrames, cine_from_remote, dataset_from_metadata
from msus.pacs.http import archive_errors
from msus.pacs.payload import dicom_bytes, sop_header
from msus.pacs.query import (
    INSTANCE_FIELDS, SERIES_FIELDS, STUDY_FIELDS, InstanceInfo, SeriesInfo, StoreResult, StudyInfo, check_uid,
    check_uids, date_range, first_value,
)

logger = logging.getLogger(__name__)

NATIVE_INSTANCE = (("application/dicom", "*"),)
#: Search results returned at most per query (the archive may cap lower).
DEFAULT_SEARCH_LIMIT = 200


class Archive:
    """A DICOMweb archive: QIDO-RS search, WADO-RS retrieval, STOW-RS storage.

    Parameters
    ----------
    config
        Where and how to connect; default :func:`msus.pacs.config.load_config` (environment).
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
            raise PacsError(f"the archive URL is not usable: {exc}") from None
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
        with archive_errors(self.config, "checking the archive"):
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
        with archive_errors(self.config, "searching the archive"):
            items = self._qido("studies", {**filters, "includefield": list(STUDY_FIELDS), "limit": int(limit)})
        out = [s for s in (StudyInfo.from_json(it) for it in items) if s is not None]
        out.sort(key=lambda s: (s.study_date, s.study_time), reverse=True)
        return out

    def list_series(self, study_uid: str, *, modality: str | None = None, body_part: str | None = None) -> list[SeriesInfo]:
        """Series of a study, optionally only those of one modality and BodyPartExamined."""
        study_uid = check_uid(study_uid, "study UID")
        filters = {k: v.strip() for k, v in (("Modality", modality), ("BodyPartExamined", body_part)) if v}
        with archive_errors(self.config, "listing series"):
            items = self._qido(f"studies/{study_uid}/series", {**filters, "includefield": list(SERIES_FIELDS)})
        out = [s for s in (SeriesInfo.from_json(it, study_uid) for it in items) if s is not None]
        out.sort(key=lambda s: (s.series_number is None, s.series_number or 0, s.series_uid))
        return out

    def list_instances(self, study_uid: str, series_uid: str | None = None) -> list[InstanceInfo]:
        """Instances of a study (or one series) with their frame counts."""
        study_uid = check_uid(study_uid, "study UID")
        if series_uid is not None:
            series_uid = check_uid(series_uid, "series UID")
        with archive_errors(self.config, "listing instances"):
            path = f"studies/{study_uid}/series/{series_uid}/instances" if series_uid else f"studies/{study_uid}/instances"
            items = self._qido(path, {"includefield": list(INSTANCE_FIELDS)})
        out = []
        for it in items:
            sop = first_value(it, "00080018")
            ser = first_value(it, "0020000E") or series_uid
            if not sop or not ser:
                continue
            out.append(InstanceInfo.from_json(it, study_uid, ser, sop))
        out.sort(key=lambda i: (i.series_uid, i.instance_number is None, i.instance_number or 0))
        return out

    def find_instance(self, sop_uid: str, study_uid: str | None = None) -> InstanceInfo | None:
        """The instance with this SOP Instance UID if the archive holds it, else None."""
        sop_uid = check_uid(sop_uid, "SOP instance UID")
        with archive_errors(self.config, "looking for an instance"):
            path = f"studies/{check_uid(study_uid, 'study UID')}/instances" if study_uid else "instances"
            items = self._qido(path, {"SOPInstanceUID": sop_uid, "includefield": list(INSTANCE_FIELDS)})
        for it in items:
            if first_value(it, "00080018") == sop_uid:
                return InstanceInfo.from_json(it, first_value(it, "0020000D") or study_uid or "", first_value(it, "0020000E") or "", sop_uid)
        return None

    def has_instance(self, sop_uid: str, study_uid: str | None = None) -> bool:
        return self.find_instance(sop_uid, study_uid) is not None

    # -- WADO-RS
    def metadata(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """The instance header (WADO-RS metadata) as a pydicom Dataset."""
        uids = check_uids(study_uid, series_uid, sop_uid)
        with archive_errors(self.config, "reading instance metadata"):
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
        with archive_errors(self.config, "reading bulk data"):
            parts = self.client.retrieve_bulkdata(url, media_types=(("application/octet-stream", "*"),))
        return bytes(parts[0]) if parts else b""

    def retrieve_frames(self, study_uid, series_uid, sop_uid, numbers: Sequence[int], media_types=NATIVE_FRAMES) -> list[bytes]:
        """Frames by 1-based number, as the archive sends them (see ``media_types``)."""
        with archive_errors(self.config, f"fetching frame {numbers[0]}" if len(numbers) == 1 else f"fetching frames {numbers[0]}–{numbers[-1]}"):
            return self.client.retrieve_instance_frames(
                study_uid, series_uid, sop_uid, frame_numbers=list(numbers), media_types=media_types
            )

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """The whole instance, in the transfer syntax the archive stores it in."""
        uids = check_uids(study_uid, series_uid, sop_uid)
        with archive_errors(self.config, "retrieving an instance"):
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
            raise PacsError(f"cannot create {out}: {exc.strerror or exc}") from None
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
        uids = check_uids(study_uid, series_uid, sop_uid)
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
            data = dicom_bytes(item, "send")[0]
            uids.append(str(sop_header(data, "nothing sent").SOPInstanceUID))
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
        with archive_errors(self.config, "sending to the archive"):
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
            raise PacsRejected(f"the archive at {self.config.host} refused the instance ({reason})")
        if not stored and not failed:
            stored = tuple(uids)  # a 200 without a body: the archive accepted them
        warnings = ()
        if r.status_code == 202 or failed:
            warnings = (f"the archive stored {len(stored)} of {len(uids)} instances",)
        return StoreResult(stored=stored, failed=failed, warnings=warnings)
