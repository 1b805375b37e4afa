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

Thresholds live in ``msus/analysis/thresholds.toml`` (documented there and in docs/analysis.md); set the
environment variable ``MSUS_THRESHOLDS`` to a TOML file to override any of them.

Peetrons (ultrasound) and BAMIC (MRI-based) descriptors are added only where they follow from
the measurements, and always as descriptors, not grades: one longitudinal view cannot measure the
cross-sectional area or craniocaudal length that BAMIC grades 1–3 need.
"""

from __future__ import annotations

from dataclasses import dataclass

from msus.analysis.thresholds import DEFAULT_THRESHOLDS_PATH, Thresholds, as_thresholds, load_thresholds
from msus.terms import Classification

__all__ = ["CLASSES", "DISCLAIMER", "DEFAULT_THRESHOLDS_PATH", "Finding", "Thresholds", "classify", "load_thresholds"]

CLASSES = tuple(Classification)
DISCLAIMER = "flag for review, not a diagnosis"


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


def _retraction(rmm, rpx, th, reasons: list[str]) -> tuple[bool, float | None, float | None]:
    """Whether the gap widens enough to call the ends retracting; adds the gap reason."""
    if rmm is not None:
        if rmm >= th.stable_gap_mm:
            reasons.append(f"gap widens {rmm:.1f} mm on contraction")
        elif rmm <= -th.stable_gap_mm:
            reasons.append(f"gap narrows {-rmm:.1f} mm on contraction")
        else:
            reasons.append(f"gap changes by {rmm:+.1f} mm on contraction (no retraction)")
        return rmm >= th.retraction_mm, rmm, None
    if rpx is not None:
        reasons.append(f"gap changes by {rpx:+.0f} px on contraction (uncalibrated)")
        return rpx >= th.retraction_px, None, rpx
    return False, None, None


def _echo_class(frac: float, retracts: bool, moves_apart, contracted: bool, th, reasons: list[str]) -> str:
    """The class the echo defect's thickness fraction and gap change give."""
    if frac >= th.full_thickness_fraction and moves_apart is not False:
        reasons.append(f"≥ {_pct(th.full_thickness_fraction)} of the thickness: no fibres bridge the defect")
        return "suspected_full_thickness"
    if frac >= th.full_thickness_fraction:
        reasons.append("the ends do not move apart on contraction: fibres likely still bridge part of the defect")
        return "partial"
    if frac >= th.retraction_support_fraction and retracts and contracted:
        reasons.append("the ends retract on contraction, as free stumps do")
        return "suspected_full_thickness"
    reasons.append(f"fibres bridge {_pct(1 - frac)} of the thickness")
    return "partial"


