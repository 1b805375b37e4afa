"""The tear flag (moved to :mod:`msus.analysis.classify`; these names stay importable here)."""

from msus.analysis.classify import CLASSES, DEFAULT_THRESHOLDS_PATH, DISCLAIMER, Finding, classify, load_thresholds

__all__ = ["CLASSES", "DEFAULT_THRESHOLDS_PATH", "DISCLAIMER", "Finding", "classify", "load_thresholds"]
