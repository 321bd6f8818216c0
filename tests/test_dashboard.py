"""The instructor's live side: the dashboard's heat map (from the stored hypervisor-state checks and the live
labs), its SSE stream, messages, spectate and take-over of a student's console, a partition's reset — and
every refusal: a student or a stranger never reaches them, an instructor never reaches a student outside the
class named in the URL. Real labs, real WebSockets, real HTTP streams; SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket
from flask import Flask
from liveserver import InProcessServer
from sqlalchemy import update
from test_classes import SECRET, identity_of, instructor, make_app, ok, student

from hyperlab.web.schema import step_progress

WAIT_S = 30.0


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_app(tmp_path, database_url, HYPERLAB_SESSIONS_PER_MINUTE=50, HYPERLAB_STUCK_MINUTES=1)
    yield app
    app.extensions["hyperlab.classroom"].stop()
    app.extensions["hyperlab.labs"].shutdown()
    app.extensions["hyperlab.db"].close()


def test_the_heat_map_colours_each_step_from_the_stored_checks_and_lockstep(app: Flask) -> None:
    teacher = instructor(app)
    klass = ok(teacher.post("/api/classes", json={"name": "Heat", "lessons": ["tiny"]}), 201)
    code, cid = klass["join_code"], klass["id"]
    ada, bob, cy = (student(app, code, n) for n in ("Ada", "Bob", "Cy"))
    progress = app.extensions["hyperlab.progress"]
    a, b = identity_of(ada), identity_of(bob)
    # Ada: step 1 done, predicted 120 on step 2 and measured 100 (done), working on step 3
    progress.begin_step(a, "tiny", "look", {}, "x")
    progress.complete_step(a, "tiny", "look", None)
    progress.begin_step(a, "tiny", "count-syscalls", {}, "x")
    progress.predict(a, "tiny", "count-syscalls", 120)
    progress.complete_step(a, "tiny", "count-syscalls", 100)
    progress.set_current(a, "tiny", 2)
    progress.begin_step(a, "tiny", "pause-child2", {}, "x")
    # Bob: on step 2 for 2 minutes (the class's stuck limit is 1 minute)
    progress.begin_step(b, "tiny", "look", {}, "x")
    progress.complete_step(b, "tiny", "look", None)
    progress.set_current(b, "tiny", 1)
    progress.begin_step(b, "tiny", "count-syscalls", {}, "x")
    with app.extensions["hyperlab.db"].write() as conn:
        conn.execute(update(step_progress).where(step_progress.c.owner == b).values(began_at=time.time() - 120))
    view = ok(teacher.get(f"/api/classes/{cid}/dashboard"))
    assert [s["id"] for s in view["lessons"][0]["steps"]] == ["look", "count-syscalls", "pause-child2"]
    rows = {r["display_name"]: r for r in view["students"]}
    assert rows["Ada"]["cells"] == {"tiny": ["done", "done", "working"]}
    assert rows["Bob"]["cells"] == {"tiny": ["done", "stuck", "none"]}
    assert rows["Cy"]["cells"] == {"tiny": ["none", "none", "none"]}  # joined, never opened the lesson
    assert rows["Ada"]["last_prediction"] == {"lesson": "tiny", "step": "count-syscalls", "prediction": 120,
                                              "measured": 100}
    assert rows["Bob"]["last_prediction"] is None
    assert rows["Ada"]["student"] == ok(ada.get("/api/session"))["lab_id"]
    assert rows["Ada"]["lab"]["state"] == "none"  # no lab on this node
    agg = view["aggregate"]["tiny"]
    assert [s["passed"] for s in agg] == [2, 1, 0]
    assert (agg[1]["predictions"], agg[1]["measured"], agg[1]["stuck"], agg[2]["working"]) == ([120], [100], 1, 1)
    # lockstep: step 1 released only; what is not done past it is locked (Ada's done steps stay done)
    ok(teacher.put(f"/api/classes/{cid}/lockstep/tiny", json={"released": 0}))
    view = ok(teacher.get(f"/api/classes/{cid}/dashboard"))
    rows = {r["display_name"]: r for r in view["students"]}
    assert rows["Ada"]["cells"]["tiny"] == ["done", "done", "locked"]
    assert rows["Cy"]["cells"]["tiny"] == ["none", "locked", "locked"]
    assert view["class"]["lockstep"] == {"tiny": 0}
    # the student's lesson state says so too, and going past it is refused
    state = ok(ada.get("/api/lessons/tiny/state"))
    assert state["released"] == 0
    assert ada.post("/api/lessons/tiny/goto", json={"index": 2}).status_code == 409
    del cy


def test_only_the_instructor_reaches_the_dashboard_messages_and_resets_of_their_class(app: Flask) -> None:
    teacher = instructor(app)
    mine = ok(teacher.post("/api/classes", json={"name": "Mine", "lessons": ["tiny"]}), 201)
    other = ok(teacher.post("/api/classes", json={"name": "Other", "lessons": []}), 201)
    ada = student(app, mine["join_code"], "Ada")
    bob = student(app, other["join_code"], "Bob")
    bob_handle = ok(bob.get("/api/session"))["lab_id"]
    ada_handle = ok(ada.get("/api/session"))["lab_id"]
    stranger = app.test_client()
    routes = []
    for cid in (mine["id"], other["id"], "no-such-class"):
        routes += [("GET", f"/api/classes/{cid}/dashboard", None), ("GET", f"/api/classes/{cid}/dashboard/events", None),
                   ("POST", f"/api/classes/{cid}/messages", {"text": "hi"}),
                   ("POST", f"/api/classes/{cid}/students/{ada_handle}/partitions/root/reset", None)]
    for method, path, body in routes:
        refused = ada.open(path, method=method, json=body)
        assert refused.status_code == 403, (path, refused.get_data(as_text=True))
        assert refused.get_json() == {"error": "only an instructor may do this"}
        assert stranger.open(path, method=method, json=body).status_code == 401
    # the instructor: a student of another class is not in this one (404), an unknown class is 404
    assert teacher.post(f"/api/classes/{mine['id']}/messages", json={"text": "hi", "student": bob_handle}
                        ).status_code == 404
    assert teacher.post(f"/api/classes/{mine['id']}/students/{bob_handle}/partitions/root/reset").status_code == 404
    assert teacher.get("/api/classes/no-such-class/dashboard").status_code == 404
    # a member without a lab on this node: 409 with the reason
    no_lab = teacher.post(f"/api/classes/{mine['id']}/students/{ada_handle}/partitions/root/reset")
    assert no_lab.status_code == 409 and "no lab on this server" in no_lab.get_json()["error"]
    # bad messages
    for body in ({"text": ""}, {"text": 5}, {"text": "x" * 501}, {"text": "ok", "student": 7}, ["text"]):
        assert teacher.post(f"/api/classes/{mine['id']}/messages", json=body).status_code == 400, body
    # a student's notices: 204 outside a class, 401 without a session
    assert stranger.get("/api/classes/mine/events").status_code == 401
    assert student(app).get("/api/classes/mine/events").status_code == 204
    # none of the refusals reached the log
    actions = [e["action"] for e in ok(teacher.get("/api/audit"))["entries"]]
    assert "message" not in actions and "reset" not in actions


# --- live: a real server, real labs, real WebSockets and streams ------------------------------------------------
def sse_events(response: requests.Response) -> Iterator[tuple[str, dict]]:
    """(event, data) from a text/event-stream response, as a browser's EventSource reads them."""
    event, data = "message", []
    for raw in response.iter_lines(decode_unicode=True):
        if raw is None:
            continue
        if raw == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif raw.startswith("event:"):
            event = raw[6:].strip()
        elif raw.startswith("data:"):
            data.append(raw[5:].strip())


