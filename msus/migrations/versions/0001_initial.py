"""Initial schema: studies, series, loops, reviewers, measurements, findings, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_series_study_id", "series", ["study_id"])
    op.create_table(
        "loops",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("series_id", sa.Integer, sa.ForeignKey("series.id"), nullable=False),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_name", sa.String(512), nullable=False),
        sa.Column("n_frames", sa.Integer, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("columns", sa.Integer, nullable=False),
        sa.Column("fps", sa.Float, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_loops_series_id", "loops", ["series_id"])
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "measurements",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("loop_id", sa.Integer, sa.ForeignKey("loops.id"), nullable=False),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("reviewers.id"), nullable=False),
        sa.Column("frame_index", sa.Integer, nullable=False),
        sa.Column("x1", sa.Float, nullable=False),
        sa.Column("y1", sa.Float, nullable=False),
        sa.Column("x2", sa.Float, nullable=False),
        sa.Column("y2", sa.Float, nullable=False),
        sa.Column("length_px", sa.Float, nullable=False),
        sa.Column("length_mm", sa.Float, nullable=True),
        sa.Column("calibration_source", sa.String(32), nullable=False),
        sa.Column("region_index", sa.Integer, nullable=True),
        sa.Column("mm_per_px_x", sa.Float, nullable=True),
        sa.Column("mm_per_px_y", sa.Float, nullable=True),
        sa.Column("warnings", sa.Text, nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_measurements_loop", "measurements", ["loop_id", "deleted_at"])
    op.create_table(
        "findings",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("loop_id", sa.Integer, sa.ForeignKey("loops.id"), nullable=False),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("reviewers.id"), nullable=False),
        sa.Column("rest_frame", sa.Integer, nullable=True),
        sa.Column("contraction_frame", sa.Integer, nullable=True),
        sa.Column("gap_rest_mm", sa.Float, nullable=True),
        sa.Column("gap_contraction_mm", sa.Float, nullable=True),
        sa.Column("gap_rest_px", sa.Float, nullable=True),
        sa.Column("gap_contraction_px", sa.Float, nullable=True),
        sa.Column("retraction_mm", sa.Float, nullable=True),
        sa.Column("defect_thickness_fraction", sa.Float, nullable=True),
        sa.Column("classification", sa.String(40), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("calibration_source", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("extra", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_findings_loop", "findings", ["loop_id", "deleted_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("loop_id", sa.Integer, nullable=True),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_log_loop_id", "audit_log", ["loop_id"])
    # The audit log is append-only: the database itself refuses UPDATE and DELETE.
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION msus_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION msus_audit_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS msus_audit_append_only()")
    for t in ("audit_log", "findings", "measurements", "reviewers", "loops", "series", "studies"):
        op.drop_table(t)
