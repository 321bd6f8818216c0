"""Lesson endpoints against real labs: list, open (setting the lab up only when needed), checks that
unlock on real guest events, predictions committed then revealed, hints one at a time, progress kept in
the database across a new app instance; the console input API. (The progress store itself:
test_database.py.)

Uses the fixture lesson ``tests/lesson_fixtures/tiny.md`` through ``HYPERLAB_LESSONS_DIR``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hyperlab.web.app import create_app

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"
SECRET = "lessons-test"


def make_app(tmp: Path, lessons: Path = FIXTURES, db: Path | None = None) -> Flask:
    return create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp / "data", "HYPERLAB_SECRET_KEY": SECRET,
                       "HYPERLAB_LESSONS_DIR": lessons, "HYPERLAB_PROGRESS_DB": db or tmp / "progress.sqlite3"})


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lessons-web")


@pytest.fixture(scope="module")
def app(tmp: Path) -> Iterator[Flask]:
    app = make_app(tmp)
    yield app
    app.extensions["hyperlab.labs"].shutdown()


@pytest.fixture(scope="module")
def student(app: Flask) -> FlaskClient:
    """One student who walks the fixture lesson in order (the tests below depend on that order)."""
    return app.test_client()


def ok(response) -> dict:
    assert response.status_code == 200, (response.status_code, response.get_json())
    return response.get_json()


def wait_state(client: FlaskClient, lesson: str, predicate, timeout: float = 20.0) -> dict:
    """Poll the lesson state (as the page does) until ``predicate(state)``."""
    deadline = time.monotonic() + timeout
    while True:
        state = ok(client.get(f"/api/lessons/{lesson}/state"))
        if predicate(state) or time.monotonic() > deadline:
            assert predicate(state), state
            return state
        time.sleep(0.2)


def type_and_wait(client: FlaskClient, lab: str, partition: str, text: str) -> dict:
    return ok(client.post(f"/api/labs/{lab}/partitions/{partition}/console",
                          json={"text": text, "wait": True, "timeout": 30}))


# --- list and pages ---------------------------------------------------------------------------------
def test_list_shows_lessons_with_progress(student: FlaskClient) -> None:
    body = ok(student.get("/api/lessons"))
    assert body["errors"] == []
    [tiny] = body["lessons"]
    assert tiny["id"] == "tiny" and tiny["title"] == "A tiny lesson" and tiny["steps"] == 3
    assert tiny["objectives"] == ["Read a partition's state.", "Count system calls."]
    assert tiny["progress"] == {"started": False, "completed": 0, "total": 3, "current_step": 0}
    assert tiny["url"] == "/lessons/tiny"


def test_a_bad_lesson_file_is_reported_and_the_others_still_load(tmp: Path) -> None:
    folder = tmp / "mixed"
    folder.mkdir()
    shutil.copy(FIXTURES / "tiny.md", folder / "a-tiny.md")
    (folder / "b-broken.md").write_text("---\nid: broken\ntitle: Broken\nsteps: 3\n---\n")
    app = make_app(tmp, lessons=folder, db=tmp / "mixed.sqlite3")
    try:
        body = ok(app.test_client().get("/api/lessons"))
    finally:
        app.extensions["hyperlab.labs"].shutdown()
    assert [lesson["id"] for lesson in body["lessons"]] == ["tiny"]
    assert body["errors"] and all("b-broken.md:" in e for e in body["errors"]), body["errors"]


def test_pages_and_the_client_module(student: FlaskClient) -> None:
    page = student.get("/lessons/tiny")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-lesson="tiny"' in html and "A tiny lesson" in html
    # Pyodide compiles WebAssembly from our own origin: allowed, and nothing else is
    csp = page.headers["Content-Security-Policy"]
    assert "'wasm-unsafe-eval'" in csp and "default-src 'self'" in csp and "unsafe-inline' " not in csp.split("script-src")[1]
    assert student.get("/lessons/nope").status_code == 404
    home = student.get("/").get_data(as_text=True)
    assert 'id="lesson-list"' in home and "Free lab" in home

    source = student.get("/py/hyperlab/web/client.py")
    assert source.status_code == 200 and source.headers["Content-Type"].startswith("text/x-python")
    assert source.get_data(as_text=True) == (Path(__file__).resolve().parent.parent / "web" / "client.py").read_text()
    assert student.get("/py/hyperlab/core/vmbus/ring.py").status_code == 200
    assert student.get("/py/hyperlab/web/app.py").status_code == 404
    assert student.get("/py/../web/app.py").status_code == 404


def test_lesson_json_has_no_solutions_and_hints_only_counted(student: FlaskClient) -> None:
    lesson = ok(student.get("/api/lessons/tiny"))["lesson"]
    assert [s["id"] for s in lesson["steps"]] == ["look", "count-syscalls", "pause-child2"]
    step = lesson["steps"][1]
    assert "solution" not in step and step["hints"] == 2
    assert step["predict"]["question"].startswith("How many system calls")
    assert step["cells"] and "from hyperlab.web.client import Lab" in step["cells"][0]
    assert student.get("/api/lessons/nope").status_code == 404


# --- walking the lesson ------------------------------------------------------------------------------
def test_open_a_fresh_lab_that_matches_is_not_set_up_again(student: FlaskClient) -> None:
    body = ok(student.post("/api/lessons/tiny/open"))
    assert body["lab_set_up"] is False  # a new lab has the lesson's settings already (child2 without IS)
    assert body["lesson"]["id"] == "tiny" and body["lesson_id"] == "tiny"
    assert body["lab"]["alive"] and body["lab"]["set_up"] and body["lab"]["lesson"] == "tiny"
    # step 1 has no check: done at once, and Next is open
    assert body["current"] == 0 and body["step"]["id"] == "look"
    assert body["step"]["check"]["met"] is True and body["step"]["can_next"] is True
    assert body["completed"] == ["look"]


def test_next_step_is_locked_until_the_check_is_met(student: FlaskClient) -> None:
    response = student.post("/api/lessons/tiny/goto", json={"index": 2})
    assert response.status_code == 409 and "locked" in response.get_json()["error"]
    assert student.post("/api/lessons/tiny/goto", json={"index": 7}).status_code == 400
    assert student.post("/api/lessons/tiny/goto", json={"index": "1"}).status_code == 400
    body = ok(student.post("/api/lessons/tiny/goto", json={"index": 1}))
    assert body["current"] == 1 and body["step"]["id"] == "count-syscalls"
    assert body["step"]["check"]["met"] is False and body["step"]["can_next"] is False
    # a prediction step waits for the prediction first
    assert "prediction first" in body["step"]["check"]["message"]
    assert body["step"]["prediction"] == {
        "question": "How many system calls will `syscalls 100` make?", "unit": "calls",
        "value": None, "committed": False, "measured": None, "revealed": False}


def test_hints_come_one_at_a_time(student: FlaskClient) -> None:
    state = ok(student.get("/api/lessons/tiny/state"))
    assert state["step"]["hints"] == {"shown": [], "total": 2}
    state = ok(student.post("/api/lessons/tiny/steps/count-syscalls/hint"))
    assert state["step"]["hints"]["shown"] == ["Connect to child1, then type the command."]
    state = ok(student.post("/api/lessons/tiny/steps/count-syscalls/hint"))
    assert len(state["step"]["hints"]["shown"]) == 2
    state = ok(student.post("/api/lessons/tiny/steps/count-syscalls/hint"))
    assert len(state["step"]["hints"]["shown"]) == 2  # no more than there are
    # only the current step's hints
    assert student.post("/api/lessons/tiny/steps/pause-child2/hint").status_code == 409


def test_prediction_then_check_met_by_a_real_guest_action(student: FlaskClient) -> None:
    bad = student.post("/api/lessons/tiny/steps/count-syscalls/prediction", json={"value": "many"})
    assert bad.status_code == 400
    state = ok(student.post("/api/lessons/tiny/steps/count-syscalls/prediction", json={"value": 100}))
    prediction = state["step"]["prediction"]
    assert prediction["committed"] and prediction["value"] == 100 and not prediction["revealed"]
    assert prediction["measured"] is None  # not before the check is met
    again = student.post("/api/lessons/tiny/steps/count-syscalls/prediction", json={"value": 5})
    assert again.status_code == 409  # a prediction cannot be changed

    # still unmet: nothing happened in the guest yet
    state = ok(student.get("/api/lessons/tiny/state"))
    assert state["step"]["check"] == {"met": False, "message": "Type syscalls 100 in child1's console."}
    lab = state["lab"]["id"]
    type_and_wait(student, lab, "child1", "")  # the shell's prompt (child1 may still be booting)
    answer = type_and_wait(student, lab, "child1", "syscalls 100")
    assert "100 system calls" in answer["output"] and answer["prompt"] is True

    state = wait_state(student, "tiny", lambda s: s["step"]["check"]["met"])
    assert state["step"]["completed"] and state["step"]["can_next"]
    assert state["completed"] == ["look", "count-syscalls"]
    prediction = state["step"]["prediction"]
    assert prediction["revealed"] and prediction["value"] == 100
    assert prediction["measured"] >= 100  # the guest's own count, measured since the prediction

    # the measured value is frozen when the check is first met
    type_and_wait(student, lab, "child1", "syscalls 100")
    later = ok(student.get("/api/lessons/tiny/state"))
    assert later["step"]["prediction"]["measured"] == prediction["measured"]
    done = student.post("/api/lessons/tiny/steps/count-syscalls/prediction", json={"value": 1})
    assert done.status_code == 409


def test_action_step_and_the_end_of_the_lesson(student: FlaskClient) -> None:
    state = ok(student.post("/api/lessons/tiny/goto", json={"index": 2}))
    assert state["step"]["id"] == "pause-child2" and not state["step"]["check"]["met"]
    lesson = ok(student.get("/api/lessons/tiny"))["lesson"]
    [action] = lesson["steps"][2]["actions"]
    assert action == {"label": "Pause child2", "partition": "child2", "action": "pause", "settings": None}
    lab = state["lab"]["id"]
    ok(student.post(f"/api/labs/{lab}/partitions/child2/actions/pause"))  # what the button calls
    state = wait_state(student, "tiny", lambda s: s["step"]["check"]["met"])
    assert state["finished"] is True and state["step"]["can_next"] is False  # the last step
    # a met check stays met: resuming child2 does not lock the step again
    ok(student.post(f"/api/labs/{lab}/partitions/child2/actions/resume"))
    assert ok(student.get("/api/lessons/tiny/state"))["step"]["check"]["met"] is True
    # going back is always allowed
    assert ok(student.post("/api/lessons/tiny/goto", json={"index": 0}))["current"] == 0
    assert ok(student.post("/api/lessons/tiny/goto", json={"index": 2}))["current"] == 2
    tiny = ok(student.get("/api/lessons"))["lessons"][0]
    assert tiny["progress"] == {"started": True, "completed": 3, "total": 3, "current_step": 2}


def test_progress_survives_a_new_app_instance_with_the_same_database(tmp: Path, student: FlaskClient) -> None:
    cookie = student.get_cookie("hyperlab_session")
    assert cookie is not None
    app2 = make_app(tmp)  # same database file and secret key: a server restart
    try:
        again = app2.test_client()
        again.set_cookie("hyperlab_session", cookie.value)
        tiny = ok(again.get("/api/lessons"))["lessons"][0]
        assert tiny["progress"]["completed"] == 3 and tiny["progress"]["current_step"] == 2
        state = ok(again.get("/api/lessons/tiny/state"))
        assert state["completed"] == ["look", "count-syscalls", "pause-child2"]
        assert state["lab"]["id"] is None  # the labs ended with the old server...
        opened = ok(again.post("/api/lessons/tiny/open"))  # ...so opening sets up a fresh one
        assert opened["lab"]["alive"] and opened["lab"]["set_up"]
        assert opened["current"] == 2 and opened["step"]["check"]["met"] is True
        # the prediction and its measurement are kept too
        back = ok(again.post("/api/lessons/tiny/goto", json={"index": 1}))
        assert back["step"]["prediction"]["value"] == 100 and back["step"]["prediction"]["revealed"]
    finally:
        app2.extensions["hyperlab.labs"].shutdown()


def test_a_lab_that_does_not_match_is_set_up_again_once(app: Flask) -> None:
    other = app.test_client()
    lab = other.post("/api/labs").get_json()["id"]
    ok(other.put(f"/api/labs/{lab}/partitions/child2/settings", json={"integration_services": True}))
    body = ok(other.post("/api/lessons/tiny/open"))
    assert body["lab_set_up"] is True and body["lab"]["id"] == lab  # same lab id, a fresh process
    child2 = next(p for p in body["lab_description"]["partitions"] if p["name"] == "child2")
    assert child2["integration_services"] is False  # as the lesson asks
    # the student changes the lab during the lesson: reopening (a page reload) keeps their changes
    ok(other.put(f"/api/labs/{lab}/partitions/child2/settings", json={"integration_services": True}))
    again = ok(other.post("/api/lessons/tiny/open"))
    assert again["lab_set_up"] is False
    # "start over" forgets the progress and sets the lab up afresh
    reset = ok(other.post("/api/lessons/tiny/reset"))
    assert reset["lab_set_up"] is True and reset["current"] == 0 and reset["completed"] == ["look"]


def test_other_sessions_and_bad_requests(app: Flask) -> None:
    stranger = app.test_client()
    assert stranger.get("/api/lessons/tiny/state").get_json()["lab"]["id"] is None
    assert stranger.post("/api/lessons/tiny/open").status_code == 401  # no session yet
    assert stranger.get("/").status_code == 200  # the page starts one
    assert stranger.post("/api/lessons/tiny/open", data="[1]").status_code == 400
    assert stranger.post("/api/lessons/nope/open").status_code == 404
    assert stranger.post("/api/lessons/tiny/steps/nope/hint").status_code == 404
    foreign = stranger.post("/api/lessons/tiny/open", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403


# --- console input API -----------------------------------------------------------------------------
def test_console_input_and_output(app: Flask) -> None:
    client = app.test_client()
    lab = client.post("/api/labs").get_json()["id"]
    assert type_and_wait(client, lab, "child2", "")["prompt"] is True
    answer = type_and_wait(client, lab, "child2", "echo hello-from-the-api")
    assert answer == {"output": "hello-from-the-api\n", "prompt": True, "state": "running", "timed_out": False}
    text = ok(client.get(f"/api/labs/{lab}/partitions/child2/console"))
    assert "hello-from-the-api" in text["text"] and text["prompt"] is True
    # without waiting: typed, answered at once
    quick = ok(client.post(f"/api/labs/{lab}/partitions/child2/console", json={"text": "echo later"}))
    assert quick["output"] == "" and quick["timed_out"] is False
    # ... and it still runs: let it finish, so its prompt cannot answer the next wait
    deadline = time.monotonic() + 20
    while "later\nchild2$" not in ok(client.get(f"/api/labs/{lab}/partitions/child2/console"))["text"].split("echo later")[-1]:
        assert time.monotonic() < deadline, "echo later never ran"
        time.sleep(0.02)
    # a crash ends the wait too
    crash = type_and_wait(client, lab, "child2", "crash kernel")
    assert crash["prompt"] is False and crash["state"] == "crashed" and crash["timed_out"] is False
    for body, status in (("[1]", 400), ('{"text": 5}', 400), ('{"wait": "yes"}', 400),
                         ('{"timeout": 0}', 400), ('{"timeout": 1000}', 400),
                         ('{"text": "' + "a" * 5000 + '"}', 400)):
        response = client.post(f"/api/labs/{lab}/partitions/child2/console", data=body)
        assert response.status_code == status, (body[:40], response.get_json())
    assert client.post(f"/api/labs/{lab}/partitions/nope/console", json={"text": ""}).status_code == 404
    assert app.test_client().get(f"/api/labs/{lab}/partitions/child2/console").status_code == 404
