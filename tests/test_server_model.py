"""The production server (``hyperlab serve``) keeps serving a student's console while others hold many
connections open: idle WebSockets and clients that never finish sending their request headers.

Bounded and on loopback: 300 idle console WebSockets and 100 slow-header clients, against a server whose
thread-per-connection predecessor (gunicorn gthread) stopped answering after 64 of either.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import websocket

from tests.liveserver import LiveServer

IDLE_WEBSOCKETS = 300
SLOW_CLIENTS = 100


def read_until(ws: websocket.WebSocket, needle: bytes, limit_s: float = 60.0) -> bytes:
    """Console bytes until ``needle`` shows (a hang guard, not a timing assertion)."""
    seen = b""
    end = time.monotonic() + limit_s
    while needle not in seen:
        assert time.monotonic() < end, f"no {needle!r} in {seen[-300:]!r}"
        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
        seen += frame if isinstance(frame, bytes) else frame.encode()
    return seen


def test_a_console_answers_while_idle_websockets_and_slow_clients_hold_connections(tmp_path: Path) -> None:
    held: list[object] = []
    with LiveServer(tmp_path) as server:
        attacker, lab = server.session()
        url = f"{server.ws_url}/ws/labs/{lab['id']}/partitions/child2/console"
        try:
            for _ in range(IDLE_WEBSOCKETS):
                held.append(websocket.create_connection(url, cookie=server.cookie_header(attacker), timeout=30))
            for _ in range(SLOW_CLIENTS):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")  # and never the rest
                held.append(s)

            student = requests.Session()
            mine = student.post(server.url + "/api/labs", timeout=30)
            assert mine.status_code in (200, 201), mine.text
            console = websocket.create_connection(
                f"{server.ws_url}/ws/labs/{mine.json()['id']}/partitions/child1/console",
                cookie=server.cookie_header(student), timeout=5)
            try:
                read_until(console, b"child1$ ")
                console.send("echo still-here\r")
                read_until(console, b"still-here\r\n")
            finally:
                console.close()
            assert requests.get(server.url + "/healthz", timeout=30).ok
        finally:
            for conn in held:
                try:
                    conn.close()  # type: ignore[attr-defined]
                except OSError:
                    pass


def _children(pid: int) -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def lab_processes(server: LiveServer) -> list[int]:
    """The server's lab processes: children of its forkserver, which is a child of gunicorn's worker."""
    tree = _children(0)
    assert server._proc is not None
    workers = tree.get(server._proc.pid, [])
    forkservers = [fs for w in workers for fs in tree.get(w, [])]
    return [lab for fs in forkservers for lab in tree.get(fs, [])]


def test_concurrent_restarts_on_the_production_server_leave_one_working_lab(tmp_path: Path) -> None:
    """On the event-loop server too: 100 restarts of one lab at once, then one lab process that answers.
    (A lab pipe written while full once stalled the whole web process there: the lab, its output pipe
    full, stopped reading, and the web side never got round to draining it.)"""
    with LiveServer(tmp_path) as server:
        s, lab = server.session()
        cookie = server.cookie_header(s)
        start = threading.Barrier(100)

        def restart(_: int) -> int:
            start.wait()
            return requests.post(f"{server.url}/api/labs/{lab['id']}/restart", headers={"Cookie": cookie},
                                 timeout=120).status_code

        with ThreadPoolExecutor(100) as pool:
            assert set(pool.map(restart, range(100))) == {200}
        assert len(lab_processes(server)) == 1
        answer = s.post(f"{server.url}/api/labs/{lab['id']}/partitions/child1/console",
                        json={"text": "echo after-restarts", "wait": True}, timeout=120).json()
        assert "after-restarts" in answer["output"], answer
