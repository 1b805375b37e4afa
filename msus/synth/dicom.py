"""The one Ultrasound Multi-frame DICOM writer: the bundled samples, the test simulators and the
benchmarks all write their loops through it.

A loop is stored either natively (Explicit VR Little Endian, MONOCHROME2 or RGB), as JPEG
baseline frames encoded by :func:`msus.export.jpeg.encode_jpeg` (grey stays MONOCHROME2, colour is
YBR_FULL_422) or as fragments the caller encoded (any encapsulated transfer syntax, e.g. one H.264
stream).  Calibration travels as one 2D tissue region in the Sequence of Ultrasound Regions
(:class:`TissueRegion`); timing as FrameTime.  UIDs are random unless the caller fixes them (the samples do, for byte-reproducible files).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msus.export.jpeg import encode_jpeg


@dataclass(frozen=True)
class TissueRegion:
    """One 2D tissue region of the Sequence of Ultrasound Regions (spatial format 1, data type 1).

    ``box`` = (x0, y0, x1, y1), inclusive px bounds; ``delta_x_cm`` / ``delta_y_cm`` its
    PhysicalDeltaX/Y (units cm).  ``reference_px`` (x, y) and ``transducer_khz`` are written when
    given.
    """

    box: tuple[int, int, int, int]
    delta_x_cm: float
    delta_y_cm: float
    reference_px: tuple[int, int] | None = None
    transducer_khz: int | None = None

    @classmethod
    def whole(cls, rows: int, columns: int, mm_per_px: float, **kw) -> TissueRegion:
        """A region over the whole image with square pixels of ``mm_per_px``."""
        return cls((0, 0, columns - 1, rows - 1), mm_per_px / 10.0, mm_per_px / 10.0, **kw)

    def item(self):
        from pydicom.dataset import Dataset

        r = Dataset()
        r.RegionSpatialFormat, r.RegionDataType, r.RegionFlags = 1, 1, 0
        r.RegionLocationMinX0, r.RegionLocationMinY0 = int(self.box[0]), int(self.box[1])
        r.RegionLocationMaxX1, r.RegionLocationMaxY1 = int(self.box[2]), int(self.box[3])
        r.PhysicalUnitsXDirection = r.PhysicalUnitsYDirection = 3
        r.PhysicalDeltaX, r.PhysicalDeltaY = float(self.delta_x_cm), float(self.delta_y_cm)
        if self.reference_px is not None:
            r.ReferencePixelX0, r.ReferencePixelY0 = (int(v) for v in self.reference_px)
            r.ReferencePixelPhysicalValueX = r.ReferencePixelPhysicalValueY = 0.0
        if self.transducer_khz is not None:
            r.TransducerFrequency = int(self.transducer_khz)
        return r


def frame_time(fps: float) -> str:
    """FrameTime (ms, DS) of a frame rate: at most 16 characters."""
    return f"{1000.0 / fps:.12g}"[:16]


def us_multiframe_dataset(
    frames: np.ndarray | None = None,
    *,
    fps: float,
    jpeg: bool = False,
    quality: int = 90,
    subsampling: str = "422",
    fragments: Sequence[bytes] | None = None,
    transfer_syntax: str | None = None,
    shape: tuple[int, int, int, int] | None = None,
    photometric: str | None = None,
    offset_table: bool = True,
    region: TissueRegion | None = None,
    patient: str = "PHANTOM^TEST",
    uids: Mapping[str, str] | None = None,
    implementation: tuple[str, str] | None = None,
    elements: Mapping[str, object] | None = None,
):
    """An Ultrasound Multi-frame Image dataset holding ``frames`` (N×H×W grey or N×H×W×3 RGB uint8).

    Parameters
    ----------
    frames
        The pixels, stored natively, or as JPEG baseline when ``jpeg`` (``quality``,
        ``subsampling`` ``"444"`` / ``"422"`` / ``"420"``).  Leave out with ``fragments``.
    fps
        Frame rate; written as FrameTime (ms) with FrameIncrementPointer.
    fragments, transfer_syntax, shape, photometric
        Pixel data encoded by the caller: one fragment per frame (or one video stream), its
        transfer syntax, the frames' (N, rows, columns, samples per pixel) and photometric.
    offset_table
        Write a Basic Offset Table for encapsulated pixel data.
    region
        The calibrated tissue region (none: an uncalibrated loop).
    patient
        PatientName (the patient is always fake).
    uids
        Fixed ``study`` / ``series`` / ``instance`` UIDs (missing ones are random).
    implementation
        (ImplementationClassUID, ImplementationVersionName) of the file meta (default pydicom's).
    elements
        Further attributes by keyword, set last (they may replace the ones above).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, UltrasoundMultiFrameImageStorage, generate_uid

    if fragments is None:
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        shape = (*frames.shape[:3], 1 if frames.ndim == 3 else frames.shape[3])
        if jpeg:
            fragments = [encode_jpeg(f, quality, subsampling) for f in frames]
            transfer_syntax = JPEGBaseline8Bit
        photometric = photometric or ("MONOCHROME2" if shape[3] == 1 else ("YBR_FULL_422" if jpeg else "RGB"))
    ids = dict(uids or {})
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = ids.get("instance") or generate_uid()
    meta.TransferSyntaxUID = transfer_syntax or ExplicitVRLittleEndian
    if implementation:
        meta.ImplementationClassUID, meta.ImplementationVersionName = implementation
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = ids.get("study") or generate_uid()
    ds.SeriesInstanceUID = ids.get("series") or generate_uid()
    ds.Modality = "US"
    ds.PatientName = patient
    ds.FrameIncrementPointer = 0x00181063
    ds.FrameTime = frame_time(fps)
    if region is not None:
        ds.SequenceOfUltrasoundRegions = [region.item()]
    _set_pixels(ds, shape, photometric, frames if jpeg or fragments is None else None, fragments, offset_table)
    for keyword, value in (elements or {}).items():
        setattr(ds, keyword, value)
    return ds


def _set_pixels(ds, shape, photometric: str, frames, fragments, offset_table: bool) -> None:
    """The Image Pixel module: native ``frames`` when there are no ``fragments``; JPEG
    ``fragments`` encoded here from ``frames`` are flagged lossy with their ratio."""
    from pydicom.encaps import encapsulate

    n, rows, cols, spp = shape
    ds.NumberOfFrames = n
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PhotometricInterpretation = photometric
    if spp > 1:
        ds.PlanarConfiguration = 0
    if fragments is None:
        ds.LossyImageCompression = "00"
        ds.PixelData = frames.tobytes()
    else:
        if frames is not None:
            ds.LossyImageCompression = "01"
            ds.LossyImageCompressionMethod = "ISO_10918_1"
            ds.LossyImageCompressionRatio = f"{frames.size / sum(len(f) for f in fragments):.2f}"
        ds.PixelData = encapsulate(list(fragments), has_bot=offset_table)
        ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"


def dicom_bytes(ds) -> bytes:
    """The DICOM file of ``ds`` (preamble, file meta) as bytes."""
    import pydicom

    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def write_dicom(ds, path: str | Path) -> Path:
    """Write ``ds`` as a DICOM file at ``path`` (through a temporary file, replaced at the end)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    ds.save_as(tmp, enforce_file_format=True)
    os.replace(tmp, path)
    return path


__all__ = ["TissueRegion", "dicom_bytes", "frame_time", "us_multiframe_dataset", "write_dicom"]
