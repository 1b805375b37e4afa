"""Readers: one per source kind, chosen by sniffing content (never the file extension).

``load(source)`` accepts a file path, a folder path, bytes, or a binary file object and returns
a :class:`~msus.cine.Cine`.  Every failure is an :class:`msus.errors.LoadError` subclass with a
one-line message.

Kinds:

* DICOM (``DICM`` preamble, or a raw dataset starting with a group 0002/0008 element) →
  :mod:`msus.io.dicom`;
* anything else FFmpeg reads as a video (MP4/MOV, AVI, MKV/WebM, ASF/WMV, MPEG-TS/PS, FLV, OGG,
  MXF, raw streams...) → :mod:`msus.io.video` (PyAV; FFmpeg probes the content itself);
* images (PNG, JPEG, TIFF incl. multi-page, BMP, GIF...) → :mod:`msus.io.images`;
* folders: single-frame DICOM files of one series, or an image sequence → :mod:`msus.io.folder`;
* zip archives are refused with a message to unpack them first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from msus.cine import Cine

from msus.errors import CorruptFile, LoadError, MsusError, TooLarge, UnsupportedFormat
from msus.io._source import Blob, open_source
from msus.io.content import sniff

logger = logging.getLogger(__name__)

__all__ = ["load", "sniff", "KINDS"]

KINDS = ("dicom", "video", "images")


def load(source, **kwargs) -> Cine:
    """Open a cine loop from a path (file or folder), bytes or a binary file object.

    Parameters
    ----------
    source
        ``str``/``Path`` to a file or folder, ``bytes``-like, or a binary file object.
    **kwargs
        Passed to the reader; ``series`` (SeriesInstanceUID) picks one series in a folder of
        mixed DICOM series; ``cache_frames`` sets the decoded-frame cache size.

    Returns
    -------
    Cine
        Frames decoded on demand with ``cine.frame(i)``.

    Raises
    ------
    msus.errors.LoadError
        Any failure (one-line message).
    """
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        from msus.io.folder import load_folder

        return _guard(lambda: load_folder(Path(source), **kwargs), Path(source).name)
    blob = open_source(source)
    try:
        cine = _guard(lambda: load_blob(blob, **kwargs), blob.name)
    except BaseException:
        blob.close()
        raise
    return cine


def load_blob(blob: Blob, **kwargs) -> Cine:
    """Dispatch an opened :class:`Blob` to its reader."""
    if len(blob) == 0:
        raise CorruptFile(f"{blob.name}: the file is empty")
    kind = sniff(blob.head(512))
    if kind == "zip":
        raise UnsupportedFormat(f"{blob.name}: this is a zip archive; unpack it first and open the files inside")
    if kind == "dicom":
        from msus.io.dicom import load_dicom

        return load_dicom(blob, **kwargs)
    if kind == "image":
        from msus.io.images import load_image_file

        return load_image_file(blob, **kwargs)
    # Unknown signature: some DICOM files lack the preamble and start with other groups.
    from msus.io.dicom import try_headerless_dicom

    cine = try_headerless_dicom(blob, **kwargs)
    if cine is not None:
        return cine
    from msus.io.video import load_video, probe

    if probe(blob):
        return load_video(blob, **kwargs)
    if len(blob) < 132:
        raise UnsupportedFormat(f"{blob.name}: too short to be a DICOM file, video or image ({len(blob)} bytes)")
    raise UnsupportedFormat(f"{blob.name}: not a DICOM file, video or image msus can read")



def _guard(fn, name: str):
    """Run a reader; anything that is not already an MsusError becomes a one-line LoadError."""
    try:
        return fn()
    except MsusError:
        raise
    except MemoryError:
        raise TooLarge(f"{name}: not enough memory to open this source") from None
    except RecursionError:
        raise CorruptFile(f"{name}: the file is malformed (nesting too deep)") from None
    except Exception as exc:  # a reader bug or a library error we did not anticipate
        logger.warning("reading a source failed (%s)", type(exc).__name__, exc_info=True)
        text = " ".join(str(exc).split())[:160]
        if "is not a transfer syntax" in text:
            raise UnsupportedFormat(f"{name}: the file names an unknown transfer syntax (how its pixels are "
                                    "encoded); it is damaged or not standard DICOM") from exc
        raise LoadError(f"{name}: cannot be read ({type(exc).__name__}: {text})") from exc
