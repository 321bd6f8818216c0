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


# --- settings ----------------------------------------------------------------------------------------

def put_settings(client: FlaskClient, lab_id: str, name: str, body: object, **kwargs: object) -> TestResponse:
    return client.put(f"/api/labs/{lab_id}/partitions/{name}/settings", json=body, **kwargs)


def test_settings_round_trip(client: FlaskClient, lab_id: str) -> None:
    """Settings are stored and described at once; they only apply at the next start (no state change)."""
    wait_state(client, lab_id, "child2", "running")
    before = client.get(f"/api/labs/{lab_id}/partitions/child2").get_json()
    try:
        response = put_settings(client, lab_id, "child2", {"memory_mb": 32, "integration_services": True})
        assert response.status_code == 200, response.get_json()
        changed = response.get_json()
        assert changed["name"] == "child2"
        assert changed["memory_mb"] == 32 and changed["integration_services"] is True
        assert changed["state"] == "running"  # takes effect at the next start, not now
        described = client.get(f"/api/labs/{lab_id}/partitions/child2").get_json()
        assert described["memory_mb"] == 32 and described["integration_services"] is True
        # one key at a time leaves the other alone
        only_ic = put_settings(client, lab_id, "child2", {"integration_services": False}).get_json()
        assert only_ic["integration_services"] is False and only_ic["memory_mb"] == 32
        # the root has memory but no Integration Services setting
        root = put_settings(client, lab_id, "root", {"memory_mb": before["memory_mb"]})
        assert root.status_code == 200, root.get_json()
    finally:
        put_settings(client, lab_id, "child2", {"memory_mb": before["memory_mb"],
                                                "integration_services": before["integration_services"]})
    restored = client.get(f"/api/labs/{lab_id}/partitions/child2").get_json()
    assert restored["memory_mb"] == before["memory_mb"]
    assert restored["integration_services"] == before["integration_services"]


@pytest.mark.parametrize("body", [
    {"colour": "blue"},
    {"memory_mb": 32, "cpus": 2},
    {"memory_mb": 3},
    {"memory_mb": 2},
    {"memory_mb": 33},
    {"memory_mb": 258},
    {"memory_mb": "32"},
    {"memory_mb": 32.0},
    {"memory_mb": True},
    {"memory_mb": None},
    {"integration_services": "yes"},
    {"integration_services": 1},
    {},
])
def test_bad_settings_are_400(client: FlaskClient, lab_id: str, body: dict) -> None:
    before = client.get(f"/api/labs/{lab_id}/partitions/child2").get_json()
    message = assert_error(put_settings(client, lab_id, "child2", body), 400)
    for key in body:
        if key not in ("memory_mb", "integration_services"):
            assert key in message, message  # unknown keys are named
    after = client.get(f"/api/labs/{lab_id}/partitions/child2").get_json()
    assert (after["memory_mb"], after["integration_services"]) == (before["memory_mb"],
                                                                   before["integration_services"])


def test_root_has_no_integration_services_setting(client: FlaskClient, lab_id: str) -> None:
    assert "Integration Services" in assert_error(
        put_settings(client, lab_id, "root", {"integration_services": False}), 400)


@pytest.mark.parametrize("raw", [b"[]", b'"memory_mb"', b"32", b"null", b"{", b"", b"memory_mb=32"])
def test_settings_body_must_be_a_json_object(client: FlaskClient, lab_id: str, raw: bytes) -> None:
    response = client.put(f"/api/labs/{lab_id}/partitions/child2/settings", data=raw,
                          content_type="application/json")
    assert "JSON object" in assert_error(response, 400)


def test_settings_errors_404_403_405(app: Flask, client: FlaskClient, lab_id: str) -> None:
    assert_error(put_settings(client, lab_id, "child9", {"memory_mb": 32}), 404)
    assert_error(client.put(f"/api/labs/{lab_id}/partitions/child9/settings", data=b"[]"), 404)
    assert_error(put_settings(client, "nope", "child2", {"memory_mb": 32}), 404)
    assert_error(put_settings(app.test_client(), lab_id, "child2", {"memory_mb": 32}), 404)  # not your lab
    assert_error(put_settings(client, lab_id, "child2", {"memory_mb": 32},
                              headers={"Origin": "http://evil.example"}), 403)
    assert client.get(f"/api/labs/{lab_id}/partitions/child2").get_json()["memory_mb"] != 32
    assert_error(client.get(f"/api/labs/{lab_id}/partitions/child2/settings"), 405)
    assert_error(client.post(f"/api/labs/{lab_id}/partitions/child2/settings", json={"memory_mb": 32}), 405)


