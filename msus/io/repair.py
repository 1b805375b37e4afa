"""Repairs for real-archive DICOM files that pydicom reads but cannot iterate or save.

Real archives hold stray delimiter items at the top level of a dataset (e.g. a sequence
delimiter ``(FFFE,E0DD)`` outside any sequence) and damaged elements.  pydicom 3 reads such a
file and decodes its pixels, but raises when the whole dataset is iterated or re-saved, and
DCMTK-based archives (Orthanc) refuse it.  The functions here remove those elements from a
dataset or from an in-memory copy of a file's bytes; they never touch a file on disk.

Used by de-identification (:mod:`msus.export.deid`) and by the PACS outbox (:mod:`msus.pacs.outbox`).
"""

from __future__ import annotations

import io
import logging

logger = logging.getLogger(__name__)


def strip_stray_elements(ds) -> list[str]:
    """Remove top-level elements pydicom cannot read (stray delimiters, broken VRs).

    Parameters
    ----------
    ds : pydicom.Dataset
        Modified in place.

    Returns
    -------
    list of str
        Tags removed, as ``"(FFFE,E0DD)"`` (tags only, never values: no PHI).
    """
    removed = []
    for tag in list(ds.keys()):
        if tag.group == 0xFFFE:
            del ds[tag]
            removed.append(str(tag))
            continue
        try:
            ds[tag]
        except Exception:
            logger.debug("strip_stray_elements: an unreadable element, removed", exc_info=True)
            del ds[tag]
            removed.append(str(tag))
    return removed


def has_stray_delimiters(ds) -> bool:
    """True when ``ds`` holds a top-level item/delimiter element (group FFFE)."""
    return any(tag.group == 0xFFFE for tag in ds.keys())


def repaired_bytes(data: bytes) -> tuple[bytes, list[str]]:
    """A copy of the DICOM file ``data`` without stray top-level delimiter items.

    Bytes without such items are returned unchanged (same object, nothing re-encoded).
    Otherwise the dataset is read, every element pydicom cannot read is removed
    (:func:`strip_stray_elements`) and it is written again in its own transfer syntax (pixel
    data, compressed or not, is copied as it is).

    Returns
    -------
    (bytes, list of str)
        The bytes to use and the tags removed (empty when unchanged).  Bytes that cannot be read
        or re-written are returned unchanged: the caller's own checks report them.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        if not has_stray_delimiters(ds):
            return data, []
        removed = strip_stray_elements(ds)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
    except Exception:
        logger.debug("repaired_bytes: repair failed, the original bytes are used", exc_info=True)
        return data, []
    return buf.getvalue(), removed
