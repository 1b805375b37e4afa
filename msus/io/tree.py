"""A folder tree → the loops in it, each named so that :func:`msus.load` opens it again.

The rules are :mod:`msus.io.folder`'s, applied folder by folder down the tree:

* a multi-frame DICOM file, a video, a multi-page image or any other single file msus opens is
  one loop;
* the single-frame DICOM images of one series in one folder are one loop (the folder, opened
  with ``series=<SeriesInstanceUID>``), however many files it holds; two series in one folder
  are two loops;
* two or more still images (PNG, JPEG, TIFF, BMP...) in a folder without DICOM images are one
  loop (the folder, frames in natural name order);
* files whose content is not recognised are listed too when their name looks like a loop (a
  DICOM-like or media extension, or no extension at all), so that a broken file is reported
  rather than silently skipped; everything else (notes, truth files, hidden files) is ignored.

Content decides, never the extension (except for that last courtesy).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from msus.errors import LoadError

#: Extensions of files listed even when their content is not recognised (then they fail loudly).
_MEDIA_SUFFIXES = {".dcm", ".dicom", ".dic", ".ima", ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg",
                   ".mpeg", ".ts", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif"}
_SKIP_NAMES = ("NOTICE", "README", "LICENSE", "DICOMDIR")
#: Folders with more entries than this are refused (one bad mount must not list a million files).
MAX_LOOPS = 200_000


@dataclass(frozen=True)
class FoundLoop:
    """One loop found in a tree.

    Attributes
    ----------
    path
        The file, or the folder of a frame sequence / single-frame DICOM series.
    series
        SeriesInstanceUID to pick in ``path`` (a folder), or None.
    what
        ``"file"``, ``"dicom-series"`` or ``"image-sequence"``.
    """

    path: Path
    series: str | None = None
    what: str = "file"

    def relative_to(self, root: Path) -> str:
        """The path relative to ``root`` (``.`` for the root itself); folders end with ``/``."""
        try:
            rel = self.path.relative_to(root).as_posix()
        except ValueError:
            rel = self.path.as_posix()
        if self.what != "file":
            rel = ("." if rel in ("", ".") else rel) + "/"
        return rel


def find_loops(root: str | os.PathLike) -> list[FoundLoop]:
    """Every loop under ``root`` (a folder, walked recursively; a file is its own one loop).

    Sorted by path (natural order of names).  Hidden files and folders are skipped; symbolic
    links to folders are not followed (no cycles).

    Raises
    ------
    msus.errors.LoadError
        ``root`` does not exist.
    """
    root = Path(root)
    if root.is_file():
        return [FoundLoop(root)]
    if not root.is_dir():
        raise LoadError(f"{root.name or root}: no such file or folder")
    out: list[FoundLoop] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted((d for d in dirs if not d.startswith(".")), key=_natural)
        names = sorted((f for f in files if not f.startswith(".")), key=_natural)
        out.extend(_loops_in(Path(here), [Path(here) / f for f in names if (Path(here) / f).is_file()]))
        if len(out) > MAX_LOOPS:
            raise LoadError(f"{root.name}: more than {MAX_LOOPS} loops under this folder; give a smaller tree")
    return out


def _natural(name: str):
    from msus.io.folder import _natural_key

    return _natural_key(Path(name))


def _loops_in(folder: Path, files: list[Path]) -> list[FoundLoop]:
    """The loops of one folder's own files (not its subfolders)."""
    from msus.io import sniff
    from msus.io.folder import _head, _read_headers

    kinds: dict[str, list[Path]] = {}
    for p in files:
        kinds.setdefault(sniff(_head(p)) or "unknown", []).append(p)
    loops: list[FoundLoop] = []
    single_series: dict[str, list[Path]] = {}
    for p, ds, pos in _read_headers(kinds.get("dicom", [])):
        if ds is None:
            loops.append(FoundLoop(p))  # damaged: opened alone, so that its error is reported
        elif pos is None:
            continue  # no image (DICOMDIR, SR, presentation state)
        elif int(ds.get("NumberOfFrames", 1) or 1) > 1:
            loops.append(FoundLoop(p))
        else:
            single_series.setdefault(str(ds.get("SeriesInstanceUID", "") or ""), []).append(p)
    for uid, members in single_series.items():
        if uid and len(members) > 1:
            loops.append(FoundLoop(folder, uid, "dicom-series"))
        else:
            loops.extend(FoundLoop(p) for p in members)
    images = kinds.get("image", [])
    if len(images) > 1 and not kinds.get("dicom"):
        loops.append(FoundLoop(folder, None, "image-sequence"))
    else:
        loops.extend(FoundLoop(p) for p in images)
    loops.extend(FoundLoop(p) for p in kinds.get("video", []) + kinds.get("zip", []))
    loops.extend(FoundLoop(p) for p in kinds.get("unknown", []) if _looks_like_a_loop(p))
    return sorted(loops, key=lambda lp: (_natural(lp.path.name), lp.series or ""))


def _looks_like_a_loop(p: Path) -> bool:
    if p.name.upper().startswith(_SKIP_NAMES):
        return False
    return p.suffix.lower() in _MEDIA_SUFFIXES or p.suffix == ""
