"""msus.load on DICOM: real scanner files and generated variants of every pixel encoding."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

import msus
from msus.errors import CorruptFile, LoadError, MissingDecoder, TooLarge, UnsupportedFormat
from msus.io.dicom import cine_from_dataset

DATA = Path(__file__).resolve().parent / "data"
ACUSON = DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"
EPIQ = DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm"
YBR30 = DATA / "pydicom_examples_ybr_color_30f.dcm"
RLE = DATA / "pydicomdata_OBXXXX1A_rle_2frame_cx50.dcm"
ALOKA = DATA / "pydicomdata_gdcm-US-ALOKA-16_dualregion.dcm"
J2K = DATA / "pydicomdata_US1_J2KR_logiq700_mskpreset.dcm"
BIGEND = DATA / "pydicom_ExplVR_BigEnd.dcm"
REAL = [ACUSON, EPIQ, YBR30, RLE, ALOKA, J2K, BIGEND]


# ---- helpers: build DICOM files of any encoding ------------------------------------------------
def make_dataset(frames: np.ndarray, *, ts=ExplicitVRLittleEndian, photometric=None, pixel_data=None,
                 bits=None, signed=False, planar=0, **elements) -> Dataset:
    """A US Multi-frame dataset holding ``frames`` (N×H×W or N×H×W×3) stored as given."""
    frames = np.asarray(frames)
    n, rows, cols = frames.shape[:3]
    spp = 1 if frames.ndim == 3 else frames.shape[3]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = "Test^Person"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    ds.NumberOfFrames = n
    ba = bits or frames.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = ba, ba, ba - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PhotometricInterpretation = photometric or ("MONOCHROME2" if spp == 1 else "RGB")
    if spp == 3:
        ds.PlanarConfiguration = planar
    for k, v in elements.items():
        setattr(ds, k, v)
    if pixel_data is None:
        arr = frames
        if spp == 3 and planar == 1:
            arr = frames.transpose(0, 3, 1, 2)
        pixel_data = arr.astype(arr.dtype.newbyteorder(">" if ts == ExplicitVRBigEndian else "<")).tobytes()
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB" if (ts.is_encapsulated or ba == 8) else "OW"
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def jpeg_frames(frames: np.ndarray, subsampling="422", quality=90) -> list[bytes]:
    from msus.export.jpeg import encode_jpeg

    return [encode_jpeg(f, quality, subsampling) for f in frames]


def gradient_frames(n=4, rows=32, cols=48, rgb=False, dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1
    base = [(x * 5 + y * 3 + 17 * i) % 256 for i in range(n)]
    arr = np.stack(base).astype(float) / 255 * min(top, 4000 if dtype != np.uint8 else 255)
    arr = (arr + rng.integers(0, 3, arr.shape)).clip(0, top).astype(dtype)
    if rgb:
        arr = np.stack([arr, np.roll(arr, 5, axis=2), 255 - arr if dtype == np.uint8 else arr // 2], axis=-1)
    return arr


def reference(path: Path, index: int) -> np.ndarray:
    """pydicom's own decoding of one frame, mapped to display RGB/grey for comparison."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[index]
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
        if arr.dtype != np.uint8:
            arr = (arr >> 8).astype(np.uint8)
    return arr


