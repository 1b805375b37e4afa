"""The tear flag: classification from the measured evidence, with reasons.

Classes (a flag for review, never a diagnosis):

``suspected_full_thickness``
    A defect was found and spans at least ``full_thickness_fraction`` of the muscle thickness
    and its ends move apart on contraction (gap widens by ≥ ``full_min_retraction_mm``; not
    required when the retraction could not be measured), or it spans at least
    ``retraction_support_fraction`` and the gap widens by at least ``retraction_mm``
    (``retraction_px`` when uncalibrated).  Free stumps retract when the muscle contracts.
``partial``
    A defect was found but does not meet the above.
``no_defect``
    No region between the fasciae passed the defect tests of ``[defect]``.

Thresholds live in ``msus/thresholds.toml`` (documented there and in docs/analysis.md); set the
environment variable ``MSUS_THRESHOLDS`` to a TOML file to override any of them.

Peetrons (ultrasound) and BAMIC (MRI-based) descriptors are added only where they follow from
the measurements, and always as descriptors, not grades: one longitudinal view cannot measure the
cross-sectional area or craniocaudal length that BAMIC grades 1–3 need.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from msus.errors import AnalysisError

CLASSES = ("suspected_full_thickness", "partial", "no_defect")
DISCLAIMER = "flag for review, not a diagnosis"
DEFAULT_THRESHOLDS_PATH = Path(__file__).with_name("thresholds.toml")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_thresholds(path: str | os.PathLike | None = None) -> dict:
    """Thresholds: the packaged file, overridden by ``path`` or ``$MSUS_THRESHOLDS``.

    Raises
    ------
    AnalysisError
        The override file is missing or not valid TOML.
    """
    with open(DEFAULT_THRESHOLDS_PATH, "rb") as fh:
        th = tomllib.load(fh)
    path = path or os.environ.get("MSUS_THRESHOLDS") or None
    if path:
        try:
            with open(path, "rb") as fh:
                over = tomllib.load(fh)
        except FileNotFoundError:
            raise AnalysisError(f"thresholds file {path} not found") from None
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise AnalysisError(f"thresholds file {path} is not valid TOML: {exc}") from None
        th = _merge(th, over)
    return th


@dataclass(frozen=True)
class Finding:
    """The flag and its evidence.

    Attributes
    ----------
    classification
        One of :data:`CLASSES`.
    reasons
        Human-readable sentences, each naming one piece of evidence.
    thickness_fraction
        Defect thickness fraction used (0 when no defect).
    retraction_mm, retraction_px
        Gap at contraction minus gap at rest (mm None when uncalibrated).
    peetrons, bamic
        Descriptors (not grades) where they follow from the measurements, else None.
    disclaimer
        Always "flag for review, not a diagnosis".
    """

    classification: str
    reasons: tuple[str, ...]
    thickness_fraction: float
    retraction_mm: float | None
    retraction_px: float | None
    peetrons: str | None
    bamic: str | None
    disclaimer: str = DISCLAIMER

    @property
    def flagged(self) -> bool:
        return self.classification == "suspected_full_thickness"

    def to_dict(self) -> dict:
        return {
            "classification": self.classification,
            "reasons": list(self.reasons),
            "thickness_fraction": self.thickness_fraction,
            "retraction_mm": self.retraction_mm,
            "retraction_px": self.retraction_px,
            "peetrons": self.peetrons,
            "bamic": self.bamic,
            "disclaimer": self.disclaimer,
        }


def _pct(v: float) -> str:
    return f"{v * 100:.0f} %"


def classify(
    *,
    defect_found: bool,
    thickness_fraction: float,
    gap_rest_mm: float | None = None,
    gap_contraction_mm: float | None = None,
    gap_rest_px: float | None = None,
    gap_contraction_px: float | None = None,
    contrast: float | None = None,
    notes=(),
    contracted: bool = True,
    thresholds: dict | None = None,
) -> Finding:
    """Classify the evidence and say why.

    Parameters
    ----------
    defect_found
        A defect passed the detector's tests on the rest or contraction frame.
    thickness_fraction
        Largest share of the muscle thickness the defect spans (0..1).
    gap_rest_mm, gap_contraction_mm
        Gaps along the muscle axis, mm (None when uncalibrated or unmeasured).
    gap_rest_px, gap_contraction_px
        The same in px.
    contrast
        Defect darkness relative to the muscle (0..1), for the reasons.
    notes
        Detector remarks (shown when no defect was found).
    contracted
        The muscle visibly moved between the two frames; without a contraction the gap change
        says nothing about retraction and is not used.
    thresholds
        Parsed thresholds; default :func:`load_thresholds`.
    """
    th = (thresholds or load_thresholds())["classification"]
    retr_mm = None
    if gap_rest_mm is not None and gap_contraction_mm is not None:
        retr_mm = float(gap_contraction_mm - gap_rest_mm)
    retr_px = None
    if gap_rest_px is not None and gap_contraction_px is not None:
        retr_px = float(gap_contraction_px - gap_rest_px)
    reasons: list[str] = []
    if not defect_found:
        reasons.append("no hypoechoic defect found between the fasciae")
        reasons.extend(str(n) for n in notes)
        return Finding("no_defect", tuple(reasons), 0.0, retr_mm, retr_px,
                       "Peetrons 0 descriptor (no visible fibre discontinuity)", None)
    frac = float(thickness_fraction)
    reasons.append(f"defect spans {_pct(frac)} of the muscle thickness")
    if contrast is not None:
        reasons.append(f"defect is {_pct(contrast)} darker than the surrounding muscle")
    retracts = False
    if retr_mm is not None:
        if retr_mm >= th["stable_gap_mm"]:
            reasons.append(f"gap widens {retr_mm:.1f} mm on contraction")
        elif retr_mm <= -th["stable_gap_mm"]:
            reasons.append(f"gap narrows {-retr_mm:.1f} mm on contraction")
        else:
            reasons.append(f"gap changes by {retr_mm:+.1f} mm on contraction (no retraction)")
        retracts = retr_mm >= th["retraction_mm"]
    elif retr_px is not None:
        reasons.append(f"gap changes by {retr_px:+.0f} px on contraction (uncalibrated)")
        retracts = retr_px >= th["retraction_px"]
    if not contracted:
        moves_apart = None  # no contraction between the frames: retraction cannot be judged
        reasons.append("no contraction between the two frames: retraction not assessed")
    elif retr_mm is not None:
        moves_apart = retr_mm >= th["full_min_retraction_mm"]
    elif retr_px is not None:
        moves_apart = retr_px >= th["full_min_retraction_px"]
    else:
        moves_apart = None  # not measured (one frame): the thickness fraction decides alone
    if frac >= th["full_thickness_fraction"] and moves_apart is not False:
        cls = "suspected_full_thickness"
        reasons.append(f"≥ {_pct(th['full_thickness_fraction'])} of the thickness: no fibres bridge the defect")
    elif frac >= th["full_thickness_fraction"]:
        cls = "partial"
        reasons.append("the ends do not move apart on contraction: fibres likely still bridge part of the defect")
    elif frac >= th["retraction_support_fraction"] and retracts and contracted:
        cls = "suspected_full_thickness"
        reasons.append("the ends retract on contraction, as free stumps do")
    else:
        cls = "partial"
        reasons.append(f"fibres bridge {_pct(1 - frac)} of the thickness")
    if cls == "suspected_full_thickness":
        peetrons = (
            "Peetrons 3 descriptor (complete rupture with retraction)"
            if retracts
            else "Peetrons 3 descriptor (complete discontinuity; retraction not shown)"
        )
        bamic = "BAMIC 4 descriptor (complete tear); site (a/b/c) not determined"
    else:
        peetrons = "Peetrons 2 descriptor (partial tear)"
        bamic = None  # grades 1-3 need cross-sectional area and length: not measurable here
    return Finding(cls, tuple(reasons), frac, retr_mm, retr_px, peetrons, bamic)
