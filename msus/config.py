"""Settings: one module, one meaning per setting.

Values come, in increasing priority, from the defaults below, a TOML file, and environment
variables.  The TOML file is ``$MSUS_CONFIG`` if set, else ``msus.toml`` in the working
directory if it exists; its keys are the field names of :class:`Settings` (top level or under
an ``[app]`` table)::

    loops_dir = "/srv/ultrasound"     # server folder the app may open files from
    upload_limit_mb = 1024

Environment variables (``MSUS_`` + field name in capitals): ``MSUS_LOOPS_DIR``,
``MSUS_DATA_DIR``, ``MSUS_SAMPLES_DIR``, ``MSUS_UPLOAD_LIMIT_MB``, ``MSUS_FRAME_STORE_MB``,
``MSUS_JPEG_QUALITY``, ``MSUS_MAX_OPEN_LOOPS``.  A bad value raises
:class:`msus.errors.MsusError` with one line.

``MSUS_DATA_DIR`` is where msus keeps its own data (the SQLite findings store, the PACS outbox
locks, the teaching library); :func:`data_dir` gives it to every caller (the store reads it
without the TOML file, so a CLI run needs no app settings).  Logging is configured from
``MSUS_LOG_LEVEL`` and ``MSUS_LOG`` by :mod:`msus.logs`.

Memory limits of the library (any caller, not only the app) are environment settings read by
:mod:`msus.limits`: ``MSUS_MAX_FRAME_MB`` (64, one decoded frame), ``MSUS_MAX_LOOP_MB`` (16384, a
whole loop decoded), ``MSUS_FRAME_CACHE_MB`` (512, decoded frames kept, shared by all loops) and
``MSUS_MAX_INFLATE_MB`` (1024, a deflated DICOM inflated); see ``docs/security.md``.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from msus.errors import MsusError

ROOT = Path(__file__).resolve().parents[1]


def data_dir(env=None) -> Path:
    """msus's own data folder: ``MSUS_DATA_DIR``, else per user (``$XDG_DATA_HOME/msus`` or
    ``~/.local/share/msus``; ``%LOCALAPPDATA%\\msus``; ``~/Library/Application Support/msus``).
    Not created here."""
    env = os.environ if env is None else env
    if env.get("MSUS_DATA_DIR"):
        return Path(env["MSUS_DATA_DIR"]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "msus"


@dataclass(frozen=True)
class Settings:
    """App settings.

    Attributes
    ----------
    loops_dir
        Server folder whose files the app may open by path (never outside it).
    data_dir
        msus's own data folder (findings store, outbox, teaching library): :func:`data_dir`.
    samples_dir
        Folder of bundled sample loops listed in the sample picker.
    upload_limit_mb
        Largest accepted upload, in MB (default 1024 = 1 GB).
    frame_store_mb
        Memory bound, in MB, for JPEG-encoded frames kept for the browser player.
    jpeg_quality
        JPEG quality (1–100) of frames sent to the browser (display only; measurements use
        the decoded frame coordinates, not these pixels).
    max_open_loops
        Loops the app keeps open at once, shared by all sessions; the least recently used one
        beyond it is closed (its file handle and decoded frames released).
    """

    loops_dir: Path = ROOT / ".msus-data"
    data_dir: Path = field(default_factory=data_dir)
    samples_dir: Path = ROOT / "samples"
    upload_limit_mb: int = 1024
    frame_store_mb: int = 768
    jpeg_quality: int = 90
    max_open_loops: int = 6

    def __post_init__(self):
        for name in ("upload_limit_mb", "frame_store_mb", "max_open_loops"):
            if getattr(self, name) < 1:
                raise MsusError(f"setting {name} must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.jpeg_quality <= 100:
            raise MsusError(f"setting jpeg_quality must be 1–100, got {self.jpeg_quality}")


def _coerce(name: str, value, kind):
    try:
        if kind is Path:
            return Path(os.path.expanduser(str(value)))
        return int(value)
    except (TypeError, ValueError):
        raise MsusError(f"setting {name} must be {'a path' if kind is Path else 'an integer'}, got {value!r}") from None


def load_settings(env: dict | None = None, config_file: str | os.PathLike | None = None) -> Settings:
    """Settings from defaults, the TOML file and the environment (later wins).

    Parameters
    ----------
    env
        Environment mapping (default ``os.environ``).
    config_file
        TOML file to read (default ``$MSUS_CONFIG``, else ``./msus.toml`` when present).
    """
    env = os.environ if env is None else env
    kinds = {f.name: (Path if f.name.endswith("_dir") else int) for f in fields(Settings)}
    values: dict = {}
    path = config_file or env.get("MSUS_CONFIG") or ("msus.toml" if Path("msus.toml").is_file() else None)
    if path:
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except OSError as e:
            raise MsusError(f"cannot read settings file {path}: {e.strerror or e}") from e
        except tomllib.TOMLDecodeError as e:
            raise MsusError(f"settings file {path} is not valid TOML: {e}") from e
        table = doc.get("app", doc)
        for k, v in table.items():
            if k in kinds:
                values[k] = _coerce(k, v, kinds[k])
    for k, kind in kinds.items():
        v = env.get("MSUS_" + k.upper())
        if v not in (None, ""):
            values[k] = _coerce(k, v, kind)
    return replace(Settings(), **values)