# --- disk download -----------------------------------------------------------------------------------

VHD_FOOTER = 512


def disk_url(lab_id: str, name: str) -> str:
    return f"/api/labs/{lab_id}/partitions/{name}/disk.vhd"


def assert_vhd_download(response: TestResponse, lab_id: str, name: str) -> bytes:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{lab_id}-{name}.vhd"'
    body = response.get_data()
    assert int(response.headers["Content-Length"]) == len(body)
    assert len(body) > VHD_FOOTER and len(body) % 512 == 0
    assert body[-VHD_FOOTER:].startswith(b"conectix"), body[-VHD_FOOTER:][:16]
    return body


def test_root_has_no_disk_404(client: FlaskClient, lab_id: str) -> None:
    assert client.get(f"/api/labs/{lab_id}/partitions/root").get_json().get("disk") is None
    assert "no disk" in assert_error(client.get(disk_url(lab_id, "root")), 404)
    assert_error(client.get(disk_url(lab_id, "child9")), 404)
    assert_error(client.get(disk_url("nope", "child1")), 404)


def test_lab_details_show_disk_name_and_size_not_server_paths(app: Flask, client: FlaskClient, lab_id: str) -> None:
    """A student needs the disk's name and size; the server's directories are none of their business."""
    wait_state(client, lab_id, "child1", "running")
    secret = str(app.config["HYPERLAB_DATA_DIR"])
    answers = [client.get(f"/api/labs/{lab_id}"), client.get("/api/labs"),
               client.get(f"/api/labs/{lab_id}/partitions"), client.get(f"/api/labs/{lab_id}/partitions/child1"),
               client.put(f"/api/labs/{lab_id}/partitions/child1/settings", json={"memory_mb": 16})]
    for answer in answers:
        assert answer.status_code == 200, answer.get_json()
        assert secret not in answer.get_data(as_text=True) and '"path"' not in answer.get_data(as_text=True)
    disk = answers[3].get_json()["disk"]
    assert set(disk) == {"name", "size_bytes"} and disk["name"] == "child1.vhd" and disk["size_bytes"] > 0
    snapshot = app.extensions["hyperlab.labs"].get(lab_id).snapshot()  # what the telemetry stream sends
    assert secret not in str(snapshot)


def test_disk_download_409_while_running_200_when_off(app: Flask) -> None:
    """A child's disk is its VHD: refused while the child runs, the real file once it is off."""
    client = app.test_client()
    lab_id = client.post("/api/labs").get_json()["id"]
    partition = wait_state(client, lab_id, "child2", "running")
    disk = partition.get("disk")
    assert isinstance(disk, dict) and disk.get("name") == "child2.vhd", f"no disk for child2: {partition}"
    disk_file = app.config["HYPERLAB_DATA_DIR"] / lab_id / "child2.vhd"
    message = assert_error(client.get(disk_url(lab_id, "child2")), 409)
    assert "running" in message and "off" in message
    assert client.head(disk_url(lab_id, "child2")).status_code == 409

    assert client.post(f"/api/labs/{lab_id}/partitions/child2/actions/turn_off").status_code == 200
    wait_state(client, lab_id, "child2", "off")
    body = assert_vhd_download(client.get(disk_url(lab_id, "child2")), lab_id, "child2")
    assert body == disk_file.read_bytes()  # exactly the lab's file
    assert len(body) == disk_file.stat().st_size
    assert disk.get("size_bytes") == len(body) - VHD_FOOTER  # the disk the guest sees; then the footer
    assert client.head(disk_url(lab_id, "child2")).status_code == 200
    # another session cannot fetch it, whatever it knows
    assert_error(app.test_client().get(disk_url(lab_id, "child2")), 404)

    # and it is refused again as soon as the child runs
    assert client.post(f"/api/labs/{lab_id}/partitions/child2/actions/start").status_code == 200
    assert_error(client.get(disk_url(lab_id, "child2")), 409)


