"""The instructor's side, on SQLite and a real PostgreSQL server: sign-in with the trainer's secret, classes
with join codes, students joining with display names, the roster, the CSV export and the audit log — and
every refusal: a student never reaches an instructor route, another student's lab, or another class.
"""

from __future__ import annotations

import csv
import io
import json
from base64 import urlsafe_b64decode
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hyperlab.web.app import create_app

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"
SECRET = "correct horse battery staple"


def make_app(tmp: Path, url: str, **config: object) -> Flask:
    return create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp / "data", "HYPERLAB_DATABASE_URL": url,
                       "HYPERLAB_LESSONS_DIR": FIXTURES, "HYPERLAB_INSTRUCTOR_SECRET": SECRET, **config})


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_app(tmp_path, database_url, HYPERLAB_SESSIONS_PER_MINUTE=20)
    yield app
    app.extensions["hyperlab.labs"].shutdown()
    app.extensions["hyperlab.db"].close()


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    return response.get_json()


def instructor(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.get("/")  # a student session first: signing in must replace it
    before = client.get_cookie("hyperlab_session").value
    assert ok(client.post("/api/instructor/sign-in", json={"secret": SECRET}))["role"] == "instructor"
    assert client.get_cookie("hyperlab_session").value != before
    return client


def student(app: Flask, code: str | None = None, name: str | None = None) -> FlaskClient:
    client = app.test_client()
    assert client.get("/").status_code == 200
    if code is not None:
        ok(client.post("/api/classes/join", json={"code": code, "display_name": name}))
    return client


def test_a_class_from_sign_in_to_export(app: Flask) -> None:
    teacher = instructor(app)
    klass = ok(teacher.post("/api/classes", json={"name": "Hypervisors 101", "lessons": ["tiny"]}), 201)
    code = klass["join_code"]
    assert len(code) == 6 and code.isalnum() and code.isupper()
    assert ok(teacher.get("/api/classes"))["classes"] == [klass]
    # students join with the code as they type it and a display name
    ada = student(app)
    joined = ok(ada.post("/api/classes/join", json={"code": f" {code[:3].lower()}-{code[3:]} ",
                                                     "display_name": "  Ada   Lovelace "}))
    assert joined == {"class": {"name": "Hypervisors 101", "lessons": ["tiny"]}, "display_name": "Ada Lovelace"}
    assert ok(ada.get("/api/classes/mine"))["class"]["name"] == "Hypervisors 101"
    assert ok(ada.get("/api/session"))["display_name"] == "Ada Lovelace"
    mallory = student(app, code, "=HYPERLINK(\"http://evil\")")
    taken = mallory.post("/api/classes/join", json={"code": code, "display_name": "Ada Lovelace"})
    assert taken.status_code == 409 and "called 'Ada Lovelace' already" in taken.get_json()["error"]
    # Ada works through the lesson (written through the store, as the lesson API does)
    progress = app.extensions["hyperlab.progress"]
    ada_id = identity_of(ada)
    progress.begin_step(ada_id, "tiny", "look", {}, "lab/1")
    progress.complete_step(ada_id, "tiny", "look", None)
    progress.begin_step(ada_id, "tiny", "count-syscalls", {}, "lab/1")
    progress.predict(ada_id, "tiny", "count-syscalls", 120)
    progress.complete_step(ada_id, "tiny", "count-syscalls", 100)
    progress.set_current(ada_id, "tiny", 2)
    roster = ok(teacher.get(f"/api/classes/{klass['id']}/roster"))
    names = [s["display_name"] for s in roster["students"]]
    assert names == ["=HYPERLINK(\"http://evil\")", "Ada Lovelace"]
    row = roster["students"][1]
    assert row["student"] == ok(ada.get("/api/session"))["lab_id"]  # the public handle, not the cookie's id
    assert row["lessons"] == {"tiny": {"completed": ["count-syscalls", "look"], "current_step": 2}}
    # the export: one line per step begun; a name cannot become a spreadsheet formula
    export = teacher.get(f"/api/classes/{klass['id']}/progress.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert f'filename="class-{code}-progress.csv"' in export.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert [(r["display_name"], r["step"], r["prediction"], r["measured"]) for r in lines] == [
        ("Ada Lovelace", "look", "", ""), ("Ada Lovelace", "count-syscalls", "120", "100")]
    assert lines[1]["completed_at"].endswith("Z") and lines[1]["seconds"] != ""
    progress.begin_step(identity_of(mallory), "tiny", "look", {}, "lab/2")
    rows = list(csv.reader(io.StringIO(teacher.get(f"/api/classes/{klass['id']}/progress.csv").get_data(as_text=True))))
    assert rows[1][1] == "'=HYPERLINK(\"http://evil\")"
    # every instructor action is in the audit log, by the instructor's public handle
    audit = ok(teacher.get(f"/api/classes/{klass['id']}/audit"))["entries"]
    assert [e["action"] for e in audit] == ["export", "export", "class_created"]
    teacher_handle = ok(teacher.get("/api/session"))["lab_id"]
    assert {e["actor"] for e in audit} == {teacher_handle}
    assert [e["action"] for e in ok(teacher.get("/api/audit"))["entries"]][-1] == "sign_in"


def identity_of(client: FlaskClient) -> str:
    """The identity id in the client's cookie (the test reads it; the server never shows it)."""
    body = client.get_cookie("hyperlab_session").value.split(".")[0]
    return json.loads(urlsafe_b64decode(body + "=" * (-len(body) % 4)))["identity"]


def test_a_student_never_reaches_instructor_routes_another_class_or_another_lab(app: Flask) -> None:
    teacher = instructor(app)
    mine = ok(teacher.post("/api/classes", json={"name": "Mine", "lessons": []}), 201)
    other = ok(teacher.post("/api/classes", json={"name": "Other", "lessons": ["tiny"]}), 201)
    ada = student(app, mine["join_code"], "Ada")
    bob = student(app, other["join_code"], "Bob")
    stranger = app.test_client()
    routes = [("GET", "/api/classes"), ("POST", "/api/classes"), ("GET", "/api/audit")]
    for cid in (mine["id"], other["id"], "no-such-class"):
        routes += [("GET", f"/api/classes/{cid}"), ("GET", f"/api/classes/{cid}/roster"),
                   ("GET", f"/api/classes/{cid}/progress.csv"), ("GET", f"/api/classes/{cid}/audit")]
    for method, path in routes:
        body = {"name": "x", "lessons": []} if method == "POST" else None
        refused = ada.open(path, method=method, json=body)
        assert refused.status_code == 403, (path, refused.get_data(as_text=True))
        assert refused.get_json() == {"error": "only an instructor may do this"}  # the same words everywhere
        assert stranger.open(path, method=method, json=body).status_code == 401
    # nothing a student did reached the log or made a class
    assert [e["action"] for e in ok(teacher.get("/api/audit"))["entries"]] == ["class_created", "class_created",
                                                                              "sign_in"]
    assert len(ok(teacher.get("/api/classes"))["classes"]) == 2
    # a student sees their own class only, and joins another only with its code
    assert ok(ada.get("/api/classes/mine"))["class"] == {"name": "Mine", "lessons": []}
    assert ada.post("/api/classes/join", json={"code": "ZZZZZZ", "display_name": "Ada"}).status_code == 404
    assert ok(ada.get("/api/classes/mine"))["class"]["name"] == "Mine"
    assert stranger.post("/api/classes/join", json={"code": mine["join_code"], "display_name": "S"}).status_code == 401
    assert teacher.post("/api/classes/join", json={"code": mine["join_code"], "display_name": "T"}).status_code == 409
    # another student's lab is answered like no lab at all
    bob_lab = ok(bob.post("/api/labs"), 201)["id"]
    for method, path in (("GET", f"/api/labs/{bob_lab}"), ("GET", f"/api/labs/{bob_lab}/partitions/child1"),
                         ("POST", f"/api/labs/{bob_lab}/partitions/child1/actions/pause"),
                         ("POST", f"/api/labs/{bob_lab}/partitions/child1/console")):
        assert ada.open(path, method=method, json={"text": "x"}).status_code == 404, path
    assert ok(bob.get(f"/api/labs/{bob_lab}/partitions/child1"))["state"] in ("starting", "running")


def test_instructor_sign_in_refusals(tmp_path: Path, database_url: str) -> None:
    off = make_app(tmp_path / "off", database_url, HYPERLAB_INSTRUCTOR_SECRET=None)
    refused = off.test_client().post("/api/instructor/sign-in", json={"secret": SECRET})
    assert refused.status_code == 403 and "HYPERLAB_INSTRUCTOR_SECRET" in refused.get_json()["error"]
    off.extensions["hyperlab.db"].close()

    app = make_app(tmp_path, database_url, HYPERLAB_SESSIONS_PER_MINUTE=3)
    guesser = app.test_client()
    assert guesser.post("/api/instructor/sign-in", json={"secret": 42}).status_code == 400
    for _ in range(3):
        wrong = guesser.post("/api/instructor/sign-in", json={"secret": "password"})
        assert wrong.status_code == 403 and wrong.get_json() == {"error": "wrong instructor secret"}
    assert guesser.post("/api/instructor/sign-in", json={"secret": "password"}).status_code == 429
    assert guesser.get("/api/session").status_code == 401  # a failed sign-in makes no session
    # signing out ends the instructor's session at once
    teacher = app.test_client()
    ok(teacher.post("/api/instructor/sign-in", json={"secret": SECRET}, environ_base={"REMOTE_ADDR": "192.0.2.9"}))
    assert teacher.get("/api/classes").status_code == 200
    ok(teacher.post("/api/instructor/sign-out"))
    assert teacher.get("/api/classes").status_code == 401
    app.extensions["hyperlab.db"].close()


def test_the_secret_may_come_from_a_file_and_must_be_long(tmp_path: Path) -> None:
    secret_file = tmp_path / "instructor.secret"
    secret_file.write_text(SECRET + "\n")
    app = create_app({"HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_INSTRUCTOR_SECRET_FILE": str(secret_file)})
    assert app.test_client().post("/api/instructor/sign-in", json={"secret": SECRET}).status_code == 200
    with pytest.raises(ValueError, match="at least 12 characters"):
        create_app({"HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_INSTRUCTOR_SECRET": "short"})
    with pytest.raises(ValueError, match="cannot read"):
        create_app({"HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_INSTRUCTOR_SECRET_FILE": str(tmp_path / "none")})


@pytest.mark.parametrize(("body", "status"), [
    ({"name": "", "lessons": []}, 400), ({"name": "x" * 121, "lessons": []}, 400),
    ({"name": "ok\u0000", "lessons": []}, 400), ({"name": "ok", "lessons": "tiny"}, 400),
    ({"name": "ok", "lessons": ["nope"]}, 404), ({"lessons": []}, 400)])
def test_bad_classes_are_refused(app: Flask, body: dict, status: int) -> None:
    assert instructor(app).post("/api/classes", json=body).status_code == status


@pytest.mark.parametrize("name", ["", "   ", "x" * 41, "a\u202eb", 7])
def test_bad_display_names_are_refused(app: Flask, name: object) -> None:
    code = ok(instructor(app).post("/api/classes", json={"name": "C", "lessons": []}), 201)["join_code"]
    response = student(app).post("/api/classes/join", json={"code": code, "display_name": name})
    assert response.status_code == 400, response.get_json()


def test_lockstep_holds_a_class_together(app: Flask) -> None:
    teacher = instructor(app)
    klass = ok(teacher.post("/api/classes", json={"name": "Together", "lessons": ["tiny"]}), 201)
    ada = student(app, klass["join_code"], "Ada")
    free = student(app)  # not in the class: their own pace
    progress = app.extensions["hyperlab.progress"]
    for client in (ada, free):
        progress.begin_step(identity_of(client), "tiny", "look", {}, "lab/1")
        progress.complete_step(identity_of(client), "tiny", "look", None)
    lockstep = f"/api/classes/{klass['id']}/lockstep/tiny"
    assert ok(teacher.put(lockstep, json={"released": 0}))["lockstep"] == {"tiny": 0}
    state = ok(ada.get("/api/lessons/tiny/state"))
    assert state["released"] == 0 and state["step"]["completed"] and state["step"]["can_next"] is False
    held = ada.post("/api/lessons/tiny/goto", json={"index": 1})
    assert held.status_code == 409 and "not released yet" in held.get_json()["error"]
    assert ok(free.post("/api/lessons/tiny/goto", json={"index": 1}))["released"] is None
    # the instructor moves on: the class may follow
    ok(teacher.put(lockstep, json={"released": 1}))
    assert ok(ada.post("/api/lessons/tiny/goto", json={"index": 1}))["current"] == 1
    ok(teacher.put(lockstep, json={"released": None}))
    assert ok(teacher.get(f"/api/classes/{klass['id']}"))["lockstep"] == {}
    assert ok(ada.get("/api/lessons/tiny/state"))["released"] is None
    # refusals
    assert ada.put(lockstep, json={"released": 2}).status_code == 403
    assert teacher.put(lockstep, json={"released": 3}).status_code == 400
    assert teacher.put(lockstep, json={"released": True}).status_code == 400
    assert teacher.put(lockstep, json={}).status_code == 400
    assert teacher.put(f"/api/classes/{klass['id']}/lockstep/other", json={"released": 0}).status_code == 404
    details = [e["detail"] for e in ok(teacher.get(f"/api/classes/{klass['id']}/audit"))["entries"]
               if e["action"] == "lockstep"]
    assert details == ["tiny: off", "tiny: step 2 released", "tiny: step 1 released"]


def test_an_instructor_resets_a_students_lab_and_only_theirs(app: Flask) -> None:
    teacher = instructor(app)
    klass = ok(teacher.post("/api/classes", json={"name": "Resets", "lessons": []}), 201)
    other = ok(teacher.post("/api/classes", json={"name": "Elsewhere", "lessons": []}), 201)
    ada = student(app, klass["join_code"], "Ada")
    bob = student(app, other["join_code"], "Bob")
    ada_lab = ok(ada.post("/api/labs"), 201)["id"]
    bob_lab = ok(bob.get("/api/session"))["lab_id"]
    reset = f"/api/classes/{klass['id']}/students/{ada_lab}/lab/restart"
    manager = app.extensions["hyperlab.labs"]
    pid = manager.get(ada_lab).process.pid
    assert ok(teacher.get(f"/api/classes/{klass['id']}/roster"))["students"][0]["lab"] == "running"
    assert ada.post(reset).status_code == 403 and bob.post(reset).status_code == 403
    assert manager.get(ada_lab).process.pid == pid  # the refusals touched nothing
    answer = ok(teacher.post(reset))
    assert answer["student"] == ada_lab and answer["lab"]["alive"] is True
    assert manager.get(ada_lab).process.pid != pid
    assert teacher.post(f"/api/classes/{klass['id']}/students/{bob_lab}/lab/restart").status_code == 404
    no_lab = teacher.post(f"/api/classes/{other['id']}/students/{bob_lab}/lab/restart")
    assert no_lab.status_code == 409 and "no lab running" in no_lab.get_json()["error"]
    entries = ok(teacher.get(f"/api/classes/{klass['id']}/audit"))["entries"]
    assert (entries[0]["action"], entries[0]["target"]) == ("reset", ada_lab)
