"""What the reviewer has done on one loop, and how player events change it.

Plain Python, no Streamlit: :class:`Review` lives in ``st.session_state["msus_review"]`` and is
changed only through its methods, which the app calls from player events and panel widgets.
Every change to a measurement goes through one call point, the review's own listeners
(:meth:`Review.on_measurement_changed`), so a findings store can be plugged in without touching
the UI (the app plugs in :class:`msus.store.autosave.CaliperSync`)::

    rv.on_measurement_changed(lambda action, m, rv: store.save(rv.loop_key, action, m))

``action`` is ``"added"``, ``"moved"``, ``"relabelled"``, ``"deleted"`` or ``"recalibrated"``.

When the loop's finding is signed and these calipers make it, :attr:`Review.locked` holds the
one-line reason and every change is refused with :class:`~msus.errors.FindingLocked` before
anything moves (the store refuses too).  :meth:`Review.record` gives the finding's values the
Δgap card shows: from the review's :attr:`Review.record_provider` (the store's finding) when there
is one, else from this review's own calipers (:func:`msus.record.finding_values`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from msus.calibration import Calibration
from msus.errors import CalibrationError, FindingLocked, MeasurementError, MsusError
from msus.measure import LABEL_CONTRACTION, LABEL_REST, Measurement, PairedGap, make_measurement, paired_gap

logger = logging.getLogger(__name__)

Listener = Callable[[str, Measurement, "Review"], None]


@dataclass
class Review:
    """Review state of one loop (mutable; one per open loop per session).

    Attributes
    ----------
    loop_key
        Identity of the open loop (source kind + path/hash), for stores and caches.
    frame_index
        Last frame the player settled on (0-based).
    rest_frame, contraction_frame
        Marked frames (0-based) or None.
    measurements
        Calipers in the order they were made.
    manual_calibration
        A manual calibration the user entered, or None.
    manual_override
        Use the manual calibration even where the file has one (shown as source ``manual``).
    calib_points
        The two points last clicked with the calibrate tool, ((x, y), (x, y)) in px.
    """

    loop_key: str
    n_frames: int
    shape: tuple[int, int]
    file_calibration: Calibration = field(default_factory=Calibration.none)
    frame_calibrations: dict = field(default_factory=dict)
    frame_index: int = 0
    rest_frame: int | None = None
    contraction_frame: int | None = None
    measurements: list[Measurement] = field(default_factory=list)
    manual_calibration: Calibration | None = None
    manual_override: bool = False
    calib_points: tuple | None = None
    view: str = "single"  # single | pair
    pair_mode: str = "side"  # side | difference | overlay
    command_seq: int = 0
    command: dict | None = None
    event_sid: str = ""
    event_seq: int = 0
    messages: list[tuple[str, str]] = field(default_factory=list)  # (level, one-line text)
    extra_shapes: list[dict] = field(default_factory=list)  # analysis overlays for the player
    locked: str | None = None  # why these calipers cannot change (a signed finding), else None
    #: Label of new calipers instead of the role picked from the marked frames (None: that role).
    caliper_label: str | None = None
    listeners: list = field(default_factory=list, repr=False, compare=False)  # see on_measurement_changed
    #: where the finding's values come from (the findings store): review -> finding dict or None
    record_provider: Callable | None = field(default=None, repr=False, compare=False)

    @classmethod
    def for_cine(cls, cine, loop_key: str, **kw) -> "Review":
        """The review of ``cine``; ``kw`` sets other fields (e.g. ``caliper_label``)."""
        return cls(
            loop_key=loop_key,
            n_frames=len(cine),
            shape=(cine.rows, cine.columns),
            file_calibration=cine.calibration,
            frame_calibrations=dict(getattr(cine, "frame_calibrations", {}) or {}),
            **kw,
        )

    # ---- listeners ------------------------------------------------------------------------
    def on_measurement_changed(self, fn: Listener) -> Listener:
        """Register ``fn(action, measurement, review)``; called after every measurement change."""
        if fn not in self.listeners:
            self.listeners.append(fn)
        return fn

    def remove_listener(self, fn: Listener) -> None:
        if fn in self.listeners:
            self.listeners.remove(fn)

    def _notify(self, action: str, m: Measurement) -> None:
        for fn in list(self.listeners):
            try:
                fn(action, m, self)
            except MsusError as e:
                self.messages.append(("error", f"saving the measurement failed: {e}"))
            except Exception as e:  # a broken listener must not break the viewer (the log keeps it)
                logger.exception("a measurement listener failed")
                self.messages.append(("error", f"saving the measurement failed: {type(e).__name__}"))

    # ---- calibration ----------------------------------------------------------------------
    def calibration_for(self, frame_index: int) -> Calibration:
        """The calibration lengths on ``frame_index`` use (manual where the file has none)."""
        file_cal = self.frame_calibrations.get(int(frame_index), self.file_calibration)
        if self.manual_calibration is not None and (self.manual_override or not file_cal.calibrated):
            return self.manual_calibration
        return file_cal

    def manual_mm_per_px(self) -> float | None:
        """The manual scale the analysis uses: the one entered, where the file has no calibration."""
        if self.file_calibration.calibrated or self.manual_calibration is None:
            return None
        return self.manual_calibration.mm_per_px_x

    def set_manual_calibration(self, distance_mm: float, points=None, override: bool | None = None) -> Calibration:
        """Manual calibration from the calibrate tool's two points and a typed distance (mm)."""
        pts = points or self.calib_points
        if not pts:
            raise CalibrationError("click two points on the depth scale with the Calibrate tool first")
        cal = Calibration.from_two_points(pts[0], pts[1], distance_mm)
        self.manual_calibration = cal
        if override is not None:
            self.manual_override = bool(override)
        self._recalibrate()
        return cal

    def set_manual_mm_per_px(self, mm_per_px: float, override: bool | None = None) -> Calibration:
        """Manual calibration from a known scale (mm per pixel, square pixels), as ``--mm-per-px``:
        for a loop with no depth scale to click on."""
        try:
            v = float(mm_per_px)
        except (TypeError, ValueError):
            raise CalibrationError("the scale must be a number of mm per pixel") from None
        cal = Calibration.manual(v, detail=f"manual: {v:g} mm/px typed")
        self.manual_calibration = cal
        if override is not None:
            self.manual_override = bool(override)
        self._recalibrate()
        return cal

    def set_override(self, override: bool) -> None:
        if bool(override) != self.manual_override:
            self.manual_override = bool(override)
            self._recalibrate()

    def clear_manual_calibration(self) -> None:
        self.manual_calibration = None
        self.manual_override = False
        self.calib_points = None
        self._recalibrate()

    def _check_unlocked(self) -> None:
        if self.locked:
            raise FindingLocked(self.locked)

    def record(self):
        """(finding dict or None, :class:`msus.record.FindingValues`) — what the Δgap card shows."""
        from msus.record import finding_values

        finding = None
        if self.record_provider is not None:
            try:
                finding = self.record_provider(self)
            except MsusError as e:
                self.messages.append(("error", str(e)))
        return finding, finding_values(self.measurements)

    def _recalibrate(self) -> None:
        if self.locked and self.measurements:
            self.messages.append(("warning", "calibration changed; the signed calipers keep their lengths "
                                             "(amend the finding to measure again)"))
            return
        out = []
        for m in self.measurements:
            new = m.moved(self.calibration_for(m.frame_index), shape=self.shape)
            out.append(new)
        self.measurements = out
        for m in out:
            self._notify("recalibrated", m)

    # ---- measurements ---------------------------------------------------------------------
    def _check_frame(self, frame_index) -> int:
        try:
            i = int(frame_index)
        except (TypeError, ValueError):
            raise MeasurementError(f"frame {frame_index!r} is not a frame number") from None
        if not 0 <= i < self.n_frames:
            raise MeasurementError(f"frame {i + 1} is outside the loop (1–{self.n_frames})")
        return i

    def _refuse_across_regions(self, cal: Calibration, p1, p2) -> None:
        if cal.source != "us_region":
            return
        r1, r2 = cal.region_at(*p1), cal.region_at(*p2)
        if r1 is not None and r2 is not None and r1.index != r2.index:
            raise MeasurementError(
                f"caliper refused: its ends lie in different ultrasound regions (#{r1.index + 1} and #{r2.index + 1}), "
                "which have separate calibrations; place both ends in one region"
            )

    def add_caliper(self, frame_index, p1, p2, label: str | None = None) -> Measurement:
        """Place a caliper; raises MeasurementError (one line) when refused."""
        self._check_unlocked()
        i = self._check_frame(frame_index)
        cal = self.calibration_for(i)
        p1, p2 = _point(p1), _point(p2)
        self._refuse_across_regions(cal, p1, p2)
        if label is None:
            label = self.caliper_label if self.caliper_label is not None else self._auto_label(i)
        m = make_measurement(cal, i, p1, p2, label=label, shape=self.shape)
        self.measurements.append(m)
        self._notify("added", m)
        return m

    def accept_gap(self, result, which: str) -> Measurement:
        """Add the analysis' suggested gap (``which``: "rest" or "contraction") as an *automatic*
        caliper on its frame (:func:`msus.record.suggested_gap`); dragging its ends later makes it
        *automatic-edited*.  Refused like any caliper while the review is locked."""
        from msus.record import suggested_gap

        self._check_unlocked()
        frame, p1, p2, label = suggested_gap(result, which)
        i = self._check_frame(frame)
        m = make_measurement(self.calibration_for(i), i, _point(p1), _point(p2), label=label, kind="automatic",
                             shape=self.shape)
        self.measurements.append(m)
        self._notify("added", m)
        return m

    def _auto_label(self, i: int) -> str:
        for which, lab in ((self.rest_frame, LABEL_REST), (self.contraction_frame, LABEL_CONTRACTION)):
            if which == i and not any(m.label == lab and m.frame_index == i for m in self.measurements):
                return lab
        return ""

    def find(self, measurement_id: str) -> int:
        for k, m in enumerate(self.measurements):
            if m.id == measurement_id:
                return k
        raise MeasurementError("that measurement no longer exists")

    def move_caliper(self, measurement_id: str, p1, p2) -> Measurement:
        self._check_unlocked()
        k = self.find(measurement_id)
        old = self.measurements[k]
        cal = self.calibration_for(old.frame_index)
        p1, p2 = _point(p1), _point(p2)
        self._refuse_across_regions(cal, p1, p2)
        m = old.moved(cal, p1, p2, shape=self.shape)
        self.measurements[k] = m
        self._notify("moved", m)
        return m

    def relabel(self, measurement_id: str, label: str) -> Measurement:
        """A role name (or "") sets the role; other text sets the note (the role stays)."""
        return self._replace(measurement_id, lambda m: m.relabel(label))

    def set_role(self, measurement_id: str, role: str) -> Measurement:
        return self._replace(measurement_id, lambda m: m.with_role(role))

    def set_note(self, measurement_id: str, note: str) -> Measurement:
        return self._replace(measurement_id, lambda m: m.with_note(note))

    def _replace(self, measurement_id: str, change) -> Measurement:
        self._check_unlocked()
        k = self.find(measurement_id)
        m = change(self.measurements[k])
        self.measurements[k] = m
        self._notify("relabelled", m)
        return m

    def delete(self, measurement_id: str) -> None:
        self._check_unlocked()
        k = self.find(measurement_id)
        m = self.measurements.pop(k)
        self._notify("deleted", m)

    def paired(self) -> PairedGap | None:
        return paired_gap(self.measurements)

    # ---- frames ---------------------------------------------------------------------------
    def mark(self, which: str, frame_index) -> None:
        i = self._check_frame(frame_index)
        if which == "rest":
            self.rest_frame = i
        elif which == "contraction":
            self.contraction_frame = i
        else:
            raise MsusError(f"unknown mark {which!r}")

    def seek(self, frame_index) -> None:
        """Ask the player to show a frame (a one-shot command it applies once)."""
        i = self._check_frame(frame_index)
        self.frame_index = i
        self.command_seq += 1
        self.command = {"seq": self.command_seq, "seek": i}

    def play(self, from_frame: int | None = None) -> None:
        """Ask the player to start playback (from ``from_frame`` when given), once."""
        self.command_seq += 1
        self.command = {"seq": self.command_seq, "play": True}
        if from_frame is not None:
            self.frame_index = self._check_frame(from_frame)
            self.command["seek"] = self.frame_index

    # ---- player events --------------------------------------------------------------------
    def handle_log(self, log, loop_id: str | None = None) -> int:
        """Apply the player's new events (those after the last one seen); returns how many.

        Events stamped with another loop than ``loop_id`` (sent just before the user switched
        loops) are passed over.  A refused event (caliper across regions, a point off the
        image...) adds a one-line message to :attr:`messages` and does not stop later events.
        """
        if not isinstance(log, dict):
            return 0
        sid = str(log.get("sid", ""))
        events = log.get("events") or []
        if sid != self.event_sid:
            self.event_sid, self.event_seq = sid, 0
        done = 0
        for ev in events:
            if not isinstance(ev, dict):
                continue
            seq = int(ev.get("seq", 0))
            if seq <= self.event_seq:
                continue
            self.event_seq = seq
            if loop_id is not None and ev.get("loop") not in (None, loop_id):
                continue
            done += 1
            try:
                self.handle_event(ev)
            except MsusError as e:
                self.messages.append(("error", str(e)))
        return done

    def handle_event(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "frame":
            self.frame_index = self._check_frame(ev.get("frame"))
        elif kind == "caliper_add":
            m = self.add_caliper(ev.get("frame"), ev.get("p1"), ev.get("p2"))
            for w in m.distance.warnings:
                self.messages.append(("warning", w))
        elif kind == "caliper_move":
            self.move_caliper(str(ev.get("id")), ev.get("p1"), ev.get("p2"))
        elif kind == "mark":
            self.mark(str(ev.get("which")), ev.get("frame"))
            self.frame_index = self._check_frame(ev.get("frame"))
        elif kind == "calib_points":
            p1, p2 = _point(ev.get("p1")), _point(ev.get("p2"))
            self.calib_points = (p1, p2)
        else:
            raise MsusError(f"unknown player event {kind!r}")

    def take_messages(self) -> list[tuple[str, str]]:
        out, self.messages = self.messages, []
        return out


def _point(p) -> tuple[float, float]:
    try:
        x, y = p
        return (float(x), float(y))
    except (TypeError, ValueError):
        raise MeasurementError("a point must be an (x, y) pair of numbers") from None
