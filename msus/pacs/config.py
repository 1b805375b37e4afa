"""Where the DICOMweb archive (PACS) is and how to log in — from the environment or a file.

Nothing here is ever hard-coded: the archive URL and credentials come from environment
variables, or from a TOML file named by ``MSUS_PACS_CONFIG``; environment variables win over
the file, key by key.

========================  ==================  ==============================================
environment               TOML key            meaning
========================  ==================  ==============================================
``MSUS_PACS_URL``         ``url``             DICOMweb root, e.g. ``https://pacs/dicom-web``
``MSUS_PACS_AUTH``        ``auth``            ``none`` (default), ``basic`` or ``bearer``
``MSUS_PACS_USER``        ``user``            user name for ``basic``
``MSUS_PACS_PASSWORD``    ``password``        password for ``basic``
``MSUS_PACS_TOKEN``       ``token``           token for ``bearer``
``MSUS_PACS_VERIFY_TLS``  ``verify_tls``      ``true`` (default), ``false``, or a CA bundle path
``MSUS_PACS_TIMEOUT_S``   ``timeout_s``       seconds to wait for a connection and for each read
``MSUS_PACS_CACHE_MB``    ``cache_mb``        frames kept locally per opened loop, in MB
========================  ==================  ==============================================

The TOML file may hold the keys at top level or under a ``[pacs]`` table.  Secrets never appear
in ``repr()`` or messages.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from msus.errors import PacsConfigError

AUTH_MODES = ("none", "basic", "bearer")
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CACHE_MB = 256
ENV_KEYS = {
    "url": "MSUS_PACS_URL",
    "auth": "MSUS_PACS_AUTH",
    "user": "MSUS_PACS_USER",
    "password": "MSUS_PACS_PASSWORD",
    "token": "MSUS_PACS_TOKEN",
    "verify_tls": "MSUS_PACS_VERIFY_TLS",
    "timeout_s": "MSUS_PACS_TIMEOUT_S",
    "cache_mb": "MSUS_PACS_CACHE_MB",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}



@dataclass(frozen=True)
class PacsConfig:
    """How to reach one DICOMweb archive.

    Parameters
    ----------
    url
        DICOMweb root (QIDO-RS, WADO-RS and STOW-RS share it), ``http://`` or ``https://``.
    auth
        ``"none"``, ``"basic"`` or ``"bearer"``.
    user, password
        Credentials for HTTP basic authentication.
    token
        Bearer token.
    verify_tls
        ``True`` verifies server certificates against the system store (default); a string is
        a CA bundle path; ``False`` turns verification off (only for test archives).
    timeout_s
        Bound on connecting and on every read, in seconds (never unbounded).
    cache_mb
        Bound on the frame bytes kept locally per opened loop, in MB.
    source
        Where the settings came from (for messages): ``"environment"``, a file path, or both.
    """

    url: str
    auth: str = "none"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    verify_tls: bool | str = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    cache_mb: float = DEFAULT_CACHE_MB
    source: str = "arguments"

    def __post_init__(self):
        url = (self.url or "").strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PacsConfigError(
                f"the archive URL must start with http:// or https:// and name a host (from {self.source})"
            )
        if parts.username or parts.password:
            raise PacsConfigError("put archive credentials in MSUS_PACS_USER/MSUS_PACS_PASSWORD, not in the URL")
        object.__setattr__(self, "url", url)
        auth = (self.auth or "none").strip().lower()
        if auth not in AUTH_MODES:
            raise PacsConfigError(f"archive authentication must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        object.__setattr__(self, "auth", auth)
        if auth == "basic" and not (self.user and self.password is not None):
            raise PacsConfigError("basic authentication needs MSUS_PACS_USER and MSUS_PACS_PASSWORD")
        if auth == "bearer" and not self.token:
            raise PacsConfigError("bearer authentication needs MSUS_PACS_TOKEN")
        try:
            t = float(self.timeout_s)
        except (TypeError, ValueError):
            raise PacsConfigError(f"the archive timeout must be a number of seconds, got {self.timeout_s!r}") from None
        if not (math.isfinite(t) and 0 < t <= 600):
            raise PacsConfigError("the archive timeout must be between 0 and 600 s")
        object.__setattr__(self, "timeout_s", t)
        try:
            c = float(self.cache_mb)
        except (TypeError, ValueError):
            raise PacsConfigError(f"the frame cache size must be a number of MB, got {self.cache_mb!r}") from None
        if not (math.isfinite(c) and c >= 1):
            raise PacsConfigError("the frame cache size must be at least 1 MB")
        object.__setattr__(self, "cache_mb", c)

    @property
    def host(self) -> str:
        """``host[:port]`` of the archive (safe to show)."""
        return urlsplit(self.url).netloc

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts in seconds for :mod:`requests`."""
        return (min(self.timeout_s, 10.0), self.timeout_s)

    @property
    def insecure(self) -> bool:
        """True when TLS certificates are not verified for an https archive."""
        return self.url.startswith("https://") and self.verify_tls is False

    def describe(self) -> str:
        """One line for users: URL, auth mode and TLS checking, never the secrets."""
        tls = ""
        if self.url.startswith("https://"):
            tls = ", TLS not verified" if self.verify_tls is False else ", TLS verified"
        who = f" as {self.user}" if self.auth == "basic" else ""
        return f"{self.url} (auth {self.auth}{who}{tls})"


