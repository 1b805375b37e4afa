"""What the reveal and the loop step show: calipers side by side, the difference image, the room's clip.

Drawing and GIF writing are :mod:`msus.export`'s (:func:`msus.export.overlay.draw_caliper`,
:func:`msus.export.overlay.difference_image`, :func:`msus.export.video.write_gif`); this module
only decides which frames, which calipers and which labels.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msus.export.overlay import difference_image, draw_caliper
from msus.export.video import write_gif
from msus.measure import Measurement
from msus.teaching.cases import Caliper, Case

LEARNER_COLOUR = (255, 140, 0)  # orange
EXPERT_COLOUR = (40, 220, 90)  # green
#: Playback speeds of the room's clip (× the loop's own rate).
SPEEDS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0)


def caliper_label(who: str, m: Measurement | None) -> str:
    """``who`` and the caliper's length in mm (just ``who`` without mm)."""
    if m is None or m.length_mm is None:
        return who
    return f"{who} {m.length_mm:.1f} mm"


def typed_gap_caliper(frame_index: int | None, length_mm: float | None, like: Measurement | None) -> Measurement | None:
    """A learner's typed gap (mm) drawn where the expert's caliper ``like`` lies (offset below it).

    None when there is nothing to draw: no typed gap, no expert caliper, or one without mm.
    ``frame_index`` None: the expert caliper's frame.
    """
    if length_mm is None or like is None or not like.length_mm or not like.length_px:
        return None
    px_per_mm = like.length_px / like.length_mm
    cx, cy = (like.x1 + like.x2) / 2, (like.y1 + like.y2) / 2 + 12
    ux, uy = (like.x2 - like.x1) / like.length_px, (like.y2 - like.y1) / like.length_px
    h = length_mm * px_per_mm / 2
    frame = like.frame_index if frame_index is None else frame_index
    return Caliper(frame, cx - ux * h, cy - uy * h, cx + ux * h, cy + uy * h, length_mm)


@dataclass(frozen=True)
class PairView:
    """The static (rest) and contraction frames with calipers burned in, and their difference."""

    rest_frame: int
    contraction_frame: int
    rest: np.ndarray
    contraction: np.ndarray
    difference: np.ndarray


def pair_view(case: Case, cine, *, learner=(None, None), expert=(None, None), contraction: int | None = None) -> PairView:
    """The case's static frame beside its contraction frame (default: the answer's, else the A–B end).

    ``learner`` / ``expert``: (caliper on the static frame, caliper on the contraction frame), each
    a :class:`msus.measure.Measurement` or None; the expert's is drawn green above, the learner's
    orange with its label below.
    """
    r = case.static_frame_index
    k = contraction if contraction is not None else (
        case.answer.contraction_frame if case.answer.contraction_frame is not None else case.ab_range[1])
    fr, fk = cine.frame(r), cine.frame(k)

    def both(frame, e, mine):
        out = draw_caliper(frame, e, EXPERT_COLOUR, caliper_label("expert", e))
        return draw_caliper(out, mine, LEARNER_COLOUR, caliper_label("you", mine), below=True)

    return PairView(r, k, both(fr, expert[0], learner[0]), both(fk, expert[1], learner[1]), difference_image(fr, fk))


def clip_gif(cine, a: int, b: int, speed: float, ping_pong: bool) -> bytes:
    """Frames ``a``..``b`` (0-based, inclusive, clamped to the loop) as a GIF at ``speed`` × the
    loop's rate, unannotated (the room's slow-motion clip; the browser plays it)."""
    a, b = max(0, int(a)), min(cine.n_frames - 1, int(b))
    with tempfile.TemporaryDirectory(prefix="msus-teach-") as d:
        out = write_gif(cine, None, Path(d) / "clip.gif", start=a, stop=max(a, b) + 1, speed=speed,
                        ping_pong=ping_pong)
        return out.read_bytes()
