"""A lab's lifecycle under pressure: restarts, closes and reconfigurations of one lab are serialized, and
every lab process is accounted for (real HTTP on a threaded server, real lab processes)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import forkserver
from pathlib import Path

import pytest
import requests

from hyperlab.web.app import create_app
from tests.liveserver import InProcessServer


def lab_processes() -> set[int]:
    """Live (not zombie) children of the forkserver: the lab processes of this test process."""
    server = getattr(forkserver._forkserver, "_forkserver_pid", None)
    if server is None:
        return set()
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == server:
            pids.add(int(entry))
    return pids


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    app = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "test",
                      "HYPERLAB_MAX_LABS": 4})
    with InProcessServer(app) as server:
        yield server


def test_concurrent_restarts_of_one_lab_leave_one_working_lab_process(server: InProcessServer) -> None:
    session, lab = server.session()
    before = lab_processes()
    manager = server.app.extensions["hyperlab.labs"]
    handle = manager.get(lab["id"])
    assert handle.process.pid in before
    cookie = server.cookie_header(session)
    start = threading.Barrier(16)

    def restart(_: int) -> tuple[int, str]:
        start.wait()
        r = requests.post(f"{server.url}/api/labs/{lab['id']}/restart", headers={"Cookie": cookie}, timeout=120)
        return r.status_code, r.text[:300]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(restart, range(16)))
    assert all(status == 200 for status, _ in answers), answers
    after = lab_processes()
    others = before - {handle.process.pid}
    assert after - others == {handle.process.pid}, f"lab processes: {sorted(after - others)}"
    assert handle.alive
    described = session.get(f"{server.url}/api/labs/{lab['id']}", timeout=30)
    assert described.status_code == 200 and described.json()["alive"] is True
