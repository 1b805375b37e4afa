"""What a source holds, told from its first bytes (never from the file name)."""

from __future__ import annotations


def sniff(head: bytes) -> str | None:
    """Kind of content from its first bytes: ``dicom``, ``image``, ``zip`` or None.

    Videos are not recognised here: content no sniffer claims goes to FFmpeg's own probe
    (:func:`msus.io.video.probe`), which knows every container FFmpeg reads.
    """
    from msus.io.dicom import looks_like_dicom

    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if looks_like_dicom(head):
        return "dicom"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff" or head[:4] in (b"II*\x00", b"MM\x00*") \
            or head[:2] == b"BM" or head[:6] in (b"GIF87a", b"GIF89a") or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    return None
