"""One frame as JPEG bytes: what the app's player fetches from the frame route (:mod:`msus.ui.frames`)
and what the DICOM writer (:mod:`msus.synth.dicom`) encapsulates."""

from __future__ import annotations

import numpy as np

#: Chroma subsampling of a colour JPEG (grey frames have no chroma).
SUBSAMPLING = ("444", "422", "420")


def encode_jpeg(frame: np.ndarray, quality: int = 90, subsampling: str | None = None) -> bytes:
    """Encode one uint8 frame (H×W grey or H×W×3 RGB) as baseline JPEG bytes.

    ``subsampling`` ``"444"`` / ``"422"`` / ``"420"`` for colour frames; None keeps libjpeg's
    default (4:2:0).  No optimisation: the same libjpeg gives the same bytes.
    """
    import cv2

    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if subsampling is not None:
            factor = getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{subsampling}")
            params += [int(cv2.IMWRITE_JPEG_SAMPLING_FACTOR), int(factor)]
    ok, buf = cv2.imencode(".jpg", frame, params)
    if not ok:  # pragma: no cover - cv2 failure on a valid uint8 array
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
