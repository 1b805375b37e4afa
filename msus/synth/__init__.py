"""Phantom simulator for musculoskeletal B-mode cine loops, with ground truth.

A loop is made the way a scanner makes it, only much simplified (see ``docs/synth.md``):

* **Tissue is a cloud of point scatterers** attached to anatomy (skin, subcutaneous fat with
  septa, superficial fascia, pennate muscle with fascicle lines, deep fascia, a deeper muscle,
  bone).  Each scatterer has a reflectivity and a random phase.  Between frames the scatterers are
  *displaced*, never re-drawn, so speckle moves coherently with the tissue and optical flow or
  tracking on the loop is meaningful.
* **Image formation**: the scatterers are splatted (bilinear) onto the pixel grid as complex
  (baseband, IQ) amplitudes carrying the carrier phase ``exp(i·2k·z)``, convolved with a
  Gaussian point-spread function (axial Gaussian-modulated pulse × lateral Gaussian beam whose
  width grows away from the focus), envelope-detected (``|IQ|``), attenuated (cumulative along
  each beam line, so bone casts a shadow and fluid gives posterior enhancement), time-gain
  compensated with a small residual variation, mixed with electronic noise and log-compressed to
  uint8.  Many scatterers per resolution cell give Rayleigh-distributed envelope speckle; two
  looks with independent phases are averaged in intensity (compounding, as MSK presets do).
* **A tear** (``full`` or ``partial``) is a hypoechoic haematoma between two frayed stump ends,
  with a few floating echoes.  Over the loop the muscle contracts (rest → contraction → relax,
  rest first): it slides along its axis and thickens (fascicles steepen), and -- for a
  full-thickness tear only -- the stumps retract so the gap widens.  Probe jitter moves
  everything a little.

Coordinates follow the project: points are ``(x, y)`` = (column, row) in pixels, 0-based.
Pixels are square (``mm_per_px``).  The muscle's long axis is tilted by ``fascia_tilt_deg``
(positive: deeper to the right).

Ground truth (see :class:`Phantom`) follows the project's definitions: the **gap** is the
distance along the muscle's long axis between the two stump ends, averaged over the central half
of the torn depth (25–75 % of the way from superficial to deep fascia; for a partial tear, of the
defect's depth extent).  For ``tear="none"`` there are no stumps: ``gap_mm`` is NaN (``null`` in
JSON) and ``stump_ends_px`` is NaN.

Modules: ``params`` (parameters, contraction profile), ``scene`` (anatomy and motion), ``render``
(image formation), ``truth`` (:class:`Phantom` and its ground truth), ``phantom`` (:func:`simulate`),
``dicom`` (the one Ultrasound Multi-frame DICOM writer samples, tests and benchmarks share).
"""

from msus.synth.params import (
    CLASSIFICATIONS,
    SOUND_SPEED_MM_PER_US,
    TEAR_KINDS,
    SynthError,
    SynthParams,
    contraction_profile,
)
from msus.synth.phantom import calibration_for, simulate, simulate_cine
from msus.synth.render import render_frames
from msus.synth.truth import Phantom

__all__ = [
    "CLASSIFICATIONS",
    "SOUND_SPEED_MM_PER_US",
    "TEAR_KINDS",
    "Phantom",
    "SynthError",
    "SynthParams",
    "calibration_for",
    "contraction_profile",
    "render_frames",
    "simulate",
    "simulate_cine",
]
