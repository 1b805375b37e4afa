"""Every container and codec a scanner writes, generated from the bundled samples.

DICOM video (MPEG-2, H.264, HEVC: one encapsulated stream for all frames), video containers that
only FFmpeg's own probe recognises (ASF/WMV, MPEG-TS/PS, FLV, MXF), 12-bit and 16-bit lossless JPEG
(imagecodecs), the DICOM-video export, and a region one past the last column.
"""

from __future__ import annotations

import io
import json

import av
import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID

import msus
from msus.calibration import calibration_from_dataset
from msus.cli import main
from msus.errors import LoadError, UnsupportedFormat

SAMPLE = "phantom_full_tear.dcm"
MPEG2_OPTS = {"g": "10", "bf": "2"}


@pytest.fixture(scope="module")
def source(samples_dir):
    """The sample's decoded frames (grey), its header and its Cine facts."""
    path = samples_dir / SAMPLE
    with msus.load(path) as c:
        frames = np.stack([c.frame(i) for i in range(len(c))])
        facts = dict(times=c.frame_times_ms.copy(), regions=c.calibration.regions, cal_source=c.calibration.source,
                     d=c.calibration.measure((50, 60), (250, 140)).distance_mm)
    return path, frames, facts


def encode(frames: np.ndarray, codec: str, fmt: str, *, fps=16, opts=None, bit_rate=None) -> bytes:
    """Frames (grey or RGB) → a video stream/container in memory (PyAV)."""
    h, w = frames.shape[1:3]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if bit_rate or codec == "mpeg2video":  # MPEG-2's default rate is far below scanner quality
            s.codec_context.bit_rate = bit_rate or 20_000_000
        s.options = dict(opts or {})
        for f in frames:
            rgb = f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2)
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return buf.getvalue()


def dicom_video(src_path, stream: bytes, ts: str, out, *, fragment=None):
    """The sample's header with its pixel data replaced by one encapsulated video stream."""
    ds = pydicom.dcmread(src_path)
    ds.file_meta.TransferSyntaxUID = UID(ts)
    ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "YBR_PARTIAL_420", 3, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    parts = [stream] if not fragment else [stream[i:i + fragment] for i in range(0, len(stream), fragment)]
    ds.PixelData = encapsulate(parts, has_bot=False)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(out, enforce_file_format=True)
    return out


def luma(f: np.ndarray) -> np.ndarray:
    from msus.cine import to_grey

    return to_grey(f)


def assert_close(got: np.ndarray, want: np.ndarray, mean=3.0, p99=16):
    d = np.abs(luma(got).astype(int) - luma(want).astype(int))
    assert d.mean() <= mean and np.percentile(d, 99) <= p99, (d.mean(), np.percentile(d, 99))


def check_every_frame(cine, frames, seed=0):
    """Every frame within a few grey levels of the source in order, and identical by random access."""
    in_order = [cine.frame(i) for i in range(len(cine))]
    for got, want in zip(in_order, frames):
        assert_close(got, want)
    order = np.random.default_rng(seed).permutation(len(cine))
    with msus.load(cine_path(cine), cache_frames=1) as fresh:
        for i in order:
            assert np.array_equal(fresh.frame(int(i)), in_order[i]), int(i)


_PATHS: dict[int, object] = {}


def cine_path(cine):
    return _PATHS[id(cine)]


def opened(path, **kw):
    c = msus.load(path, **kw)
    _PATHS[id(c)] = path
    return c


# ---- DICOM video ------------------------------------------------------------------------------
VIDEO_CASES = [
    ("h264", "libx264", "h264", "1.2.840.10008.1.2.4.102", {"g": "10", "bf": "2"}, None),
    ("h264_fragments", "libx264", "h264", "1.2.840.10008.1.2.4.102.1", {"g": "10", "bf": "2"}, 7000),
    ("h264_ts", "libx264", "mpegts", "1.2.840.10008.1.2.4.103", {"g": "10", "bf": "2"}, None),
    ("hevc", "libx265", "hevc", "1.2.840.10008.1.2.4.107", {"x265-params": "log-level=none:keyint=10"}, None),
    ("mpeg2", "mpeg2video", "mpeg2video", "1.2.840.10008.1.2.4.100", MPEG2_OPTS, None),
    ("mpeg2_ps", "mpeg2video", "mpeg", "1.2.840.10008.1.2.4.101", MPEG2_OPTS, None),
]


