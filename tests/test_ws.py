"""WebSocket streams against a real server (`hyperlab serve`: gunicorn, gevent) running real labs.

Console: the guest's shell prompt arrives, typed commands are answered, text and binary frames are both
keyboard input. Telemetry: JSON snapshots with partitions and counters. Bad input: an oversized frame
is closed with 1009 and a malformed one ends only that connection; a foreign Origin, an unknown lab or
partition and another session's lab are refused at the handshake. The server goes on after each.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket
from liveserver import InProcessServer, LiveServer, ServerBase

from hyperlab.web.app import create_app

BOOT_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("ws-server")) as live:
        yield live


@pytest.fixture(scope="module")
def lab(server: LiveServer) -> tuple[requests.Session, dict]:
    """One session with its lab, shared by the tests that do not change partition states."""
    return server.session()


def console_url(server: ServerBase, lab_id: str, name: str) -> str:
    return f"{server.ws_url}/ws/labs/{lab_id}/partitions/{name}/console"


def connect(server: ServerBase, s: requests.Session, path_url: str, **kwargs: object) -> websocket.WebSocket:
    return websocket.create_connection(path_url, cookie=server.cookie_header(s), timeout=10, **kwargs)


def read_until(ws: websocket.WebSocket, needle: bytes, timeout: float = BOOT_TIMEOUT_S,
               seen: bytearray | None = None) -> bytes:
    """Console bytes received until ``needle`` appears (fails with what was seen on timeout)."""
    buf = seen if seen is not None else bytearray()
    deadline = time.monotonic() + timeout
    while needle not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"{needle!r} not seen in {timeout}s; console said: {bytes(buf)[-2000:]!r}")
        ws.settimeout(remaining)
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketTimeoutException:
            continue
        assert opcode == websocket.ABNF.OPCODE_BINARY, "console output must be binary frames"
        buf += data
    return bytes(buf)


def close_code(ws: websocket.WebSocket, timeout: float = 10.0) -> int | None:
    """Read until the server's close frame; its status code (None if the socket just ended)."""
    ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
    pytest.fail("server did not close the connection")


def assert_console_works(server: ServerBase, s: requests.Session, lab_id: str, name: str = "child1") -> None:
    ws = connect(server, s, console_url(server, lab_id, name))
    try:
        read_until(ws, f"{name}$ ".encode())
        ws.send("echo still-here\r")
        read_until(ws, b"\nstill-here\r\n")
    finally:
        ws.close()


def test_console_shows_prompt_and_answers_help(server: LiveServer, lab: tuple[requests.Session, dict]) -> None:
    s, desc = lab
    ws = connect(server, s, console_url(server, desc["id"], "child1"))
    try:
        read_until(ws, b"child1$ ")
        ws.send("help\r")  # a text frame, as xterm.js sends keystrokes
        answer = read_until(ws, b"child1$ ", timeout=10)  # fresh buffer: the echo, the list, the next prompt
        for command in (b"help", b"ver", b"ps", b"echo", b"uptime", b"syscalls", b"spin", b"crash"):
            assert command in answer, f"help does not list {command!r}: {answer!r}"
    finally:
        ws.close()


def test_console_accepts_binary_frames(server: LiveServer, lab: tuple[requests.Session, dict]) -> None:
    s, desc = lab
    ws = connect(server, s, console_url(server, desc["id"], "child2"))
    try:
        read_until(ws, b"child2$ ")
        ws.send_binary(b"echo binary-ok\r")
        read_until(ws, b"\nbinary-ok\r\n", timeout=10)
    finally:
        ws.close()


def test_telemetry_sends_json_snapshots(server: LiveServer, lab: tuple[requests.Session, dict]) -> None:
    s, desc = lab
    ws = connect(server, s, f"{server.ws_url}/ws/labs/{desc['id']}/telemetry")
    try:
        snapshots = [json.loads(ws.recv()) for _ in range(3)]
    finally:
        ws.close()
    times = [snap["t"] for snap in snapshots]
    assert times == sorted(times) and times[0] < times[-1], times
    last = snapshots[-1]
    assert last["alive"] is True
    assert {"root", "child1", "child2"} <= set(last["partitions"])
    assert last["partitions"]["child1"]["role"] == "child"
    counters = last["counters"]
    assert counters, "telemetry carries counters"
    assert all(isinstance(v, (int, float)) for v in counters.values())
    assert any(name.startswith("child1.") for name in counters), sorted(counters)[:20]
    assert isinstance(last["transitions"], list)


def test_crash_kernel_shows_in_telemetry_and_others_run_on(server: LiveServer) -> None:
    s, desc = server.session()  # its own lab: this test crashes a partition
    lab_id = desc["id"]
    ws = connect(server, s, console_url(server, lab_id, "child1"))
    try:
        read_until(ws, b"child1$ ")
        ws.send("crash kernel\r")
        telemetry = connect(server, s, f"{server.ws_url}/ws/labs/{lab_id}/telemetry")
        try:
            deadline = time.monotonic() + 15
            while True:
                snap = json.loads(telemetry.recv())
                if snap["partitions"]["child1"]["state"] == "crashed" or time.monotonic() > deadline:
                    break
        finally:
            telemetry.close()
    finally:
        ws.close()
    assert snap["partitions"]["child1"]["state"] == "crashed"
    assert snap["partitions"]["child1"]["reason"], "a crash carries its reason"
    assert snap["partitions"]["child2"]["state"] == "running"
    assert snap["partitions"]["root"]["state"] == "running"
    assert_console_works(server, s, lab_id, "child2")


