"""DICOM files → :class:`~msus.cine.Cine`, decoding only the frames asked for.

Opening reads the header with pydicom (``stop_before_pixels``), then indexes the pixel data
without decoding it: for native (uncompressed) data each frame is a byte range; for encapsulated
data the item tags are read once with ``pydicom.encaps`` (seeks only) and frames are mapped to
fragments with the Extended/Basic Offset Table, one fragment per frame, or codec start markers.
``frame(i)`` then decodes one frame (:class:`~msus.io.dicom.decode.FrameDecoder`).

Modules: ``header`` (sniffing, the header, pixel facts and limits), ``encaps`` (where the pixel
data and its fragments lie), ``jpeg`` (the JPEG / JPEG-LS marker parser), ``decode`` (one frame
to display-ready pixels), ``video`` (MPEG-2 / H.264 / HEVC streams), ``load`` (the Cine).
"""

from msus.io.dicom.decode import DECODER_PACKAGES, NATIVE_SYNTAXES, FrameDecoder, missing_decoder_message
from msus.io.dicom.encaps import index_encapsulated_frames
from msus.io.dicom.header import (
    MAX_FRAME_SAMPLES,
    MAX_FRAMES,
    MAX_LOOP_BYTES,
    looks_like_dicom,
    pixel_params,
    read_header,
    transfer_syntax_of,
)
from msus.io.dicom.jpeg import jpeg_header, sof_marker
from msus.io.dicom.load import cine_from_dataset, frame_fetcher, load_dicom, try_headerless_dicom

#: The JPEG SOF parser under the name it had in ``msus/io/dicom.py`` (imported by the PACS frames).
_sof_marker = sof_marker

__all__ = [
    "DECODER_PACKAGES",
    "MAX_FRAMES",
    "MAX_FRAME_SAMPLES",
    "MAX_LOOP_BYTES",
    "NATIVE_SYNTAXES",
    "FrameDecoder",
    "cine_from_dataset",
    "frame_fetcher",
    "index_encapsulated_frames",
    "jpeg_header",
    "load_dicom",
    "looks_like_dicom",
    "missing_decoder_message",
    "pixel_params",
    "read_header",
    "sof_marker",
    "transfer_syntax_of",
    "try_headerless_dicom",
]