@pytest.mark.parametrize("name, codec, fmt, ts, opts, fragment", VIDEO_CASES, ids=[c[0] for c in VIDEO_CASES])
def test_dicom_video_syntaxes(tmp_path, source, name, codec, fmt, ts, opts, fragment):
    path, frames, facts = source
    stream = encode(frames, codec, fmt, opts=opts)
    f = dicom_video(path, stream, ts, tmp_path / f"{name}.dcm", fragment=fragment)
    cine = opened(f)
    assert cine.kind == "dicom" and cine.transfer_syntax == ts and not cine.warnings
    assert len(cine) == len(frames) and cine.shape == frames.shape[1:] + (3,)
    assert cine.timing_source == "FrameTime" and np.allclose(cine.frame_times_ms, facts["times"])
    assert cine.calibration.source == facts["cal_source"] == "us_region"
    assert cine.calibration.regions == facts["regions"]
    assert cine.calibration.measure((50, 60), (250, 140)).distance_mm == pytest.approx(facts["d"])
    assert cine.meta["codec"] == codec.replace("libx264", "h264").replace("libx265", "hevc")
    check_every_frame(cine, frames)
    for i in (0, 7, len(cine) - 1):  # the luma-only path agrees with the colour frame's luma
        assert np.abs(cine.frame_grey(i).astype(int) - luma(cine.frame(i)).astype(int)).max() <= 2
    cine.close()


