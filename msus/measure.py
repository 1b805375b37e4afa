"""Calipers bound to a frame, and the paired rest/contraction gap.

A :class:`Measurement` is a frozen value: two endpoints in full-frame pixel coordinates
(x = column, y = row, 0-based, floats allowed), the frame it was made on, and the
:class:`~msus.calibration.Distance` computed with that frame's calibration, so the length
always travels with where its mm came from.

Every caliper has a **role** (:data:`ROLES`: gap at rest, gap at contraction, muscle thickness,
other) and an optional free-text **note**.  The role says what the length *is* (the finding reads
its gaps by role, see :mod:`msus.record`); the note is only text and never changes the role.
``label`` is kept for older callers and files: the role's name for the three named roles, else
"" (or, for calipers saved before roles existed, their free-text label).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

from msus.calibration import Calibration, Distance
from msus.errors import MeasurementError
from msus.terms import MeasurementKind

LABEL_REST = "gap at rest"
LABEL_CONTRACTION = "gap at contraction"
LABEL_THICKNESS = "muscle thickness"
ROLE_OTHER = "other"
ROLES = (LABEL_REST, LABEL_CONTRACTION, LABEL_THICKNESS, ROLE_OTHER)
NOTE_MAX = 500
KINDS = tuple(MeasurementKind)


def now_iso() -> str:
    """The current time, UTC, ISO-8601 with milliseconds (how msus stamps calipers and store rows)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Measurement:
    frame_index: int
    x1: float
    y1: float
    x2: float
    y2: float
    distance: Distance
    label: str = ""
    kind: str = "manual"
    reviewer: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(default_factory=now_iso)
    role: str = ""
    note: str = ""

    def __post_init__(self):
        role = str(self.role or "").strip()
        label = str(self.label or "").strip()
        if not role:  # older callers give only a label: a role name is the role, anything else is "other"
            role = label if label in ROLES else ROLE_OTHER
        elif role not in ROLES:
            raise MeasurementError(f"unknown caliper role {role!r} (one of: {', '.join(ROLES)})")
        if role != ROLE_OTHER:
            label = role
        elif label in ROLES:
            label = ""
        note = " ".join(str(self.note or "").split())
        if len(note) > NOTE_MAX:
            raise MeasurementError(f"a caliper note is at most {NOTE_MAX} characters")
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "note", note)

    @property
    def length_mm(self) -> float | None:
        return self.distance.distance_mm

    @property
    def length_px(self) -> float:
        return self.distance.distance_px

    @property
    def calibration_source(self) -> str:
        return self.distance.calibration_source

    def relabel(self, label: str) -> "Measurement":
        """A role name (or "") sets the role; any other text becomes the note (the role stays)."""
        text = str(label).strip()
        if text in ROLES or not text:
            return self.with_role(text or ROLE_OTHER)
        return self.with_note(text)

    def with_role(self, role: str) -> "Measurement":
        role = str(role or ROLE_OTHER).strip()
        return replace(self, role=role, label=role if role != ROLE_OTHER else "")

    def with_note(self, note: str) -> "Measurement":
        return replace(self, note=str(note or ""))

    def moved(self, calibration: Calibration, p1=None, p2=None, *, shape=None) -> "Measurement":
        """The same caliper with one or both ends moved (recomputes the length)."""
        a = p1 if p1 is not None else (self.x1, self.y1)
        b = p2 if p2 is not None else (self.x2, self.y2)
        m = make_measurement(calibration, self.frame_index, a, b, label=self.label, reviewer=self.reviewer, shape=shape,
                             role=self.role, note=self.note)
        kind = "automatic-edited" if self.kind.startswith("automatic") else self.kind
        return replace(m, id=self.id, kind=kind, created_at=self.created_at)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("distance")
        d.update(
            length_mm=self.length_mm,
            length_px=self.length_px,
            calibration_source=self.calibration_source,
            region_index=self.distance.region_index,
            mm_per_px_x=self.distance.mm_per_px_x,
            mm_per_px_y=self.distance.mm_per_px_y,
            warnings=list(self.distance.warnings),
        )
        return d


def make_measurement(
    calibration: Calibration,
    frame_index: int,
    p1,
    p2,
    *,
    label: str = "",
    kind: str = "manual",
    reviewer: str = "",
    shape: tuple[int, int] | None = None,
    role: str = "",
    note: str = "",
) -> Measurement:
    """Place a caliper on a frame.  ``shape`` = (rows, columns) refuses points off the image.

    ``role`` (one of :data:`ROLES`) defaults to ``label`` when that is a role name, else "other".
    """
    try:
        (x1, y1), (x2, y2) = ((float(a), float(b)) for a, b in (p1, p2))
    except (TypeError, ValueError):
        raise MeasurementError("caliper ends must be (x, y) pairs of numbers") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise MeasurementError("caliper ends must be finite numbers")
    if shape is not None:
        rows, cols = shape[:2]
        for x, y in ((x1, y1), (x2, y2)):
            if not (-0.5 <= x <= cols - 0.5 and -0.5 <= y <= rows - 0.5):
                raise MeasurementError(f"point ({x:g}, {y:g}) lies outside the {cols}×{rows} image")
    if kind not in KINDS:
        raise MeasurementError(f"unknown measurement kind {kind!r}")
    dist = calibration.measure((x1, y1), (x2, y2))
    return Measurement(int(frame_index), x1, y1, x2, y2, dist, label=str(label).strip(), kind=kind, reviewer=reviewer,
                       role=role, note=note)


@dataclass(frozen=True)
class PairedGap:
    """Gap at rest and at contraction; retraction (Δgap) = contraction − rest."""

    rest: Measurement
    contraction: Measurement

    @property
    def retraction_mm(self) -> float | None:
        a, b = self.rest.length_mm, self.contraction.length_mm
        if a is None or b is None:
            return None
        return b - a

    @property
    def retraction_px(self) -> float:
        return self.contraction.length_px - self.rest.length_px


def paired_gap(measurements) -> PairedGap | None:
    """The latest 'gap at rest' and 'gap at contraction' calipers (by role), if both exist."""
    rest = [m for m in measurements if m.role == LABEL_REST]
    con = [m for m in measurements if m.role == LABEL_CONTRACTION]
    if not rest or not con:
        return None
    return PairedGap(rest[-1], con[-1])
