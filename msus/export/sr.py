"""DICOM SR: a Comprehensive 3D SR holding a TID 1500 Measurement Report (highdicom).

Content:

* one TID 1501 measurement group per calibrated caliper: ``Length`` (SCT 410668003) in UCUM
  ``mm``, the referenced SOP instance and frame number (1-based), and the caliper's two ends as
  a POLYLINE SCOORD on that frame (DICOM image coordinates: pixel centres at +0.5);
* one TID 1501 group for the finding: gap at rest, gap at contraction, retraction (mm), defect
  thickness fraction (%), each referencing its frame, and the classification as a qualitative
  evaluation ("Muscle tear flag" = ``suspected_full_thickness`` / ``partial`` / ``no_defect``, codes
  of the private scheme ``99MSUS``: DICOM and SNOMED have no code for a review flag).

Uncalibrated calipers carry no mm and are left out (said in the report's notes).  An automatic
result is marked by an algorithm identification ("msus") on its groups.  The SR needs the
loop's DICOM header (its patient, study and SOP instance); a video or image stack has none.

Each caliper group's tracking identifier names its role and what it is to the finding
("finding", "reader", "second read": another reviewer's, never in the finding).  The finding's
values are the record's (:mod:`msus.record`), the same the PDF and JSON show.

Signing: a draft is PRELIMINARY / PARTIAL / UNVERIFIED; a signed finding (final or amended) is
FINAL / COMPLETE / VERIFIED with the signer as verifying observer at the signing time.  The SR's
SOP Instance UID is derived from the finding's id (and, for a draft, its version), so an
amendment's SR is a new instance whose Predecessor Documents Sequence references the SR of the
version it amends.  The observer is the reader (person), or the device "msus" when automatic.
"""

from __future__ import annotations

import logging
from pathlib import Path

import os
from datetime import datetime

import numpy as np

from msus import __version__
from msus.errors import ExportError
from msus.export import ExportData
from msus.export.atomic import write_atomic

logger = logging.getLogger(__name__)

SCHEME = "99MSUS"
CLASS_MEANINGS = {
    "suspected_full_thickness": "Suspected full-thickness muscle tear (flag for review)",
    "partial": "Partial muscle defect (flag for review)",
    "no_defect": "No muscle defect found",
}
SIGNED = ("final", "amended")
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


def sr_uids(loop_key: str, finding: dict | None) -> tuple[str, str | None]:
    """(series UID, SOP Instance UID) of the SR of ``finding`` on ``loop_key`` (None: no finding).

    Derived from the identities, so the SR of one signed version always has the same UID and an
    amendment can reference it.
    """
    from pydicom.uid import generate_uid

    series = generate_uid(entropy_srcs=["msus-sr-series", loop_key])
    if not finding or not finding.get("id"):
        return series, None
    signed = finding.get("status") in SIGNED
    key = [finding["id"], "signed" if signed else f"draft-{finding.get('version')}"]
    return series, generate_uid(entropy_srcs=["msus-sr", *key])


def _predecessor(ds, loop_key: str, finding: dict):
    """A minimal Dataset naming the SR of the version ``finding`` amends (or None)."""
    import pydicom

    prev = next((v for v in reversed(finding.get("history") or ()) if v.get("id") == finding.get("supersedes")), None)
    if prev is None:
        return None
    series, sop = sr_uids(loop_key, {"id": prev["id"], "status": prev.get("status") or "final"})
    pre = pydicom.Dataset()
    pre.SOPClassUID, pre.SOPInstanceUID = COMPREHENSIVE_3D_SR, sop
    pre.StudyInstanceUID, pre.SeriesInstanceUID = str(ds.StudyInstanceUID), series
    return pre


def _code(value: str, meaning: str):
    from pydicom.sr.coding import Code

    return Code(value, SCHEME, meaning)


def read_header(source):
    """The DICOM header of ``source`` (path or Dataset) without pixels, stray elements removed."""
    import pydicom

    from msus.export.deid import source_header, strip_stray_elements

    if isinstance(source, pydicom.Dataset):
        ds = source
        strip_stray_elements(ds)
    else:
        ds = source_header(source, "DICOM SR")
    for kw in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"):
        if not ds.get(kw):
            raise ExportError(f"the source has no {kw}; a DICOM SR cannot reference it")
    return ds