def _fake_disk(app: Flask, client: FlaskClient, lab_id: str, monkeypatch: pytest.MonkeyPatch, path: Path,
               state: str = "off") -> None:
    """Make the lab describe child2 as ``state`` with its disk at ``path`` (the web side's checks alone)."""
    handle = app.extensions["hyperlab.labs"].get(lab_id)
    real_partition, real_disk_file = handle.partition, handle.disk_file

    def partition(name: str) -> dict:
        described = real_partition(name)
        if name == "child2":
            described = {**described, "state": state, "disk": {"name": path.name, "size_bytes": 0}}
        return described

    monkeypatch.setattr(handle, "partition", partition)
    monkeypatch.setattr(handle, "disk_file", lambda name: str(path) if name == "child2" else real_disk_file(name))


def test_disk_download_serves_only_regular_files(app: Flask, client: FlaskClient, lab_id: str,
                                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    from hyperlab.core.vhd import VhdDisk

    real = tmp_path / "child2.vhd"
    VhdDisk.create(real, 1 << 20, b"hello").close()
    _fake_disk(app, client, lab_id, monkeypatch, real)
    body = assert_vhd_download(client.get(disk_url(lab_id, "child2")), lab_id, "child2")
    assert body == real.read_bytes() and body.startswith(b"hello")

    link = tmp_path / "link.vhd"
    link.symlink_to(real)
    fifo = tmp_path / "fifo.vhd"
    os.mkfifo(fifo)  # opening it for reading must not hang the request
    for bad in (tmp_path / "missing.vhd", tmp_path, link, fifo, Path("/dev/zero")):
        _fake_disk(app, client, lab_id, monkeypatch, bad)
        assert_error(client.get(disk_url(lab_id, "child2")), 404)

    _fake_disk(app, client, lab_id, monkeypatch, real, state="paused")
    assert "paused" in assert_error(client.get(disk_url(lab_id, "child2")), 409)


def test_disk_download_cut_short_if_the_partition_starts_meanwhile(
        app: Flask, client: FlaskClient, lab_id: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hyperlab.core.vhd import VhdDisk

    real = tmp_path / "child2.vhd"
    VhdDisk.create(real, 3 << 20).close()
    _fake_disk(app, client, lab_id, monkeypatch, real)
    handle = app.extensions["hyperlab.labs"].get(lab_id)
    response = client.get(disk_url(lab_id, "child2"), buffered=False)
    assert response.status_code == 200
    chunks = iter(response.response)
    assert next(chunks)  # the first piece went out while child2 was off; now it starts
    _fake_disk(app, client, lab_id, monkeypatch, real, state="running")
    with pytest.raises(OSError, match="started"):
        for _ in chunks:
            pass
    response.close()
    assert handle is app.extensions["hyperlab.labs"].get(lab_id)


def test_shut_down_over_the_integration_services(app: Flask) -> None:
    """Offered only while the guest has its shutdown channel open; the enlightened child goes off cleanly."""
    client = app.test_client()
    lab_id = client.post("/api/labs").get_json()["id"]
    child2 = wait_state(client, lab_id, "child2", "running")
    assert "shut_down" not in child2["actions"]
    assert "Integration Services" in assert_error(
        client.post(f"/api/labs/{lab_id}/partitions/child2/actions/shut_down"), 409)
    deadline = time.monotonic() + 20
    while "shut_down" not in (child1 := client.get(f"/api/labs/{lab_id}/partitions/child1").get_json())["actions"]:
        assert time.monotonic() < deadline, f"child1 never offered shut_down: {child1}"
        time.sleep(0.1)
    assert child1["ic"]["shutdown_available"] is True
    response = client.post(f"/api/labs/{lab_id}/partitions/child1/actions/shut_down")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["state"] in ("stopping", "off")
    off = wait_state(client, lab_id, "child1", "off")
    assert off["ic"]["heartbeat"] == "none" and "shut_down" not in off["actions"]
    assert client.get(f"/api/labs/{lab_id}/counters").get_json()["counters"].get("child1.clean_shutdowns") == 1
