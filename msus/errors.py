"""Every failure msus reports to a user is one of these, with a one-line message.

The CLI prints ``msus: error: <message>`` and the app shows the message; neither shows a
traceback.  Library code raises the most specific class; callers catch :class:`MsusError`.
"""

from __future__ import annotations

import re

# Internals that must not reach a user: object reprs, C/C++ source locations, OpenCV's prefix,
# and the directories of quoted absolute paths (PyAV quotes the full path of the file).
_INTERNALS = (
    (re.compile(r"<[^<>]*? object at 0x[0-9a-fA-F]+>"), "the file"),
    (re.compile(r"OpenCV\([^)]*\)\s*\S+:\d+:\s*error:\s*\(-?\d+:[^)]*\)\s*"), ""),
    (re.compile(r"\S+\.(?:cpp|hpp|cc|c|h):\d+:?\s*"), ""),
    (re.compile(r"'(?:/[^'/]*)+/([^'/]+)'"), r"'\1'"),
)


class MsusError(Exception):
    """Base class. ``str(err)`` is a single line meant for the user."""

    def __init__(self, message: str):
        # Keep it to one line whatever the cause was, in the user's words.
        text = " ".join(str(message).split())
        for pattern, repl in _INTERNALS:
            text = pattern.sub(repl, text)
        super().__init__(text)


class LoadError(MsusError):
    """A source could not be opened or decoded."""


class UnsupportedFormat(LoadError):
    """The content is not a cine loop msus can read (not DICOM, video or images)."""


class CorruptFile(LoadError):
    """The content is of a known kind but damaged (truncated, inconsistent header)."""


class MissingDecoder(LoadError):
    """The transfer syntax or codec needs a package that is not installed (message names it)."""


class TooLarge(LoadError):
    """Dimensions or size beyond sane limits; refused before allocating."""


class CalibrationError(MsusError):
    """A calibration could not be established or is inconsistent."""


class MeasurementError(MsusError):
    """A measurement is invalid (point outside the image, ends in different regions...)."""


class AnalysisError(MsusError):
    """Automatic analysis could not run on this input (one frame, blank loop, bad ROI...)."""


class StoreError(MsusError):
    """The findings store failed (database unreachable, conflicting write...)."""


class ExportError(MsusError):
    """An export could not be produced."""


class PacsError(MsusError):
    """Talking to the DICOMweb archive (PACS) failed; the message says what and where."""


class PacsUnavailable(PacsError):
    """The archive could not be reached in time (refused, timed out, 5xx): worth retrying later."""


class PacsConfigError(PacsError):
    """The archive configuration is missing or inconsistent."""


class PacsRejected(PacsError):
    """The archive answered but refused the request (bad request, not found, not authorised)."""


class StoreConflict(StoreError):
    """Someone else changed (or deleted) the row since you read it; reload and retry."""

    def __init__(self, message: str, current_version: int | None = None):
        super().__init__(message)
        self.current_version = current_version


class FindingLocked(StoreError):
    """A signed (final) finding, or one of the calipers it reads, was to be changed: amend it instead."""


class BatchError(MsusError):
    """A batch could not start or finish (no scheduler, no loops, table not written)."""


class SampleError(MsusError):
    """A sample could not be generated or written."""


class SynthError(MsusError):
    """Simulator parameters are inconsistent (one-line message)."""


class TeachingError(MsusError):
    """A teaching case or session step is invalid (unknown case, wrong stage, bad call...)."""
