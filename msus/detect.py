"""Moved to :mod:`msus.analysis.detect` (this name stays importable)."""

from msus.analysis.detect import *  # noqa: F401,F403
