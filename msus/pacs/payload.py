"""DICOM objects as the bytes msus queues and sends: files, bytes or pydicom Datasets.

File bytes are taken as they are (no re-encoding); a Dataset is written once with
``enforce_file_format``.  :func:`prepared` also repairs, in memory, a file with stray top-level
delimiter items (refused by DCMTK-based archives, :func:`msus.io.repair.repaired_bytes`); the
user's file is never modified.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pydicom

from msus.errors import PacsError
from msus.io.repair import repaired_bytes
from msus.pacs.query import check_uid

logger = logging.getLogger(__name__)


def dicom_bytes(obj, purpose: str = "send") -> tuple[bytes, str]:
    """(bytes, label) of a file path, bytes or Dataset; the label is the file name or SeriesDescription.

    ``purpose`` ("send", "queue") words the error when the object cannot be encoded.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj), ""
    if isinstance(obj, pydicom.Dataset):
        buf = io.BytesIO()
        try:
            obj.save_as(buf, enforce_file_format=True)
        except Exception as exc:  # pydicom raises many types for a dataset it cannot write
            logger.debug("dicom_bytes: pydicom raises many types for a dataset it cannot write", exc_info=True)
            raise PacsError(f"cannot encode the DICOM object to {purpose} it: {exc}") from exc
        return buf.getvalue(), str(obj.get("SeriesDescription", "") or "")
    path = Path(obj)
    try:
        if path.exists() and not path.is_file():
            raise PacsError(f"cannot send {path.name}: not a regular file (a pipe, device or folder)")
        return path.read_bytes(), path.name
    except OSError as exc:
        raise PacsError(f"cannot read {path.name}: {exc.strerror or exc}") from exc


def sop_header(data: bytes, consequence: str = "nothing sent") -> pydicom.Dataset:
    """The header (no pixels) of DICOM file bytes with a valid SOP Instance UID, else :class:`PacsError`."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        uid = str(ds.SOPInstanceUID)
    except Exception as exc:  # not DICOM at all, or no SOP Instance UID
        logger.debug("sop_header: not DICOM at all, or no SOP Instance UID", exc_info=True)
        raise PacsError(f"not a DICOM object with a SOP Instance UID: {consequence}") from exc
    check_uid(uid, "SOP instance UID")
    return ds


def prepared(obj) -> tuple[bytes, str, str]:
    """(bytes to queue, label, note): the object's bytes, repaired in memory when needed.

    The note names the dropped tags (tags only, no PHI), or is empty.
    """
    data, label = dicom_bytes(obj, "queue")
    fixed, removed = repaired_bytes(data)
    note = ""
    if removed:
        note = (f"dropped unreadable top-level element{'s' if len(removed) > 1 else ''} "
                f"{', '.join(removed[:8])} from the copy sent (the source file is unchanged)")
    return fixed, label, note
