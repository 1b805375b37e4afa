"""The annotated loop as a new series of its study: a Multi-frame True Color Secondary Capture.

JPEG baseline (4:2:2, lossy, flagged ``LossyImageCompression=01``), annotations burned in
(``BurnedInAnnotation=YES``), frame timing kept in ``FrameTimeVector`` (ms), patient and study
attributes copied from the source loop, a new SeriesInstanceUID.  Ready to send to the archive
(``msus.pacs.outbox.send(ds, archive, kind="video")``).  Ultrasound regions are not copied: the
annotated frames are a derived picture; measure on the source loop.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Iterable, Sequence

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, MultiFrameTrueColorSecondaryCaptureImageStorage, generate_uid

from msus.errors import ExportError
from msus.export.video import annotated_frames, frame_range

#: Patient and study attributes copied from the source loop so the new series joins its study.
STUDY_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
)
#: Type 2 attributes: present, empty when the source loop does not carry them.
_EMPTY_IF_MISSING = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                     "StudyID", "AccessionNumber", "ReferringPhysicianName")


def _jpeg_frames(frames: Iterable[np.ndarray], quality: int) -> tuple[list[bytes], tuple[int, ...]]:
    """Each RGB (or grey) uint8 frame as JPEG baseline 4:2:2 bytes; (encoded, shape of the frames)."""
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
        Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=int(quality), subsampling=1)
        encoded.append(buf.getvalue())
    if not encoded:
        raise ExportError("no frames to store")
    return encoded, shape


def _study_of(ds: Dataset, reference) -> None:
    """Copy the source loop's patient and study attributes (a Dataset or a Cine ``meta`` dict)."""
    def ref(keyword):
        if isinstance(reference, Dataset):
            return reference.get(keyword)
        return (reference or {}).get(keyword)

    if not ref("StudyInstanceUID"):
        raise ExportError("the source loop has no StudyInstanceUID: no study to add a series to")
    for kw in STUDY_KEYWORDS:
        v = ref(kw)
        if v not in (None, ""):
            setattr(ds, kw, v)
    for kw in _EMPTY_IF_MISSING:
        if kw not in ds:
            setattr(ds, kw, "")
    ds.Modality = str(ref("Modality") or "US")


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
    encoded, shape = _jpeg_frames(frames, jpeg_quality)
    times = [float(t) for t in frame_times_ms]
    if len(times) != len(encoded):
        raise ExportError(f"{len(times)} frame times for {len(encoded)} frames")
    ds = Dataset()
    _study_of(ds, reference)
    sop = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = MultiFrameTrueColorSecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    now = datetime.now()
    ds.SOPClassUID = MultiFrameTrueColorSecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = int(series_number)
    ds.InstanceNumber = 1
    ds.SeriesDescription = series_description[:64]
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


def annotated_loop_series(cine, data, *, start: int | None = None, stop: int | None = None) -> Dataset:
    """The loop's frames ``start``..``stop`` (0-based, stop exclusive; None: the ends) annotated with
    ``data`` (:class:`msus.export.ExportData`) as a new series of its study (the Cine's ``meta``).

    Frames are annotated and JPEG-encoded one at a time.
    """
    rng = frame_range(cine, start, stop)
    times = [float(cine.frame_times_ms[i]) for i in rng]
    frames = (f for _i, _t, f in annotated_frames(cine, data, rng))
    return annotated_loop_dataset(frames, times, cine.meta)
