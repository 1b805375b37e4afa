"""Small loops for the batch tests: phantom DICOM files, single-frame DICOM series, a broken file.

Kept small (160 × 220 px, 16 frames) so that a batch of them runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from msus.samples import SampleSpec, write_sample
from msus.synth import SynthParams

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
SMALL = dict(rows=160, columns=220, mm_per_px=0.12, muscle_depth_mm=4.0, muscle_thickness_mm=8.0, fps=16.0)
TEARS = {
    "full": dict(tear="full", gap_rest_mm=3.0, gap_contraction_mm=6.0),
    "partial": dict(tear="partial", partial_fraction=0.5, gap_rest_mm=4.0, gap_contraction_mm=4.0),
    "none": dict(tear="none"),
}


def write_loop(folder: Path, name: str, tear: str = "full", *, n_frames: int = 16, seed: int = 1,
               body_part: str = "THIGH", **tags) -> Path:
    """A multi-frame phantom DICOM ``folder/name.dcm`` (extra DICOM ``tags`` set after writing)."""
    params = SynthParams(n_frames=n_frames, seed=seed, **TEARS[tear], **SMALL)
    path = write_sample(SampleSpec(name, "dicom", f"batch test loop ({tear})", params, body_part=body_part), folder)[0]
    (folder / f"{name}.truth.json").unlink()
    if tags:
        ds = pydicom.dcmread(path)
        for k, v in tags.items():
            setattr(ds, k, v)
        ds.save_as(path, enforce_file_format=True)
    return path


def split_into_series(multi: Path, folder: Path) -> list[Path]:
    """The frames of a multi-frame DICOM as single-frame US images of one new series in ``folder``."""
    src = pydicom.dcmread(multi)
    folder.mkdir(parents=True, exist_ok=True)
    series, n = generate_uid(), int(src.NumberOfFrames)
    frame_bytes = src.Rows * src.Columns * src.SamplesPerPixel
    out = []
    for k in range(n):
        ds = pydicom.dcmread(multi)
        for kw in ("NumberOfFrames", "FrameIncrementPointer", "FrameTime", "CineRate", "FrameDelay",
                   "RecommendedDisplayFrameRate"):
            if kw in ds:
                delattr(ds, kw)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = US_IMAGE_STORAGE
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series
        ds.SeriesNumber = 7
        ds.InstanceNumber = k + 1
        ds.ContentTime = f"0900{k // 16:02d}.{int(1e6 * (k % 16) / 16):06d}"
        ds.PixelData = src.PixelData[k * frame_bytes:(k + 1) * frame_bytes]
        path = folder / f"IM{(k * 7) % n:04d}"  # no extension, scrambled names: content decides
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def broken_copy(good: Path, path: Path, keep_bytes: int = 3000) -> Path:
    """The first bytes of a DICOM file: a truncated loop that cannot be decoded."""
    path.write_bytes(good.read_bytes()[:keep_bytes])
    return path
