"""The analysis thresholds as typed, validated, frozen dataclasses read from ``thresholds.toml``.

``load_thresholds(path=None) -> Thresholds``: the packaged file, with any keys of ``path`` or of
the file named by the environment variable ``MSUS_THRESHOLDS`` replacing the defaults.  Unknown
sections or keys, values of the wrong type and values out of range are refused with a one-line
:class:`~msus.errors.AnalysisError`.

Sections are attributes (``th.defect.min_contrast``); ``th["defect"]["min_contrast"]`` reads
the same value (the mapping form older callers use).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from msus.errors import AnalysisError

DEFAULT_THRESHOLDS_PATH = Path(__file__).with_name("thresholds.toml")


class _Section:
    """Mapping-style read access (``section["key"]``) on a frozen dataclass."""

    def __getitem__(self, key: str):
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DefectThresholds(_Section):
    """Echo evidence: when a dark region between the fasciae is a defect (see the TOML)."""

    min_contrast: float
    min_thickness_fraction: float
    min_length_mm: float
    min_length_px: float
    stump_margin_mm: float
    stump_margin_px: float
    max_inside_level: float
    max_power_ratio: float
    min_confidence: float
    single_frame_confidence: float
    single_frame_max_power_ratio: float
    pair_min_confidence: float
    pair_max_power_ratio: float
    min_parallel_ratio: float
    fascia_tail_level: float
    fascia_tail_max: float


@dataclass(frozen=True)
class MotionThresholds(_Section):
    """Motion evidence: when the displacement along the axis has a step (see the TOML)."""

    min_step_mm: float
    min_step_px: float
    min_step_share: float
    full_separating_fraction: float
    min_separating_fraction: float
    min_tear_length_mm: float
    max_step_noise_ratio: float
    min_step_localisation: float
    min_clot_gain: float
    min_clot_share: float
    reverse_min_lengthening: float
    reverse_min_thinning: float


@dataclass(frozen=True)
class ClassificationThresholds(_Section):
    """The flag from the fused evidence (see the TOML)."""

    full_thickness_fraction: float
    full_min_retraction_mm: float
    full_min_retraction_px: float
    retraction_support_fraction: float
    retraction_mm: float
    retraction_px: float
    min_contraction_motion_mm: float
    min_contraction_motion_px: float
    stable_gap_mm: float


@dataclass(frozen=True)
class TrackingThresholds(_Section):
    """Stump tracking quality (see the TOML)."""

    max_fb_error_px: float
    min_reliable_share: float


#: Values that are shares (0..1); every other value must be ≥ 0.
_FRACTIONS = {
    "min_contrast", "min_thickness_fraction", "min_confidence", "single_frame_confidence",
    "pair_min_confidence", "full_thickness_fraction", "retraction_support_fraction",
    "min_reliable_share", "full_separating_fraction", "min_separating_fraction", "min_step_share",
    "min_clot_gain", "min_clot_share", "min_parallel_ratio", "fascia_tail_max",
    "reverse_min_lengthening", "reverse_min_thinning",
}


@dataclass(frozen=True)
class Thresholds(_Section):
    """Every threshold of the analysis, one frozen dataclass per TOML section."""

    defect: DefectThresholds
    motion: MotionThresholds
    classification: ClassificationThresholds
    tracking: TrackingThresholds

    @classmethod
    def from_mapping(cls, data: dict, source: str = "thresholds") -> "Thresholds":
        """Build and validate from parsed TOML (every section and key present)."""
        sections = {f.name: f.type for f in fields(cls)}
        unknown = set(data) - set(sections)
        if unknown:
            raise AnalysisError(f"{source}: unknown section [{sorted(unknown)[0]}]")
        kinds = {"defect": DefectThresholds, "motion": MotionThresholds,
                 "classification": ClassificationThresholds, "tracking": TrackingThresholds}
        built = {}
        for name, kind in kinds.items():
            built[name] = _section(kind, data.get(name), name, source)
        return cls(**built)


def _section(kind, values, name: str, source: str):
    if not isinstance(values, dict):
        raise AnalysisError(f"{source}: section [{name}] is missing")
    names = [f.name for f in fields(kind)]
    unknown = set(values) - set(names)
    if unknown:
        raise AnalysisError(f"{source}: unknown key {name}.{sorted(unknown)[0]}")
    missing = [k for k in names if k not in values]
    if missing:
        raise AnalysisError(f"{source}: key {name}.{missing[0]} is missing")
    out = {}
    for k in names:
        v = values[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise AnalysisError(f"{source}: {name}.{k} must be a number, not {v!r}")
        v = float(v)
        if not (v >= 0.0) or v == float("inf"):
            raise AnalysisError(f"{source}: {name}.{k} must be a finite number ≥ 0, not {v}")
        if k in _FRACTIONS and v > 1.0:
            raise AnalysisError(f"{source}: {name}.{k} is a share and must lie in 0..1, not {v}")
        out[k] = v
    return kind(**out)


def _read(path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise AnalysisError(f"thresholds file {path} not found") from None
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"thresholds file {path} is not valid TOML: {exc}") from exc


def load_thresholds(path: str | os.PathLike | None = None) -> Thresholds:
    """Thresholds: the packaged file, overridden key by key by ``path`` or ``$MSUS_THRESHOLDS``.

    Raises
    ------
    AnalysisError
        The override file is missing, not valid TOML, or holds an unknown key or a bad value.
    """
    base = _read(DEFAULT_THRESHOLDS_PATH)
    path = path or os.environ.get("MSUS_THRESHOLDS") or None
    source = "thresholds"
    if path:
        over = _read(path)
        source = f"thresholds file {path}"
        for sec, vals in over.items():
            if not isinstance(vals, dict) or sec not in base:
                raise AnalysisError(f"{source}: unknown section [{sec}]")
            base[sec] = {**base[sec], **vals}
    return Thresholds.from_mapping(base, source)


def as_thresholds(th) -> Thresholds:
    """``th`` as :class:`Thresholds` (None → the configured file; a nested dict is validated)."""
    if th is None:
        return load_thresholds()
    if isinstance(th, Thresholds):
        return th
    if isinstance(th, dict):
        base = _read(DEFAULT_THRESHOLDS_PATH)
        for sec, vals in th.items():
            if isinstance(vals, dict) and sec in base:
                base[sec] = {**base[sec], **vals}
        return Thresholds.from_mapping(base, "thresholds")
    raise AnalysisError("thresholds must come from load_thresholds()")
