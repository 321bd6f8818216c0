"""The server's database: SQLite in the data directory by default, PostgreSQL when a URL says so.

One :class:`Database` per app. Opening it runs the schema migrations (Alembic, ``web/migrations/``) up to
the newest, so a server upgraded in place brings its database along at start; several servers sharing one
PostgreSQL database may start at once (the migrations run in one transaction under an advisory lock, so
the others wait and then find nothing to do).

SQLite needs three things PostgreSQL does by itself: foreign keys switched on (per connection), WAL so
readers never wait for a writer (with ``synchronous=NORMAL``: no fsync per commit), and one writer at a
time in this process — SQLite would answer a second
writer with "database is locked" after its timeout instead of queueing it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from hyperlab.web import schema

#: File name of the SQLite database inside the data directory (the name predates the identities in it).
SQLITE_NAME = "progress.sqlite3"

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: PostgreSQL advisory lock key held while migrating (any constant: "hyperlab" in ASCII).
MIGRATION_LOCK = 0x68_79_70_65_72_6C_61_62
#: SQLite has no such lock: apps in one process (the one server process, or tests) migrate one at a time.
_SQLITE_MIGRATING = threading.Lock()


class DatabaseError(Exception):
    """A database setting that cannot work, said plainly (the server refuses to start with it)."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/hyperlab`` (or ``~/.local/share/hyperlab``): where ``hyperlab serve`` keeps its data."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hyperlab"


def default_sqlite_path(data_dir: Path | None) -> Path:
    """``<data dir>/progress.sqlite3``; without a data dir, in :func:`default_data_dir`."""
    return Path(data_dir if data_dir is not None else default_data_dir()) / SQLITE_NAME


def database_url(url: str | None, sqlite_path: Path) -> str:
    """The SQLAlchemy URL to open: ``url`` (``postgresql://…`` or ``sqlite:///…``) or the SQLite file.

    ``postgresql://`` and ``postgres://`` mean psycopg 3 (the driver hyperlab ships with).
    """
    if not url:
        return f"sqlite+pysqlite:///{sqlite_path}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"HYPERLAB_DATABASE_URL is not a database URL: {url!r} "
                            "(expected e.g. postgresql://user:password@host:5432/hyperlab)") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    raise DatabaseError(f"HYPERLAB_DATABASE_URL: unsupported database {backend!r}; use postgresql:// or sqlite://")


class Database:
    """``Database(url)``: an engine with the schema migrated; ``read()`` and ``write()`` give connections."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine, "connect", _sqlite_on_connect)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=20)
        try:
            self.migrate()
        except Exception as exc:
            self.engine.dispose()
            where = parsed.render_as_string(hide_password=True)
            raise DatabaseError(f"cannot open the database {where}: {exc}") from exc

    def migrate(self) -> None:
        """Bring the schema to the newest migration (nothing to do if it is there already)."""
        from alembic import command  # imported here: only the start needs it
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        serial = _SQLITE_MIGRATING if self.dialect == "sqlite" else contextlib.nullcontext()
        with serial, self._write_lock, self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Nodes starting together: one migrates, the others wait here and then find nothing to do.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def insert(self, table: Any) -> Any:
        """``INSERT`` with this dialect's ``ON CONFLICT`` clauses (SQLite and PostgreSQL spell them alike)."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def server_secret(self, name: str) -> str:
        """A random key generated once and kept in the database, so every node and every restart shares it."""
        with self.write() as conn:
            conn.execute(self.insert(schema.server_secrets)
                         .values(name=name, value=secrets.token_hex(32)).on_conflict_do_nothing())
            return str(conn.execute(select(schema.server_secrets.c.value)
                                    .where(schema.server_secrets.c.name == name)).scalar_one())


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    with contextlib.suppress(sqlite3.DatabaseError):  # no shared memory here: the default journal works too
        cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the file; a power cut may lose the last commits (a step's progress),
    # and each commit costs no fsync: a step write takes ~0.3 ms instead of ~3 ms (bench/database.py).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