def _parse_bool_or_path(value, source: str) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    if text and Path(text).expanduser().exists():
        return str(Path(text).expanduser())
    raise PacsConfigError(
        f"verify_tls must be true, false or an existing CA bundle path (from {source}), got {text!r}"
    )


def _read_file(path: Path) -> dict:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PacsConfigError(f"the archive configuration file {path} does not exist") from None
    except OSError as exc:
        raise PacsConfigError(f"cannot read the archive configuration file {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PacsConfigError(f"the archive configuration file {path} is not valid TOML: {exc}") from exc
    table = raw.get("pacs", raw)
    if not isinstance(table, dict):
        raise PacsConfigError(f"[pacs] in {path} must be a table")
    unknown = sorted(set(table) - set(ENV_KEYS))
    if unknown:
        raise PacsConfigError(f"unknown key(s) in {path}: {', '.join(unknown)}")
    return dict(table)


def configured(env: Mapping[str, str] | None = None) -> bool:
    """True when an archive is configured (``MSUS_PACS_URL`` or ``MSUS_PACS_CONFIG`` set)."""
    env = os.environ if env is None else env
    return bool(env.get("MSUS_PACS_URL") or env.get("MSUS_PACS_CONFIG"))


def load_config(env: Mapping[str, str] | None = None) -> PacsConfig:
    """The archive configuration from ``MSUS_PACS_CONFIG`` (TOML) and ``MSUS_PACS_*`` variables.

    Raises
    ------
    PacsConfigError
        No archive configured, or a value is invalid (one-line message, never a secret).
    """
    env = os.environ if env is None else env
    values: dict = {}
    sources = []
    cfg_path = env.get("MSUS_PACS_CONFIG")
    if cfg_path:
        path = Path(cfg_path).expanduser()
        values.update(_read_file(path))
        sources.append(str(path))
    from_env = {key: env[var] for key, var in ENV_KEYS.items() if env.get(var) not in (None, "")}
    if from_env:
        sources.append("environment")
    values.update(from_env)
    source = " + ".join(sources) or "environment"
    if not values.get("url"):
        raise PacsConfigError("no archive configured: set MSUS_PACS_URL (or MSUS_PACS_CONFIG to a TOML file)")
    if "verify_tls" in values:
        values["verify_tls"] = _parse_bool_or_path(values["verify_tls"], source)
    return PacsConfig(**values, source=source)
