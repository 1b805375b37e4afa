"""Still images and image stacks → :class:`~msus.cine.Cine` (Pillow).

* One image file (PNG, JPEG, BMP, WebP...) → a one-frame loop.
* A multi-page TIFF (or animated GIF/PNG) → one frame per page, decoded on demand by seeking
  the open image; GIF/APNG page durations give the timing, TIFF has none (default fps).
* A folder of images → :func:`images_cine` over the files (see :mod:`msus.io.folder`).

Greyscale images stay grey (H×W); everything else becomes RGB.  Images with more than 8 bits
are scaled to 0–255 by the first frame's min–max (the same range for every frame).
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from msus.cine import Cine
from msus.errors import CorruptFile, TooLarge, UnsupportedFormat
from msus.io.dicom import MAX_FRAME_SAMPLES, MAX_FRAMES, MAX_LOOP_BYTES

logger = logging.getLogger(__name__)

_GREY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "LA")


def _pil():
    from PIL import Image

    # Pillow's own decompression-bomb guard: our limit is explicit, checked before decoding.
    Image.MAX_IMAGE_PIXELS = None
    return Image


class _Scaler:
    """Maps non-8-bit greys to uint8 with the range of the first frame decoded."""

    def __init__(self):
        self.range: tuple[float, float] | None = None
        self._lock = threading.Lock()

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        if arr.dtype == np.uint8:
            return arr
        if arr.dtype == bool:
            return arr.astype(np.uint8) * 255
        with self._lock:
            if self.range is None:
                self.range = (float(np.nanmin(arr)), float(np.nanmax(arr)))
            lo, hi = self.range
        out = (arr.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6))
        return np.clip(np.nan_to_num(out) + 0.5, 0, 255).astype(np.uint8)


def to_display(img, grey: bool, scaler: _Scaler) -> np.ndarray:
    """A Pillow image as uint8 H×W (grey) or H×W×3 (RGB)."""
    if grey:
        if img.mode == "LA":
            img = img.convert("L")
        return scaler(np.asarray(img))
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def check_size(name: str, width: int, height: int, n_frames: int, spp: int) -> None:
    if width < 1 or height < 1:
        raise CorruptFile(f"{name}: the image has no size")
    if width * height * spp > MAX_FRAME_SAMPLES:
        raise TooLarge(f"{name}: a {width}×{height} image is beyond the size limit")
    if n_frames > MAX_FRAMES or width * height * spp * n_frames > MAX_LOOP_BYTES:
        raise TooLarge(f"{name}: {n_frames} frames of {width}×{height} is beyond the loop size limit")
    from msus.limits import check_frame

    check_frame(name, height, width, spp, n_frames)  # the byte limits (MSUS_MAX_FRAME_MB, MSUS_MAX_LOOP_MB)


def _open(blob):
    Image = _pil()
    try:
        return Image.open(io.BytesIO(bytes(blob.buf)) if blob.path is None else blob.stream())
    except Exception as exc:
        logger.debug("_open: Pillow cannot open the image", exc_info=True)
        raise CorruptFile(f"{blob.name}: cannot read the image ({' '.join(str(exc).split())[:120]})") from exc


def load_image_file(blob, *, cache_frames: int | None = None, **_ignored) -> Cine:
    """One image or a multi-page TIFF / animated image, pages decoded on demand."""
    from msus.io.video import content_uid

    img = _open(blob)
    n = int(getattr(img, "n_frames", 1) or 1)
    grey = img.mode in _GREY_MODES
    spp = 1 if grey else 3
    check_size(blob.name, img.width, img.height, n, spp)
    lock = threading.Lock()
    scaler = _Scaler()
    width, height = img.width, img.height

    def decode(i: int) -> np.ndarray:
        with lock:
            try:
                img.seek(i)
                page = img.copy() if n > 1 else img
                page.load()
                if page.size != (width, height):
                    raise CorruptFile(f"{blob.name}: page {i + 1} is {page.width}×{page.height}, "
                                      f"page 1 is {width}×{height}")
                return to_display(page, grey, scaler)
            except CorruptFile:
                raise
            except Exception as exc:
                logger.debug("decode: Pillow cannot decode a frame", exc_info=True)
                raise CorruptFile(f"{blob.name}: frame {i + 1} cannot be decoded "
                                  f"({' '.join(str(exc).split())[:120]})") from exc

    times, source = None, None
    if n > 1 and img.format in ("GIF", "PNG", "WEBP"):
        durations = []
        try:
            for i in range(n):
                img.seek(i)
                durations.append(float(img.info.get("duration") or 0))
            img.seek(0)
        except Exception:
            logger.debug("load_image_file: no usable frame durations", exc_info=True)
            durations = []
        if durations and all(d > 0 for d in durations):
            times, source = np.concatenate([[0.0], np.cumsum(durations[:-1])]), "frame_durations"
    decode(0)  # a damaged first page fails now, not in the viewer
    extra = {} if cache_frames is None else {"cache_frames": cache_frames}

    def close():
        try:
            img.close()
        finally:
            blob.close()

    return Cine(
        n_frames=n, rows=height, columns=width, samples_per_pixel=spp, decode=decode,
        frame_times_ms=times, timing_source=source,
        meta={"format": img.format or "", "mode": img.mode, "phi_keys": [], "unreadable_elements": []},
        kind="images", photometric="MONOCHROME2" if grey else "RGB", transfer_syntax=img.format,
        source_name=blob.name, uid=content_uid(blob.buf), close=close, **extra,
    )


def images_cine(paths: Sequence[Path], name: str, *, cache_frames: int | None = None) -> Cine:
    """A loop over single image files (one frame each, all the same size), decoded on demand."""
    Image = _pil()
    first = None
    try:
        with Image.open(paths[0]) as im:
            first = (im.width, im.height, im.mode, im.format)
    except Exception as exc:
        logger.debug("images_cine: Pillow cannot open the first image", exc_info=True)
        raise CorruptFile(f"{paths[0].name}: cannot read the image ({' '.join(str(exc).split())[:120]})") from exc
    width, height, mode, fmt = first
    grey = mode in _GREY_MODES
    spp = 1 if grey else 3
    check_size(name, width, height, len(paths), spp)
    h = hashlib.sha256()
    for p in paths:
        try:
            with Image.open(p) as im:
                if im.size != (width, height):
                    raise UnsupportedFormat(
                        f"{name}: images differ in size ({p.name} is {im.width}×{im.height}, "
                        f"{paths[0].name} is {width}×{height}); not one loop")
                if (im.mode in _GREY_MODES) != grey:
                    raise UnsupportedFormat(f"{name}: mixes grey and colour images ({p.name}); not one loop")
            h.update(p.name.encode())
            h.update(str(p.stat().st_size).encode())
        except UnsupportedFormat:
            raise
        except Exception as exc:
            logger.debug("images_cine: Pillow cannot open an image", exc_info=True)
            raise CorruptFile(f"{p.name}: cannot read the image ({' '.join(str(exc).split())[:120]})") from exc
    scaler = _Scaler()

    def decode(i: int) -> np.ndarray:
        try:
            with Image.open(paths[i]) as im:
                im.load()
                return to_display(im, grey, scaler)
        except Exception as exc:
            logger.debug("decode: Pillow cannot decode an image", exc_info=True)
            raise CorruptFile(f"{paths[i].name}: cannot decode ({' '.join(str(exc).split())[:120]})") from exc

    extra = {} if cache_frames is None else {"cache_frames": cache_frames}
    first_bytes = paths[0].read_bytes()[: 1 << 20]
    h.update(first_bytes)
    return Cine(
        n_frames=len(paths), rows=height, columns=width, samples_per_pixel=spp, decode=decode,
        meta={"format": fmt or "", "mode": mode, "files": len(paths), "phi_keys": [], "unreadable_elements": []},
        kind="images", photometric="MONOCHROME2" if grey else "RGB", transfer_syntax=fmt,
        source_name=name, uid="sha256:" + h.hexdigest()[:32], **extra,
    )
