"""SQLAlchemy 2 models of the findings store.

Tables: ``studies`` → ``series`` → ``loops`` (keyed by DICOM UIDs, or ``sha256:…`` content hashes
for video and image stacks), ``reviewers``, ``measurements`` and ``findings`` (each with a
``version`` column for optimistic concurrency and a ``deleted_at`` tombstone: nothing is ever
physically deleted), ``audit_log`` (append-only; database triggers refuse UPDATE and DELETE), and
``pacs_outbox`` (DICOM objects waiting to go to a PACS; used by :mod:`msus.pacs.outbox`).

Lengths are stored in px always and in mm only when calibrated, with the calibration source,
region and mm/px beside them, exactly as :class:`msus.calibration.Distance` carries them.
Times are ISO-8601 UTC strings with milliseconds (portable across SQLite and PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)  # StudyInstanceUID or sha256:…
    created_at: Mapped[str] = mapped_column(String(32))


class Series(Base):
    __tablename__ = "series"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)  # SeriesInstanceUID or sha256:…
    created_at: Mapped[str] = mapped_column(String(32))


class Loop(Base):
    __tablename__ = "loops"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), index=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)  # SOPInstanceUID or sha256:…
    kind: Mapped[str] = mapped_column(String(16))  # dicom / video / images / array
    source_name: Mapped[str] = mapped_column(String(512), default="")
    n_frames: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[str] = mapped_column(String(32))


class Reviewer(Base):
    __tablename__ = "reviewers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str | None] = mapped_column(String(256), nullable=True)  # OIDC subject when logged in
    created_at: Mapped[str] = mapped_column(String(32))


class MeasurementRow(Base):
    __tablename__ = "measurements"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # Measurement.id
    loop_id: Mapped[int] = mapped_column(ForeignKey("loops.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id"))
    frame_index: Mapped[int] = mapped_column(Integer)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    length_px: Mapped[float] = mapped_column(Float)
    length_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    calibration_source: Mapped[str] = mapped_column(String(32))
    region_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mm_per_px_x: Mapped[float | None] = mapped_column(Float, nullable=True)
    mm_per_px_y: Mapped[float | None] = mapped_column(Float, nullable=True)
    warnings: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    label: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32), default="manual")
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
    deleted_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    role: Mapped[str] = mapped_column(String(32), default="other")  # 0003: msus.measure.ROLES
    note: Mapped[str] = mapped_column(Text, default="")  # 0003: free text, never changes the role
    __table_args__ = (Index("ix_measurements_loop", "loop_id", "deleted_at"),)


class FindingRow(Base):
    __tablename__ = "findings"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    loop_id: Mapped[int] = mapped_column(ForeignKey("loops.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id"))
    rest_frame: Mapped[int | None] = mapped_column(Integer, nullable=True)
    contraction_frame: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gap_rest_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    gap_contraction_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    gap_rest_px: Mapped[float | None] = mapped_column(Float, nullable=True)
    gap_contraction_px: Mapped[float | None] = mapped_column(Float, nullable=True)
    retraction_mm: Mapped[float | None] = mapped_column(Float, nullable=True)
    defect_thickness_fraction: Mapped[float | None] = mapped_column(Float, nullable=True)
    classification: Mapped[str] = mapped_column(String(40))
    reasons: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of strings
    calibration_source: Mapped[str] = mapped_column(String(32), default="none")
    kind: Mapped[str] = mapped_column(String(32), default="manual")  # manual/automatic/automatic-edited
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft → final; amendment → amended
    extra: Mapped[str] = mapped_column(Text, default="{}")  # JSON: any further fields of the analysis
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
    deleted_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # 0003: signing and amendments (a signed finding is read-only; a change is a new row amending it)
    signed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    signed_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    supersedes: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the version this one amends
    superseded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # its amendment
    amendment_no: Mapped[int] = mapped_column(Integer, default=0)  # 0 = the original
    amendment_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (Index("ix_findings_loop", "loop_id", "deleted_at"),)


class AuditEvent(Base):
    """Append-only: who changed what, when (before/after as JSON)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))  # create / update / delete / finalize / recompute / amend
    entity: Mapped[str] = mapped_column(String(32))  # measurement / finding / loop / reviewer
    entity_id: Mapped[str] = mapped_column(String(64))
    loop_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    before: Mapped[str | None] = mapped_column(Text, nullable=True)
    after: Mapped[str | None] = mapped_column(Text, nullable=True)


class OutboxRow(Base):
    """One DICOM object queued for a PACS (see :mod:`msus.pacs.outbox`), keyed by (archive URL, SOP UID)."""

    __tablename__ = "pacs_outbox"
    __table_args__ = (UniqueConstraint("archive_url", "sop_instance_uid", name="uq_pacs_outbox_archive_sop"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    archive_url: Mapped[str] = mapped_column(String(512))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    study_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    series_instance_uid: Mapped[str] = mapped_column(String(64), default="")
    sop_class_uid: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="dicom")  # sr | video | dicom
    label: Mapped[str] = mapped_column(String(200), default="")  # file name or description, no PHI
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued/sending/sent/rejected
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    posts: Mapped[int] = mapped_column(Integer, default=0)  # STOW-RS requests actually made
    last_error: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[str | None] = mapped_column(String(32), nullable=True, default=None)
