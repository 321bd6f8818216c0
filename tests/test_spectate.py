"""An instructor on a student's console over real WebSockets (gunicorn): spectating sees what the student
types and the student sees nothing of the spectator's keys; taking over types into the student's console
for the student to see; both are in the audit log; a student, a stranger, another class's instructor
route and a student of another class are refused at the handshake.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket
from liveserver import LiveServer
from wsconsole import Console

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"
SECRET = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"HYPERLAB_INSTRUCTOR_SECRET": SECRET, "HYPERLAB_LESSONS_DIR": str(FIXTURES)}
    with LiveServer(tmp_path_factory.mktemp("spectate"), env=env) as live:
        yield live


def call(s: requests.Session, server: LiveServer, method: str, path: str, **kwargs: object) -> dict:
    response = s.request(method, server.url + path, timeout=60, **kwargs)
    assert response.ok, (method, path, response.status_code, response.text)
    return response.json()


def cookie(s: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in s.cookies)


def handshake_status(server: LiveServer, path: str, s: requests.Session | None) -> int:
    try:
        websocket.create_connection(server.ws_url + path, cookie=cookie(s) if s else None, timeout=10).close()
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    return 101


def read_until(ws: websocket.WebSocket, needle: bytes, timeout: float = 30.0) -> bytes:
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while needle not in seen:
        assert time.monotonic() < deadline, f"{needle!r} not seen; got {bytes(seen)[-500:]!r}"
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            seen += ws.recv_data()[1]
        except websocket.WebSocketTimeoutException:
            continue
    return bytes(seen)


def test_spectate_and_take_over_a_students_console(server: LiveServer) -> None:
    teacher = requests.Session()
    call(teacher, server, "POST", "/api/instructor/sign-in", json={"secret": SECRET})
    klass = call(teacher, server, "POST", "/api/classes", json={"name": "Watch", "lessons": []})
    other = call(teacher, server, "POST", "/api/classes", json={"name": "Other", "lessons": []})
    ada = requests.Session()
    ada.get(server.url + "/", timeout=30)
    call(ada, server, "POST", "/api/classes/join", json={"code": klass["join_code"], "display_name": "Ada"})
    lab = call(ada, server, "POST", "/api/labs")["id"]
    bob = requests.Session()
    bob.get(server.url + "/", timeout=30)
    call(bob, server, "POST", "/api/classes/join", json={"code": other["join_code"], "display_name": "Bob"})
    bob_lab = call(bob, server, "POST", "/api/labs")["id"]
    mine = Console(server.ws_url, ada, lab, "child1")
    mine.wait_prompt()
    path = f"/ws/classes/{klass['id']}/students/{lab}/partitions/child1/console"

    # refusals at the handshake, before any audit entry
    assert handshake_status(server, path, ada) == 403
    assert handshake_status(server, path, bob) == 403
    assert handshake_status(server, path, None) == 401
    assert handshake_status(server, f"/ws/classes/{other['id']}/students/{lab}/partitions/child1/console",
                            teacher) == 404  # Ada is not in that class
    assert handshake_status(server, f"/ws/classes/{klass['id']}/students/{bob_lab}/partitions/child1/console",
                            teacher) == 404  # Bob is not in this one
    assert handshake_status(server, f"/ws/labs/{lab}/partitions/child1/console", teacher) == 404  # not theirs

    # spectating: the student's typing shows; the spectator's keys go nowhere
    spectator = websocket.create_connection(server.ws_url + path, cookie=cookie(teacher), timeout=10)
    assert "typed-by-ada" in mine.type("echo typed-by-ada")
    read_until(spectator, b"typed-by-ada")
    spectator.send_binary(b"echo typed-by-spectator\r")
    assert "after" in mine.type("echo after")
    text = call(ada, server, "GET", f"/api/labs/{lab}/partitions/child1/console")["text"]
    assert "typed-by-spectator" not in text
    spectator.close()

    # taking over: the instructor types, the student sees it happen and its answer
    helper = websocket.create_connection(server.ws_url + path + "?take_over=1", cookie=cookie(teacher), timeout=10)
    helper.send_binary(b"echo typed-by-teacher\r")
    mine.read_until(lambda seen: b"typed-by-teacher\r\n" in seen.replace(b"echo typed-by-teacher", b""),
                    "the teacher's command and its answer")
    helper.close()
    mine.ws.close()

    entries = call(teacher, server, "GET", f"/api/classes/{klass['id']}/audit")["entries"]
    entries = [e for e in entries if e["action"] != "take_over_end"]  # written when the server sees the close
    assert [(e["action"], e["target"], e["detail"]) for e in entries[:2]] == [
        ("take_over", lab, "child1"), ("spectate", lab, "child1")]
