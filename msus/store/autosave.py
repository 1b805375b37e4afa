"""One reviewer's calipers on one loop, kept equal to the store as they are made.

:class:`CaliperSync` is what the app's autosave plugs into a review
(:meth:`msus.ui.review.Review.on_measurement_changed`): every caliper added, moved, relabelled,
recalibrated or deleted is written at once with the row version it was based on (optimistic
concurrency, :mod:`msus.store.repository`), so a second reviewer can never overwrite it.
:meth:`CaliperSync.restore` brings a reviewer's saved calipers back on another day, and
:func:`saved_marks` the rest / contraction frames the saved work points at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from msus.errors import MsusError, StoreError
from msus.measure import LABEL_CONTRACTION, LABEL_REST, Measurement

logger = logging.getLogger(__name__)


@dataclass
class CaliperSync:
    """The link of one review to the store: the stored loop, the reviewer, the saved versions."""

    store: object
    loop_key: str  # the store's loop key
    reviewer: str
    versions: dict[str, int] = field(default_factory=dict)  # measurement id → saved row version

    def __call__(self, action: str, m: Measurement, review=None) -> None:
        """Write one caliper change (a review listener); raises StoreError on a conflict."""
        if not self.reviewer:
            raise StoreError("not saved: choose a reviewer name first")
        if action == "deleted":
            if m.id in self.versions:
                self.store.delete_measurement(m.id, expected_version=self.versions.pop(m.id), reviewer=self.reviewer)
        elif action != "added" and m.id in self.versions:
            saved = self.store.update_measurement(m, expected_version=self.versions[m.id], reviewer=self.reviewer)
            self.versions[m.id] = saved.version
        else:  # new, or made before a reviewer was chosen: save it now
            self.versions[m.id] = self.store.add_measurement(self.loop_key, m, reviewer=self.reviewer).version

    def restore(self, shown) -> list[Measurement]:
        """The reviewer's saved calipers not among ``shown`` (the review's), their versions noted."""
        saved = self.store.measurements(self.loop_key, reviewer=self.reviewer)
        self.versions.update({s.id: s.version for s in saved})
        have = {m.id for m in shown}
        return [s.measurement for s in saved if s.id not in have]

    def save_missing(self, measurements) -> list[str]:
        """Save this reviewer's calipers that are not saved yet (made before the reviewer was chosen);
        returns one line per failure."""
        errors = []
        for m in measurements:
            if m.id not in self.versions and (not m.reviewer or m.reviewer == self.reviewer):
                try:
                    self.versions[m.id] = self.store.add_measurement(self.loop_key, m, reviewer=self.reviewer).version
                except MsusError as e:
                    logger.info("saving caliper %s failed (%s)", m.id, type(e).__name__)
                    errors.append(f"saving the measurement failed: {e}")
        return errors

    def saved_count(self, measurements) -> int:
        return sum(1 for m in measurements if m.id in self.versions)


def saved_marks(measurements, finding, n_frames: int) -> dict[str, int]:
    """The rest / contraction frames the saved work points at: the latest restored caliper with that
    role, else the loop's saved finding (so a second reader sees the pair the first one chose)."""
    out: dict[str, int] = {}
    for label, which in ((LABEL_REST, "rest"), (LABEL_CONTRACTION, "contraction")):
        frames = [m.frame_index for m in measurements if m.role == label]
        i = frames[-1] if frames else getattr(finding, f"{which}_frame", None) if finding is not None else None
        if i is not None and 0 <= int(i) < n_frames:
            out[which] = int(i)
    return out


def lock_reason(finding, reviewer: str) -> str | None:
    """Why ``reviewer``'s calipers on this loop cannot change (they make its signed finding), else None."""
    if finding is not None and finding.signed and finding.reviewer == reviewer:
        return (f"your calipers make the {finding.status} finding signed by {finding.signed_by or 'a reviewer'}; "
                "amend the finding to change them")
    return None
