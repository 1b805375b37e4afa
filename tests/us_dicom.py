"""The one DICOM writer of the test simulators (``foreign_sim.py``, ``physics_set.py``): a
calibrated multi-frame US image with one 2D tissue region (Sequence of Ultrasound Regions)."""

from __future__ import annotations

import io

import cv2
import numpy as np


def us_multiframe_bytes(frames: np.ndarray, fps: float, box: tuple[int, int, int, int], delta_x_cm: float,
                        delta_y_cm: float, *, jpeg: bool = True, patient: str = "Phantom^Test") -> bytes:
    """Encode ``frames`` (N×H×W grey or N×H×W×3 RGB uint8) as an Ultrasound Multi-frame Image.

    ``box`` = (x0, y0, x1, y1), inclusive px bounds of the one 2D tissue region (spatial format 1,
    data type 1, units cm) whose PhysicalDeltaX/Y are ``delta_x_cm``/``delta_y_cm``; FrameTime is
    1000/``fps`` ms.  JPEG baseline (YBR_FULL_422) when ``jpeg``, else native RGB or MONOCHROME2.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    grey = frames.ndim == 3
    if grey and jpeg:
        frames = np.repeat(frames[..., None], 3, axis=3)
        grey = False
    n, H, W = frames.shape[:3]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "US"
    ds.PatientName = patient
    ds.Rows, ds.Columns, ds.NumberOfFrames = H, W, n
    ds.SamplesPerPixel = 1 if grey else 3
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    if not grey:
        ds.PlanarConfiguration = 0
    ds.FrameIncrementPointer = 0x00181063
    ds.FrameTime = f"{1000.0 / fps:.3f}"
    item = Dataset()
    item.RegionSpatialFormat, item.RegionDataType, item.RegionFlags = 1, 1, 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = int(box[0]), int(box[1])
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = int(box[2]), int(box[3])
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX, item.PhysicalDeltaY = float(delta_x_cm), float(delta_y_cm)
    ds.SequenceOfUltrasoundRegions = [item]
    if jpeg:
        ds.PhotometricInterpretation = "YBR_FULL_422"
        enc = [cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for f in frames]
        ds.PixelData = encapsulate(enc)
        ds["PixelData"].VR = "OB"
    else:
        ds.PhotometricInterpretation = "MONOCHROME2" if grey else "RGB"
        ds.PixelData = frames.tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
