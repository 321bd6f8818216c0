"""REST API against real labs (Flask test client in front of a real LabManager and lab processes).

JSON everywhere, errors as ``{"error": ...}``; 404 for unknown labs and partitions, 409 for actions
the partition's state does not allow, 400 for unknown actions; labs are bound to the browser session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from hyperlab.web.app import create_app

STATES = {"off", "starting", "running", "paused", "stopping", "crashed"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    data_dir: Path = tmp_path_factory.mktemp("api-data")
    app = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": data_dir, "HYPERLAB_SECRET_KEY": "test"})
    yield app
    app.extensions["hyperlab.labs"].shutdown()


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    """One browser session with its lab, shared by the read-only tests."""
    return app.test_client()


@pytest.fixture(scope="module")
def lab_id(client: FlaskClient) -> str:
    response = client.post("/api/labs")
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()["id"]


def wait_state(client: FlaskClient, lab_id: str, name: str, state: str, timeout: float = 20.0) -> dict:
    """Poll the partition until it reaches ``state`` (boot and transitions are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        partition = client.get(f"/api/labs/{lab_id}/partitions/{name}").get_json()
        if partition.get("state") == state or time.monotonic() > deadline:
            assert partition.get("state") == state, f"{name} did not reach {state}: {partition}"
            return partition
        time.sleep(0.05)


def assert_error(response: TestResponse, status: int) -> str:
    assert response.status_code == status, response.data
    assert response.is_json, response.data
    body = response.get_json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body["error"]


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}


def test_create_is_idempotent_and_listed(client: FlaskClient, lab_id: str) -> None:
    again = client.post("/api/labs")
    assert again.status_code == 200
    assert again.get_json()["id"] == lab_id
    labs = client.get("/api/labs").get_json()["labs"]
    assert [lab["id"] for lab in labs] == [lab_id]


def test_lab_describes_three_partitions(client: FlaskClient, lab_id: str) -> None:
    lab = client.get(f"/api/labs/{lab_id}").get_json()
    assert lab["id"] == lab_id
    assert lab["alive"] is True
    assert lab["design"] == "microkernel"
    names = [p["name"] for p in lab["partitions"]]
    assert names == ["root", "child1", "child2"] or sorted(names) == ["child1", "child2", "root"]
    roles = {p["name"]: p["role"] for p in lab["partitions"]}
    assert roles == {"root": "root", "child1": "child", "child2": "child"}
    listed = client.get(f"/api/labs/{lab_id}/partitions").get_json()["partitions"]
    assert {p["name"] for p in listed} == {"root", "child1", "child2"}
    for partition in listed:
        assert partition["state"] in STATES
        assert isinstance(partition["actions"], list)
        assert isinstance(partition["uptime_ms"], (int, float))


def test_partition_boots_to_running(client: FlaskClient, lab_id: str) -> None:
    partition = wait_state(client, lab_id, "child1", "running")
    assert partition["name"] == "child1"
    assert "pause" in partition["actions"]
    assert "resume" not in partition["actions"]


def test_counters_are_dotted_numbers(client: FlaskClient, lab_id: str) -> None:
    wait_state(client, lab_id, "child1", "running")
    counters = client.get(f"/api/labs/{lab_id}/counters").get_json()["counters"]
    assert counters
    assert all(isinstance(v, (int, float)) for v in counters.values())
    assert any(name.startswith("child1.") for name in counters)
    assert all("." in name for name in counters)


def test_unknown_lab_is_404(client: FlaskClient) -> None:
    for path in ("/api/labs/nope", "/api/labs/nope/partitions", "/api/labs/nope/partitions/child1",
                 "/api/labs/nope/counters"):
        assert_error(client.get(path), 404)
    assert_error(client.post("/api/labs/nope/partitions/child1/actions/start"), 404)
    assert_error(client.post("/api/labs/nope/restart"), 404)


def test_unknown_partition_is_404(client: FlaskClient, lab_id: str) -> None:
    assert_error(client.get(f"/api/labs/{lab_id}/partitions/child9"), 404)
    assert_error(client.post(f"/api/labs/{lab_id}/partitions/child9/actions/start"), 404)
    assert_error(client.post(f"/api/labs/{lab_id}/partitions/child9/actions/explode"), 404)


def test_unknown_action_is_400(client: FlaskClient, lab_id: str) -> None:
    message = assert_error(client.post(f"/api/labs/{lab_id}/partitions/child1/actions/explode"), 400)
    assert "explode" in message


def test_action_not_allowed_in_state_is_409(client: FlaskClient, lab_id: str) -> None:
    wait_state(client, lab_id, "child1", "running")
    message = assert_error(client.post(f"/api/labs/{lab_id}/partitions/child1/actions/resume"), 409)
    assert message
    assert_error(client.post(f"/api/labs/{lab_id}/partitions/child1/actions/start"), 409)


