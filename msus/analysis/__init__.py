"""Whole-loop tear analysis: frames → motion → echo and motion evidence → stumps → gap → flag.

``analyze(cine, ...) -> AnalysisResult``; the steps live in small modules of this package, each
a plain function taking arrays and returning a small frozen result (see docs/analysis.md):

=================  ===========================================================================
``roi``            region of interest, grey crops (views) of every frame
``motion``         motion energy, deformation, suggested rest and peak-contraction frames
``detect``         echo evidence: fasciae, straightened muscle, the dark defect (``Defect``)
``motion_defect``  motion evidence: displacement along the axis, the step across the thickness
``thickness``      muscle thickness (fascia ridge mid-lines) on every frame
``track``          stump ends followed through the loop (``Track``)
``fuse``           echo + motion → defect, stump ends, gap, thickness fraction
``classify``       the flag and its reasons (``Finding``, ``classify``)
``thresholds``     typed, validated thresholds from ``thresholds.toml`` (``MSUS_THRESHOLDS``)
``pipeline``       ``analyze`` and ``AnalysisResult``
=================  ===========================================================================
"""

from msus.analysis.classify import CLASSES, DISCLAIMER, Finding, classify
from msus.analysis.pipeline import AnalysisResult, _patch_offsets, analyze, keyframes_from_calipers
from msus.analysis.thresholds import Thresholds, load_thresholds

__all__ = ["AnalysisResult", "CLASSES", "DISCLAIMER", "Finding", "Thresholds", "analyze", "classify",
           "keyframes_from_calipers", "load_thresholds", "_patch_offsets"]