def build_sr(data: ExportData, source, *, series_uid: str | None = None, sop_uid: str | None = None, uid_factory=None):
    """The :class:`highdicom.sr.Comprehensive3DSR` for ``data`` on the DICOM ``source``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    ds = read_header(source)
    new_uid = uid_factory or generate_uid
    sop_class, sop_inst = str(ds.SOPClassUID), str(ds.SOPInstanceUID)

    def src(frame: int | None):
        frames = None if frame is None else [int(frame) + 1]
        return hd.sr.SourceImageForMeasurement(sop_class, sop_inst, referenced_frame_numbers=frames)

    algo = hd.sr.AlgorithmIdentification(name="msus", version=__version__) if data.automatic else None
    groups = []
    skipped = 0
    reads = {m.id: (n, read) for n, m, read in data.caliper_reads()}
    for m in data.measurements:
        if m.length_mm is None:
            skipped += 1
            continue
        coords = hd.sr.CoordinatesForMeasurement(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=np.array([[max(0.0, m.x1 + 0.5), max(0.0, m.y1 + 0.5)], [max(0.0, m.x2 + 0.5), max(0.0, m.y2 + 0.5)]]),
            source_image=hd.sr.SourceImageForRegion(sop_class, sop_inst, referenced_frame_numbers=[m.frame_index + 1]),
        )
        meas = hd.sr.Measurement(
            name=codes.SCT.Length,
            value=float(m.length_mm),
            unit=codes.UCUM.Millimeter,
            referenced_images=[src(m.frame_index)],
            referenced_coordinates=[coords],
        )
        who = m.reviewer or "unnamed reviewer"
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=new_uid(), identifier=f"caliper {reads[m.id][0]}: {m.role} ({reads[m.id][1]}, {m.kind}, {who})"[:64]
                ),
                measurements=[meas],
                algorithm_id=algo if m.kind.startswith("automatic") else None,
            )
        )
    f = data.finding
    if f and f.get("classification"):
        cls = f["classification"]
        rest, con = data.key_frames
        ms = []
        for key, code, meaning, frame in (
            ("gap_rest_mm", "gap-rest", "Muscle gap at rest", rest),
            ("gap_contraction_mm", "gap-contraction", "Muscle gap at contraction", con),
            ("retraction_mm", "gap-retraction", "Gap retraction on contraction", None),
        ):
            v = f.get(key)
            if v is not None:
                ref = [src(frame)] if frame is not None else [src(rest), src(con)] if None not in (rest, con) else None
                ms.append(hd.sr.Measurement(name=_code(code, meaning), value=float(v), unit=codes.UCUM.Millimeter, referenced_images=ref))
        frac = f.get("defect_thickness_fraction")
        if frac is not None:
            ms.append(hd.sr.Measurement(name=_code("thickness-fraction", "Defect thickness fraction"), value=float(frac) * 100.0, unit=codes.UCUM.Percent))
        qe = hd.sr.QualitativeEvaluation(name=_code("tear-flag", "Muscle tear flag (for review)"), value=_code(cls, CLASS_MEANINGS.get(cls, cls)))
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=new_uid(), identifier=_finding_identifier(f)),
                measurements=ms or None,
                qualitative_evaluations=[qe],
                algorithm_id=algo if (data.automatic or f.get("kind") == "automatic") else None,
            )
        )
    if not groups:
        raise ExportError("nothing to put in a DICOM SR: no calibrated caliper and no finding")
    reviewer = (f or {}).get("reviewer") or next((m.reviewer for m in data.measurements if m.reviewer), "")
    if data.automatic or not reviewer:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(uid=new_uid(), name="msus"),
        )
    else:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=_person_name(reviewer)),
        )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer if observer.observer_type == codes.DCM.Person else None,
                                                     observer_device_context=observer if observer.observer_type == codes.DCM.Device else None),
        procedure_reported=hd.sr.CodedConcept("16310003", "SCT", "Ultrasonography"),
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    derived_series, derived_sop = sr_uids(data.loop_key, f) if uid_factory is None else (None, None)
    signed = bool(f and f.get("status") in SIGNED and not data.automatic)
    pre = _predecessor(ds, data.loop_key, f) if (f and f.get("supersedes") and uid_factory is None) else None
    sr = hd.sr.Comprehensive3DSR(
        evidence=[ds],
        content=report[0],
        series_instance_uid=series_uid or derived_series or new_uid(),
        series_number=990,
        sop_instance_uid=sop_uid or derived_sop or new_uid(),
        instance_number=1 + int((f or {}).get("amendment_no") or 0),
        manufacturer="msus",
        series_description="msus measurements",
        is_complete=signed,
        is_final=signed,
        is_verified=signed,
        verifying_observer_name=_person_name(f.get("signed_by") or reviewer) if signed else None,
        verifying_organization=(os.environ.get("MSUS_ORGANIZATION") or "unspecified organization")[:64] if signed else None,
        previous_versions=[pre] if pre is not None else None,
    )
    if signed and f.get("signed_at"):
        from pydicom.valuerep import DT

        sr.VerifyingObserverSequence[0].VerificationDateTime = DT(datetime.fromisoformat(f["signed_at"]))
    return sr


def _finding_identifier(f: dict) -> str:
    """'finding (draft)', 'finding (final)', 'finding version 2 (amended)'."""
    n = int(f.get("amendment_no") or 0)
    return (f"finding version {n + 1}" if n else "finding") + f" ({f.get('status') or 'draft'})"


def _person_name(name: str) -> str:
    """A reviewer's free-text name as a DICOM PN: one component ("Dr A Example^"), no '^', '\\' or '='."""
    clean = "".join(ch for ch in name if ch not in "^\\=" and (ch.isprintable()))
    return (clean.strip()[:63] or "unnamed") + "^"  # the whole name as one component, said explicitly


def write_sr(data: ExportData, source, out, **kw) -> Path:
    """Build the SR and save it to ``out`` (DICOM Part 10)."""
    sr = build_sr(data, source, **kw)
    return write_atomic(out, lambda tmp: sr.save_as(tmp, enforce_file_format=True))
