"""Exports: JSON/CSV, DICOM SR, annotated MP4/GIF, one-page PDF report, de-identified bundle, and the
loop itself as an H.264 DICOM video (:mod:`msus.export.dicom_video`).

Every exporter takes an :class:`ExportData` — what is known about one loop: its calipers, its
finding, defect outlines, and whether these came from reviewers (the store) or from the automatic
analysis (``automatic=True``; then every caliper's ``kind`` is ``automatic`` too).
:func:`gather` builds it: from the store when the store holds anything for the loop, otherwise
from the automatic analysis (:mod:`msus.analysis`) when that is available.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone

from msus.errors import ExportError
from msus.measure import LABEL_CONTRACTION, LABEL_REST, ROLES, Measurement, make_measurement

READS = ("finding", "reader", "second read", "automatic")  # what a caliper is to the finding

DISCLAIMER = "flag for review, not a diagnosis"
FORMATS = ("json", "csv", "sr", "mp4", "gif", "pdf", "bundle", "dicom-video")

Point = tuple[float, float]


@dataclass(frozen=True)
class ExportData:
    """What one export shows about one loop.

    Attributes
    ----------
    loop_key, study_key, series_key
        Identity (DICOM UIDs or ``sha256:`` content hash), see :mod:`msus.store.identity`.
    measurements
        Calipers (px endpoints, length in px and, when calibrated, mm with provenance).
    finding
        The finding as a plain dict (keys as :class:`msus.store.StoredFinding`), or None.
    outlines_px
        Defect outlines: frame index → closed polygon of (x, y) px points.
    automatic
        True when nothing was stored and the automatic analysis supplied the content.
    """

    loop_key: str
    study_key: str = ""
    series_key: str = ""
    source_name: str = ""
    n_frames: int = 0
    fps: float | None = None
    calibration: dict = field(default_factory=dict)
    measurements: tuple[Measurement, ...] = ()
    finding: dict | None = None
    outlines_px: dict = field(default_factory=dict)
    automatic: bool = False
    exported_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    notes: tuple[str, ...] = ()

    @property
    def reviewers(self) -> tuple[str, ...]:
        names = [m.reviewer for m in self.measurements if m.reviewer]
        if self.finding and self.finding.get("reviewer"):
            names.append(self.finding["reviewer"])
        return tuple(dict.fromkeys(names))

    @property
    def key_frames(self) -> tuple[int | None, int | None]:
        """(rest frame, contraction frame) from the finding, else from the calipers' roles."""
        f = self.finding or {}
        rest, con = f.get("rest_frame"), f.get("contraction_frame")
        for m in self.measurements:
            if rest is None and m.role == LABEL_REST:
                rest = m.frame_index
            if con is None and m.role == LABEL_CONTRACTION:
                con = m.frame_index
        return rest, con

    @property
    def reader(self) -> str:
        """The reviewer whose calipers make the finding ("" without a finding)."""
        return str((self.finding or {}).get("reviewer") or "")

    def caliper_reads(self) -> list[tuple[int, Measurement, str]]:
        """(1-based number, caliper, what it is: one of :data:`READS`) for every caliper.

        "finding": the finding reads its value (:func:`msus.record.finding_values`); "reader": the
        reader's caliper the finding does not use; "second read": another reviewer's caliper;
        "automatic": the analysis' own calipers of an unreviewed export.
        """
        from msus.record import finding_values

        if self.automatic:
            return [(i, m, "automatic") for i, m in enumerate(self.measurements, 1)]
        reader = self.reader or None
        used = set(finding_values(self.measurements, reader=reader).used_ids) if self.finding else set()
        out = []
        for m in self.measurements:
            read = "finding" if m.id in used else "reader" if reader in (None, m.reviewer) else "second read"
            out.append((m, read))
        ranks = {r: k for k, r in enumerate(READS)}  # the finding's calipers first, rest before contraction
        out.sort(key=lambda mr: (ranks[mr[1]], ROLES.index(mr[0].role), mr[0].frame_index))
        return [(i, m, read) for i, (m, read) in enumerate(out, 1)]

    @property
    def status(self) -> str:
        """"automatic", "no finding", "draft", "final" or "amended"."""
        if self.automatic:
            return "automatic"
        return str((self.finding or {}).get("status") or "no finding")


def from_cine(cine, **kw) -> ExportData:
    """An empty :class:`ExportData` describing ``cine`` (no calipers, no finding)."""
    from msus.store.identity import identify

    ident = identify(cine)
    return ExportData(
        loop_key=ident.loop_key,
        study_key=ident.study_key,
        series_key=ident.series_key,
        source_name=str(getattr(cine, "source_name", "") or ""),
        n_frames=int(cine.n_frames),
        fps=float(cine.fps),
        calibration=cine.calibration.to_dict(),
        **kw,
    )