def test_info_reports_transfer_syntax_and_codec(tmp_path, source, capsys):
    path, frames, _ = source
    f = dicom_video(path, encode(frames[:12], "libx264", "h264"), "1.2.840.10008.1.2.4.102", tmp_path / "v.dcm")
    assert main(["info", str(f), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["transfer_syntax"] == "1.2.840.10008.1.2.4.102" and d["codec"] == "h264"
    assert d["photometric"] == "YBR_PARTIAL_420" and d["frames"] == 12
    assert d["warnings"] == ["the header says 40 frames but the video stream holds 12; the stream's count is used"]
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["codec"] == "uncompressed"


def test_damaged_dicom_video_is_one_line_error(tmp_path, source):
    path, frames, _ = source
    f = dicom_video(path, b"\x00\x01garbage, not a video stream" * 50, "1.2.840.10008.1.2.4.102", tmp_path / "x.dcm")
    with pytest.raises(LoadError) as e:
        msus.load(f)
    assert "\n" not in str(e.value) and "x.dcm" in str(e.value)


# ---- video containers FFmpeg alone recognises -------------------------------------------------
CONTAINERS = [
    ("asf", "wmv2", {"g": "12"}, 8_000_000),
    ("mpegts", "mpeg2video", MPEG2_OPTS, None),
    ("mpeg", "mpeg2video", MPEG2_OPTS, None),
    ("flv", "flv", {"g": "12"}, 8_000_000),
    ("mxf", "mpeg2video", MPEG2_OPTS, None),
    ("h264", "libx264", {"g": "12", "bf": "3"}, None),
]


@pytest.mark.parametrize("fmt, codec, opts, rate", CONTAINERS, ids=[f"{c[0]}-{c[1]}" for c in CONTAINERS])
def test_every_ffmpeg_container_opens_frame_exact(tmp_path, source, fmt, codec, opts, rate):
    _, frames, _ = source
    f = tmp_path / "loop.bin"  # the name says nothing: content decides
    f.write_bytes(encode(frames, codec, fmt, fps=25, opts=opts, bit_rate=rate))
    with av.open(str(f)) as c:
        ref = [fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)]
    cine = opened(f)
    assert cine.kind == "video" and len(cine) == len(ref) == len(frames)
    assert cine.fps == pytest.approx(25, rel=0.02)
    for i, want in enumerate(ref):
        assert np.array_equal(cine.frame(i), want), i
        assert_close(cine.frame(i), frames[i], mean=3.5)
    check_every_frame(cine, ref, seed=1)
    cine.close()


def test_ffmpeg_cannot_read_it_either(tmp_path):
    text = tmp_path / "scan.dcm"
    text.write_text("Patient report, not an image.\n" * 80)
    with pytest.raises(UnsupportedFormat, match=r"^scan\.dcm: not a DICOM file, video or image msus can read$"):
        msus.load(text)
    audio = tmp_path / "sound.bin"
    with av.open(str(audio), "w", format="wav") as out:
        s = out.add_stream("pcm_s16le", rate=8000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        fr.sample_rate = 8000
        for p in s.encode(fr):
            out.mux(p)
    with pytest.raises(UnsupportedFormat, match="not a DICOM file, video or image"):
        msus.load(audio)


def test_folder_with_one_wmv(tmp_path, source):
    _, frames, _ = source
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "clip").write_bytes(encode(frames[:10], "wmv2", "asf", fps=25))
    with msus.load(tmp_path / "loop") as c:
        assert c.kind == "video" and len(c) == 10


# ---- 12-bit and lossless JPEG -----------------------------------------------------------------
def wide_jpeg_dicom(src_path, frames16: np.ndarray, ts: str, out, encode_frame):
    ds = pydicom.dcmread(src_path)
    ds.file_meta.TransferSyntaxUID = UID(ts)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12 if ts.endswith(".51") else 16, 11 if ts.endswith(".51") else 15
    ds.WindowCenter, ds.WindowWidth = (2048, 4096) if ts.endswith(".51") else (32768, 65536)
    ds.PixelData = encapsulate([encode_frame(f) for f in frames16], has_bot=False)
    ds["PixelData"].VR = "OB"
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.mark.parametrize("ts, scale, encode_frame", [
    ("1.2.840.10008.1.2.4.51", 16, lambda f: imagecodecs.jpeg8_encode(f, level=95, bitspersample=12)),
    ("1.2.840.10008.1.2.4.70", 256, lambda f: imagecodecs.jpeg8_encode(f, lossless=True, predictor=1,
                                                                        bitspersample=16)),
    ("1.2.840.10008.1.2.4.57", 256, lambda f: imagecodecs.jpeg8_encode(f, lossless=True, predictor=5,
                                                                        bitspersample=16)),
], ids=["12bit_extended", "16bit_lossless_sv1", "16bit_lossless_p5"])
def test_wide_jpeg_windowed_to_8_bits(tmp_path, source, ts, scale, encode_frame):
    path, frames, facts = source
    frames16 = frames.astype(np.uint16) * scale + scale // 2
    f = wide_jpeg_dicom(path, frames16, ts, tmp_path / "wide.dcm", encode_frame)
    cine = opened(f)
    assert len(cine) == len(frames) and cine.shape == frames.shape[1:]
    assert np.allclose(cine.frame_times_ms, facts["times"]) and cine.calibration.regions == facts["regions"]
    check_every_frame(cine, frames)
    if "lossless" in ts or ts.endswith(".70") or ts.endswith(".57"):
        assert np.abs(cine.frame(3).astype(int) - frames[3].astype(int)).max() <= 1  # lossless: window only
    cine.close()


def test_pydicom_12bit_jpeg_extended_file_decodes():
    from pydicom.data import get_testdata_file

    path = get_testdata_file("JPGExtended.dcm")
    ds = pydicom.dcmread(path)
    raw = imagecodecs.jpeg8_decode(ds.PixelData[ds.PixelData.index(b"\xff\xd8"):])
    with msus.load(path) as c:
        g = c.frame(0)
        assert g.shape == raw.shape and g.dtype == np.uint8
        # windowed (header window, else the frame's min–max) and monotonic in the stored values
        order = np.argsort(raw, axis=None)
        assert np.all(np.diff(g.ravel()[order].astype(int)) >= 0)


# ---- a region one past the last column ---------------------------------------------------------
def _region(x1, y1):
    r = Dataset()
    r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1, r.RegionLocationMaxY1 = 0, 0, x1, y1
    r.RegionSpatialFormat, r.RegionDataType = 1, 1
    r.PhysicalUnitsXDirection = r.PhysicalUnitsYDirection = 3
    r.PhysicalDeltaX = r.PhysicalDeltaY = 0.01
    return r


@pytest.mark.parametrize("x1, y1, warn", [(639, 479, None), (640, 479, "x 640 (last column 639)"),
                                          (639, 480, "y 480 (last row 479)"), (641, 479, "does not fit")])
def test_region_bounds_against_the_image(x1, y1, warn):
    ds = Dataset()
    ds.Rows, ds.Columns = 480, 640
    ds.SequenceOfUltrasoundRegions = [_region(x1, y1)]
    cal = calibration_from_dataset(ds)
    assert cal.source == "us_region"  # the region is used either way
    if warn is None:
        assert cal.warnings == ()
    else:
        assert len(cal.warnings) == 1 and warn in cal.warnings[0]
        assert warn in " ".join(cal.measure((10, 10), (20, 10)).warnings)  # travels with every length


# ---- JPEG luma-only path -----------------------------------------------------------------------
def test_jpeg_luma_path_matches_colour_luma(data_dir):
    with msus.load(data_dir / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm", cache_frames=2) as c:
        assert c.photometric.startswith("YBR") and c.is_color
        for i in (0, 31, 64):
            g = c.frame_grey(i)
            assert g.shape == (c.rows, c.columns)
            d = np.abs(g.astype(int) - c.grey(i).astype(int))
            f = c.frame(i).astype(int)
            neutral = (np.abs(f[..., 0] - f[..., 1]) <= 2) & (np.abs(f[..., 1] - f[..., 2]) <= 2)
            assert d[neutral].max() <= 2 and d.mean() < 0.5  # saturated colour is clipped in RGB, not in Y


# ---- writing a DICOM video ----------------------------------------------------------------------
def test_dicom_video_export_round_trip(tmp_path, source, capsys):
    path, frames, facts = source
    out = tmp_path / "loop_h264.dcm"
    assert main(["export", str(path), "--format", "dicom-video", "--out", str(out)]) == 0
    assert "dicom-video" in capsys.readouterr().out
    assert out.stat().st_size < path.stat().st_size / 5  # compact
    src, got = pydicom.dcmread(path), pydicom.dcmread(out)
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.102"
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "PatientID", "Modality", "SOPClassUID"):
        assert got.get(kw) == src.get(kw), kw
    assert got.SOPInstanceUID != src.SOPInstanceUID
    assert got.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert got.LossyImageCompression == "01" and got.NumberOfFrames == len(frames)
    cine = opened(out)
    assert cine.timing_source == "FrameTime" and np.allclose(cine.frame_times_ms, facts["times"])
    assert cine.calibration.regions == facts["regions"] and cine.meta["codec"] == "h264"
    check_every_frame(cine, frames)
    cine.close()


@pytest.mark.parametrize("sample", ["phantom_full_tear.dcm", "phantom_partial_tear.dcm"])
def test_analyze_same_classification_on_h264_dicom(tmp_path, samples_dir, capsys, sample):
    out = tmp_path / "h264.dcm"
    assert main(["export", str(samples_dir / sample), "--format", "dicom-video", "--out", str(out)]) == 0
    capsys.readouterr()
    results = []
    for p in (samples_dir / sample, out):
        assert main(["analyze", str(p), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["classification"] == results[1]["classification"]
    assert results[1]["calibration_source"] == "us_region"
