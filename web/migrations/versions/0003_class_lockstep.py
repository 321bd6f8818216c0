"""Lockstep: the step of a class's lesson the instructor has released so far.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "class_lockstep",
        sa.Column("class_id", sa.String(64), sa.ForeignKey("classes.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("lesson", sa.Text, primary_key=True),
        sa.Column("released", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("class_lockstep")