def motion_reason(motion) -> str:
    """The sentence of the motion evidence, in numbers."""
    unit, k = ("mm", 1.0) if motion.step_mm is not None else ("px", None)

    def v(mm, px):
        return mm if k else px

    if motion.found:
        left = abs(v(motion.left_displacement_mm, motion.left_displacement_px) or 0.0)
        right = abs(v(motion.right_displacement_mm, motion.right_displacement_px) or 0.0)
        verb = "separate" if motion.step_px > 0 else "come together"
        return (f"motion: the ends {verb} {left:.1f} {unit} and {right:.1f} {unit} on contraction across "
                f"{_pct(motion.separating_fraction)} of the thickness; the region between them moves with neither")
    prof = motion.separation_profile_mm if k else motion.separation_profile_px
    big = max((abs(p) for p in prof if p is not None), default=0.0)
    return (f"motion: no step in the displacement along the muscle (largest {big:.1f} {unit} across the "
            "depth): the fibres move together")


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
    thresholds=None,
    motion=None,
    echo_found: bool | None = None,
) -> Finding:
    """Classify the fused evidence and say why.

    Parameters
    ----------
    defect_found
        A defect was found (by the echo evidence, the motion evidence or both).
    thickness_fraction
        Largest share of the muscle thickness the defect spans (0..1), from both evidences.
    gap_rest_mm, gap_contraction_mm, gap_rest_px, gap_contraction_px
        Gaps along the muscle axis (None when uncalibrated or unmeasured).
    contrast
        Defect darkness relative to the muscle (0..1), for the reasons (echo evidence).
    notes
        Detector remarks (shown when no defect was found).
    contracted
        The muscle visibly moved between the two frames; without a contraction neither the gap
        change nor the motion evidence is used.
    thresholds
        :class:`~msus.analysis.thresholds.Thresholds`; default :func:`load_thresholds`.
    motion
        The motion evidence (:class:`~msus.analysis.motion_defect.MotionDefect`), or None for the
        echo evidence alone.
    echo_found
        The echo evidence found the defect (default: ``defect_found``).
    """
    all_th = as_thresholds(thresholds)
    th = all_th.classification
    echo_found = defect_found if echo_found is None else bool(echo_found)
    if motion is not None and not contracted:
        motion = None
    reasons: list[str] = []
    if not defect_found:
        reasons.append("no hypoechoic defect found between the fasciae")
        if motion is not None and motion.found:
            reasons.append(f"motion: a step over {_pct(motion.separating_fraction)} of the depth only and no dark "
                           "defect: not taken for a tear (intact compartments also slide past each other)")
        elif motion is not None:
            reasons.append(motion_reason(motion))
        reasons.extend(str(n) for n in notes)
        rmm = None if gap_rest_mm is None or gap_contraction_mm is None else float(gap_contraction_mm - gap_rest_mm)
        rpx = None if gap_rest_px is None or gap_contraction_px is None else float(gap_contraction_px - gap_rest_px)
        return Finding("no_defect", tuple(reasons), 0.0, rmm, rpx,
                       "Peetrons 0 descriptor (no visible fibre discontinuity)", None)
    frac = float(thickness_fraction)
    reasons.append(f"defect spans {_pct(frac)} of the muscle thickness")
    if echo_found and contrast is not None:
        reasons.append(f"echo: defect is {_pct(contrast)} darker than the surrounding muscle")
    elif not echo_found:
        reasons.append("echo: the defect is about as echogenic as muscle (a haematoma hides it); found by motion")
    rmm = None if gap_rest_mm is None or gap_contraction_mm is None else float(gap_contraction_mm - gap_rest_mm)
    rpx = None if gap_rest_px is None or gap_contraction_px is None else float(gap_contraction_px - gap_rest_px)
    retracts, _, _ = _retraction(rmm, rpx, th, reasons)
    cls = _fused_class(frac, retracts, rmm, rpx, contracted, motion, echo_found, all_th, reasons)
    return _finding(cls, reasons, frac, rmm, rpx, retracts)


def _fused_class(frac, retracts, rmm, rpx, contracted, motion, echo_found, all_th, reasons) -> str:
    th, tm = all_th.classification, all_th.motion
    if not contracted:
        moves_apart = None
        reasons.append("no contraction between the two frames: retraction not assessed")
    elif rmm is not None:
        moves_apart = rmm >= th.full_min_retraction_mm
    elif rpx is not None:
        moves_apart = rpx >= th.full_min_retraction_px
    else:
        moves_apart = None
    if motion is not None:
        reasons.append(motion_reason(motion))
        if motion.found and motion.step_px > 0 and motion.separating_fraction >= tm.full_separating_fraction:
            reasons.append("the step spans the whole thickness: no fibres hold the two ends together")
            return "suspected_full_thickness"
    if not echo_found:
        reasons.append(f"fibres move together over {_pct(1 - frac)} of the thickness")
        return "partial"
    cls = _echo_class(frac, retracts, moves_apart, contracted, th, reasons)
    if cls == "suspected_full_thickness" and motion is not None and not motion.found:
        reasons.append("the echo defect reaches across, but the tissue on both sides moves as one piece: "
                       "fibres still bridge it")
        return "partial"
    return cls


def _finding(cls, reasons, frac, rmm, rpx, retracts) -> Finding:
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
    return Finding(cls, tuple(reasons), frac, rmm, rpx, peetrons, bamic)
