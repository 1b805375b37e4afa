"""PACS outbox: DICOM objects waiting to be sent to an archive (msus.outbox).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Databases made before this revision may already hold ``pacs_outbox`` (the outbox used to create
it itself, with the same definition); it is then kept as it is, rows included.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.String(32)


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("pacs_outbox"):
        return
    op.create_table(
        "pacs_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("archive_url", sa.String(512), nullable=False),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False),
        sa.Column("study_instance_uid", sa.String(64), nullable=False),
        sa.Column("series_instance_uid", sa.String(64), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("posts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.UniqueConstraint("archive_url", "sop_instance_uid", name="uq_pacs_outbox_archive_sop"),
    )


def downgrade() -> None:
    op.drop_table("pacs_outbox")
