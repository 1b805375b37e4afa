"""The project's attack corpus: malformed, oversized and oddly named inputs, generated on demand.

``python -m tests.attack_corpus OUT`` (or :func:`build`) writes them into a folder.  Tests run
every CLI verb over them (``tests/test_attack_corpus.py``) and read the bombs under a memory
limit (``tests/test_security_memory.py``).  Nothing here is real patient data.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
EPIQ = DATA / "deiddata_GREYSCALE_CINE_epiq5g_27f.dcm"
ACUSON = DATA / "fodicom_DIRW0007_acuson_65f_jpegbaseline.dcm"
VIDEO = DATA / "p6_isokinetic120_01_push_02.mp4"


def _header_bytes(rows: int, cols: int, frames: int) -> bytes:
    """An Explicit VR LE US multi-frame dataset without its pixel data value."""
    from pydicom.dataset import Dataset
    from pydicom.filewriter import write_dataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    from pydicom.filebase import DicomBytesIO

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue() + b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", min(rows * cols * frames, 0xFFFFFFFE))


def _file_meta(ts: str) -> bytes:
    from pydicom.dataset import FileMetaDataset
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ts
    from pydicom.filebase import DicomBytesIO

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    return fp.getvalue()


def deflate_bomb(path: Path, rows: int = 16384, cols: int = 16384, frames: int = 10) -> Path:
    """A deflated DICOM of a few MB whose pixel data inflates to rows × cols × frames bytes."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(1 << 24)
    with open(path, "wb") as fh:
        fh.write(_file_meta("1.2.840.10008.1.2.1.99"))
        fh.write(c.compress(_header_bytes(rows, cols, frames)))
        left = rows * cols * frames
        while left:
            n = min(left, len(zeros))
            fh.write(c.compress(zeros[:n]))
            left -= n
        fh.write(c.flush())
    return path


def tiff_bomb(path: Path, pages: int = 4, side: int = 16384) -> Path:
    """A small multi-page TIFF (deflate-compressed) of side × side grey pages."""
    from PIL import Image

    im = Image.new("L", (side, side), 0)
    im.save(path, save_all=True, append_images=[im] * (pages - 1), compression="tiff_deflate")
    return path


def build(out: Path, *, big: bool = False) -> list[Path]:
    """Write the corpus into ``out``; ``big`` adds the bombs (slow to make, several MB each)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    epiq = EPIQ.read_bytes()
    files = {
        "empty.dcm": b"",
        "garbage.dcm": os.urandom(4096),
        "truncated_5000.dcm": epiq[:5000],
        "truncated_half.dcm": epiq[: len(epiq) // 2],
        "preamble_only.dcm": b"\0" * 128 + b"DICM",
        "huge_rows.dcm": _file_meta("1.2.840.10008.1.2.1") + _header_bytes(65535, 65535, 1) + b"\0" * 64,
        "many_frames.dcm": _file_meta("1.2.840.10008.1.2.1") + _header_bytes(600, 800, 2**31 - 1) + b"\0" * 64,
        "zero_rows.dcm": _file_meta("1.2.840.10008.1.2.1") + _header_bytes(0, 800, 1),
        "broken.mp4": VIDEO.read_bytes()[:20000],
        "zeroed_tail.mp4": VIDEO.read_bytes()[:30000] + bytes(len(VIDEO.read_bytes()) - 30000),
        "not_a_video.mp4": b"ftypisom" + os.urandom(2000),
        "text.png": b"hello, not a png",
        "jpeg_damaged.jpg": _damaged_jpeg(),
        os.fsdecode(b"loop\xff name.dcm"): epiq,  # a file name that is not UTF-8
        "![x](http:__127.0.0.1_1_x.png).dcm": epiq[:3000],
    }
    acuson = bytearray(ACUSON.read_bytes())
    acuson[len(acuson) // 2: len(acuson) // 2 + 40000] = bytes(40000)  # zeroed JPEG entropy data
    files["acuson_zeroed_jpeg.dcm"] = bytes(acuson)
    files["acuson_first_5000.dcm"] = ACUSON.read_bytes()[:5000]
    written = []
    for name, blob in files.items():
        p = out / name
        p.write_bytes(blob)
        written.append(p)
    loop = out / "symlink_loop.dcm"
    if not loop.is_symlink():
        os.symlink(loop.name, loop)
    written.append(loop)
    fifo = out / "fifo.dcm"
    if not fifo.exists():
        os.mkfifo(fifo)
    written.append(fifo)
    if big:
        written += [deflate_bomb(out / "deflate_bomb.dcm"), tiff_bomb(out / "tiff_bomb.tif")]
    return written


def _damaged_jpeg() -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".jpg", (np.random.default_rng(1).random((240, 320)) * 255).astype(np.uint8))
    b = bytearray(buf.tobytes())
    for i in range(600, len(b) - 10, 97):
        b[i] = 0xFF if i % 2 else 0x00
    return bytes(b)


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "attack-corpus")
    if target.exists() and "--fresh" in sys.argv:
        shutil.rmtree(target)
    for p in build(target, big="--big" in sys.argv):
        print(p)
