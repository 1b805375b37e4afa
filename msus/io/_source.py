"""Turn a user's source (path, bytes, binary file object) into a readable byte buffer.

Files are memory-mapped, so opening a 300 MB loop costs neither 300 MB of RAM nor a full read:
readers slice the frames they need.  Slicing a memory map needs no shared file position, so
frames may be decoded from several threads at once.
"""

from __future__ import annotations

import io
import mmap
import os
from pathlib import Path

from msus.errors import LoadError, UnsupportedFormat


def shown_name(name: str) -> str:
    """A file name as valid text: bytes a non-UTF-8 file system gave (surrogate escapes) become U+FFFD."""
    return str(name).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Blob:
    """A read-only byte buffer with a name and a ``close``.

    Attributes
    ----------
    buf
        ``bytes`` or ``mmap`` (supports slicing and ``len``).
    name
        File name (no directories) or ``"<bytes>"``; safe to show (never PHI from headers).
    path
        The file path when the source was a file on disk, else ``None``.
    """

    def __init__(self, buf, name: str, path: Path | None = None, closer=None):
        self.buf = buf
        self.name = shown_name(name)
        self.path = path
        self._closer = closer

    def __len__(self) -> int:
        return len(self.buf)

    def head(self, n: int = 4096) -> bytes:
        return bytes(self.buf[:n])

    def stream(self) -> io.BufferedIOBase:
        """A fresh seekable file object over the buffer (no copy for mmaps)."""
        if isinstance(self.buf, mmap.mmap):
            return BufferReader(self.buf)
        return io.BytesIO(self.buf)

    def close(self) -> None:
        if self._closer is not None:
            try:
                self._closer()
            except (OSError, ValueError, BufferError):  # an exported view may still be alive
                pass
            self._closer = None


class BufferReader(io.RawIOBase):
    """A seekable, read-only file object over a buffer (mmap, memoryview, bytes) with its own
    position: nothing is copied but what is read."""

    def __init__(self, buf, size: int | None = None):
        self._buf = buf
        self._size = len(buf) if size is None else size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = {0: 0, 1: self._pos, 2: self._size}[whence] + offset
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def read(self, n: int = -1) -> bytes:
        end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
        out = self._slice(self._pos, end) if end > self._pos else b""
        self._pos = max(self._pos, end)
        return out

    def _slice(self, a: int, b: int) -> bytes:
        return bytes(self._buf[a:b])

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def open_file(path: Path) -> Blob:
    """Memory-map a file (an empty file gives an empty bytes buffer)."""
    try:
        if not path.is_file():
            raise LoadError(f"{path.name}: not a regular file (a pipe, device or socket); msus reads only files and folders")
        size = path.stat().st_size
        if size == 0:
            return Blob(b"", path.name, path)
        fh = open(path, "rb")
    except PermissionError:
        raise LoadError(f"{path.name}: permission denied") from None
    except OSError as exc:
        raise LoadError(f"{path.name}: cannot open ({exc.strerror or exc})") from exc
    try:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        data = fh.read()
        fh.close()
        return Blob(data, path.name, path)

    def closer():
        mm.close()
        fh.close()

    return Blob(mm, path.name, path, closer)


def open_source(source) -> Blob:
    """A :class:`Blob` for a file path, bytes-like object or binary file object."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_symlink() and not path.exists():
            raise LoadError(f"{path.name}: a broken or looping symbolic link")
        if not path.exists():
            raise LoadError(f"{path.name or str(path)}: no such file or folder")
        return open_file(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Blob(bytes(source), "<bytes>")
    if hasattr(source, "read"):
        name = Path(str(getattr(source, "name", "") or "<stream>")).name
        try:
            if hasattr(source, "seek"):
                try:
                    source.seek(0)
                except (OSError, ValueError):
                    pass
            data = source.read()
        except (OSError, ValueError) as exc:
            raise LoadError(f"{name}: cannot read ({exc})") from exc
        if isinstance(data, str):
            raise UnsupportedFormat(f"{name}: opened in text mode; open the file in binary mode ('rb')")
        return Blob(bytes(data), name)
    raise UnsupportedFormat(f"cannot load a {type(source).__name__}: give a path, bytes or a binary file object")
