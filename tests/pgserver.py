"""A real PostgreSQL server for the database tests, started from Debian's ``postgresql`` binaries.

``with PostgresServer() as pg: pg.new_database()`` — initdb into a fresh temporary folder, start the
server on a free loopback port (and a Unix socket in that folder only), stop it and delete the folder at
the end. PostgreSQL refuses to run as root, so as root the server runs as ``nobody`` (the folder is
handed to that user). Missing binaries are an error, not a skip: ``make test`` installs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from liveserver import free_port

#: The user the server runs as when the tests run as root.
SERVER_USER = "nobody"
SUPERUSER = "hyperlab"


class PostgresMissing(RuntimeError):
    pass


def bin_dir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: ``$HYPERLAB_PG_BIN``, Debian's newest version, or ``PATH``."""
    candidates = [os.environ.get("HYPERLAB_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
                         reverse=True)
    found = shutil.which("initdb")
    candidates.append(str(Path(found).parent) if found else "")
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    raise PostgresMissing(
        "the PostgreSQL tests need a PostgreSQL server's binaries (initdb, pg_ctl) and found none in "
        "/usr/lib/postgresql/*/bin or on PATH: install Debian's `postgresql` package "
        "(`make test` does it as root or with `sudo -n`), or set HYPERLAB_PG_BIN")


class PostgresServer:
    """A throw-away PostgreSQL cluster; ``url`` of its ``postgres`` database, ``new_database()`` for more."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        self._dir = Path(tempfile.mkdtemp(prefix="hyperlab-pg-"))
        self.data = self._dir / "data"
        self._names = itertools.count(1)
        self.url = self._url("postgres")

    def _url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            log = self._dir / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{tail}")

    def __enter__(self) -> Self:
        if self._as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self._dir, user.pw_uid, user.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync",
                      "--no-instructions")
            self.start()
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        return self

    def start(self) -> None:
        """Start the server (again, after :meth:`stop`)."""
        options = (f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self._dir / "server.log"), "-o", options,
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data (an outage, as a class might meet one). ``fast`` writes what
        was committed (this cluster runs with ``synchronous_commit=off``); ``immediate`` does not."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def new_database(self) -> str:
        """A new empty database on this server; answers its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self._url(name)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
