"""What the server refuses before any lab is involved: oversized bodies (413 before reading them), JSON
nested too deeply (400), a Host header that is not ours (DNS rebinding), an Origin whose scheme, host or
port is not ours; and the session cookie is ``Secure`` when the site is served over HTTPS, which a
``X-Forwarded-Proto`` header may say only when it comes from a configured trusted proxy."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from hyperlab.web.app import create_app
from tests.liveserver import InProcessServer

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path_factory.mktemp("limits"),
                      "HYPERLAB_SECRET_KEY": "test", "HYPERLAB_ALLOWED_HOSTS": "lab.school.example"})
    yield app
    app.extensions["hyperlab.labs"].shutdown()


def raw_request(port: int, head: str, body: bytes = b"") -> bytes:
    """Send a request head (and maybe part of a body) and read the answer; the socket is not shut for
    writing, so a server that waits for the rest of the body answers nothing and the read times out."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


# --- request bodies -------------------------------------------------------------------------------
def test_a_body_over_the_limit_is_413_before_it_is_read(app: Flask) -> None:
    assert app.config["HYPERLAB_MAX_BODY"] == LIMIT  # the documented default
    with InProcessServer(app) as server:
        for path in ("/api/labs", "/api/labs/x/partitions/child1/console", "/"):
            answer = raw_request(server.port, f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                              f"Content-Type: application/json\r\nContent-Length: {512 << 20}\r\n\r\n",
                                 b"{")
            assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
        assert app.extensions["hyperlab.labs"].get_or_create is not None
        assert not app.extensions["hyperlab.labs"]._labs, "a refused request started a lab"


def test_a_body_at_the_limit_is_read(app: Flask) -> None:
    client = app.test_client()
    answer = client.put("/api/labs/nope/partitions/child1/settings", data=b" " * (LIMIT - 2) + b"{}")
    assert answer.status_code == 404  # read and routed: no such lab
    too_big = client.put("/api/labs/nope/partitions/child1/settings", data=b" " * (LIMIT + 1))
    assert too_big.status_code == 413 and "64 KiB" in too_big.get_json()["error"]


@pytest.mark.parametrize("body", ["[" * 50_000, '{"a":' * 12_000, "[" * 2000 + "]" * 2000])
def test_deeply_nested_json_is_400(app: Flask, body: str) -> None:
    client = app.test_client()
    lab = client.post("/api/labs").get_json()["id"]
    for method, path in (("PUT", f"/api/labs/{lab}/partitions/child1/settings"),
                         ("POST", f"/api/labs/{lab}/partitions/child1/console"),
                         ("POST", "/api/lessons/meet-the-partitions/goto")):
        answer = client.open(path, method=method, data=body, content_type="application/json")
        assert answer.status_code == 400, (path, answer.status_code, answer.data[:200])
        assert answer.is_json and answer.get_json()["error"]


# --- Host and Origin ------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "[::1]:8000",
                                  "lab.school.example", "LAB.school.example:443"])
def test_our_own_host_names_are_served(app: Flask, host: str) -> None:
    assert app.test_client().get("/healthz", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "lab.school.example.evil.example",
                                  "127.0.0.1.nip.io"])
def test_a_host_name_that_is_not_ours_is_refused(app: Flask, host: str) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to this server is not served."""
    client = app.test_client()
    for path in ("/", "/api/labs", "/healthz", "/ws/labs/x/telemetry"):
        answer = client.get(path, headers={"Host": host})
        assert answer.status_code == 400, (path, answer.status_code)
        assert "not a name of this server" in answer.get_data(as_text=True)
    assert "Set-Cookie" not in client.get("/", headers={"Host": host}).headers


@pytest.mark.parametrize(("origin", "allowed"), [
    ("http://localhost", True),
    ("http://localhost:80", True),            # the default port, spelled out
    ("https://localhost", False),             # another scheme
    ("http://localhost:8080", False),         # another port
    ("http://evil.example", False),
    ("null", False),
])
def test_origin_compares_scheme_host_and_port(app: Flask, origin: str, allowed: bool) -> None:
    answer = app.test_client().post("/api/labs/nope/restart", headers={"Origin": origin})
    assert answer.status_code == (404 if allowed else 403), (origin, answer.get_json())


def test_origin_over_https_matches_https_only(app: Flask) -> None:
    client = app.test_client()
    answer = client.post("/api/labs/nope/restart", base_url="https://localhost", headers={"Origin": "https://localhost"})
    assert answer.status_code == 404
    answer = client.post("/api/labs/nope/restart", base_url="https://localhost", headers={"Origin": "http://localhost"})
    assert answer.status_code == 403


# --- cookies and proxies --------------------------------------------------------------------------
def session_cookie(app: Flask, **kwargs: object) -> str:
    answer = app.test_client().get("/", **kwargs)  # type: ignore[arg-type]
    cookies = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith("hyperlab_session=")]
    assert cookies, answer.headers
    return cookies[0]


def test_session_cookie_is_secure_over_https_only(app: Flask) -> None:
    assert "Secure" in session_cookie(app, base_url="https://localhost")
    assert "Secure" not in session_cookie(app, base_url="http://localhost")


def test_forwarded_proto_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    untrusting = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "t"})
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "localhost"}
    assert "Secure" not in session_cookie(untrusting, headers=forwarded)
    # nor does it make an https Origin pass for an http request
    answer = untrusting.test_client().post("/api/labs/nope/restart",
                                           headers={**forwarded, "Origin": "https://localhost"})
    assert answer.status_code == 403

    trusting = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "t",
                           "HYPERLAB_TRUSTED_PROXIES": "127.0.0.1"})
    assert "Secure" in session_cookie(trusting, headers=forwarded)
    answer = trusting.test_client().post("/api/labs/nope/restart",
                                         headers={**forwarded, "Origin": "https://localhost"})
    assert answer.status_code == 404
    # a client that is not the proxy cannot claim https
    other = {"REMOTE_ADDR": "192.0.2.7"}
    assert "Secure" not in session_cookie(trusting, headers=forwarded, environ_base=other)
