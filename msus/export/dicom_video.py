"""A loop as a DICOM video: H.264 (MPEG-4 AVC High Profile / Level 4.1) in one encapsulated stream.

The compact way back to the PACS: a 300-frame loop of JPEG frames becomes a few MB.  The header
comes from the source when it is DICOM — patient, study and series (StudyInstanceUID,
SeriesInstanceUID, FrameOfReferenceUID kept), the Sequence of Ultrasound Regions, every other
public element — with the pixel module rewritten for the video: YBR_PARTIAL_420, 8 bits, the frame
count, FrameTime (or FrameTimeVector when the intervals vary) and lossy-compression attributes.
Lossy re-encoding makes a new image, so the SOP Instance UID is new and SourceImageSequence points
at the original.  A non-DICOM source (a video, images) gets a fresh US Multi-frame header.  The
source file is never modified.
"""

from __future__ import annotations

import io
import warnings as _warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

from msus.errors import ExportError
from msus.export.atomic import write_atomic

H264_SYNTAX = "1.2.840.10008.1.2.4.102"  # MPEG-4 AVC/H.264 High Profile / Level 4.1
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
#: Multi-frame classes that may hold YBR video (US, true-colour SC, video endoscopic/microscopic/photographic).
_COLOUR_MULTIFRAME = {US_MULTIFRAME, "1.2.840.10008.5.1.4.1.1.7.4", "1.2.840.10008.5.1.4.1.1.77.1.1.1",
                      "1.2.840.10008.5.1.4.1.1.77.1.2.1", "1.2.840.10008.5.1.4.1.1.77.1.4.1"}
#: x264 constant rate factor: visually lossless on B-mode speckle (a few grey levels).
DICOM_VIDEO_CRF = 16
MAX_SIZE = (1088, 1920)  # Level 4.1 frame size (rows, columns)

# Elements that describe the stored pixels and must not survive re-encoding.
_PIXEL_KEYWORDS = (
    "PixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths", "FloatPixelData",
    "DoubleFloatPixelData", "PlanarConfiguration", "PixelPaddingValue", "SmallestImagePixelValue",
    "LargestImagePixelValue", "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData", "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData", "SegmentedBluePaletteColorLookupTableData",
    "PaletteColorLookupTableUID", "WindowCenter", "WindowWidth", "VOILUTSequence", "ModalityLUTSequence",
    "RescaleIntercept", "RescaleSlope", "RescaleType", "FrameTimeVector", "FrameTime", "FrameIncrementPointer",
    "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
)


def encode_h264(cine, *, crf: int = DICOM_VIDEO_CRF) -> tuple[bytes, int, int]:
    """The loop as an H.264 Annex B elementary stream; returns ``(stream, rows, columns)``.

    Odd sizes are padded by one black row/column (4:2:0 needs even sizes).
    """
    import av

    rows, cols = cine.rows + cine.rows % 2, cine.columns + cine.columns % 2
    if rows > MAX_SIZE[0] or cols > MAX_SIZE[1]:
        raise ExportError(f"a {cine.columns}×{cine.rows} loop is larger than H.264 Level 4.1 allows (1920×1080)")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="h264") as container:
        stream = container.add_stream("libx264", rate=max(1, int(round(cine.fps))))
        stream.width, stream.height, stream.pix_fmt = cols, rows, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": str(int(crf)), "preset": "medium", "profile": "high", "level": "4.1",
                          "x264-params": "keyint=30:min-keyint=1:open-gop=0:log-level=none"}
        for i in range(cine.n_frames):
            f = cine.frame(i)
            rgb = f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2)
            if rgb.shape[:2] != (rows, cols):
                rgb = np.pad(rgb, ((0, rows - rgb.shape[0]), (0, cols - rgb.shape[1]), (0, 0)))
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            vf.pts = int(round(float(cine.frame_times_ms[i])))
            for pkt in stream.encode(vf):
                container.mux(pkt)
        for pkt in stream.encode():
            container.mux(pkt)
    return buf.getvalue(), rows, cols


def video_dataset(cine, source: Path | None, stream: bytes, rows: int, cols: int):
    """The DICOM dataset for an encoded stream (header from ``source`` when it is DICOM)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID, generate_uid

    src = None
    if cine.kind == "dicom" and source is not None and source.is_file():
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            src = pydicom.dcmread(source, stop_before_pixels=True, force=True)
    ds = Dataset()
    if src is not None:
        for elem in src:
            if elem.tag.is_private or elem.keyword in _PIXEL_KEYWORDS:
                continue
            ds.add(elem)
        if "SOPInstanceUID" in src:
            ref = Dataset()
            ref.ReferencedSOPClassUID = src.get("SOPClassUID", US_MULTIFRAME)
            ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
            ds.SourceImageSequence = [ref]
    else:
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "US", 1, 1
        ds.PatientName, ds.PatientID = "", ""
    if str(ds.get("SOPClassUID", "")) not in _COLOUR_MULTIFRAME:
        ds.SOPClassUID = US_MULTIFRAME  # a single-frame or grey-only class cannot hold a colour loop
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.DerivationDescription = "re-encoded as H.264 (MPEG-4 AVC High Profile / Level 4.1) by msus"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 3
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "YBR_PARTIAL_420", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = cine.n_frames
    _timing(ds, cine)
    raw = cine.n_frames * cine.rows * cine.columns * cine.samples_per_pixel
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_14496_10"
    ds.LossyImageCompressionRatio = f"{raw / max(len(stream), 1):.2f}"[:16]
    ds.PixelData = encapsulate([stream], has_bot=False)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(H264_SYNTAX)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _timing(ds, cine) -> None:
    t = np.asarray(cine.frame_times_ms, dtype=float)
    d = np.diff(t)
    if cine.n_frames < 2 or np.allclose(d, d.mean(), atol=0.01):
        ds.FrameTime = f"{(d.mean() if d.size else 1000.0 / cine.fps):.6g}"
        ds.FrameIncrementPointer = 0x00181063
    else:
        ds.FrameTimeVector = [f"{v:.6g}" for v in np.concatenate([[0.0], d])]
        ds.FrameIncrementPointer = 0x00181065
    ds.CineRate = int(round(cine.fps))


def write_dicom_video(cine, source: Path | None, out) -> Path:
    """Write ``cine`` as an H.264 DICOM at ``out`` (whole or not at all)."""
    stream, rows, cols = encode_h264(cine)
    ds = video_dataset(cine, Path(source) if source is not None else None, stream, rows, cols)
    return write_atomic(out, lambda tmp: ds.save_as(tmp, enforce_file_format=True))
