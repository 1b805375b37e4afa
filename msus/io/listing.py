"""What the app's samples and data folders offer: the loops listed in a folder (:func:`list_loops`),
a typed path resolved inside a folder and refused outside it (:func:`resolve_under`), and a stored
loop found again by its file name (:func:`find_by_name`).
"""

from __future__ import annotations

from pathlib import Path

from msus.errors import LoadError

#: Files in a samples/data folder that are not loops.
_SKIP_SUFFIXES = {".json", ".md", ".txt", ".toml", ".py", ".csv", ".mat", ".sqlite3", ".sqlite3-wal", ".sqlite3-shm"}
#: The sample a new user sees first: the loop the project exists for (a full-thickness tear).
PREFERRED_SAMPLE = "phantom_full_tear.dcm"
MAX_LISTED = 500


_FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _is_frame_folder(d: Path) -> bool:
    """A folder of still images (one loop, frames in name order) rather than a folder of loops."""
    try:
        files = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError:
        return False
    frames = [p for p in files if p.suffix.lower() in _FRAME_SUFFIXES]
    return len(frames) >= 2 and len(frames) >= len(files) - 2  # allow a NOTICE/README beside them


def list_loops(folder: Path) -> list[Path]:
    """Loops in ``folder``: files directly in it or one level down, and folders of still frames
    (listed once, as the folder); sorted; [] if it does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    frame_dirs = set()
    for p in sorted(folder.rglob("*")):
        if len(out) >= MAX_LISTED:
            break
        rel = p.relative_to(folder)
        if len(rel.parts) > 2 or any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_dir():
            if len(rel.parts) == 1 and _is_frame_folder(p):
                frame_dirs.add(p)
                out.append(p)
            continue
        if p.parent in frame_dirs:
            continue
        if p.suffix.lower() not in _SKIP_SUFFIXES and not p.name.startswith(("NOTICE", "README", "LICENSE")):
            out.append(p)
    return out


def default_sample_index(names: list[str]) -> int:
    """Index of :data:`PREFERRED_SAMPLE` in ``names`` (0 when absent)."""
    return names.index(PREFERRED_SAMPLE) if PREFERRED_SAMPLE in names else 0


def resolve_under(folder: Path, user_path: str) -> Path:
    """Resolve ``user_path`` (relative to ``folder``, or absolute) and refuse anything outside it.

    Symlinks are resolved before the check, so a link pointing out of the folder is refused too.
    """
    text = (user_path or "").strip()
    if not text:
        raise LoadError("type a path inside the data folder")
    if "\x00" in text:
        raise LoadError("that path contains a NUL character")
    try:
        root = Path(folder).expanduser().resolve()
        p = Path(text).expanduser()
        p = (p if p.is_absolute() else root / p).resolve()
    except (RuntimeError, OSError):  # Python raises RuntimeError on a symlink loop
        raise LoadError(f"{text}: a symbolic link loop (the link points back to itself)") from None
    if p != root and root not in p.parents:
        raise LoadError(f"refused: {text} is outside the data folder {root}")
    if not p.exists():
        raise LoadError(f"no such file in the data folder: {p.relative_to(root)}")
    return p


def find_by_name(name: str, folders) -> tuple[str, str] | None:
    """Where a loop's file is: (kind, path relative to its folder) for the first of ``folders``
    (pairs of kind and folder) that lists it, matched by file name; None if in none.

    A name that is itself a relative path (``sub/loop.dcm``) is matched exactly first.
    """
    name = (name or "").strip()
    if not name or name.startswith("<"):
        return None
    for kind, folder in folders:
        folder = Path(folder)
        loops = list_loops(folder)
        rels = [str(p.relative_to(folder)) for p in loops]
        if name in rels:
            return kind, name
        base = Path(name).name
        for rel, p in zip(rels, loops):
            if p.name == base:
                return kind, rel
    return None
