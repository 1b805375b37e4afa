"""Writing an export file whole or not at all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from msus.errors import ExportError


def write_atomic(out, write: Callable[[Path], object], what: str | None = None) -> Path:
    """Create ``out`` by calling ``write(tmp)`` on ``out.part`` beside it, then renaming it into place.

    A reader never sees a half-written file, and an earlier file at ``out`` stays until the new
    one is complete.  Parent folders are created.  An ``OSError`` becomes one-line
    :class:`~msus.errors.ExportError` ``cannot write WHAT: reason`` (``what`` defaults to ``out``).
    """
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        write(tmp)
        tmp.replace(out)
    except OSError as exc:
        raise ExportError(f"cannot write {what or out}: {exc.strerror or exc}") from None
    return out
