"""De-identified teaching bundle: the loop, its findings and the annotated video, without PHI.

Contents (a folder, or a ``.zip`` when ``out`` ends in ``.zip``):

``loop.dcm``        the loop de-identified (:mod:`msus.export.deid`): basic-profile header, new
                    UIDs, pixels outside the 2D tissue ultrasound regions blacked out, RLE Lossless;
``sr.dcm``          the DICOM SR of the findings, referencing ``loop.dcm`` by its *new* UIDs;
``findings.json``, ``findings.csv``
                    the calipers and finding, loop keys replaced by the new UIDs, reviewers
                    renamed "reviewer 1", "reviewer 2"…, times and the source file name left out;
``annotated.mp4``   rendered from the cleaned frames;
``manifest.json``   what is inside and how it was de-identified.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from msus.errors import ExportError
from msus.export import ExportData
from msus.export.deid import UidMap, clean_frame, deidentify
from msus.export.sr import write_sr
from msus.export.tables import write_csv, write_json
from msus.export.video import write_mp4


def pseudonymise(data: ExportData, uid_map: UidMap, loop_uids: tuple[str, str, str]) -> ExportData:
    """``data`` with new loop UIDs, reviewers renamed, times and source name removed."""
    names: dict[str, str] = {}

    def alias(n: str) -> str:
        if not n:
            return ""
        if n.startswith("msus"):
            return n
        return names.setdefault(n, f"reviewer {len(names) + 1}")

    # notes and amendment reasons are free text (may name anyone): left out
    ms = tuple(dataclasses.replace(m, reviewer=alias(m.reviewer), created_at="", note="") for m in data.measurements)
    finding = None
    if data.finding:
        finding = dict(data.finding)
        finding.update(reviewer=alias(finding.get("reviewer") or ""), created_at="", updated_at="", loop_key=loop_uids[0],
                       signed_by=alias(finding.get("signed_by") or "") or None, signed_at=None,
                       amendment_reason="" if finding.get("amendment_reason") else None)
        finding["history"] = [dict(v, signed_by=alias(v.get("signed_by") or "") or None, signed_at=None,
                                   amendment_reason=None) for v in finding.get("history") or ()]
        finding["extra"] = {}
    sop, series, study = loop_uids
    return dataclasses.replace(
        data, loop_key=sop, series_key=series, study_key=study, source_name="", measurements=ms,
        finding=finding, exported_at="", notes=(),
    )


def write_bundle(source, data: ExportData, out, *, crop: tuple[int, int, int, int] | None = None) -> Path:
    """Write the de-identified bundle of the DICOM file ``source`` to ``out`` (folder or .zip).

    ``crop`` (x0, y0, x1, y1, inclusive px) keeps that box instead of the 2D tissue regions: for
    files without a tissue region, which are refused otherwise.
    """
    from msus.export.atomic import refuse_non_regular

    out = Path(out)
    refuse_non_regular(out, folder_ok=out.suffix.lower() != ".zip")  # before the work, not after
    uid_map = UidMap()
    ds, cine, mask = deidentify(source, uid_map, crop=crop)
    try:
        work = Path(tempfile.mkdtemp(prefix="msus-bundle-"))
        try:
            loop = work / "loop.dcm"
            ds.save_as(loop, enforce_file_format=True)
            clean = pseudonymise(data, uid_map, (str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID)))
            files = ["loop.dcm"]
            write_json(clean, work / "findings.json")
            write_csv(clean, work / "findings.csv")
            files += ["findings.json", "findings.csv"]
            try:
                write_sr(clean, ds, work / "sr.dcm", uid_factory=uid_map.new)
                files.append("sr.dcm")
            except ExportError:
                pass  # nothing calibrated to report: the JSON still holds what there is
            write_mp4(cine, clean, work / "annotated.mp4", source_frames=lambda i: clean_frame(cine.frame(i), mask))
            files.append("annotated.mp4")
            manifest = {
                "format": "msus.bundle/1",
                "files": files,
                "deidentification": {
                    "header": "DICOM PS3.15 Basic Application Level Confidentiality Profile (allow-list), "
                    "Clean Pixel Data Option; UIDs replaced, consistent within this bundle",
                    "pixels": ("every pixel outside the crop " + ",".join(map(str, crop)) + " set to 0") if crop else
                    "every pixel outside the 2D tissue ultrasound regions (spatial format 2D, tissue or colour-flow data) set to 0",
                    "findings": "reviewers renamed, times and source file name removed",
                },
                "automatic": clean.automatic,
                "classification": (clean.finding or {}).get("classification"),
            }
            (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            files.append("manifest.json")
            _publish(work, files, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        cine.close()
    return out


def _publish(work: Path, files: list[str], out: Path) -> None:
    from msus.export.atomic import refuse_non_regular

    zipped = out.suffix.lower() == ".zip"
    refuse_non_regular(out, folder_ok=not zipped)
    if zipped:
        refuse_non_regular(out.with_name(out.name + ".part"))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".zip":
            tmp = out.with_name(out.name + ".part")
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
                for f in files:
                    z.write(work / f, f)
            tmp.replace(out)
        else:
            if out.exists() and any(out.iterdir()):
                raise ExportError(f"{out} exists and is not empty; choose a new folder or a .zip name")
            out.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copy2(work / f, out / f)
    except OSError as exc:
        raise ExportError(f"cannot write the bundle to {out}: {exc.strerror or exc}") from exc
