"""The database's tables, defined once (SQLAlchemy Core) for the stores that read and write them.

The migrations in ``web/migrations/versions/`` create exactly these tables; a test compares the two, so a
column added here without a migration (or the other way round) fails. Times are Unix seconds (floats), as
the lab's own counters and the JSON API use them.

``identities``       one row per lasting session (a student, later an instructor): the signed cookie holds
                     only ``id``; ``expires_at`` is the server-side end of the session; ``lab_id`` names the
                     identity's one lab and the folder of its disks, so both come back after a restart.
``lesson_progress``  one row per (owner, lesson): the step shown.
``step_progress``    one row per (owner, lesson, step): baseline counters, completion, prediction, hints.
``lab_setup``        one row per owner: which lesson the owner's current lab process was set up for.
``server_secrets``   keys the server generates once and every node shares (the cookie signing key when
                     ``HYPERLAB_SECRET_KEY`` is not set).
``classes``, ``class_members``, ``audit_log``, ``class_lockstep``  the instructor's side (:mod:`hyperlab.web.classes`).

Every progress row belongs to an identity (foreign key, ``ON DELETE CASCADE``): there is no row without a
session, and forgetting an expired identity forgets its progress.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, String, Table, Text

metadata = MetaData()

#: Longest id the server mints (identity, lab); lesson and step ids come from files and are TEXT.
ID_LEN = 64

identities = Table(
    "identities", metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("lab_id", String(ID_LEN), nullable=False, unique=True),
    Column("role", String(16), nullable=False, server_default="student"),
    Column("display_name", String(80)),
    Column("client", String(64)),  # the address that created it (rate limits, the instructor's roster)
    Column("created_at", Float, nullable=False),
    Column("renewed_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)


def _owner() -> Column:
    return Column("owner", String(ID_LEN), ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True)


lesson_progress = Table(
    "lesson_progress", metadata,
    _owner(),
    Column("lesson", Text, primary_key=True),
    Column("current_step", Integer, nullable=False, server_default="0"),
    Column("started_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

step_progress = Table(
    "step_progress", metadata,
    _owner(),
    Column("lesson", Text, primary_key=True),
    Column("step", Text, primary_key=True),
    Column("baseline", Text),  # JSON object of counter values when the step began
    Column("baseline_lab", Text),  # "<lab id>/<pid>": a baseline of another process is stale
    Column("began_at", Float),
    Column("completed_at", Float),
    Column("prediction", Float),
    Column("predicted_at", Float),
    Column("measured", Float),
    Column("hints_shown", Integer, nullable=False, server_default="0"),
)

lab_setup = Table(
    "lab_setup", metadata,
    Column("owner", String(ID_LEN), ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True),
    Column("lab", Text, nullable=False),
    Column("lesson", Text, nullable=False),
    Column("set_up_at", Float, nullable=False),
)

server_secrets = Table(
    "server_secrets", metadata,
    Column("name", String(ID_LEN), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- the instructor's side -----------------------------------------------------------------------------
#: ``classes``: a class an instructor made; students join it with ``join_code``. ``lessons``: JSON list of ids.
classes = Table(
    "classes", metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("join_code", String(16), nullable=False, unique=True),
    Column("lessons", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

#: ``class_members``: one row per student in a class (a student is in at most one class at a time).
class_members = Table(
    "class_members", metadata,
    Column("owner", String(ID_LEN), ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True),
    Column("class_id", String(ID_LEN), ForeignKey("classes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("joined_at", Float, nullable=False),
)

#: ``audit_log``: what instructors did (sign-in, class made, export; later spectate, take-over, reset).
#: ``actor`` and ``target`` are lab ids — public handles — so the log never holds a cookie's secret.
audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(ID_LEN), nullable=False),
    Column("action", String(32), nullable=False),
    Column("class_id", String(ID_LEN), index=True),
    Column("target", String(ID_LEN)),
    Column("detail", Text),
)

#: ``class_lockstep``: for a class's lesson in lockstep, the last step (index) the instructor has released;
#: no row: the lesson is not in lockstep.
class_lockstep = Table(
    "class_lockstep", metadata,
    Column("class_id", String(ID_LEN), ForeignKey("classes.id", ondelete="CASCADE"), primary_key=True),
    Column("lesson", Text, primary_key=True),
    Column("released", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)