class Collector:
    """Reads an SSE stream on a thread; ``wait(pred)`` for an event that matches."""

    def __init__(self, session: requests.Session, url: str) -> None:
        self.response = session.get(url, stream=True, timeout=(5, 60))
        assert self.response.status_code == 200, self.response.text
        self.events: list[tuple[str, dict]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(requests.RequestException, AttributeError):  # closed with the test
            for item in sse_events(self.response):
                with self.cond:
                    self.events.append(item)
                    self.cond.notify_all()

    def wait(self, pred, what: str) -> tuple[str, dict]:
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while True:
                for item in self.events:
                    if pred(*item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{what} not seen; got {[e for e, _ in self.events]}")
                self.cond.wait(left)

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[InProcessServer]:
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", HYPERLAB_SESSIONS_PER_MINUTE=50)
    with InProcessServer(app) as server:
        yield server
    app.extensions["hyperlab.classroom"].stop()


def _signed_in(server: InProcessServer) -> requests.Session:
    s = requests.Session()
    s.get(server.url + "/", timeout=10)
    assert s.post(server.url + "/api/instructor/sign-in", json={"secret": SECRET}, timeout=10).status_code == 200
    return s


def _read_until(ws: websocket.WebSocket, needle: bytes, seen: bytearray) -> bytes:
    deadline = time.monotonic() + WAIT_S
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"{needle!r} not seen; got {bytes(seen)[-800:]!r}")
        ws.settimeout(left)
        try:
            seen += ws.recv_data()[1]
        except websocket.WebSocketTimeoutException:
            continue
    return bytes(seen)


def test_spectate_take_over_reset_and_message_reach_the_student_and_the_audit_log(live: InProcessServer) -> None:
    teacher = _signed_in(live)
    klass = teacher.post(live.url + "/api/classes", json={"name": "Live", "lessons": ["tiny"]}, timeout=10).json()
    cid = klass["id"]
    ada, lab = live.session()
    ada.post(live.url + "/api/classes/join", json={"code": klass["join_code"], "display_name": "Ada"},
             timeout=10).raise_for_status()
    handle = lab["id"]
    notices = Collector(ada, live.url + "/api/classes/mine/events")
    dash = Collector(teacher, live.url + f"/api/classes/{cid}/dashboard/events")
    dash.wait(lambda e, d: e == "view" and d["students"][0]["lab"]["state"] == "running", "Ada's running lab")

    # spectate child1: the console as the student sees it; what the instructor types goes nowhere
    base = f"{live.ws_url}/ws/classes/{cid}/students/{handle}/partitions/child1"
    cookie = live.cookie_header(teacher)
    spectator = websocket.create_connection(base + "/console", cookie=cookie, timeout=10)
    seen = bytearray()
    mine = websocket.create_connection(f"{live.ws_url}/ws/labs/{handle}/partitions/child1/console",
                                       cookie=live.cookie_header(ada), timeout=10)
    mine_seen = bytearray()
    mine.send_binary(b"\r")
    _read_until(mine, b"child1$ ", mine_seen)
    mine.send_binary(b"ver\r")
    _read_until(spectator, b"ver", seen)  # the student's typing, live
    spectator.send_binary(b"echo spectator\r")
    time.sleep(1.0)
    assert b"spectator" not in live.app.extensions["hyperlab.labs"].get(handle).console_text("child1")
    spectator.close()

    # take over: the instructor's keys reach the student's console; the student's page is told, start and end
    taker = websocket.create_connection(base + "/console?take_over=1", cookie=cookie, timeout=10)
    notices.wait(lambda e, d: d.get("kind") == "take_over", "the take-over notice")
    taker.send_binary(b"syscalls 7\r")
    _read_until(mine, b"syscalls 7", mine_seen)  # the student sees it typed in their console
    _read_until(taker, b"syscalls 7", bytearray())
    taker.close()
    notices.wait(lambda e, d: d.get("kind") == "take_over_end", "the end of the take-over")
    mine.close()

    # a message to Ada, one to the class; reset child2 — all reach Ada's page
    r = teacher.post(live.url + f"/api/classes/{cid}/messages", json={"text": "Look at child2", "student": handle},
                     timeout=10)
    assert r.status_code == 201
    teacher.post(live.url + f"/api/classes/{cid}/messages", json={"text": "Break in 5 minutes"}, timeout=10)
    notices.wait(lambda e, d: d.get("text") == "Look at child2" and not d["to_class"], "the message")
    notices.wait(lambda e, d: d.get("text") == "Break in 5 minutes" and d["to_class"], "the class message")
    r = teacher.post(live.url + f"/api/classes/{cid}/students/{handle}/partitions/child2/reset", timeout=30)
    assert r.status_code == 200, r.text
    notices.wait(lambda e, d: d.get("kind") == "reset" and "child2" in d["text"], "the reset notice")
    bad = teacher.post(live.url + f"/api/classes/{cid}/students/{handle}/partitions/nope/reset", timeout=10)
    assert bad.status_code == 404

    audit = teacher.get(live.url + f"/api/classes/{cid}/audit", timeout=10).json()["entries"]
    assert [(e["action"], e["target"]) for e in reversed(audit)][1:] == [
        ("spectate", handle), ("take_over", handle), ("take_over_end", handle), ("message", handle),
        ("message", None), ("reset", handle)]

    # the lab process dies: the heat map shows the student's current step as crashed
    ada.post(live.url + "/api/lessons/tiny/goto", json={"index": 0}, timeout=30).raise_for_status()
    ada.post(live.url + "/api/lessons/tiny/goto", json={"index": 1}, timeout=30).raise_for_status()
    lab_handle = live.app.extensions["hyperlab.labs"].get(handle)
    os.kill(lab_handle.process.pid, signal.SIGKILL)
    _, view = dash.wait(lambda e, d: d["students"][0]["lab"]["state"] == "stopped", "the stopped lab")
    assert view["students"][0]["cells"]["tiny"][:2] == ["done", "crashed"]
    notices.close()
    dash.close()


def test_students_and_other_classes_cannot_open_spectate_or_take_over(live: InProcessServer) -> None:
    teacher = _signed_in(live)
    mine = teacher.post(live.url + "/api/classes", json={"name": "A", "lessons": []}, timeout=10).json()
    other = teacher.post(live.url + "/api/classes", json={"name": "B", "lessons": []}, timeout=10).json()
    ada, ada_lab = live.session()
    ada.post(live.url + "/api/classes/join", json={"code": mine["join_code"], "display_name": "Ada"}, timeout=10)
    bob, bob_lab = live.session()
    bob.post(live.url + "/api/classes/join", json={"code": other["join_code"], "display_name": "Bob"}, timeout=10)

    def handshake(s: requests.Session | None, cid: str, lab_id: str, part: str = "root", kind: str = "",
                  origin: str | None = None) -> int:
        headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        if origin:
            headers["Origin"] = origin
        url = f"{live.url}/ws/classes/{cid}/students/{lab_id}/partitions/{part}/console{kind}"
        status = (s or requests).get(url, headers=headers, timeout=10).status_code
        if s is not None:
            s.close()  # a 101 leaves that connection a WebSocket: never reuse it for the next handshake
        return status

    for kind in ("", "?take_over=1"):
        # a student, even of the same class, and for their own lab: 403; a stranger: 401
        assert handshake(ada, mine["id"], ada_lab["id"], kind=kind) == 403
        assert handshake(bob, mine["id"], ada_lab["id"], kind=kind) == 403
        assert handshake(None, mine["id"], ada_lab["id"], kind=kind) == 401
        # the instructor: Bob is not in class A (404), whatever class the URL names for him
        assert handshake(teacher, mine["id"], bob_lab["id"], kind=kind) == 404
        assert handshake(teacher, "nope", ada_lab["id"], kind=kind) == 404
        assert handshake(teacher, mine["id"], ada_lab["id"], part="nope", kind=kind) == 404
        assert handshake(teacher, mine["id"], ada_lab["id"], kind=kind, origin="http://evil.example") == 403
        assert handshake(teacher, mine["id"], ada_lab["id"], kind=kind) == 101
    # a student's own console WebSocket still refuses another student's lab
    cookie = live.cookie_header(bob)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(f"{live.ws_url}/ws/labs/{ada_lab['id']}/partitions/root/console",
                                    cookie=cookie, timeout=10)
    assert refused.value.status_code == 404
