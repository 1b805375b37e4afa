"""The JPEG / JPEG-LS marker parser (the one place msus reads JPEG headers) and the JPEG facts
the decoders need: which SOF a transfer syntax may carry, whether libjpeg keeps a stream's RGB,
and the imagecodecs libjpeg-turbo 3 codec for 12/16-bit and lossless JPEG."""

from __future__ import annotations

import struct

from pydicom.uid import (
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
)

#: Start-of-frame markers: SOF0–SOF15 but DHT/JPG/DAC (JPEG) and SOF55 (JPEG-LS).
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})
#: JPEG start-of-frame markers each transfer syntax may carry.
SOF_FOR_SYNTAX = {
    JPEGBaseline8Bit: {0xC0, 0xC1},
    JPEGExtended12Bit: {0xC0, 0xC1, 0xC2},
    JPEGLossless: {0xC3},
    JPEGLosslessSV1: {0xC3},
    JPEGLSLossless: {0xF7},
    JPEGLSNearLossless: {0xF7},
}
#: 12/16-bit and lossless JPEG, decoded by imagecodecs' libjpeg-turbo 3 when it is built in.
WIDE_JPEG = (JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1)


def jpeg_header(data: bytes) -> dict | None:
    """The frame header of a JPEG / JPEG-LS stream, or None when its markers are malformed.

    Returns ``marker`` (the SOFn code: 0xC0 baseline … 0xF7 JPEG-LS), ``precision``, ``height``,
    ``width``, ``components``, ``component_ids`` and ``app`` (APPn marker bytes → segment data
    before the frame header, e.g. JFIF, Adobe).
    """
    if data[:2] != b"\xff\xd8":
        return None
    off, n, app = 2, len(data), {}
    while off + 4 <= n:
        if data[off] != 0xFF:
            return None
        m = data[off + 1]
        if m == 0xFF:  # fill byte
            off += 1
            continue
        if m in (0xD8, 0xD9) or 0xD0 <= m <= 0xD7:
            return None
        length = struct.unpack(">H", data[off + 2:off + 4])[0]
        if m in SOF_MARKERS:
            seg = data[off + 4:off + 2 + length]
            if len(seg) < 6 or len(seg) < 6 + 3 * seg[5]:
                return None
            height, width = struct.unpack(">HH", seg[1:5])
            return {"marker": m, "precision": seg[0], "height": height, "width": width, "components": seg[5],
                    "component_ids": [seg[6 + 3 * k] for k in range(seg[5])], "app": app}
        if 0xE0 <= m <= 0xEF:
            app[bytes(data[off:off + 2])] = bytes(data[off + 4:off + 2 + length])
        off += 2 + length
    return None


def sof_marker(data: bytes) -> int | None:
    """The SOFn marker byte of a JPEG / JPEG-LS stream, or None when the headers are malformed."""
    info = jpeg_header(data)
    return info["marker"] if info else None


def libjpeg_keeps_rgb(data: bytes) -> bool:
    """True when libjpeg will not colour-convert this 3-component JPEG (it is marked RGB).

    pydicom treats JPEG data of a PhotometricInterpretation RGB file as RGB (no transform).
    libjpeg agrees only when an Adobe APP14 marker says transform 0, or when there is no JFIF/Adobe
    marker and the component ids are 'R', 'G', 'B'; otherwise it would convert from YCbCr, so such
    frames go to pydicom instead of the fast path.
    """
    info = jpeg_header(bytes(data[:65536]))
    if not info:
        return False
    app = info["app"]
    adobe = app.get(b"\xff\xee")
    if adobe is not None and adobe[:5] == b"Adobe" and len(adobe) >= 12:
        return adobe[11] == 0
    if b"\xff\xe0" in app and app[b"\xff\xe0"][:4] == b"JFIF":
        return False
    return info["component_ids"] == [82, 71, 66]


def imagecodecs_jpeg():
    """The imagecodecs module when its libjpeg-turbo 3 codec is built in, else None."""
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs if getattr(imagecodecs, "JPEG8", None) and imagecodecs.JPEG8.available else None
