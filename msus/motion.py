"""Moved to :mod:`msus.analysis.motion` (this name stays importable)."""

from msus.analysis.motion import *  # noqa: F401,F403