# ---- real files -----------------------------------------------------------------------------------
EXPECT = {
    ACUSON.name: (65, 456, 576, 3, "YBR_FULL_422", JPEGBaseline8Bit),
    EPIQ.name: (27, 600, 800, 1, "MONOCHROME2", ExplicitVRLittleEndian),
    YBR30.name: (30, 240, 320, 3, "YBR_FULL_422", JPEGBaseline8Bit),
    RLE.name: (2, 600, 800, 3, "PALETTE COLOR", RLELossless),
    ALOKA.name: (1, 480, 640, 3, "PALETTE COLOR", "1.2.840.10008.1.2"),
    J2K.name: (1, 480, 640, 3, "YBR_RCT", JPEG2000Lossless),
    BIGEND.name: (1, 60, 80, 3, "RGB", ExplicitVRBigEndian),
}


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name[:24])
def test_real_files_geometry_and_pixels_match_pydicom(path):
    n, rows, cols, spp, pi, ts = EXPECT[path.name]
    with msus.load(path) as cine:
        assert (len(cine), cine.rows, cine.columns, cine.samples_per_pixel) == (n, rows, cols, spp)
        assert cine.kind == "dicom" and cine.photometric == pi and cine.transfer_syntax == str(ts)
        assert cine.uid and cine.uid.startswith("1.")
        for i in sorted({0, n - 1}):
            got = cine.frame(i)
            assert got.dtype == np.uint8 and got.shape == cine.shape
            ref = reference(path, i)
            # pydicom decodes JPEG with Pillow, msus with libjpeg-turbo: allow codec rounding
            tol = 2 if ts == JPEGBaseline8Bit else 0
            assert np.abs(got.astype(int) - ref.astype(int)).max() <= tol


