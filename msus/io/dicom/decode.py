"""Decoding one stored frame to a display-ready uint8 array (:class:`FrameDecoder`).

* JPEG baseline/extended, 8 bit: OpenCV's libjpeg-turbo (``cv2.imdecode``), which converts the
  YCbCr of YBR_FULL_422/YBR_FULL to RGB itself (checked against pydicom in the tests);
* 12/16-bit and lossless JPEG: imagecodecs' libjpeg-turbo 3 (BSD-3) when built in;
* every other transfer syntax: pydicom's decoders (``pydicom.pixels``) on that one frame;
* then display conversion exactly once: YBR → RGB, PALETTE COLOR → RGB, MONOCHROME1 inverted,
  more than 8 bits → window (VOI LUT / WindowCenter-Width, else the first frame's min–max).
"""

from __future__ import annotations

import logging
import threading
import warnings as _warnings

import numpy as np
from pydicom import uid

from msus.cine import to_grey
from msus.errors import CorruptFile, MissingDecoder, MsusError, TooLarge, UnsupportedFormat
from msus.io.dicom.header import header_window, palette_dataset, short
from msus.io.dicom.jpeg import SOF_FOR_SYNTAX, WIDE_JPEG, imagecodecs_jpeg, jpeg_header, libjpeg_keeps_rgb

logger = logging.getLogger(__name__)

#: Native transfer syntaxes (deflated ones are inflated on open).
NATIVE_SYNTAXES = (uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.ExplicitVRBigEndian,
                   uid.DeflatedExplicitVRLittleEndian)

#: pip package that provides the decoder for a transfer syntax (permissive licences only).
DECODER_PACKAGES = {
    uid.JPEGBaseline8Bit: "pillow",
    **dict.fromkeys((uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1), "imagecodecs"),
    **dict.fromkeys((uid.JPEGLSLossless, uid.JPEGLSNearLossless), "pyjpegls"),
    **dict.fromkeys((uid.JPEG2000Lossless, uid.JPEG2000, uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K),
                    "pylibjpeg-openjpeg"),
    uid.RLELossless: "pylibjpeg-rle",
}


def missing_decoder_message(ts) -> str:
    pkg = DECODER_PACKAGES.get(str(ts))
    label = getattr(ts, "name", str(ts))
    if pkg:
        return f"no decoder for {label} is installed: pip install {pkg}"
    return f"no decoder for transfer syntax {label} ({ts}) is available"