def test_unknown_route_and_method_are_json(client: FlaskClient, lab_id: str) -> None:
    assert_error(client.get("/api/nothing-here"), 404)
    assert_error(client.delete(f"/api/labs/{lab_id}"), 405)


def test_labs_are_bound_to_the_session(app: Flask, client: FlaskClient, lab_id: str) -> None:
    stranger = app.test_client()
    assert stranger.get("/api/labs").get_json() == {"labs": []}
    assert_error(stranger.get(f"/api/labs/{lab_id}"), 404)
    assert_error(stranger.get(f"/api/labs/{lab_id}/counters"), 404)
    assert_error(stranger.post(f"/api/labs/{lab_id}/partitions/child1/actions/turn_off"), 404)
    # the owner's partition was not touched
    assert client.get(f"/api/labs/{lab_id}/partitions/child1").get_json()["state"] == "running"


def test_cross_origin_post_is_refused(client: FlaskClient, lab_id: str) -> None:
    response = client.post(f"/api/labs/{lab_id}/partitions/child1/actions/pause",
                           headers={"Origin": "http://evil.example"})
    assert_error(response, 403)
    assert client.get(f"/api/labs/{lab_id}/partitions/child1").get_json()["state"] == "running"


def test_pause_resume_turn_off_start(app: Flask) -> None:
    """State changes on a lab of its own, so the shared lab stays running for the other tests."""
    client = app.test_client()
    lab_id = client.post("/api/labs", headers={"Origin": "http://localhost"}).get_json()["id"]
    wait_state(client, lab_id, "child2", "running")

    paused = client.post(f"/api/labs/{lab_id}/partitions/child2/actions/pause")
    assert paused.status_code == 200, paused.get_json()
    assert paused.get_json()["name"] == "child2"
    partition = wait_state(client, lab_id, "child2", "paused")
    assert "resume" in partition["actions"] and "pause" not in partition["actions"]
    assert_error(client.post(f"/api/labs/{lab_id}/partitions/child2/actions/pause"), 409)

    assert client.post(f"/api/labs/{lab_id}/partitions/child2/actions/resume").status_code == 200
    wait_state(client, lab_id, "child2", "running")

    assert client.post(f"/api/labs/{lab_id}/partitions/child2/actions/turn_off").status_code == 200
    wait_state(client, lab_id, "child2", "off")
    assert client.get(f"/api/labs/{lab_id}/partitions/child1").get_json()["state"] == "running"

    assert client.post(f"/api/labs/{lab_id}/partitions/child2/actions/start").status_code == 200
    wait_state(client, lab_id, "child2", "running")


def test_page_is_served_with_its_modules(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/static/js/main.js" in html and "Partitions" in html
    script = client.get("/static/js/main.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    script.close()


def test_dead_lab_process_is_lab_stopped_then_restarts(app: Flask) -> None:
    """A lab process that dies leaves the server answering: alive false, 503 on actions, restart works."""
    client = app.test_client()
    lab_id = client.post("/api/labs").get_json()["id"]
    wait_state(client, lab_id, "child1", "running")
    handle = app.extensions["hyperlab.labs"].get(lab_id)
    handle.process.kill()  # what an OOM killer or a core bug would do
    deadline = time.monotonic() + 10
    while client.get(f"/api/labs/{lab_id}").get_json().get("alive", True) and time.monotonic() < deadline:
        time.sleep(0.05)
    lab = client.get(f"/api/labs/{lab_id}").get_json()
    assert lab["alive"] is False
    assert client.get("/healthz").get_json() == {"ok": True}
    assert "stopped" in assert_error(client.post(f"/api/labs/{lab_id}/partitions/child1/actions/pause"), 503)
    assert_error(client.get(f"/api/labs/{lab_id}/counters"), 503)

    restarted = client.post(f"/api/labs/{lab_id}/restart")
    assert restarted.status_code == 200, restarted.get_json()
    assert restarted.get_json()["id"] == lab_id
    assert restarted.get_json()["alive"] is True
    wait_state(client, lab_id, "child1", "running")


def test_full_server_answers_503_json(tmp_path: Path) -> None:
    """Past HYPERLAB_MAX_LABS a new session gets a clear 503, and the existing lab is unaffected."""
    app = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_MAX_LABS": "1"})
    try:
        first = app.test_client()
        lab_id = first.post("/api/labs").get_json()["id"]
        second = app.test_client()
        assert_error(second.post("/api/labs"), 503)
        assert first.get(f"/api/labs/{lab_id}").get_json()["alive"] is True
    finally:
        app.extensions["hyperlab.labs"].shutdown()