@pytest.mark.parametrize("path", [ACUSON, YBR30], ids=["acuson", "ybr30"])
def test_ybr_jpeg_becomes_rgb_exactly_once(path):
    """B-mode ultrasound is grey: after one correct YCbCr→RGB, R≈G≈B inside the image.

    Left in YCbCr, Cb/Cr (~128) would differ from Y by tens of levels; converted twice, the
    grey levels would shift strongly.  A known pixel also matches pydicom's Pillow path.
    """
    with msus.load(path) as cine:
        f = cine.frame(len(cine) // 2).astype(int)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    bright = (r + g + b) > 90  # image content, not the black background
    assert bright.sum() > 500
    assert np.median(np.abs(r - g)[bright]) <= 3 and np.median(np.abs(g - b)[bright]) <= 3
    ref = reference(path, len(cine) // 2)
    yy, xx = np.argwhere(bright)[len(np.argwhere(bright)) // 2]
    assert np.abs(f[yy, xx] - ref[yy, xx].astype(int)).max() <= 2


def test_open_is_lazy_and_decodes_only_asked_frames(monkeypatch):
    import cv2

    calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: calls.append(1) or real(*a, **k))
    cine = msus.load(ACUSON)
    assert calls == []
    cine.frame(40)
    cine.frame(40)  # cached
    assert len(calls) == 1
    cine.close()


def test_sources_path_bytes_fileobject_agree():
    a = msus.load(str(EPIQ))
    b = msus.load(EPIQ.read_bytes())
    with open(EPIQ, "rb") as fh:
        c = msus.load(fh)
        assert np.array_equal(a.frame(5), b.frame(5)) and np.array_equal(a.frame(5), c.frame(5))
    assert b.source_name == "<bytes>" and c.source_name == EPIQ.name


def test_timing_variable_frame_time_vector():
    cine = msus.load(ACUSON)
    ds = pydicom.dcmread(ACUSON, stop_before_pixels=True)
    inc = np.array([float(v) for v in ds.FrameTimeVector])
    assert cine.timing_source == "FrameTimeVector"
    assert cine.frame_times_ms[0] == 0
    np.testing.assert_allclose(np.diff(cine.frame_times_ms), inc[1:])
    assert set(np.round(np.diff(cine.frame_times_ms), 1)) >= {33.3, 50.0}


def test_timing_frame_time_and_default():
    epiq = msus.load(EPIQ)
    assert epiq.timing_source == "FrameTime"
    np.testing.assert_allclose(epiq.frame_times_ms[:3], [0, 33.333, 66.666])
    assert abs(epiq.fps - 30) < 0.01
    rle = msus.load(RLE)
    assert rle.timing_source == "default" and rle.fps == pytest.approx(msus.cine.DEFAULT_FPS)


@pytest.mark.parametrize(
    "elements, source, step",
    [
        (dict(CineRate=25), "CineRate", 40.0),
        (dict(RecommendedDisplayFrameRate=20), "RecommendedDisplayFrameRate", 50.0),
        (dict(FrameTimeVector=[40, 40, 40]), "FrameTimeVector", 40.0),  # n-1 entries
        (dict(FrameTime=20, FrameTimeVector=[0, 50, 50, 50], FrameIncrementPointer=0x00181063), "FrameTime", 20.0),
        (dict(FrameTime=20, FrameTimeVector=[0, 50, 50, 50], FrameIncrementPointer=0x00181065), "FrameTimeVector",
         50.0),
    ],
)
def test_timing_attributes(tmp_path, elements, source, step):
    path = save(make_dataset(gradient_frames(4), **elements), tmp_path / "t.dcm")
    cine = msus.load(path)
    assert cine.timing_source == source
    np.testing.assert_allclose(np.diff(cine.frame_times_ms), step)


# ---- generated encodings ---------------------------------------------------------------------------
def test_monochrome1_is_inverted(tmp_path):
    frames = gradient_frames(2)
    cine = msus.load(save(make_dataset(frames, photometric="MONOCHROME1"), tmp_path / "m1.dcm"))
    assert np.array_equal(cine.frame(1), 255 - frames[1])


def test_16bit_grey_uses_window_else_first_frame_range(tmp_path):
    frames = gradient_frames(3, dtype=np.uint16)
    frames[0, 0, 0], frames[0, 0, 1] = 100, 3100
    cine = msus.load(save(make_dataset(frames, bits=16, WindowCenter=1600, WindowWidth=3001), tmp_path / "w.dcm"))
    f = cine.frame(0)
    assert f[0, 0] == 0 and f[0, 1] == 255
    cine = msus.load(save(make_dataset(frames, bits=16), tmp_path / "mm.dcm"))
    lo, hi = frames[0].min(), frames[0].max()
    expect = np.clip((frames[2].astype(float) - lo) * 255 / (hi - lo) + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(cine.frame(2).astype(int) - expect).max() <= 1


def test_16bit_big_endian_and_signed(tmp_path):
    frames = gradient_frames(2, dtype=np.uint16)
    a = msus.load(save(make_dataset(frames, ts=ExplicitVRBigEndian, bits=16), tmp_path / "be.dcm"))
    b = msus.load(save(make_dataset(frames, bits=16), tmp_path / "le.dcm"))
    assert np.array_equal(a.frame(1), b.frame(1))
    s = (frames.astype(np.int32) - 2000).astype(np.int16)
    c = msus.load(save(make_dataset(s, bits=16, signed=True), tmp_path / "s.dcm"))
    assert np.array_equal(c.frame(1), b.frame(1))


def test_planar_configuration_and_uncompressed_ybr(tmp_path):
    rgb = gradient_frames(2, rgb=True)
    a = msus.load(save(make_dataset(rgb, planar=1), tmp_path / "p1.dcm"))
    assert np.array_equal(a.frame(1), rgb[1])
    from pydicom.pixels import convert_color_space

    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    b = msus.load(save(make_dataset(ybr, photometric="YBR_FULL"), tmp_path / "ybr.dcm"))
    assert np.abs(b.frame(1).astype(int) - rgb[1]).max() <= 2
    # YBR_FULL_422 uncompressed: 2 bytes per pixel (Y Y Cb Cr per pair of pixels)
    y = ybr[..., 0].reshape(2, 32, 24, 2)
    cb = ybr[..., 1].reshape(2, 32, 24, 2).mean(-1).round().astype(np.uint8)
    cr = ybr[..., 2].reshape(2, 32, 24, 2).mean(-1).round().astype(np.uint8)
    packed = np.stack([y[..., 0], y[..., 1], cb, cr], axis=-1).tobytes()
    c = msus.load(save(make_dataset(ybr, photometric="YBR_FULL_422", pixel_data=packed), tmp_path / "422.dcm"))
    assert c.frame(1).shape == (32, 48, 3)
    assert np.abs(c.frame(1).astype(int) - rgb[1]).mean() < 6


def test_rle_jpegls_j2k_multiframe(tmp_path):
    frames = gradient_frames(3, rgb=True)
    for ts in (RLELossless, JPEGLSLossless, JPEG2000Lossless):
        ds = make_dataset(frames)
        ds.compress(ts)
        cine = msus.load(save(ds, tmp_path / f"{ts.name[:8]}.dcm"))
        assert cine.transfer_syntax == str(ts)
        for i in (2, 0):
            assert np.array_equal(cine.frame(i), frames[i]), ts.name


def _jpeg_ds(frames, pixel_data, **kw):
    ds = make_dataset(frames, ts=JPEGBaseline8Bit, photometric="YBR_FULL_422", pixel_data=pixel_data, **kw)
    return ds


@pytest.mark.parametrize("layout", ["one_fragment", "bot_two_fragments", "no_bot_two_fragments", "extended"])
def test_jpeg_frame_index_layouts(tmp_path, layout):
    frames = gradient_frames(5, rows=40, cols=64, rgb=True)
    jpgs = jpeg_frames(frames)
    if layout == "one_fragment":
        pd = encapsulate(jpgs)
    elif layout == "bot_two_fragments":
        pd = encapsulate(jpgs, fragments_per_frame=2, has_bot=True)
    elif layout == "no_bot_two_fragments":
        pd = encapsulate(jpgs, fragments_per_frame=2, has_bot=False)
    else:
        pd, eot, eotl = encapsulate_extended(jpgs)
    ds = _jpeg_ds(frames, pd)
    if layout == "extended":
        ds.ExtendedOffsetTable = eot
        ds.ExtendedOffsetTableLengths = eotl
    path = save(ds, tmp_path / "j.dcm")
    cine = msus.load(path)
    ref = pydicom.dcmread(path).pixel_array
    for i in (4, 1):
        assert np.abs(cine.frame(i).astype(int) - ref[i].astype(int)).max() <= 2
        # lossy 4:2:2 JPEG of saturated colours: small errors; a wrong colour conversion is > 40
        assert np.abs(cine.frame(i).astype(int) - frames[i].astype(int)).mean() < 10


def test_grey_jpeg_baseline(tmp_path):
    frames = gradient_frames(3)
    ds = make_dataset(frames, ts=JPEGBaseline8Bit, pixel_data=encapsulate(jpeg_frames(frames)))
    cine = msus.load(save(ds, tmp_path / "g.dcm"))
    assert cine.frame(2).shape == (32, 48)
    assert np.abs(cine.frame(2).astype(int) - frames[2]).mean() < 3


def test_missing_decoder_names_package(tmp_path, monkeypatch):
    ds = make_dataset(gradient_frames(2, rgb=True))
    ds.compress(JPEG2000Lossless)
    path = save(ds, tmp_path / "j2k.dcm")
    from pydicom.pixels.decoders.base import Decoder

    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    with pytest.raises(MissingDecoder, match="pip install pylibjpeg-openjpeg"):
        msus.load(path)


def test_cine_from_dataset_with_frame_fetcher():
    """The DICOMweb path: header already read, frames fetched one by one as stored bytes."""
    from pydicom.encaps import generate_frames

    raw = pydicom.dcmread(ACUSON)
    stored = list(generate_frames(raw.PixelData, number_of_frames=65))
    header = pydicom.dcmread(ACUSON, stop_before_pixels=True)
    fetched = []
    cine = cine_from_dataset(header, lambda i: fetched.append(i) or stored[i], source_name="remote")
    assert len(cine) == 65 and fetched == []
    assert np.array_equal(cine.frame(7), msus.load(ACUSON).frame(7))
    assert fetched == [7]
    assert cine.calibration.source == "us_region"


# ---- bad input ------------------------------------------------------------------------------------
def test_bad_inputs_give_one_line_errors(tmp_path):
    cases = {
        "empty": b"",
        "text": b"hello, this is not an image at all " * 20,
        "truncated_header": EPIQ.read_bytes()[:1000],
        "short_pixels": EPIQ.read_bytes()[:6_000_000],
        "truncated_jpeg": ACUSON.read_bytes()[:2_000_000],
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(LoadError) as ei:
            msus.load(p)
        assert "\n" not in str(ei.value) and str(ei.value), name
    with pytest.raises(CorruptFile, match="header needs"):
        msus.load(tmp_path / "short_pixels")
    with pytest.raises(CorruptFile, match="empty"):
        msus.load(tmp_path / "empty")


def test_no_pixel_data_and_zip_and_missing(tmp_path):
    ds = pydicom.dcmread(EPIQ, stop_before_pixels=True)
    ds.save_as(tmp_path / "nopix.dcm", enforce_file_format=True)
    with pytest.raises(UnsupportedFormat, match="no pixel data"):
        msus.load(tmp_path / "nopix.dcm")
    with pytest.raises(UnsupportedFormat, match="zip"):
        msus.load(DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.zip")
    with pytest.raises(LoadError, match="no such file"):
        msus.load(tmp_path / "nothing-here.dcm")
    with pytest.raises(UnsupportedFormat, match="binary"):
        with open(tmp_path / "nopix.dcm", "r", encoding="latin-1") as fh:
            msus.load(fh)


def test_absurd_dimensions_refused_before_allocating(tmp_path):
    ds = make_dataset(gradient_frames(1))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 1
    with pytest.raises(TooLarge):
        msus.load(save(ds, tmp_path / "huge.dcm"))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 1000, 1000, 150_000
    with pytest.raises(TooLarge):
        msus.load(save(ds, tmp_path / "long.dcm"))


def test_dicom_without_preamble(tmp_path):
    from pydicom.uid import ImplicitVRLittleEndian

    ds = make_dataset(gradient_frames(2), ts=ImplicitVRLittleEndian)
    del ds.file_meta
    b = io.BytesIO()
    ds.save_as(b, enforce_file_format=False, implicit_vr=True, little_endian=True)
    raw = b.getvalue()
    assert raw[128:132] != b"DICM"
    cine = msus.load(raw)
    assert np.array_equal(cine.frame(1), gradient_frames(2)[1])


# ---- folders ----------------------------------------------------------------------------------------
def test_folder_of_single_frames_one_series(tmp_path):
    frames = gradient_frames(4)
    series = generate_uid()
    for k in range(4):  # written in scrambled order, InstanceNumber gives the order
        ds = make_dataset(frames[k:k + 1], SeriesInstanceUID=series, InstanceNumber=k + 1,
                          ContentTime=f"1000{k:02d}.5", SeriesNumber=3)
        save(ds, tmp_path / f"z{(7 * k) % 4}.dcm")
    (tmp_path / "README.txt").write_text("not an image")
    cine = msus.load(tmp_path)
    assert len(cine) == 4 and cine.kind == "dicom"
    assert all(np.array_equal(cine.frame(i), frames[i]) for i in range(4))
    assert cine.timing_source == "AcquisitionTime"
    np.testing.assert_allclose(cine.frame_times_ms, [0, 1000, 2000, 3000])


def test_folder_with_mixed_series_refused_or_picked(tmp_path):
    frames = gradient_frames(3)
    for k in range(3):
        s = "1.2.3.4" if k < 2 else "1.2.3.5"
        save(make_dataset(frames[k:k + 1], SeriesInstanceUID=s, SeriesNumber=1 if k < 2 else 2, InstanceNumber=k),
             tmp_path / f"f{k}.dcm")
    with pytest.raises(UnsupportedFormat, match="mixes 2 series"):
        msus.load(tmp_path)
    assert len(msus.load(tmp_path, series=1)) == 2
    assert len(msus.load(tmp_path, series="1.2.3.5")) == 1


# ---- metadata ---------------------------------------------------------------------------------------
def test_meta_flags_phi_and_copes_with_stray_delimiter():
    from msus.meta import dicom_meta, without_phi

    cine = msus.load(ACUSON)
    assert "PatientName" in cine.meta["phi_keys"]
    safe = without_phi(cine.meta)
    assert "PatientName" not in safe and "StudyDate" not in safe and "Manufacturer" in safe
    full = pydicom.dcmread(ACUSON)  # the whole file: pydicom raises on iterating it
    with pytest.raises(Exception):
        list(full)
    meta = dicom_meta(full)
    assert "(FFFE,E0DD)" in meta["unreadable_elements"]
    assert meta["Rows"] == 456 and "PatientName" in meta["phi_keys"]


# ---- pydicom's own test files (shipped in the pydicom wheel): odd encodings scanners write ----------
PYDICOM_FILES = [
    "SC_rgb_small_odd_big_endian.dcm",  # 8-bit samples in a big-endian OW value (byte-swapped words)
    "SC_rgb_jpeg.dcm",  # says explicit VR, pixel data written implicit
    "image_dfl.dcm",  # deflated transfer syntax
    "SC_jpeg_no_color_transform.dcm",  # RGB JPEG without colour transform (pydicom path)
    "SC_jpeg_no_color_transform_2.dcm",  # RGB JPEG, component ids 'RGB' (libjpeg-turbo path)
    "SC_rgb_dcmtk_+eb+cr.dcm",  # RGB JPEG from dcmtk
    "SC_rgb_jpeg_app14_dcmd.dcm",  # Adobe APP14 marker
    "SC_rgb_dcmtk_+eb+cy+np.dcm",  # YBR_FULL_422 JPEG from dcmtk
    "SC_rgb_jpeg_lossy_gdcm.dcm",  # YBR_FULL JPEG
    "SC_ybr_full_422_uncompressed.dcm",
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless (GDCM)
    "JPEGLSNearLossless_08.dcm",
    "SC_rgb_rle_2frame.dcm",
    "examples_palette.dcm",
    "liver_expb_1frame.dcm",
]


@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_pydicom_test_files_match_pydicom(name):
    from pydicom.data import get_testdata_file

    path = Path(get_testdata_file(name))
    cine = msus.load(path)
    i = len(cine) - 1
    assert np.array_equal(cine.frame(i), reference(path, i))


def test_12bit_jpeg_extended_decodes_with_imagecodecs():
    """Once refused with MissingDecoder (no permissive decoder); imagecodecs' libjpeg-turbo 3 reads it."""
    from pydicom.data import get_testdata_file

    with msus.load(get_testdata_file("JPGExtended.dcm")) as c:
        f = c.frame(0)
        assert f.dtype == np.uint8 and f.shape == (c.rows, c.columns) and f.max() > f.min()


def test_12bit_jpeg_without_imagecodecs_names_the_package(monkeypatch):
    from pydicom.data import get_testdata_file

    import msus.io.dicom.decode as decode

    monkeypatch.setattr(decode, "imagecodecs_jpeg", lambda: None)
    with pytest.raises(MissingDecoder, match="12-bit|imagecodecs"):
        msus.load(get_testdata_file("JPGExtended.dcm")).frame(0)


def test_long_loop_opens_without_decoding_or_holding_frames(tmp_path, monkeypatch):
    import tracemalloc

    import cv2

    tiny = jpeg_frames(gradient_frames(3, rows=16, cols=16, rgb=True))
    n = 2000
    ds = _jpeg_ds(np.zeros((n, 16, 16, 3), np.uint8), encapsulate([tiny[i % 3] for i in range(n)], has_bot=False))
    path = save(ds, tmp_path / "long.dcm")
    calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: calls.append(1) or real(*a, **k))
    cine = msus.load(path)
    assert len(cine) == n and calls == []
    cine.frame(1999)
    assert len(calls) == 1
    cine.close()
    # an uncompressed 13 MB loop opens without reading its pixels into memory
    tracemalloc.start()
    cine = msus.load(EPIQ)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 * 2**20, peak
    cine.close()
