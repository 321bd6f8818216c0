"""Identities, lesson progress, lab set-ups and server secrets.

Revision ID: 0001
Revises: (none)

A database written by hyperlab before migrations existed (``progress.sqlite3`` with the three progress
tables keyed by the cookie's owner id, and no identities) is adopted: every owner found there becomes an
identity, so that student's old cookie still finds their progress; its lab id is the one ``lab_setup``
recorded for the owner (``<lab id>/<pid>``), so the lab's disks in ``<data dir>/<lab id>/`` are theirs
again, or a new one.
"""

from __future__ import annotations

import secrets
import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: Lifetime given to the identities adopted from a pre-migration database (the server's default).
_ADOPTED_DAYS = 30
_LEGACY = ("lesson_progress", "step_progress", "lab_setup")


def _owner(primary_key: bool = True) -> sa.Column:
    return sa.Column("owner", sa.String(64), sa.ForeignKey("identities.id", ondelete="CASCADE"),
                     primary_key=primary_key)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    legacy = "lesson_progress" in existing and "identities" not in existing
    if legacy:
        for name in _LEGACY:
            if name in existing:
                op.rename_table(name, f"legacy_{name}")

    op.create_table(
        "identities",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("lab_id", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False, server_default="student"),
        sa.Column("display_name", sa.String(80)),
        sa.Column("client", sa.String(64)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("renewed_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_identities_expires_at", "identities", ["expires_at"])
    op.create_table(
        "lesson_progress",
        _owner(),
        sa.Column("lesson", sa.Text, primary_key=True),
        sa.Column("current_step", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "step_progress",
        _owner(),
        sa.Column("lesson", sa.Text, primary_key=True),
        sa.Column("step", sa.Text, primary_key=True),
        sa.Column("baseline", sa.Text),
        sa.Column("baseline_lab", sa.Text),
        sa.Column("began_at", sa.Float),
        sa.Column("completed_at", sa.Float),
        sa.Column("prediction", sa.Float),
        sa.Column("predicted_at", sa.Float),
        sa.Column("measured", sa.Float),
        sa.Column("hints_shown", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "lab_setup",
        _owner(),
        sa.Column("lab", sa.Text, nullable=False),
        sa.Column("lesson", sa.Text, nullable=False),
        sa.Column("set_up_at", sa.Float, nullable=False),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    if legacy:
        _adopt({name for name in _LEGACY if name in existing})


def _adopt(tables: set[str]) -> None:
    """Copy the pre-migration rows over, with one identity per owner they name."""
    conn = op.get_bind()
    owners: set[str] = set()
    for name in tables:
        owners |= {row[0] for row in conn.execute(sa.text(f"SELECT DISTINCT owner FROM legacy_{name}"))}
    labs: dict[str, str] = {}
    if "lab_setup" in tables:
        for owner, lab in conn.execute(sa.text("SELECT owner, lab FROM legacy_lab_setup")):
            lab_id = str(lab).split("/")[0]
            if lab_id and lab_id not in labs.values():
                labs[owner] = lab_id
    now = time.time()
    identities = sa.table("identities", *(sa.column(c) for c in (
        "id", "lab_id", "role", "created_at", "renewed_at", "expires_at")))
    if owners:
        conn.execute(identities.insert(), [
            {"id": owner, "lab_id": labs.get(owner) or secrets.token_urlsafe(8), "role": "student",
             "created_at": now, "renewed_at": now, "expires_at": now + _ADOPTED_DAYS * 86400}
            for owner in sorted(owners)])
    for name in tables:
        columns = [c["name"] for c in sa.inspect(conn).get_columns(f"legacy_{name}")]
        listed = ", ".join(columns)
        conn.execute(sa.text(f"INSERT INTO {name} ({listed}) SELECT {listed} FROM legacy_{name}"))
        op.drop_table(f"legacy_{name}")


def downgrade() -> None:
    for name in ("server_secrets", "lab_setup", "step_progress", "lesson_progress", "identities"):
        op.drop_table(name)
