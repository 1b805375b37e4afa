"""msus.load on videos, images, multi-page TIFF and image folders (content sniffed, not names)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import msus
from msus.errors import CorruptFile, LoadError, UnsupportedFormat

DATA = Path(__file__).resolve().parent / "data"
MP4 = DATA / "p6_isokinetic120_01_push_02.mp4"
FRAMES = DATA / "gastroc_jumping_frames"


def _reference_video(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_real_mp4_geometry_timing_and_lazy_random_access():
    ref = _reference_video(MP4)
    cine = msus.load(MP4)
    assert cine.kind == "video" and len(cine) == len(ref) == 68
    assert (cine.rows, cine.columns, cine.samples_per_pixel) == (624, 1148, 3)
    assert cine.timing_source == "video_pts" and cine.fps == pytest.approx(61, abs=0.5)
    assert cine.frame_times_ms[0] == 0 and np.all(np.diff(cine.frame_times_ms) > 0)
    for i in (40, 3, 67, 0, 41, 42):  # seeks backwards and forwards, then plays on
        assert np.array_equal(cine.frame(i), ref[i]), i
    assert cine.uid.startswith("sha256:") and cine.calibration.source == "none"
    cine.close()


def _write_video(path: Path, n: int, codec: str, fmt: str, fps=25, gop=5) -> np.ndarray:
    rng = np.random.default_rng(1)
    frames = np.zeros((n, 48, 64, 3), np.uint8)
    for i in range(n):
        frames[i, :, :, 0] = (np.arange(64)[None, :] * 4 + i * 9) % 256
        frames[i, :, :, 1] = i * 255 // max(n - 1, 1)
        frames[i, 8:20, (i * 3) % 50:(i * 3) % 50 + 12, 2] = 255
    frames = np.clip(frames.astype(int) + rng.integers(0, 2, frames.shape), 0, 255).astype(np.uint8)
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = 64, 48
        s.pix_fmt = "yuv420p"
        s.codec_context.gop_size = gop
        if codec == "mpeg4":
            s.codec_context.bit_rate = 4_000_000
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return frames


@pytest.mark.parametrize("codec, fmt, name", [("mpeg4", "avi", "loop.bin"), ("libx264", "mov", "loop.avi")])
def test_generated_videos_sniffed_by_content(tmp_path, codec, fmt, name):
    path = tmp_path / name  # misleading extension on purpose
    _write_video(path, 30, codec, fmt)
    ref = _reference_video(path)
    cine = msus.load(path)
    assert cine.kind == "video" and len(cine) == len(ref) == 30
    assert cine.fps == pytest.approx(25, rel=0.02)
    for i in (29, 2, 17, 18, 5):
        assert np.array_equal(cine.frame(i), ref[i]), i
    # the same from bytes and from a file object
    b = msus.load(path.read_bytes())
    assert np.array_equal(b.frame(12), ref[12])
    with open(path, "rb") as fh:
        assert np.array_equal(msus.load(fh).frame(7), ref[7])


def test_video_frames_are_not_all_kept(tmp_path):
    path = tmp_path / "long.mp4"
    _write_video(path, 120, "libx264", "mp4", gop=10)
    cine = msus.load(path, cache_frames=8)
    for i in range(len(cine)):
        cine.frame(i)
    assert len(cine._cache) == 8


def test_single_png_and_folder_of_pngs():
    one = msus.load(FRAMES / "gastroc_jumping_048.png")
    assert one.kind == "images" and len(one) == 1 and one.frame(0).shape == (600, 800, 3)
    ref = np.asarray(Image.open(FRAMES / "gastroc_jumping_050.png").convert("RGB"))
    loop = msus.load(FRAMES)  # the licence text file in the folder is ignored
    assert len(loop) == 3 and loop.timing_source == "default"
    assert np.array_equal(loop.frame(1), ref)


def test_image_folder_natural_order_and_size_mismatch(tmp_path):
    for k in (10, 2, 1):
        Image.fromarray(np.full((20, 30), k, np.uint8)).save(tmp_path / f"f{k}.png")
    cine = msus.load(tmp_path)
    assert [int(cine.frame(i)[0, 0]) for i in range(3)] == [1, 2, 10]
    assert cine.frame(0).shape == (20, 30)
    Image.fromarray(np.zeros((21, 30), np.uint8)).save(tmp_path / "f11.png")
    with pytest.raises(UnsupportedFormat, match="differ in size"):
        msus.load(tmp_path)


def test_multipage_tiff_and_16bit(tmp_path):
    pages = [Image.fromarray((np.arange(40 * 50).reshape(40, 50) * (k + 1) % 256).astype(np.uint8)) for k in range(6)]
    b = io.BytesIO()
    pages[0].save(b, format="TIFF", save_all=True, append_images=pages[1:])
    path = tmp_path / "stack.dat"
    path.write_bytes(b.getvalue())
    cine = msus.load(path)
    assert cine.kind == "images" and len(cine) == 6
    for i in (5, 0, 3):
        assert np.array_equal(cine.frame(i), np.asarray(pages[i]))
    deep = (np.arange(30 * 40).reshape(30, 40) * 20).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    f = msus.load(tmp_path / "deep.png").frame(0)
    assert f.dtype == np.uint8 and f.min() == 0 and f.max() == 255


def test_animated_gif_timing(tmp_path):
    frames = [Image.fromarray(np.full((10, 12, 3), 40 * k, np.uint8)) for k in range(4)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=[40, 60, 40, 40], loop=0)
    cine = msus.load(tmp_path / "a.gif")
    assert cine.timing_source == "frame_durations"
    np.testing.assert_allclose(cine.frame_times_ms, [0, 40, 100, 140])


def test_damaged_video_and_image(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(MP4.read_bytes()[:4000])
    with pytest.raises(LoadError):
        msus.load(bad)
    png = tmp_path / "bad.png"
    png.write_bytes((FRAMES / "gastroc_jumping_048.png").read_bytes()[:3000])
    with pytest.raises(CorruptFile):
        msus.load(png)


def test_zip_and_empty_folder(tmp_path):
    with pytest.raises(UnsupportedFormat, match="zip archive; unpack it first"):
        msus.load((DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.zip").read_bytes())
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnsupportedFormat, match="no DICOM files, videos or images"):
        msus.load(tmp_path / "empty")
    shutil.copy(DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.zip", tmp_path / "empty" / "x.zip")
    with pytest.raises(UnsupportedFormat, match="unpack"):
        msus.load(tmp_path / "empty")
