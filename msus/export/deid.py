"""De-identification: DICOM basic profile for the header, clean pixels outside the US regions.

Header (PS3.15 Annex E, Basic Application Level Confidentiality Profile, with the Clean Pixel
Data option): the new dataset is built from an allow-list (:data:`KEEP`) of attributes that
describe the image, not the person — geometry, pixel description, cine timing, ultrasound
regions, modality, manufacturer.  Everything else is dropped: names, IDs, dates, times,
institution, descriptions, comments, private elements, overlays.  Type 2 attributes that the
IOD requires are present and empty (``PatientName``, ``PatientID``, ``StudyDate``...).  Every UID
(study, series, instance, frame of reference) is replaced through a :class:`UidMap`, so objects
of one bundle keep referring to each other.  ``PatientIdentityRemoved`` = YES and
``DeidentificationMethodCodeSequence`` name the profile (DCM 113100) and option (113101).

Pixels: the frames are decoded by :func:`msus.load` (display-ready 8-bit grey or RGB), every
pixel outside the union of the 2D *tissue* ultrasound regions (0018,6011: RegionSpatialFormat 1,
RegionDataType tissue or colour flow) is set to 0 — regions of other kinds (format "none",
graphics, waveforms, ECG, grey bars) often span the whole screen, banner included, and are blacked
out too (scanners burn names,
dates and IDs into the banner around the image), and the result is written RLE Lossless (8-bit
grey or RGB; uncompressed Explicit VR Little Endian when no RLE encoder is available).  A file without a tissue region is refused (unless the
caller gives an explicit crop): without one the burned-in text cannot be told from the image.

Real archives hold stray delimiter items at the top level (e.g. (FFFE,E0DD)) that make pydicom
refuse to iterate or save the dataset: :func:`msus.io.repair.strip_stray_elements` removes every
element that cannot be read, before anything else.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np

from msus.errors import ExportError
from msus.io.repair import strip_stray_elements  # noqa: F401 (shared with the PACS outbox)

logger = logging.getLogger(__name__)

#: Attributes kept (by keyword); all describe the image, none the patient.
KEEP = frozenset(
    """
    SpecificCharacterSet SOPClassUID Modality SeriesNumber InstanceNumber ImageType
    Manufacturer BodyPartExamined Laterality ImageLaterality
    LossyImageCompression LossyImageCompressionRatio LossyImageCompressionMethod
    NumberOfFrames FrameIncrementPointer FrameTime FrameTimeVector CineRate ActualFrameDuration
    RecommendedDisplayFrameRate StartTrim StopTrim PreferredPlaybackSequencing FrameDelay
    SequenceOfUltrasoundRegions PixelSpacing ImagerPixelSpacing PixelAspectRatio
    """.split()
)
#: Type 2 attributes written empty (required by the US IODs and SR evidence).
EMPTY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
         "ReferringPhysicianName", "StudyID", "AccessionNumber")
#: UIDs replaced consistently.
REMAP = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")


class UidMap:
    """Original UID → new UID, stable within one bundle (new UIDs are random)."""

    def __init__(self):
        self._map: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        from pydicom.uid import generate_uid

        uid = str(uid)
        if uid not in self._map:
            self._map[uid] = generate_uid()
        return self._map[uid]

    def new(self) -> str:
        from pydicom.uid import generate_uid

        return generate_uid()

    def get(self, uid: str, default=None):
        return self._map.get(str(uid), default)

    def originals(self) -> set[str]:
        return set(self._map)


#: RegionDataType (0018,6014) codes that hold image data: 1 tissue, 2 colour flow.
TISSUE_DATA_TYPES = frozenset({1, 2})


def tissue_regions(ds) -> tuple:
    """The 2D tissue regions of ``ds``: RegionSpatialFormat 1 and a tissue / colour-flow data type.

    Other regions (spatial format 0 "none", M-mode, spectral, waveform, graphics, or data types
    such as ECG traces and grey bars) may cover the whole screen, banner included: they are not
    image data and must not keep their pixels.
    """
    from msus.calibration import regions_from_dataset

    regions, _ = regions_from_dataset(ds)
    return tuple(r for r in regions if r.is_2d and r.data_type in TISSUE_DATA_TYPES)


def region_mask(ds, rows: int, columns: int, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Boolean rows×columns mask: True inside a 2D tissue region of ``ds`` (see :func:`tissue_regions`).

    ``crop`` = (x0, y0, x1, y1), inclusive 0-based pixel bounds, replaces the regions: the
    reviewer's explicit choice for a file without tissue regions.
    """
    if crop is not None:
        boxes = [tuple(int(v) for v in crop)]
    else:
        if not (ds.get("SequenceOfUltrasoundRegions") or []):
            raise ExportError("the file has no ultrasound regions; cannot tell burned-in text from the image, "
                              "not de-identifying (give an explicit crop: --crop X0,Y0,X1,Y1)")
        boxes = [(r.x0, r.y0, r.x1, r.y1) for r in tissue_regions(ds)]
        if not boxes:
            raise ExportError("the file has no 2D tissue ultrasound region (spatial format 2D, tissue or colour-flow "
                              "data); cannot tell burned-in text from the image, not de-identifying "
                              "(give an explicit crop: --crop X0,Y0,X1,Y1)")
    mask = np.zeros((rows, columns), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(columns - 1, x1), min(rows - 1, y1)
        if x1 >= x0 and y1 >= y0:
            mask[y0 : y1 + 1, x0 : x1 + 1] = True
    if not mask.any():
        where = "the crop does not lie" if crop is not None else "no 2D tissue region lies"
        raise ExportError(f"{where} inside the {columns}×{rows} image; not de-identifying")
    return mask


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """``"X0,Y0,X1,Y1"`` (inclusive, 0-based px) → a crop tuple; ExportError when malformed."""
    try:
        x0, y0, x1, y1 = (int(v) for v in str(text).split(","))
    except ValueError:
        raise ExportError(f"--crop wants X0,Y0,X1,Y1 in pixels (0-based, inclusive), got {text!r}") from None
    if x1 < x0 or y1 < y0 or min(x0, y0) < 0:
        raise ExportError(f"--crop X0,Y0,X1,Y1 needs 0 <= X0 <= X1 and 0 <= Y0 <= Y1, got {text!r}")
    return x0, y0, x1, y1


def clean_frame(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``frame`` with every pixel outside ``mask`` set to 0."""
    out = np.array(frame, dtype=np.uint8, copy=True)
    out[~mask] = 0
    return out


def source_header(source, needs: str):
    """The header of the DICOM file ``source`` without its pixels, stray elements removed.

    ``needs`` names what needs it, for the one-line :class:`ExportError` when the file is not
    readable DICOM (the traceback goes to the log)."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(source), stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types for a file that is not DICOM
        logger.debug("source_header: the source is not readable DICOM", exc_info=True)
        raise ExportError(f"{needs} needs a DICOM source; cannot read {Path(str(source)).name}: {type(exc).__name__}") from exc
    strip_stray_elements(ds)
    return ds


def deidentify(source, uid_map: UidMap | None = None, *, crop: tuple[int, int, int, int] | None = None):
    """De-identify the DICOM file ``source``.

    Returns
    -------
    (dataset, cine, mask)
        The new :class:`pydicom.Dataset` (uncompressed, header from :data:`KEEP`), the loop as
        loaded by :func:`msus.load` (for rendering the bundle's video from cleaned frames), and
        the region mask (True = kept: the 2D tissue regions, or ``crop`` when given).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    import msus

    uid_map = uid_map or UidMap()
    cine = msus.load(source)  # first: size limits (and a capped inflate) before pydicom reads it whole
    try:
        if cine.kind != "dicom":
            raise ExportError(f"de-identification needs a DICOM file; {Path(str(source)).name} is a {cine.kind} source")
        src = source_header(source, "de-identification")
        mask = region_mask(src, cine.rows, cine.columns, crop)
    except BaseException:
        cine.close()
        raise
    ds = Dataset()
    for kw in sorted(KEEP):
        if kw in src:
            try:
                ds[kw] = copy.deepcopy(src[kw])
            except Exception:
                logger.debug("deidentify: an element not copied", exc_info=True)
                continue
    for kw in EMPTY:
        setattr(ds, kw, "")
    for kw in REMAP:
        if kw in src and src.get(kw):
            setattr(ds, kw, uid_map(str(src.get(kw))))
    if "SOPClassUID" not in ds:
        raise ExportError("the source has no SOPClassUID")
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if kw not in ds:
            setattr(ds, kw, uid_map.new())
    ds.PatientIdentityRemoved = "YES"
    ds.BurnedInAnnotation = "NO"
    ds.DeidentificationMethod = "PS3.15 basic profile + clean pixel data (msus)"  # LO: ≤ 64 chars
    codes = []
    for value, meaning in (("113100", "Basic Application Confidentiality Profile"), ("113101", "Clean Pixel Data Option")):
        c = Dataset()
        c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, "DCM", meaning
        codes.append(c)
    ds.DeidentificationMethodCodeSequence = codes
    # pixels: cleaned, display-ready 8-bit
    frames = np.stack([clean_frame(cine.frame(i), mask) for i in range(cine.n_frames)])
    ds.Rows, ds.Columns = cine.rows, cine.columns
    ds.SamplesPerPixel = cine.samples_per_pixel
    ds.PhotometricInterpretation = "RGB" if cine.samples_per_pixel == 3 else "MONOCHROME2"
    if cine.samples_per_pixel == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = cine.n_frames
    if cine.n_frames > 1 and "FrameIncrementPointer" not in ds:
        if "FrameTimeVector" in ds:
            ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTimeVector")
        else:
            ds.FrameTime = f"{1000.0 / cine.fps:.4f}"
            ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    ds.PixelData = frames.tobytes()
    ds["PixelData"].VR = "OB"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.set_original_encoding(False, True)
    _compress_lossless(ds)
    return ds, cine, mask


def _compress_lossless(ds) -> None:
    """RLE Lossless (every DICOM toolkit reads it) when an encoder is installed; else leave uncompressed."""
    from pydicom.uid import RLELossless

    for plugin in ("pylibjpeg", "pydicom"):
        try:
            ds.compress(RLELossless, encoding_plugin=plugin)
            return
        except Exception:
            logger.debug("_compress_lossless: RLE encoder plugin failed, trying the next", exc_info=True)
            continue


def deidentify_file(source, out_dir, *, uid_map: UidMap | None = None, name: str = "loop.dcm", crop=None) -> Path:
    """Write the de-identified copy of ``source`` into ``out_dir``; the source is never modified."""
    ds, cine, _ = deidentify(source, uid_map, crop=crop)
    cine.close()
    out = Path(out_dir) / name
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out, enforce_file_format=True)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return out
