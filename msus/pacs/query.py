"""What an archive search asks and answers: UID and date checks, study / series / instance records.

The records are frozen values built from QIDO-RS DICOM JSON; ``to_dict`` gives the JSON keys of
``msus pacs search --json`` / ``instances --json``.  ``patient_name`` is PHI: show it, never log it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from msus.errors import PacsError

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DATE_RE = re.compile(r"^\d{8}$")

STUDY_FIELDS = (
    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "PatientID", "PatientName",
    "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)
SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "NumberOfSeriesRelatedInstances")
INSTANCE_FIELDS = ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "NumberOfFrames", "Rows", "Columns")


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

    @classmethod
    def from_json(cls, item: dict) -> "StudyInfo | None":
        """From one QIDO-RS study answer (DICOM JSON); None without a Study Instance UID."""
        uid = first_value(item, "0020000D")
        if not uid:
            return None
        mods = item.get("00080061", {}).get("Value") or []
        return cls(
            study_uid=uid,
            patient_id=str(first_value(item, "00100020", "") or ""),
            patient_name=str(first_value(item, "00100010", "") or ""),
            study_date=str(first_value(item, "00080020", "") or ""),
            study_time=str(first_value(item, "00080030", "") or ""),
            accession_number=str(first_value(item, "00080050", "") or ""),
            description=str(first_value(item, "00081030", "") or ""),
            modalities=tuple(str(m) for m in mods),
            n_series=_int(first_value(item, "00201206")),
            n_instances=_int(first_value(item, "00201208")),
        )


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

    @classmethod
    def from_json(cls, item: dict, study_uid: str) -> "SeriesInfo | None":
        """From one QIDO-RS series answer; None without a Series Instance UID."""
        uid = first_value(item, "0020000E")
        if not uid:
            return None
        return cls(
            study_uid=study_uid,
            series_uid=uid,
            modality=str(first_value(item, "00080060", "") or ""),
            series_number=_int(first_value(item, "00200011")),
            description=str(first_value(item, "0008103E", "") or ""),
            n_instances=_int(first_value(item, "00201209")),
        )


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

    @classmethod
    def from_json(cls, item: dict, study_uid: str, series_uid: str, sop_uid: str) -> "InstanceInfo":
        """From one QIDO-RS instance answer (DICOM JSON) and its UIDs."""
        return cls(
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=sop_uid,
            sop_class_uid=str(first_value(item, "00080016", "") or ""),
            instance_number=_int(first_value(item, "00200013")),
            n_frames=_int(first_value(item, "00280008")) or 1,
            rows=_int(first_value(item, "00280010")),
            columns=_int(first_value(item, "00280011")),
        )


@dataclass(frozen=True)
class StoreResult:
    """What STOW-RS stored: SOP Instance UIDs stored and (uid, reason) refused."""

    stored: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


def first_value(item: dict, tag: str, default=None):
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


def check_uid(uid: str, what: str = "UID") -> str:
    """``uid`` stripped, or :class:`PacsError` when it is not a DICOM UID."""
    u = str(uid or "").strip()
    if not (u and len(u) <= 64 and _UID_RE.match(u)):
        raise PacsError(f"{what} {u!r} is not a DICOM UID (digits and dots, at most 64 characters)")
    return u


def check_uids(study_uid, series_uid, sop_uid) -> tuple[str, str, str]:
    """The three UIDs of one instance, each checked with :func:`check_uid`."""
    return (
        check_uid(study_uid, "study UID"),
        check_uid(series_uid, "series UID"),
        check_uid(sop_uid, "SOP instance UID"),
    )


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
