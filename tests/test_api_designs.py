"""The lab's design and fault injection over REST, against real lab processes (docs/api.md)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from hyperlab.web.app import create_app
from hyperlab.web.client import HyperlabError, Lab

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp = tmp_path_factory.mktemp("designs")
    lessons = tmp / "lessons"
    lessons.mkdir()
    shutil.copy(FIXTURES / "tiny.md", lessons / "tiny.md")  # fixes the design: microkernel
    app = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp / "data", "HYPERLAB_SECRET_KEY": "test",
                      "HYPERLAB_LESSONS_DIR": lessons, "HYPERLAB_PROGRESS_DB": tmp / "progress.sqlite3"})
    yield app
    app.extensions["hyperlab.labs"].shutdown()


def ok(response: TestResponse) -> dict:
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def error(response: TestResponse, status: int) -> str:
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def wait_running(client: FlaskClient, lab_id: str) -> dict:
    end = time.monotonic() + 30
    while True:
        lab = ok(client.get(f"/api/labs/{lab_id}"))
        if all(p["state"] == "running" for p in lab["partitions"]) or time.monotonic() > end:
            return lab
        time.sleep(0.05)


def test_the_lab_names_its_design_components_and_trusted_code(app: Flask) -> None:
    client = app.test_client()
    lab = ok(client.post("/api/labs"))
    assert lab["design"] == "microkernel"
    components = {c["name"]: c for c in lab["components"]}
    assert components["child2.worker"]["domain"] == "root_user"
    assert components["child1.storvsp"]["domain"] == "root_kernel"
    assert components["hypervisor"]["lines"] > 0 and components["hypervisor"]["bytes"] > 0
    assert set(lab["tcb"]) == {"hypervisor", "root_kernel", "root_user"}


def test_switch_design_keeps_disks_and_faults_stop_what_the_design_says(app: Flask) -> None:
    client = app.test_client()
    lab_id = ok(client.post("/api/labs"))["id"]
    disk = wait_running(client, lab_id)["partitions"][1]["disk"]
    assert "valid designs: microkernel, monolithic, hosted" in error(
        client.put(f"/api/labs/{lab_id}/design", json={"design": "hybrid"}), 400)
    assert "design" in error(client.put(f"/api/labs/{lab_id}/design", json={}), 400)
    hosted = ok(client.put(f"/api/labs/{lab_id}/design", json={"design": "hosted"}))
    assert hosted["design"] == "hosted"
    assert hosted["partitions"][1]["disk"] == disk  # the same disk
    assert "hypervisor" not in {c["name"] for c in hosted["components"]}
    wait_running(client, lab_id)
    ok(client.post(f"/api/labs/{lab_id}/faults", json={"component": "child2.vmm"}))
    again = ok(client.put(f"/api/labs/{lab_id}/design", json={"design": "hosted"}))  # the same design: a fresh lab
    assert again["design"] == "hosted" and all(p["state"] != "crashed" for p in again["partitions"])
    wait_running(client, lab_id)
    assert "unknown component" in error(client.post(f"/api/labs/{lab_id}/faults", json={"component": "gpu"}), 400)
    assert "no " in error(client.post(f"/api/labs/{lab_id}/faults", json={"component": "child2.worker"}), 409)
    after = ok(client.post(f"/api/labs/{lab_id}/faults", json={"component": "child2.vmm"}))
    states = {p["name"]: (p["state"], p["reason"]) for p in after["partitions"]}
    assert states["child2"][0] == "crashed" and "child2.vmm" in states["child2"][1]
    assert states["root"][0] == states["child1"][0] == "running"


def test_the_client_switches_and_injects(app: Flask) -> None:
    # The Python client against the same routes (through the Flask test client's session).
    flask_client = app.test_client()
    lab_id = ok(flask_client.post("/api/labs"))["id"]

    class _Transport:
        def request(self, method: str, path: str, body: object = None, timeout: float = 60.0) -> object:
            response = flask_client.open(path, method=method, json=body)
            if response.status_code >= 400:
                raise HyperlabError(response.status_code, response.get_json()["error"])
            return response.get_json()

    lab = Lab(lab_id=lab_id, transport=_Transport())
    assert lab.switch_design("monolithic")["design"] == "monolithic" and lab.design() == "monolithic"
    assert {c["name"]: c["domain"] for c in lab.components()}["child2.ide"] == "hypervisor"
    assert lab.tcb()["hypervisor"]["lines"] > 0
    wait_running(flask_client, lab_id)
    with pytest.raises(HyperlabError) as e:
        lab.fault("child2.vmm")
    assert e.value.status == 409
    states = {p["name"]: p["state"] for p in lab.fault("child2.ide")["partitions"]}
    assert states == {"root": "crashed", "child1": "crashed", "child2": "crashed"}  # purple screen


def test_a_lesson_that_fixes_the_design_refuses_a_switch(app: Flask) -> None:
    client = app.test_client()
    ok(client.post("/api/session"))
    ok(client.post("/api/lessons/tiny/open"))
    lab_id = ok(client.get("/api/labs"))["labs"][0]["id"]
    message = error(client.put(f"/api/labs/{lab_id}/design", json={"design": "hosted"}), 409)
    assert "A tiny lesson" in message and "fixes" in message
    assert ok(client.get(f"/api/labs/{lab_id}"))["design"] == "microkernel"  # unchanged