class FrameDecoder:
    """Decode the stored bytes of one frame to a display-ready uint8 array."""

    def __init__(self, ds, ts, params: dict, name: str):
        self.ds = ds
        self.ts = ts
        self.p = params
        self.name = name
        pi = params["photometric_interpretation"]
        self.fast_jpeg = (
            str(ts) in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit)
            and params["bits_allocated"] == 8
            and pi in ("YBR_FULL_422", "YBR_FULL", "MONOCHROME2", "MONOCHROME1", "RGB")
        )
        #: ``decode_grey(data, index)``: luma only, without chroma (JPEG YCbCr), else None
        self.decode_grey = self._luma if (self.fast_jpeg and pi in ("YBR_FULL_422", "YBR_FULL")
                                          and params["samples_per_pixel"] == 3) else None
        self._window: tuple[float, float] | None = None
        self._window_lock = threading.Lock()
        self._lut_ds = None
        if pi == "PALETTE COLOR":
            self._lut_ds = palette_dataset(ds, name)
        if not ts.is_encapsulated and str(ts) not in NATIVE_SYNTAXES:
            raise UnsupportedFormat(f"{name}: unknown transfer syntax {ts}")
        #: 12/16-bit and lossless JPEG: libjpeg-turbo 3 through imagecodecs (BSD-3), never GDCM first
        self.wide_jpeg = (not self.fast_jpeg and str(ts) in WIDE_JPEG
                          and params["bits_allocated"] in (8, 16) and imagecodecs_jpeg() is not None)
        if ts.is_encapsulated and not self.fast_jpeg and not self.wide_jpeg:
            from pydicom.pixels import get_decoder

            try:
                dec = get_decoder(ts)
            except NotImplementedError:
                raise MissingDecoder(f"{name}: {missing_decoder_message(ts)}") from None
            if not dec.is_available:
                raise MissingDecoder(f"{name}: {missing_decoder_message(ts)}")
            self._decoder = dec
        else:
            self._decoder = None

    # -- stored bytes → array in the stored photometric interpretation ---------------------
    def __call__(self, data: bytes, index: int = 0) -> np.ndarray:
        try:
            arr, pi = self._decode(data)
            return self._display(arr, pi, index)
        except MsusError:
            raise
        except MemoryError:
            raise TooLarge(f"{self.name}: not enough memory to decode frame {index + 1}") from None
        except Exception as exc:
            logger.debug("frame decode failed", exc_info=True)
            raise CorruptFile(f"{self.name}: frame {index + 1} cannot be decoded ({short(exc)})") from exc

    def _decode(self, data: bytes) -> tuple[np.ndarray, str]:
        p = self.p
        pi = p["photometric_interpretation"]
        if self.fast_jpeg and not (pi == "RGB" and not libjpeg_keeps_rgb(data)):
            import cv2

            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if img is not None and img.dtype == np.uint8:
                if img.ndim == 3 and img.shape[2] == 3 and p["samples_per_pixel"] == 3:
                    # libjpeg-turbo converts YCbCr → RGB (returned as BGR) for 3-component JPEGs,
                    # and leaves streams marked RGB (Adobe transform 0, ids 'R','G','B') alone
                    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img), "RGB"  # in place: one buffer
                if img.ndim == 2 and p["samples_per_pixel"] == 1:
                    return img, pi
            # libjpeg-turbo refused it: Pillow may still read it (never GDCM on a stream this bad)
            return self._pydicom(data, plugins=["pillow"])
        if self.wide_jpeg:
            return self._libjpeg_wide(data)
        if self.ts.is_encapsulated:
            return self._pydicom(data)
        return self._native(data)

    def _libjpeg_wide(self, data: bytes) -> tuple[np.ndarray, str]:
        """8/12-bit JPEG extended and 2–16-bit JPEG lossless (process 14, SV1) via imagecodecs."""
        self._check_jpeg_header(data)
        arr = imagecodecs_jpeg().jpeg8_decode(bytes(data))
        p = self.p
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.shape[:2] != (p["rows"], p["columns"]) or (arr.ndim == 3) != (p["samples_per_pixel"] == 3):
            raise CorruptFile(f"{self.name}: a JPEG frame decoded to {arr.shape}, the header says "
                              f"{p['rows']}×{p['columns']}×{p['samples_per_pixel']}")
        if p["pixel_representation"] and arr.dtype == np.uint16:  # signed samples, two's complement
            arr = mask_bits(arr.view(np.int16), p["bits_stored"], True)
        # libjpeg converts YCbCr to RGB itself; a lossless stream carries no colour transform
        return arr, ("RGB" if arr.ndim == 3 else p["photometric_interpretation"])


    def _luma(self, data: bytes, index: int = 0) -> np.ndarray:
        """The JPEG's Y component: libjpeg skips the chroma's IDCT, upsampling and colour conversion."""
        import cv2

        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
        if img is not None and img.shape == (self.p["rows"], self.p["columns"]):
            return img
        return to_grey(self(data, index))

    def _plugins(self, dec) -> list[str]:
        """Plugins to try, GDCM last and only when needed.

        GDCM aborts the whole process (a C++ assertion) on some damaged streams, so it is used
        only for syntaxes no other installed plugin decodes (JPEG lossless), or as a fallback for
        JPEG-family frames whose header has been checked first (12-bit JPEG extended).
        """
        names = list(getattr(dec, "available_plugins", ()) or ())
        first = [n for n in names if n != "gdcm"]
        if "gdcm" in names and not first:
            first.append("gdcm")
        return first

    @property
    def _jpeg_family(self) -> bool:
        return str(self.ts).startswith(("1.2.840.10008.1.2.4.5", "1.2.840.10008.1.2.4.7", "1.2.840.10008.1.2.4.8"))

    def _check_jpeg_header(self, data: bytes) -> None:
        """Refuse a JPEG/JPEG-LS frame whose SOF header does not match the DICOM header."""
        info = jpeg_header(bytes(data[:65536]))
        want = SOF_FOR_SYNTAX.get(str(self.ts), set())
        if info is None or (want and info["marker"] not in want):
            raise CorruptFile(f"{self.name}: a frame is not {self.ts.name} data")
        p = self.p
        if (info["height"], info["width"]) != (p["rows"], p["columns"]):
            raise CorruptFile(
                f"{self.name}: a JPEG frame is {info['width']}×{info['height']} but the header says "
                f"{p['columns']}×{p['rows']}")
        if info["components"] != p["samples_per_pixel"]:
            raise CorruptFile(f"{self.name}: a JPEG frame has {info['components']} components, "
                              f"the header says {p['samples_per_pixel']} samples per pixel")
        if not 2 <= int(info["precision"]) <= p["bits_allocated"]:
            raise CorruptFile(f"{self.name}: a JPEG frame's precision does not fit the header's bits allocated")

    def _pydicom(self, data: bytes, plugins: list[str] | None = None) -> tuple[np.ndarray, str]:
        from pydicom.encaps import encapsulate
        from pydicom.pixels import get_decoder

        p = self.p
        dec = self._decoder or get_decoder(self.ts)
        if self.ts.is_encapsulated:
            if self._jpeg_family:
                self._check_jpeg_header(data)
            plugins = plugins if plugins is not None else self._plugins(dec)
            if not plugins:
                raise MissingDecoder(f"{self.name}: {missing_decoder_message(self.ts)}")
        else:
            plugins = [""]
        src = encapsulate([bytes(data)]) if self.ts.is_encapsulated else bytes(data)
        opts = dict(
            rows=p["rows"], columns=p["columns"], samples_per_pixel=p["samples_per_pixel"],
            bits_allocated=p["bits_allocated"], bits_stored=p["bits_stored"],
            pixel_representation=p["pixel_representation"],
            photometric_interpretation=p["photometric_interpretation"],
            number_of_frames=1, planar_configuration=p["planar_configuration"],
            pixel_keyword="PixelData", transfer_syntax_uid=self.ts,
        )
        errors = []
        for plugin in plugins:
            try:
                with _warnings.catch_warnings():  # plugin chatter is not for users (rare path)
                    _warnings.simplefilter("ignore")
                    arr, info = dec.as_array(src, index=0, decoding_plugin=plugin, **opts)
                return arr, str(info.get("photometric_interpretation", p["photometric_interpretation"]))
            except Exception as exc:
                logger.debug("_pydicom: decoder plugin failed", exc_info=True)
                errors.append(f"{plugin or 'native'}: {short(exc)}")
        if errors and all("does not support" in e for e in errors):
            raise MissingDecoder(
                f"{self.name}: no installed permissive decoder supports this {self.ts.name} data "
                f"({p['bits_stored']}-bit, {p['photometric_interpretation']}); convert the file first")
        raise CorruptFile(f"{self.name}: a frame cannot be decoded ({'; '.join(errors)[:200]})")

    def _native(self, data: bytes) -> tuple[np.ndarray, str]:
        p = self.p
        ba, spp, pi = p["bits_allocated"], p["samples_per_pixel"], p["photometric_interpretation"]
        if ba in (8, 16) and not (pi == "YBR_FULL_422" and spp == 3):
            e = "<" if self.ts.is_little_endian else ">"
            dt = np.dtype(("i" if p["pixel_representation"] else "u") + str(ba // 8)).newbyteorder(e)
            arr = np.frombuffer(data, dtype=dt, count=p["rows"] * p["columns"] * spp)
            if spp == 1:
                arr = arr.reshape(p["rows"], p["columns"])
            elif p["planar_configuration"] == 1:
                arr = arr.reshape(spp, p["rows"], p["columns"]).transpose(1, 2, 0)
            else:
                arr = arr.reshape(p["rows"], p["columns"], spp)
            arr = arr.astype(dt.newbyteorder("="), copy=False)
            if ba == 16 and p["bits_stored"] < 16:
                arr = mask_bits(arr, p["bits_stored"], p["pixel_representation"])
            return arr, pi
        return self._pydicom(data)

    # -- display conversion, exactly once ----------------------------------------------------
    def _display(self, arr: np.ndarray, pi: str, index: int) -> np.ndarray:
        pi = pi.upper()
        if pi in ("YBR_FULL", "YBR_FULL_422"):
            from pydicom.pixels import convert_color_space

            arr = convert_color_space(arr, pi, "RGB")
            pi = "RGB"
        if pi == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            rgb = apply_color_lut(arr, self._lut_ds)
            if rgb.dtype != np.uint8:
                rgb = (rgb.astype(np.uint32) >> self._lut_shift()).astype(np.uint8)
            return rgb
        if arr.ndim == 3:  # RGB / YBR_RCT / YBR_ICT outputs are RGB
            if arr.dtype != np.uint8:
                shift = max(0, self.p["bits_stored"] - 8)
                arr = np.clip(arr.astype(np.int64) >> shift, 0, 255).astype(np.uint8)
            return arr
        grey = self._grey(arr, index)
        if pi == "MONOCHROME1":
            grey = 255 - grey
        return grey

    def _lut_shift(self) -> int:
        """8 for 16-bit palette entries, 0 for 16-bit LUTs that hold 8-bit values (decided once
        from the whole table, so every frame is mapped alike)."""
        if getattr(self, "_shift", None) is None:
            from pydicom.pixels import apply_color_lut

            n = 2 ** min(16, max(8, self.p["bits_stored"]))
            probe = np.arange(n, dtype=np.uint16 if n > 256 else np.uint8)
            table = apply_color_lut(probe, self._lut_ds)
            self._shift = 8 if int(table.max(initial=0)) > 255 else 0
        return self._shift

    def _grey(self, arr: np.ndarray, index: int) -> np.ndarray:
        if arr.dtype == np.uint8 and self.p["bits_stored"] <= 8:
            return arr
        lo_hi = self._window_for(arr)
        lo, hi = lo_hi
        out = (arr.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6))
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def _window_for(self, arr: np.ndarray) -> tuple[float, float]:
        """Grey range mapped to 0–255: the header's window, else the first decoded frame's min–max."""
        with self._window_lock:
            if self._window is None:
                self._window = header_window(self.ds, self.p) or (float(arr.min()), float(arr.max()))
            return self._window



def mask_bits(arr, bits_stored, signed):
    if signed:
        shift = arr.dtype.itemsize * 8 - bits_stored
        return (arr << shift) >> shift
    return arr & ((1 << bits_stored) - 1)
