"""msus: review musculoskeletal ultrasound cine loops and measure muscle-tear gaps in mm.

Public API (kept stable)::

    import msus
    cine = msus.load("loop.dcm")        # path, bytes or binary file object
    len(cine); cine.frame(0); cine.frame_times_ms; cine.fps; cine.calibration; cine.meta
"""

from __future__ import annotations

from msus.cine import Cine
from msus.errors import MsusError

__version__ = "0.1.0"
__all__ = ["Cine", "MsusError", "load", "__version__"]


def load(source, **kwargs) -> Cine:
    """Open a cine loop from a path, folder, bytes or binary file object.

    The kind (DICOM, video, image stack) is chosen by sniffing content, not extensions.
    Raises :class:`msus.errors.LoadError` (one-line message) on any failure.
    """
    from msus.io import load as _load

    return _load(source, **kwargs)
