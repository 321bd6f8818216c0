"""Classes with join codes, their members, and the audit log (the instructor's side).

A member's display name is the identity's own (``identities.display_name``); ``audit_log.actor`` and
``target`` are lab ids (an identity's public handle), never identity ids (the cookies' secret).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("join_code", sa.String(16), nullable=False, unique=True),
        sa.Column("lessons", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "class_members",
        sa.Column("owner", sa.String(64), sa.ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("class_id", sa.String(64), sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("joined_at", sa.Float, nullable=False),
    )
    op.create_index("ix_class_members_class_id", "class_members", ["class_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("class_id", sa.String(64)),
        sa.Column("target", sa.String(64)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_log_class_id", "audit_log", ["class_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("class_members")
    op.drop_table("classes")
