"""The database under the web layer, on SQLite and on a real PostgreSQL server (the tests' throw-away
cluster, tests/pgserver.py): what one request pays for its identity and its lesson progress, how many
progress writes 8 request threads get through together, and how many sessions one client address can
start in 30 s (the rate limit's figure: a bounded loop of cookie-less POST /api/session, one per 20 ms).

Clocks: host wall (perf_counter) around each store call, in the bench process (no HTTP in the latencies).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import emit, figure, log
from hyperlab.web.db import Database, database_url
from hyperlab.web.identity import IdentityStore
from hyperlab.web.progress import ProgressStore

TESTS = Path(__file__).resolve().parent.parent / "tests"
N = 100
THREADS = 8
WRITES_PER_THREAD = 100
WINDOW_S = 30.0


def _timed(call: Any, n: int = N) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def measure(url: str) -> dict[str, Any]:
    db = Database(url)
    identities = IdentityStore(db, 86400.0)
    store = ProgressStore(db)
    owner = identities.create("192.0.2.1")
    for step in ("a", "b", "c"):
        store.begin_step(owner.id, "lesson", step, {"child1.syscalls": 1.0, "child2.exits.io_port": 2.0}, "lab/1")
    figures = {
        "identity_lookup_us": figure(_timed(lambda _: identities.get(owner.id)), "us", "host wall",
                                     samples_note="one per request that carries a cookie"),
        "lesson_read_us": figure(_timed(lambda _: store.lesson(owner.id, "lesson")), "us", "host wall",
                                 samples_note="a lesson of 3 begun steps; about once a second per open lesson page"),
        "step_write_us": figure(_timed(lambda i: store.begin_step(owner.id, "lesson", f"w{i}", {"n": 1.0}, "lab/1")),
                                "us", "host wall"),
        "complete_write_us": figure(_timed(lambda i: store.complete_step(owner.id, "lesson", f"w{i}", 1.0)),
                                    "us", "host wall"),
    }
    owners = [identities.create(None).id for _ in range(THREADS)]

    def writer(o: str) -> None:
        for i in range(WRITES_PER_THREAD):
            store.begin_step(o, "lesson", f"s{i}", {"n": float(i)}, "lab/1")

    threads = [threading.Thread(target=writer, args=(o,)) for o in owners]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    figures["concurrent_writes_per_s"] = {"unit": "writes/s", "clock": "host wall", "threads": THREADS,
                                          "writes": THREADS * WRITES_PER_THREAD,
                                          "value": round(THREADS * WRITES_PER_THREAD / elapsed, 1)}
    db.close()
    return figures


def sessions_in_window(data_dir: Path) -> dict[str, Any]:
    """Cookie-less POST /api/session from one address for 30 s: how many became sessions."""
    from hyperlab.web.app import create_app

    app = create_app({"HYPERLAB_DATA_DIR": data_dir, "HYPERLAB_SECRET_KEY": "bench"})
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + WINDOW_S
    while time.monotonic() < deadline:
        status = app.test_client().post("/api/session", environ_base={"REMOTE_ADDR": "192.0.2.50"}).status_code
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.02)
    created = app.extensions["hyperlab.identities"].count()
    limit = app.config["HYPERLAB_SESSIONS_PER_MINUTE"]
    app.extensions["hyperlab.db"].close()
    return {"unit": "sessions", "window_s": WINDOW_S, "requests": sum(statuses.values()),
            "answers": {str(k): v for k, v in sorted(statuses.items())}, "sessions_created": created,
            "limit_per_minute": limit, "met": created <= limit}


def main() -> None:
    sys.path.insert(0, str(TESTS))
    from pgserver import PostgresServer

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hyperlab-bench-db-") as tmp:
        log("sqlite ...")
        figures["sqlite"] = measure(database_url(None, Path(tmp) / "bench.sqlite3"))
        log("postgresql ...")
        with PostgresServer() as pg:
            figures["postgresql"] = measure(pg.new_database())
        log(f"sessions from one address in {WINDOW_S:.0f} s ...")
        figures["sessions_one_address_30s"] = sessions_in_window(Path(tmp) / "app")
    emit("database", figures)


if __name__ == "__main__":
    main()
