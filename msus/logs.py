"""Logging for the edges (the ``msus`` CLI and the app), configured once from the environment.

Library modules only do ``logger = logging.getLogger(__name__)``; :func:`configure` is called by
``msus.cli.main`` and by ``app.py``:

* ``MSUS_LOG_LEVEL`` — ``DEBUG``, ``INFO``, ``WARNING`` (default) or ``ERROR``;
* ``MSUS_LOG`` — a file to append the log to.  Without it the app logs to the server's stderr; the
  CLI logs nowhere (its terminal gets one ``msus: error:`` line) unless ``MSUS_LOG_LEVEL`` is set,
  then to stderr.

Privacy: a log record never carries exception messages (they may name a file, and file names can
carry a patient's name), nor another library's text (it may quote a header value).
:class:`SafeFormatter` writes each traceback of the chain (``raise … from err`` keeps the cause)
with its code locations and exception types only.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping

from msus.errors import MsusError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _exc_lines(te: traceback.TracebackException, seen: set[int]):
    seen.add(id(te))
    if te.__cause__ is not None and id(te.__cause__) not in seen:
        yield from _exc_lines(te.__cause__, seen)
        yield "\nThe above exception was the direct cause of the following exception:\n\n"
    elif te.__context__ is not None and not te.__suppress_context__ and id(te.__context__) not in seen:
        yield from _exc_lines(te.__context__, seen)
        yield "\nDuring handling of the above exception, another exception occurred:\n\n"
    yield "Traceback (most recent call last):\n"
    yield from te.stack.format()
    kind = te.exc_type.__qualname__ if te.exc_type is not None else "exception"
    module = getattr(te.exc_type, "__module__", "builtins")
    yield f"{kind if module == 'builtins' else module + '.' + kind} (message withheld)\n"


class SafeFormatter(logging.Formatter):
    """A formatter whose tracebacks keep locations and exception types, never messages.

    Records of other libraries (pydicom's "Invalid value for VR PN: …", a captured warning) are
    kept as their logger and level only: their text may quote a header value.
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.name != "msus" and not record.name.startswith("msus."):
            record = logging.makeLogRecord(dict(record.__dict__, msg="(library message withheld)", args=None))
        return super().format(record)

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        te = traceback.TracebackException(*ei, capture_locals=False)
        return "".join(_exc_lines(te, set())).rstrip("\n")


def level(env: Mapping[str, str] | None = None) -> int | None:
    """The level ``MSUS_LOG_LEVEL`` asks for (None when unset); a bad value is one-line MsusError."""
    env = os.environ if env is None else env
    raw = (env.get("MSUS_LOG_LEVEL") or "").strip().upper()
    if not raw:
        return None
    if raw not in LEVELS:
        raise MsusError(f"setting MSUS_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {raw!r}")
    return getattr(logging, raw)


def configure(*, app: bool = False, env: Mapping[str, str] | None = None) -> logging.Logger:
    """Set up the log once (repeated calls, e.g. Streamlit reruns, change nothing).

    The CLI (``app=False``) configures the root logger and turns library warnings (pydicom,
    PyAV…) into log records; the app configures the ``msus`` logger only (Streamlit owns the
    rest).  Returns the configured logger.
    """
    env = os.environ if env is None else env
    target = logging.getLogger("msus" if app else None)
    if any(getattr(h, "_msus", False) for h in target.handlers):
        return target
    wanted = level(env)
    path = env.get("MSUS_LOG")
    handler: logging.Handler
    try:
        if path:
            handler = logging.FileHandler(path)
        elif app or wanted is not None:
            handler = logging.StreamHandler(sys.stderr)
        else:
            handler = logging.NullHandler()
    except OSError:
        handler = logging.StreamHandler(sys.stderr) if app else logging.NullHandler()
    handler.setFormatter(SafeFormatter(_FORMAT))
    handler._msus = True  # type: ignore[attr-defined]
    target.addHandler(handler)
    target.setLevel(wanted if wanted is not None else (logging.INFO if path else logging.WARNING))
    if app:
        target.propagate = False
    else:
        logging.captureWarnings(True)
    return target
