"""Which loop is this?  DICOM UIDs when the source has them, else a content hash.

A DICOM loop is keyed by its SOPInstanceUID (``cine.uid``) and filed under its Study and Series
Instance UIDs from ``cine.meta``.  A video or image stack is keyed by ``sha256:<hex>`` over its
geometry, frame timing and up to :data:`HASH_FRAMES` evenly spaced decoded frames (the same
content opened from another container or path gets the same key); its study and series share that
key.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass

import numpy as np

HASH_FRAMES = 8
_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # cine → LoopIdentity (the app asks every rerun)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoopIdentity:
    loop_key: str
    series_key: str
    study_key: str


def content_hash(cine) -> str:
    """``sha256:<hex>`` of a loop's geometry, timing and sampled frames."""
    h = hashlib.sha256()
    h.update(f"{cine.n_frames}|{cine.rows}|{cine.columns}|{cine.samples_per_pixel}|".encode())
    h.update(np.round(np.asarray(cine.frame_times_ms, dtype=float), 3).tobytes())
    n = cine.n_frames
    picks = sorted({int(round(i * (n - 1) / max(1, HASH_FRAMES - 1))) for i in range(min(n, HASH_FRAMES))})
    for i in picks:
        h.update(np.ascontiguousarray(cine.frame(i)).tobytes())
    return "sha256:" + h.hexdigest()


def _meta_uid(meta: dict, *names: str) -> str | None:
    for n in names:
        v = meta.get(n)
        if v:
            return str(v)
    return None


def identify(cine) -> LoopIdentity:
    """The :class:`LoopIdentity` of a :class:`msus.cine.Cine` (remembered per Cine object)."""
    try:
        with _LOCK:
            hit = _CACHE.get(cine)
    except TypeError:  # not weak-referenceable
        hit = None
    if hit is not None:
        return hit
    ident = _identify(cine)
    try:
        with _LOCK:
            _CACHE[cine] = ident
    except TypeError:
        pass
    return ident


def _identify(cine) -> LoopIdentity:
    meta = getattr(cine, "meta", {}) or {}
    uid = cine.uid or _meta_uid(meta, "SOPInstanceUID", "sop_instance_uid")
    if uid:
        series = _meta_uid(meta, "SeriesInstanceUID", "series_uid", "series_instance_uid") or f"series-of:{uid}"
        study = _meta_uid(meta, "StudyInstanceUID", "study_uid", "study_instance_uid") or f"study-of:{series}"
        return LoopIdentity(str(uid), series, study)
    key = content_hash(cine)
    return LoopIdentity(key, key, key)
