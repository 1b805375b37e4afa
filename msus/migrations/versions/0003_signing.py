"""Signing and amendments of findings; caliper role and note.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

``measurements`` gains ``role`` (gap at rest, gap at contraction, muscle thickness, other) and
``note`` (free text).  Existing calipers keep their label; a label that names a role becomes the
role, any other label becomes the note (role "other"), so nothing anyone typed is lost.

``findings`` gains ``signed_by``/``signed_at`` (who marked it final, when), ``supersedes`` /
``superseded_by`` (the amendment chain), ``amendment_no`` (0 for an original) and
``amendment_reason``.  Findings already final are signed by whoever finalized them in the audit
log (at that time); they stay readable and final.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ROLES = ("gap at rest", "gap at contraction", "muscle thickness")


def upgrade() -> None:
    with op.batch_alter_table("measurements") as b:
        b.add_column(sa.Column("role", sa.String(32), nullable=False, server_default="other"))
        b.add_column(sa.Column("note", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("findings") as b:
        b.add_column(sa.Column("signed_by", sa.String(200), nullable=True))
        b.add_column(sa.Column("signed_at", sa.String(32), nullable=True))
        b.add_column(sa.Column("supersedes", sa.String(64), nullable=True))
        b.add_column(sa.Column("superseded_by", sa.String(64), nullable=True))
        b.add_column(sa.Column("amendment_no", sa.Integer, nullable=False, server_default="0"))
        b.add_column(sa.Column("amendment_reason", sa.Text, nullable=True))
    m = sa.table("measurements", sa.column("label", sa.String), sa.column("role", sa.String), sa.column("note", sa.Text))
    op.execute(m.update().where(m.c.label.in_(_ROLES)).values(role=m.c.label))
    op.execute(m.update().where(m.c.label.notin_(_ROLES), m.c.label != "").values(note=m.c.label))
    f = sa.table("findings", sa.column("id", sa.String), sa.column("status", sa.String),
                 sa.column("signed_by", sa.String), sa.column("signed_at", sa.String))
    a = sa.table("audit_log", sa.column("id", sa.Integer), sa.column("entity", sa.String),
                 sa.column("entity_id", sa.String), sa.column("action", sa.String),
                 sa.column("reviewer", sa.String), sa.column("at", sa.String))

    def last_finalize(col):
        return (sa.select(col).where(a.c.entity == "finding", a.c.entity_id == f.c.id, a.c.action == "finalize")
                .order_by(a.c.id.desc()).limit(1).scalar_subquery())

    op.execute(f.update().where(f.c.status == "final").values(signed_by=last_finalize(a.c.reviewer),
                                                              signed_at=last_finalize(a.c.at)))


def downgrade() -> None:
    with op.batch_alter_table("findings") as b:
        for col in ("amendment_reason", "amendment_no", "superseded_by", "supersedes", "signed_at", "signed_by"):
            b.drop_column(col)
    with op.batch_alter_table("measurements") as b:
        b.drop_column("note")
        b.drop_column("role")
