"""Header facts as a plain dict, with the keys that can identify a person flagged.

``meta`` on a :class:`~msus.cine.Cine` is a dict of JSON-ready values (str, int, float, lists of
them) keyed by DICOM keyword (``"Manufacturer"``, ``"NumberOfFrames"``...).  Two keys are
reserved:

``phi_keys``
    Sorted keywords present in this dict that are, or may be, protected health information
    (names, IDs, dates and times, institution, instance UIDs...).  Never log or print them;
    use :func:`without_phi` for displays and logs.
``unreadable_elements``
    Tags (``"(FFFE,E0DD)"``) present in the file that could not be read — real archives hold
    stray delimiters and damaged private elements.  The loader never fails because of them.

Private elements, binary values and sequences are left out.
"""

from __future__ import annotations

import logging
import math

logger = logging.getLogger(__name__)

#: Keywords always treated as PHI (besides every PN value and every date/time value).
PHI_KEYWORDS = frozenset(
    """
    PatientName PatientID IssuerOfPatientID OtherPatientIDs OtherPatientNames OtherPatientIDsSequence
    PatientBirthDate PatientBirthTime PatientBirthName PatientMotherBirthName PatientAge PatientSex
    PatientSize PatientWeight PatientAddress PatientTelephoneNumbers PatientComments
    AdditionalPatientHistory EthnicGroup Occupation MilitaryRank BranchOfService MedicalRecordLocator
    PregnancyStatus PatientReligiousPreference ResponsiblePerson ResponsibleOrganization
    InstitutionName InstitutionAddress InstitutionalDepartmentName StationName DeviceSerialNumber
    ReferringPhysicianName ReferringPhysicianAddress ReferringPhysicianTelephoneNumbers
    PerformingPhysicianName OperatorsName PhysiciansOfRecord NameOfPhysiciansReadingStudy
    RequestingPhysician ScheduledPerformingPhysicianName AccessionNumber StudyID
    RequestedProcedureID AdmissionID StudyInstanceUID SeriesInstanceUID SOPInstanceUID
    FrameOfReferenceUID MediaStorageSOPInstanceUID IrradiationEventUID StudyDescription
    SeriesDescription ImageComments RequestAttributesSequence DerivationDescription
    ProtocolName PerformedProcedureStepID PerformedProcedureStepDescription
    """.split()
)
_PHI_VRS = frozenset({"PN", "DA", "DT", "TM"})
_SKIP_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"})
MAX_VALUE_CHARS = 256


def _plain(value):
    """A JSON-ready version of a pydicom value, or None when it is not a simple fact."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS]
    from pydicom.valuerep import PersonName

    if isinstance(value, PersonName):  # iterable (by character): the name as DICOM writes it
        return str(value)[:MAX_VALUE_CHARS]
    if hasattr(value, "__iter__"):
        out = []
        for v in list(value)[:64]:
            p = _plain(v)
            if p is None:
                return None
            out.append(p)
        return out
    # PersonName, DSfloat, IS, UID... → str or number
    try:
        from pydicom.valuerep import DSfloat, IS

        if isinstance(value, IS):
            return int(value)
        if isinstance(value, DSfloat):
            f = float(value)
            return f if math.isfinite(f) else None
    except ImportError:  # pragma: no cover
        pass
    return str(value)[:MAX_VALUE_CHARS]


def is_phi(keyword: str, vr: str = "") -> bool:
    """True for keywords that may identify a patient, a person or an institution."""
    return keyword in PHI_KEYWORDS or vr in _PHI_VRS


def dicom_meta(ds) -> dict:
    """Top-level public DICOM elements of ``ds`` as ``{keyword: value}`` plus ``phi_keys``.

    Robust to damaged elements (they are listed under ``unreadable_elements``).
    """
    meta: dict = {}
    phi: set[str] = set()
    unreadable: list[str] = []
    datasets = []
    fm = getattr(ds, "file_meta", None)
    if fm is not None:
        datasets.append(fm)
    datasets.append(ds)
    for d in datasets:
        try:
            tags = list(d.keys())
        except Exception:
            logger.debug("dicom_meta: a dataset without readable elements", exc_info=True)
            continue
        for tag in tags:
            try:
                if tag.is_private or tag.group in (0x7FE0, 0xFFFE) or tag.element == 0:
                    if tag.group == 0xFFFE:
                        unreadable.append(f"({tag.group:04X},{tag.element:04X})")
                    continue
                elem = d[tag]
                kw = elem.keyword
                if not kw or elem.VR in _SKIP_VRS:
                    continue
                value = _plain(elem.value)
            except Exception:
                logger.debug("dicom_meta: an unreadable element, listed", exc_info=True)
                unreadable.append(f"({tag.group:04X},{tag.element:04X})")
                continue
            if value is None or value == "" or value == []:
                continue
            meta[kw] = value
            if is_phi(kw, elem.VR):
                phi.add(kw)
    meta["phi_keys"] = sorted(phi)
    meta["unreadable_elements"] = unreadable
    return meta


def without_phi(meta: dict) -> dict:
    """A copy of ``meta`` without the keys listed in ``phi_keys`` (safe to show or log)."""
    drop = set(meta.get("phi_keys", ())) | {k for k in meta if k in PHI_KEYWORDS}
    return {k: v for k, v in meta.items() if k not in drop}


# ---- patient fields, for a person to read ------------------------------------------------------------
_FIELD_LABELS = {"PatientName": "name", "PatientID": "ID", "PatientBirthDate": "born", "PatientSex": "sex",
                 "PatientAge": "age", "StudyDate": "study date", "StudyTime": "study time",
                 "AccessionNumber": "accession", "InstitutionName": "institution",
                 "ReferringPhysicianName": "referrer", "OperatorsName": "operator"}


def person_name(value) -> str:
    """A DICOM person name (``Family^Given^Middle^Prefix^Suffix``) as "Prefix Given Middle Family Suffix"
    joined naturally: ``"PHANTOM^RECTUS"`` → ``"RECTUS PHANTOM"``; ``"OB^^^^"`` → ``"OB"``."""
    family, given, middle, prefix, suffix = (str(value).split("=")[0].split("^") + [""] * 5)[:5]
    return " ".join(p for p in (prefix, given, middle, family, suffix) if p.strip())


def dicom_date(value) -> str:
    """``"20080718"`` → ``"2008-07-18"``; anything else unchanged."""
    v = str(value).strip()
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) == 8 and v.isdigit() else v


def dicom_time(value) -> str:
    """``"142825.000000"`` → ``"14:28:25"``; anything else unchanged."""
    v = str(value).strip().split(".")[0]
    return ":".join(v[i:i + 2] for i in range(0, len(v), 2)) if v.isdigit() and len(v) in (4, 6) else str(value)


def patient_fields(meta: dict) -> list[tuple[str, str]]:
    """The identifying fields a reviewer checks (name, ID, birth date, sex, age, study date…), formatted
    for reading (names as names, dates as dates), in that order; only those the file has."""
    out = []
    for key, label in _FIELD_LABELS.items():
        v = meta.get(key)
        if v in (None, "", []):
            continue
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        text = person_name(v) if key.endswith("Name") and key != "InstitutionName" else (
            dicom_date(v) if key.endswith("Date") else dicom_time(v) if key.endswith("Time") else str(v))
        out.append((label, text))
    return out
