"""Moved to :mod:`msus.analysis.track` (this name stays importable)."""

from msus.analysis.track import *  # noqa: F401,F403
