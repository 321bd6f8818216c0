"""The database layer against SQLite and a real PostgreSQL server (``database_url`` runs each test on both):
migrations that build exactly the declared schema, the progress store's rules, identities and their
expiry, no progress row without an identity, a pre-migration SQLite file adopted, clear errors for bad
settings.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hyperlab.web import schema
from hyperlab.web.db import Database, DatabaseError, database_url
from hyperlab.web.identity import IdentityStore
from hyperlab.web.progress import ProgressStore

DAY = 86400.0


def rows(db: Database, table: object) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_migrations_build_exactly_the_declared_schema(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.read() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        assert diff == [], f"schema.py and the migrations differ: {diff}"
        assert version == "0003"
    finally:
        db.close()
    Database(database_url).close()  # opening again migrates nothing and loses nothing


def test_servers_starting_together_migrate_once(database_url: str) -> None:
    opened: list[Database] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(Database(database_url))
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    nodes = [threading.Thread(target=start) for _ in range(4)]
    for node in nodes:
        node.start()
    for node in nodes:
        node.join(timeout=120)
    assert errors == [] and len(opened) == 4
    with opened[0].read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar_one() == 1
    for db in opened:
        db.close()


def test_progress_store_rules_survive_a_reopen(database_url: str) -> None:
    db = Database(database_url)
    identities = IdentityStore(db, DAY)
    owner = identities.create("127.0.0.1").id
    store = ProgressStore(db)
    assert store.lesson(owner, "l").started is False
    store.begin_step(owner, "l", "s1", {"child1.syscalls": 4}, "lab/1")
    assert store.predict(owner, "l", "s1", 3.0) is True
    assert store.predict(owner, "l", "s1", 9.0) is False  # a prediction cannot be changed
    assert store.complete_step(owner, "l", "s1", 7.0) is True
    assert store.complete_step(owner, "l", "s1", 8.0) is False  # completed once; measured kept
    assert store.show_hint(owner, "l", "s1", 2) == 1
    assert store.show_hint(owner, "l", "s1", 2) == 2 and store.show_hint(owner, "l", "s1", 2) == 2
    store.set_current(owner, "l", 1)
    store.set_lab_setup(owner, "lab/1", "l")
    store.set_lab_setup(owner, "lab/2", "l")
    db.close()

    again = ProgressStore(Database(database_url))  # a server restart: nothing lost
    record = again.lesson(owner, "l")
    step = record.step("s1")
    assert record.started and record.current_step == 1 and record.completed_ids() == ["s1"]
    assert (step.baseline, step.baseline_lab, step.prediction, step.measured) == (
        {"child1.syscalls": 4}, "lab/1", 3.0, 7.0)
    assert step.hints_shown == 2 and step.began_at is not None and step.predicted_at is not None
    assert again.lab_setup(owner) == ("lab/2", "l")
    assert list(again.lessons(owner)) == ["l"] and again.lessons("someone else") == {}
    again.reset(owner, "l")
    assert again.lesson(owner, "l").started is False and again.lab_setup(owner) == ("lab/2", "l")
    again.db.close()


def test_no_progress_row_without_an_identity(database_url: str) -> None:
    db = Database(database_url)
    store = ProgressStore(db)
    for write in (lambda: store.set_current("nobody", "l", 0),
                  lambda: store.begin_step("nobody", "l", "s", {}, "lab/1"),
                  lambda: store.set_lab_setup("nobody", "lab/1", "l")):
        with pytest.raises(IntegrityError):
            write()
    assert rows(db, schema.lesson_progress) == rows(db, schema.step_progress) == rows(db, schema.lab_setup) == 0
    db.close()


def test_identities_expire_renew_and_take_their_progress_with_them(database_url: str) -> None:
    db = Database(database_url)
    identities = IdentityStore(db, DAY)
    student = identities.create("192.0.2.7")
    other = identities.create("192.0.2.8")
    assert student.id != other.id and student.lab_id != other.lab_id and student.role == "student"
    assert identities.get(student.id) == student
    assert identities.get("no such id") is None
    # renewed at most once an hour: no write per request
    assert identities.renew(student, now=student.renewed_at + 60) == student
    later = identities.renew(student, now=student.renewed_at + 7200)
    assert later.expires_at == pytest.approx(student.renewed_at + 7200 + DAY)
    assert identities.get(student.id) == later
    # past its expiry an identity is gone, and purging it forgets its progress
    store = ProgressStore(db)
    store.set_current(student.id, "l", 2)
    store.begin_step(student.id, "l", "s", {}, "lab/1")
    store.set_lab_setup(student.id, "lab/1", "l")
    store.set_current(other.id, "l", 1)
    assert identities.get(student.id, now=later.expires_at + 1) is None
    identities.expire(student.id)
    assert identities.get(student.id) is None
    assert identities.purge_expired() == [student.lab_id]
    assert rows(db, schema.identities) == 1 and identities.count() == 1
    assert rows(db, schema.lesson_progress) == 1 and rows(db, schema.step_progress) == 0
    assert rows(db, schema.lab_setup) == 0
    assert store.lesson(other.id, "l").current_step == 1
    db.close()


def test_the_server_secret_is_made_once_and_shared(database_url: str) -> None:
    first = Database(database_url)
    second = Database(database_url)  # another node, or the same server after a restart
    key = first.server_secret("session-key")
    assert len(key) == 64 and second.server_secret("session-key") == key
    assert first.server_secret("other") != key
    first.close()
    second.close()


def test_concurrent_writers_all_land(database_url: str) -> None:
    """Many request threads writing at once: none sees "database is locked", nothing is lost."""
    db = Database(database_url)
    identities = IdentityStore(db, DAY)
    store = ProgressStore(db)
    owners = [identities.create(None).id for _ in range(8)]
    errors: list[BaseException] = []

    def student(owner: str) -> None:
        try:
            for i in range(15):
                store.begin_step(owner, "l", f"s{i}", {"n": i}, "lab/1")
                store.complete_step(owner, "l", f"s{i}", float(i))
                store.show_hint(owner, "l", f"s{i}", 3)
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=student, args=(owner,)) for owner in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert rows(db, schema.step_progress) == 8 * 15
    assert all(len(store.lesson(owner, "l").completed_ids()) == 15 for owner in owners)
    db.close()


def test_a_pre_migration_sqlite_file_is_adopted(tmp_path: Path) -> None:
    """Progress written before migrations existed (keyed by the cookie's owner id) is kept: each owner
    becomes an identity, so that student's old cookie still finds their lessons, and their old lab's disks."""
    path = tmp_path / "progress.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE lesson_progress (owner TEXT NOT NULL, lesson TEXT NOT NULL, current_step INTEGER NOT NULL
            DEFAULT 0, started_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (owner, lesson));
        CREATE TABLE step_progress (owner TEXT NOT NULL, lesson TEXT NOT NULL, step TEXT NOT NULL, baseline TEXT,
            baseline_lab TEXT, began_at REAL, completed_at REAL, prediction REAL, predicted_at REAL, measured REAL,
            hints_shown INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (owner, lesson, step));
        CREATE TABLE lab_setup (owner TEXT PRIMARY KEY, lab TEXT NOT NULL, lesson TEXT NOT NULL,
            set_up_at REAL NOT NULL);
        INSERT INTO lesson_progress VALUES ('old-owner', 'l', 2, 1.0, 2.0), ('other', 'l', 0, 1.0, 1.0);
        INSERT INTO step_progress (owner, lesson, step, completed_at, prediction)
            VALUES ('old-owner', 'l', 's1', 5.0, 12.0);
        INSERT INTO lab_setup VALUES ('old-owner', 'abc/1', 'l', 3.0);
    """)
    old.commit()
    old.close()
    db = Database(database_url(None, path))
    identities = IdentityStore(db, DAY)
    adopted = identities.get("old-owner")
    assert adopted is not None and identities.get("other") is not None
    assert adopted.lab_id == "abc"  # the lab it had, so its disks in <data dir>/abc/ are its own again
    store = ProgressStore(db)
    record = store.lesson("old-owner", "l")
    assert record.current_step == 2 and record.completed_ids() == ["s1"] and record.step("s1").prediction == 12.0
    assert store.lab_setup("old-owner") == ("abc/1", "l")
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not any(t.startswith("legacy_") for t in tables)
    db.close()


def test_bad_database_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="not a database URL"):
        database_url("not a url at all", tmp_path / "x")
    with pytest.raises(DatabaseError, match="unsupported database 'mysql'"):
        database_url("mysql://u@localhost/db", tmp_path / "x")
    assert database_url("postgres://u:p@h/db", tmp_path / "x") == "postgresql+psycopg://u:p@h/db"
    assert database_url(None, tmp_path / "p.sqlite3") == f"sqlite+pysqlite:///{tmp_path / 'p.sqlite3'}"
    with pytest.raises(DatabaseError, match=r"cannot open the database postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/db"):
        Database(database_url("postgresql://u:secret@127.0.0.1:1/db", tmp_path / "x"))
