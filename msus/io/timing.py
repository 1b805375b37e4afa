"""Frame start times (ms) from DICOM timing attributes.

Order of preference, following the Frame Increment Pointer (0028,0009) when it names one:

1. ``FrameTimeVector`` (0018,1065) — per-frame *increments* in ms; the first entry is the
   increment before frame 1 (0 by the standard; some scanners repeat the interval there).  Start
   times are the running sum, shifted so that frame 1 starts at 0.
2. ``FrameTime`` (0018,1063) — constant interval in ms.
3. ``CineRate`` (0018,0040), then ``RecommendedDisplayFrameRate`` (0008,2144) — frames per second.
4. ``ActualFrameDuration`` (0018,1242) — ms per frame.
5. None: the caller falls back to :data:`msus.cine.DEFAULT_FPS` (``timing_source = "default"``).
"""

from __future__ import annotations

import math

import numpy as np

FRAME_TIME = 0x00181063
FRAME_TIME_VECTOR = 0x00181065


def _float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _vector(ds, n: int) -> tuple[np.ndarray | None, list[str]]:
    raw = ds.get("FrameTimeVector")
    if raw is None:
        return None, []
    vals = [raw] if isinstance(raw, (str, bytes, int, float)) else list(raw)
    try:
        v = np.array([float(x) for x in vals], dtype=float)
    except (TypeError, ValueError):
        return None, ["FrameTimeVector is not numeric; ignored"]
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        return None, ["FrameTimeVector holds negative or invalid values; ignored"]
    if v.size == n - 1:
        v = np.concatenate([[0.0], v])
    if v.size != n:
        return None, [f"FrameTimeVector lists {v.size} frames but the loop has {n}; ignored"]
    t = np.cumsum(v)
    t = t - t[0]
    if n > 1 and t[-1] <= 0:
        return None, ["FrameTimeVector is all zero; ignored"]
    return t, []


def dicom_frame_times(ds, n: int) -> tuple[np.ndarray | None, str | None, list[str]]:
    """``(start times in ms or None, timing source name, warnings)`` for ``n`` frames."""
    warnings: list[str] = []
    pointers = ds.get("FrameIncrementPointer")
    try:
        if pointers is None:
            pointers = []
        elif isinstance(pointers, int):
            pointers = [pointers]
        pointers = [int(p) for p in pointers]
    except (TypeError, ValueError):
        pointers = []
    order = ["FrameTimeVector", "FrameTime"]
    if FRAME_TIME in pointers and FRAME_TIME_VECTOR not in pointers:
        order = ["FrameTime", "FrameTimeVector"]
    for what in order:
        if what == "FrameTimeVector":
            t, w = _vector(ds, n)
            warnings += w
            if t is not None:
                return t, "FrameTimeVector", warnings
        else:
            ft = _float(ds.get("FrameTime"))
            if ft is not None and ft > 0:
                return np.arange(n) * ft, "FrameTime", warnings
            if ft is not None:
                warnings.append(f"FrameTime {ft} ms is not positive; ignored")
    for kw in ("CineRate", "RecommendedDisplayFrameRate"):
        fps = _float(ds.get(kw))
        if fps is not None and fps > 0:
            return np.arange(n) * (1000.0 / fps), kw, warnings
    dur = _float(ds.get("ActualFrameDuration"))
    if dur is not None and dur > 0:
        return np.arange(n) * dur, "ActualFrameDuration", warnings
    return None, None, warnings
