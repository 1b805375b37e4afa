"""Memory limits, in bytes, for decoding loops: checked before anything large is allocated.

Every limit is a setting (environment variable, in MB), read when a loop is opened:

=========================  =======  ===============================================================
``MSUS_MAX_FRAME_MB``      64       one decoded, display-ready frame (rows × columns × 1 or 3 bytes)
``MSUS_MAX_LOOP_MB``       16384    all frames of a loop decoded (frames × frame bytes); frames are
                                    decoded lazily, but exports and analysis may walk all of them
``MSUS_FRAME_CACHE_MB``    512      decoded frames kept in memory, shared by every open loop of the
                                    process (least recently used frames go first)
``MSUS_MAX_INFLATE_MB``    1024     a deflated DICOM dataset inflated (streamed to a temporary
                                    file, never held whole in memory)
=========================  =======  ===============================================================

A source beyond a limit is refused with :class:`msus.errors.TooLarge`, one line naming the
limit and its setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from msus.errors import MsusError, TooLarge

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """The limits in MB (see the module docstring for what each bounds)."""

    max_frame_mb: int = 64
    max_loop_mb: int = 16384
    frame_cache_mb: int = 512
    max_inflate_mb: int = 1024

    @property
    def max_frame_bytes(self) -> int:
        return self.max_frame_mb * MB

    @property
    def max_loop_bytes(self) -> int:
        return self.max_loop_mb * MB

    @property
    def frame_cache_bytes(self) -> int:
        return self.frame_cache_mb * MB

    @property
    def max_inflate_bytes(self) -> int:
        return self.max_inflate_mb * MB


#: setting name of each field
SETTINGS = {f: "MSUS_" + f.upper() for f in ("max_frame_mb", "max_loop_mb", "frame_cache_mb", "max_inflate_mb")}


def limits(env=None) -> Limits:
    """The limits from the environment (defaults where unset); a bad value is one-line MsusError."""
    env = os.environ if env is None else env
    values = {}
    for field, var in SETTINGS.items():
        raw = env.get(var)
        if raw in (None, ""):
            continue
        try:
            values[field] = int(raw)
        except ValueError:
            raise MsusError(f"setting {var} must be a whole number of MB, got {raw!r}") from None
        if values[field] < 1:
            raise MsusError(f"setting {var} must be at least 1 (MB), got {raw!r}")
    return Limits(**values)


def check_frame(name: str, rows: int, columns: int, samples: int, n_frames: int = 1) -> None:
    """Refuse a loop whose decoded frame or whole decoded size is beyond the limits."""
    lim = limits()
    frame = int(rows) * int(columns) * int(samples)
    if frame > lim.max_frame_bytes:
        raise TooLarge(f"{name}: one {columns}×{rows} frame decodes to {frame / MB:,.0f} MB, beyond the "
                       f"{lim.max_frame_mb} MB frame limit (setting MSUS_MAX_FRAME_MB)")
    total = frame * int(n_frames)
    if total > lim.max_loop_bytes:
        raise TooLarge(f"{name}: {n_frames} frames of {columns}×{rows} decode to {total / MB:,.0f} MB, beyond the "
                       f"{lim.max_loop_mb} MB loop limit (setting MSUS_MAX_LOOP_MB)")
