"""One frame as JPEG bytes: what the app's player fetches from the frame route (:mod:`msus.ui.frames`)."""

from __future__ import annotations

import numpy as np


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    """Encode one uint8 frame (H×W grey or H×W×3 RGB) as JPEG bytes."""
    import cv2

    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:  # pragma: no cover - cv2 failure on a valid uint8 array
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