def test_oversized_frame_is_closed_with_1009(server: LiveServer, lab: tuple[requests.Session, dict]) -> None:
    s, desc = lab
    ws = connect(server, s, console_url(server, desc["id"], "child1"))
    try:
        read_until(ws, b"child1$ ")
        ws.send("x" * 5000)  # the cap is 4 KiB
        assert close_code(ws) == 1009
    finally:
        ws.close()
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"ok": True}
    assert_console_works(server, s, desc["id"])


def _raw_handshake(server: LiveServer, s: requests.Session, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nCookie: {server.cookie_header(s)}\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        assert chunk, f"server closed during handshake: {response!r}"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def test_malformed_frame_ends_only_that_connection(server: LiveServer, lab: tuple[requests.Session, dict]) -> None:
    s, desc = lab
    sock = _raw_handshake(server, s, f"/ws/labs/{desc['id']}/partitions/child1/console")
    try:
        # FIN + reserved opcode 0xF, unmasked (clients must mask): a protocol violation twice over.
        sock.sendall(b"\x8f\x05hello")
        deadline = time.monotonic() + 10
        ended = False
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data or b"\x88" in data:  # EOF, or a close frame among the bytes
                ended = True
                break
        assert ended, "the server must end a connection that violates the protocol"
    finally:
        sock.close()
    assert_console_works(server, s, desc["id"])


def test_foreign_origin_is_refused(server: LiveServer, lab: tuple[requests.Session, dict]) -> None:
    s, desc = lab
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(server, s, console_url(server, desc["id"], "child1"), origin="http://evil.example")
    assert refused.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(server, s, f"{server.ws_url}/ws/labs/{desc['id']}/telemetry", origin="http://evil.example")
    assert refused.value.status_code == 403
    # our own origin (what a browser on this page sends) is accepted
    ws = connect(server, s, console_url(server, desc["id"], "child1"), origin=server.url)
    try:
        read_until(ws, b"child1$ ")
    finally:
        ws.close()


def test_unknown_lab_partition_and_other_sessions_lab_are_404(
    server: LiveServer, lab: tuple[requests.Session, dict]
) -> None:
    s, desc = lab
    for url in (console_url(server, "no-such-lab", "child1"), console_url(server, desc["id"], "child9"),
                f"{server.ws_url}/ws/labs/no-such-lab/telemetry"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(server, s, url)
        assert refused.value.status_code == 404, url
    stranger = requests.Session()
    stranger.get(server.url + "/", timeout=10)  # a session without this lab
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(server, stranger, console_url(server, desc["id"], "child1"))
    assert refused.value.status_code == 404


def test_console_outbox_keeps_newest_bytes_and_says_so() -> None:
    """A client that falls behind loses the oldest output, never the newest, and is told."""
    from hyperlab.web.streams import ConsoleOutbox

    outbox = ConsoleOutbox(limit=1000)
    for i in range(30):
        outbox.put(bytes([65 + i % 26]) * 100)  # 3000 bytes into a 1000-byte buffer
    data = outbox.take(10_000, timeout=0)
    assert data is not None and len(data) <= 1000
    assert b"output dropped" in data
    assert data.endswith(bytes([65 + 29 % 26]) * 100)  # the newest chunk is intact
    assert outbox.dropped >= 2000
    assert outbox.take(10, timeout=0) == b""  # drained
    outbox.close()
    assert outbox.take(10, timeout=0) is None


def test_lab_death_closes_consoles_4503_and_telemetry_says_stopped(tmp_path: Path) -> None:
    """The lab process dies under open streams: consoles close with 4503, telemetry goes on with
    alive false, the server keeps serving, and after a restart the console answers again."""
    app = create_app({"HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "test"})
    with InProcessServer(app) as server:
        s, desc = server.session()
        lab_id = desc["id"]
        console = connect(server, s, console_url(server, lab_id, "child1"))
        telemetry = connect(server, s, f"{server.ws_url}/ws/labs/{lab_id}/telemetry")
        try:
            read_until(console, b"child1$ ")
            assert json.loads(telemetry.recv())["alive"] is True
            app.extensions["hyperlab.labs"].get(lab_id).process.kill()
            assert close_code(console, timeout=15) == 4503
            deadline = time.monotonic() + 10
            while json.loads(telemetry.recv())["alive"] and time.monotonic() < deadline:
                pass
            assert json.loads(telemetry.recv())["alive"] is False
        finally:
            console.close()
            telemetry.close()
        assert requests.get(server.url + "/healthz", timeout=5).json() == {"ok": True}
        restarted = s.post(f"{server.url}/api/labs/{lab_id}/restart", timeout=30)
        assert restarted.status_code == 200 and restarted.json()["alive"] is True
        assert_console_works(server, s, lab_id)
