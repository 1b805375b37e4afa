"""Mutated real files into the loader: only msus.errors come out, never a raw exception.

Mutations: truncation, byte flips (header and pixel data), and header values rewritten through
pydicom (dimensions, frame counts, bit depths, photometric, transfer syntax).  A frame is decoded
too, so decoder failures are covered.
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import msus
from msus.errors import MsusError

DATA = Path(__file__).resolve().parent / "data"
FILES = {
    name: (DATA / name).read_bytes()
    for name in (
        "pydicom_examples_ybr_color_30f.dcm",  # JPEG baseline, 30 frames
        "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm",  # RLE palette
        "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm",  # JPEG 2000
        "pydicom_ExplVR_BigEnd.dcm",  # big endian
        "p6_isokinetic120_01_push_02.mp4",  # H.264 video
        "gastroc_jumping_frames/gastroc_jumping_048.png",
    )
}
NAMES = sorted(FILES)
DICOM_NAMES = [n for n in NAMES if n.endswith(".dcm")]
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def exercise(data: bytes) -> None:
    try:
        cine = msus.load(data)
    except MsusError as exc:
        assert "\n" not in str(exc)
        return
    try:
        cine.frame(0)
        cine.frame(len(cine) - 1)
        _ = cine.fps, cine.calibration.to_dict(), cine.meta
    except MsusError as exc:
        assert "\n" not in str(exc)
    finally:
        cine.close()


@SETTINGS
@given(name=st.sampled_from(NAMES), cut=st.floats(0, 1))
def test_truncated(name, cut):
    data = FILES[name]
    exercise(data[: int(len(data) * cut)])


@SETTINGS
@given(name=st.sampled_from(NAMES), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1,
                                                   max_size=12), header_only=st.booleans())
def test_flipped_bytes(name, flips, header_only):
    data = bytearray(FILES[name])
    span = min(len(data), 4000) if header_only else len(data)
    for where, value in flips:
        data[int(where * (span - 1))] = value
    exercise(bytes(data))


HEADER_EDITS = {
    "Rows": st.integers(-5, 70000),
    "Columns": st.integers(-5, 70000),
    "NumberOfFrames": st.integers(-3, 300000),
    "BitsAllocated": st.sampled_from([0, 1, 7, 8, 12, 16, 32, 64]),
    "BitsStored": st.integers(0, 40),
    "SamplesPerPixel": st.integers(0, 5),
    "PixelRepresentation": st.integers(0, 3),
    "PlanarConfiguration": st.integers(0, 2),
    "PhotometricInterpretation": st.sampled_from(["MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422",
                                                  "YBR_RCT", "HSV", ""]),
    "FrameTime": st.sampled_from(["0", "-5", "nan", "1e308", "33.3"]),
}


@SETTINGS
@given(name=st.sampled_from(DICOM_NAMES), edits=st.dictionaries(st.sampled_from(sorted(HEADER_EDITS)), st.none(),
                                                          min_size=1, max_size=3), data=st.data(),
       ts=st.sampled_from([None, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.80",
                           "1.2.840.10008.1.2.5", "1.2.3.4"]))
def test_header_values(name, edits, data, ts):
    ds = pydicom.dcmread(io.BytesIO(FILES[name]))
    for kw in edits:
        value = data.draw(HEADER_EDITS[kw], label=kw)
        try:
            setattr(ds, kw, value)
        except Exception:
            continue
    if ts:
        ds.file_meta.TransferSyntaxUID = ts
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=False)
    except Exception:
        return  # pydicom refuses to write this combination: nothing to load
    exercise(out.getvalue())


def test_fuzz_inputs_really_load_unmutated():
    for name in NAMES:
        exercise(FILES[name])
        cine = msus.load(FILES[name])
        assert len(cine) >= 1 and cine.frame(0).dtype.name == "uint8"
