"""A lab's lifecycle under pressure: restarts, closes and reconfigurations of one lab are serialized, and
every lab process is accounted for (real HTTP on a threaded server, real lab processes)."""

from __future__ import annotations

import os
import threading
import time
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
    assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200]
    after = lab_processes()
    others = before - {handle.process.pid}
    assert after - others == {handle.process.pid}, f"lab processes: {sorted(after - others)}"
    assert handle.alive
    described = session.get(f"{server.url}/api/labs/{lab['id']}", timeout=30)
    assert described.status_code == 200 and described.json()["alive"] is True


# --- idle labs and a full server --------------------------------------------------------------------
def test_an_idle_lab_is_culled_with_its_disks_kept_and_comes_back(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "test"})
    manager = app.extensions["hyperlab.labs"]
    assert app.config["HYPERLAB_IDLE_MINUTES"] == 30  # the documented default
    try:
        idle, watched = app.test_client(), app.test_client()
        idle_lab = idle.post("/api/labs").get_json()["id"]
        watched_lab = watched.post("/api/labs").get_json()["id"]
        handle = manager.get(idle_lab)
        handle.wait_ready()
        process = handle.process
        detach = manager.get(watched_lab).attach_viewer()  # an open page (a console WebSocket)
        try:
            assert manager.cull(now=time.monotonic() + 29 * 60) == []  # not idle long enough
            assert manager.cull(now=time.monotonic() + 31 * 60) == [idle_lab]
        finally:
            detach()
        assert manager.get(idle_lab) is None and not process.is_alive()
        assert manager.get(watched_lab) is not None
        assert (tmp_path / idle_lab).is_dir()  # its disks stay
        assert idle.get(f"/api/labs/{idle_lab}").status_code == 404
        again = idle.post("/api/labs")
        assert again.status_code == 201 and again.get_json()["id"] == idle_lab  # same lab, same disks
    finally:
        manager.shutdown()


def test_typing_keeps_a_lab_from_being_culled(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "test",
                      "HYPERLAB_IDLE_MINUTES": "10"})
    manager = app.extensions["hyperlab.labs"]
    try:
        client = app.test_client()
        lab = client.post("/api/labs").get_json()["id"]
        manager.get(lab).wait_ready()
        start = time.monotonic()
        manager.get(lab).last_active = start - 9 * 60
        assert client.post(f"/api/labs/{lab}/partitions/child1/console", json={"text": "ver"}).status_code == 200
        assert manager.cull(now=start + 5 * 60) == []  # 9 min idle, but input a moment ago
        assert manager.cull(now=start + 11 * 60) == [lab]
    finally:
        manager.shutdown()


def test_a_full_server_says_when_to_try_again(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "test",
                      "HYPERLAB_MAX_LABS": 1})
    manager = app.extensions["hyperlab.labs"]
    try:
        first = app.test_client()
        lab = first.post("/api/labs").get_json()["id"]
        manager.get(lab).last_active = time.monotonic() - 20 * 60  # idle for 20 of its 30 minutes
        full = app.test_client().post("/api/labs")
        assert full.status_code == 503
        message = full.get_json()["error"]
        assert "full" in message and "try again in about 10 minutes" in message, message
        assert full.headers["Retry-After"] == "600" and full.get_json()["retry_after_s"] == 600

        manager.get(lab).last_active = time.monotonic() - 31 * 60  # now past the idle limit:
        second = app.test_client().post("/api/labs")  # the idle lab makes room at once
        assert second.status_code == 201, second.get_json()
        assert manager.get(lab) is None
    finally:
        manager.shutdown()