def from_store(cine, store) -> ExportData | None:
    """What the store holds for ``cine``, or None when it holds nothing."""
    from msus.store.identity import identify

    ref = store.loop(identify(cine).loop_key)
    if ref is None:
        return None
    ms = tuple(s.measurement for s in store.measurements(ref))
    f = store.latest_finding(ref)
    if not ms and f is None:
        return None
    finding = f.to_dict() if f else None
    if finding and f.supersedes:
        finding["history"] = [_version_summary(v) for v in store.finding_chain(f.id)[:-1]]
    outlines = {}
    if finding:
        for k, v in (finding.get("extra") or {}).get("outlines_px", {}).items():
            outlines[int(k)] = tuple(tuple(p) for p in v)
    return from_cine(cine, measurements=ms, finding=finding, outlines_px=outlines)


def _version_summary(f) -> dict:
    keys = ("id", "status", "signed_by", "signed_at", "amendment_no", "amendment_reason", "superseded_by",
            "rest_frame", "contraction_frame", "gap_rest_mm", "gap_contraction_mm", "gap_rest_px",
            "gap_contraction_px", "retraction_mm", "classification")
    return {k: getattr(f, k) for k in keys}


def from_analysis(cine, result) -> ExportData:
    """An :class:`ExportData` (``automatic=True``) from an automatic analysis result."""
    d = _as_dict(result)
    finding = {k: d.get(k) for k in (
        "rest_frame", "contraction_frame", "gap_rest_mm", "gap_contraction_mm", "gap_rest_px",
        "gap_contraction_px", "retraction_mm", "defect_thickness_fraction", "classification",
        "reasons", "calibration_source",
    )}
    inner = d.get("finding")
    if inner is not None:
        fd = _as_dict(inner)
        for k in ("classification", "reasons", "retraction_mm"):
            if finding.get(k) is None and fd.get(k) is not None:
                finding[k] = fd[k]
        if finding.get("defect_thickness_fraction") is None:
            finding["defect_thickness_fraction"] = fd.get("thickness_fraction")
    if finding.get("defect_thickness_fraction") is None:
        finding["defect_thickness_fraction"] = d.get("thickness_fraction")
    finding["reasons"] = list(finding.get("reasons") or ())
    finding.update(status="draft", kind="automatic", reviewer="msus (automatic)")
    if not finding.get("classification"):
        raise ExportError("the automatic analysis gave no classification")
    measurements: list[Measurement] = []
    outlines: dict[int, tuple] = {}
    for label, frame_key, defect_keys in (
        (LABEL_REST, "rest_frame", ("defect_rest", "rest_defect")),
        (LABEL_CONTRACTION, "contraction_frame", ("defect_contraction", "contraction_defect")),
    ):
        fi = d.get(frame_key)
        if d.get("defect_found") is False:
            continue  # a dark region the analysis did not confirm: no calipers, no outline
        defect = next((d[k] for k in defect_keys if d.get(k) is not None), None)
        if fi is None or defect is None:
            continue
        dd = _as_dict(defect)
        if not dd.get("found", True):
            continue
        if dd.get("outline_px"):
            outlines[int(fi)] = tuple(tuple(map(float, p)) for p in dd["outline_px"])
        a, b = dd.get("stump_left_px"), dd.get("stump_right_px")
        if a is not None and b is not None:
            m = make_measurement(cine.calibration_for(int(fi)), int(fi), a, b, label=label, kind="automatic",
                                 reviewer="msus (automatic)")
            measurements.append(m)
    for m in d.get("measurements") or ():
        if isinstance(m, Measurement):
            measurements.append(dataclasses.replace(m, kind="automatic" if m.kind == "manual" else m.kind))
    return from_cine(cine, measurements=tuple(measurements), finding=finding, outlines_px=outlines, automatic=True)


def _as_dict(obj) -> dict:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(vars(obj))


def automatic(cine) -> ExportData:
    """Run the automatic analysis (:mod:`msus.analysis`) and wrap its result."""
    from msus.analysis import analyze

    return from_analysis(cine, analyze(cine))


def gather(cine, store=None, *, analyze: bool = True, analysis=None) -> ExportData:
    """What to export for ``cine``: the store's content, else the automatic analysis.

    Parameters
    ----------
    cine
        The loop.
    store
        A :class:`msus.store.Store`, or None for no store.
    analyze
        Run the automatic analysis when the store holds nothing (else export an empty record).
    analysis
        An analysis result already computed (the one the app shows): exported when the store
        holds nothing, instead of running the analysis again.
    """
    if store is not None:
        data = from_store(cine, store)
        if data is not None:
            return data
    if analysis is not None:
        return from_analysis(cine, analysis)
    if analyze:
        return automatic(cine)
    return from_cine(cine, notes=("nothing measured yet",))
