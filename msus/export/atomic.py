"""Writing an export file whole or not at all."""

from __future__ import annotations

import os
import stat
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
    refuse_non_regular(out, what)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        refuse_non_regular(tmp, what)
        write(tmp)
        tmp.replace(out)
    except OSError as exc:
        raise ExportError(f"cannot write {what or out}: {exc.strerror or exc}") from exc
    return out


def refuse_non_regular(out, what: str | None = None, *, folder_ok: bool = False) -> None:
    """Refuse an existing ``out`` that is not a regular file (FIFO, device, socket; a folder
    unless ``folder_ok``): an export only ever creates or replaces regular files."""
    out = Path(out)
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ExportError(f"cannot write {what or out}: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(mode):
        try:
            mode = os.stat(out).st_mode
        except OSError:
            raise ExportError(f"cannot write {what or out}: it is a broken or looping symbolic link") from None
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    raise ExportError(f"refused: {what or out} exists and is {kind}; exports write only regular files")
