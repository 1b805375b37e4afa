"""The ``msus`` command-line tool.

Each verb lives in its own module under :mod:`msus.commands` exposing ``add_parser(sub)`` and
``run(args) -> int``.  Errors: exit status 1 with one line ``msus: error: ...`` on stderr and no
traceback; usage errors exit 2 (argparse).  Tracebacks and library warnings (pydicom, PyAV…)
go to the standard ``logging`` log (:mod:`msus.logs`: the file ``$MSUS_LOG`` when set, at
``$MSUS_LOG_LEVEL``), never mixed into the one error line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from msus import __version__
from msus.errors import MsusError
from msus.logs import configure

VERBS = ("info", "measure", "analyze", "export", "samples", "pacs", "batch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msus", description="Review musculoskeletal ultrasound cine loops and measure tear gaps in mm."
    )
    parser.add_argument("--version", action="version", version=f"msus {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb in VERBS:
        try:
            mod = importlib.import_module(f"msus.commands.{verb}")
        except ModuleNotFoundError as exc:  # verb not built yet
            if exc.name != f"msus.commands.{verb}":
                raise
            continue
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def error(message: str) -> int:
    print(f"msus: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    try:
        configure()
    except MsusError as exc:  # a bad MSUS_LOG_LEVEL
        return error(str(exc))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except MsusError as exc:
        logger.info("msus %s: %s", args.verb, type(exc).__name__, exc_info=True)
        return error(str(exc))
    except KeyboardInterrupt:
        return error("interrupted")
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the edge: never a traceback for the user (the log keeps it)
        logger.exception("unexpected error in msus %s", args.verb)
        return error(f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                     " (details in the log: set MSUS_LOG=FILE)")


if __name__ == "__main__":
    raise SystemExit(main())
