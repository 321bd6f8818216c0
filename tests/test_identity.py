"""Lasting identity over HTTP, on SQLite and a real PostgreSQL server: a page load starts a session whose
signed cookie lasts (Expires) and names an identity in the database; the session key outlives a restart;
an expired or forged cookie is no session; cookie-less requests write no rows; new sessions are
rate-limited per client address with a clear 429.
"""

from __future__ import annotations

import json
import time
from base64 import urlsafe_b64decode
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hyperlab.web import schema
from hyperlab.web.app import create_app
from hyperlab.web.db import DatabaseError

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"


def make_app(tmp: Path, url: str, **config: object) -> Flask:
    return create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp / "data", "HYPERLAB_DATABASE_URL": url,
                       "HYPERLAB_LESSONS_DIR": FIXTURES, **config})


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    app = make_app(tmp_path, database_url)
    yield app
    app.extensions["hyperlab.labs"].shutdown()
    app.extensions["hyperlab.db"].close()


def count(app: Flask, table: object) -> int:
    with app.extensions["hyperlab.db"].read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def all_rows(app: Flask) -> dict[str, int]:
    return {t.name: count(app, t) for t in (schema.identities, schema.lesson_progress, schema.step_progress,
                                            schema.lab_setup)}


def cookie_payload(client: FlaskClient) -> dict:
    cookie = client.get_cookie("hyperlab_session")
    assert cookie is not None
    body = cookie.value.split(".")[0]
    return json.loads(urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_a_page_load_starts_a_lasting_session(app: Flask) -> None:
    student = app.test_client()
    page = student.get("/")
    assert page.status_code == 200
    header = page.headers["Set-Cookie"]
    assert "hyperlab_session=" in header and "Expires=" in header and "HttpOnly" in header
    cookie = student.get_cookie("hyperlab_session")
    assert cookie is not None and cookie.expires is not None
    days = (cookie.expires.timestamp() - time.time()) / 86400
    assert 29 < days <= 30  # HYPERLAB_SESSION_DAYS' default: the browser keeps it when it closes
    payload = cookie_payload(student)
    assert set(payload) == {"identity", "_permanent"}  # the cookie names the identity, nothing else
    assert count(app, schema.identities) == 1
    # the same session on the next request: no second identity
    assert student.get("/").status_code == 200 and student.post("/api/session").status_code == 200
    assert count(app, schema.identities) == 1
    assert cookie_payload(student)["identity"] == payload["identity"]


def test_post_api_session_starts_one_and_says_so(app: Flask) -> None:
    client = app.test_client()
    first = client.post("/api/session")
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["created"] is True and body["role"] == "student" and body["expires_at"] > time.time() + 86400
    assert "id" not in body  # the identity id is the cookie's secret
    again = client.post("/api/session")
    assert again.status_code == 200 and again.get_json()["created"] is False
    assert client.get("/api/session").get_json()["lab_id"] == body["lab_id"]
    assert app.test_client().get("/api/session").status_code == 401  # no cookie: no session, none made


def test_cookie_less_requests_write_no_rows(app: Flask) -> None:
    """Found item 7: every cookie-less lesson request wrote a progress row. 2,000 requests → 0 rows."""
    for i in range(250):
        client = app.test_client()  # a new cookie jar each time, as a script or an attacker has
        assert client.get("/api/lessons").status_code == 200
        assert client.get("/api/lessons/tiny").status_code == 200
        state = client.get("/api/lessons/tiny/state")
        assert state.status_code == 200 and state.get_json()["completed"] == []
        for path, body in (("/api/lessons/tiny/open", {}), ("/api/lessons/tiny/goto", {"index": 0}),
                           ("/api/lessons/tiny/steps/look/hint", {}), ("/api/lessons/tiny/reset", {}),
                           ("/api/lessons/tiny/steps/count-syscalls/prediction", {"value": 1})):
            response = client.post(path, json=body)
            assert response.status_code == 401, (path, response.get_json())
            assert "no session" in response.get_json()["error"]
        assert client.get_cookie("hyperlab_session") is None, i
    assert all_rows(app) == {"identities": 0, "lesson_progress": 0, "step_progress": 0, "lab_setup": 0}


def test_an_expired_or_forged_cookie_is_no_session(app: Flask, tmp_path: Path) -> None:
    student = app.test_client()
    student.get("/")
    identity = cookie_payload(student)["identity"]
    with app.app_context():
        app.extensions["hyperlab.progress"].set_current(identity, "tiny", 1)
    assert student.get("/api/lessons").get_json()["lessons"][0]["progress"]["started"] is True
    # signed with another key: not ours
    forged = create_app({"TESTING": True, "HYPERLAB_DATA_DIR": tmp_path / "other", "HYPERLAB_SECRET_KEY": "x"})
    forger = forged.test_client()
    forger.get("/")
    stranger = app.test_client()
    stranger.set_cookie("hyperlab_session", forger.get_cookie("hyperlab_session").value)
    assert stranger.get("/api/session").status_code == 401
    # the server-side expiry ends a session even though the browser still sends its cookie
    app.extensions["hyperlab.identities"].expire(identity)
    response = student.get("/api/lessons")
    assert response.get_json()["lessons"][0]["progress"]["started"] is False
    assert "hyperlab_session=;" in response.headers.get("Set-Cookie", "")  # the browser is told to drop it
    forged.extensions["hyperlab.labs"].shutdown()


def test_expired_identities_are_forgotten_with_their_progress_and_disks(tmp_path: Path, database_url: str) -> None:
    app = make_app(tmp_path, database_url)
    student = app.test_client()
    student.get("/")
    identity = cookie_payload(student)["identity"]
    lab_id = student.get("/api/session").get_json()["lab_id"]
    with app.app_context():
        app.extensions["hyperlab.progress"].set_current(identity, "tiny", 1)
    disks = tmp_path / "data" / lab_id
    disks.mkdir(parents=True)
    (disks / "child1.vhd").write_bytes(b"disk")
    app.extensions["hyperlab.identities"].expire(identity)
    # disks no identity names (purged by another node sharing the database): gone too; anything else stays
    orphan = tmp_path / "data" / "orphanLab01"
    orphan.mkdir()
    (orphan / "child2.vhd").write_bytes(b"disk")
    mixed = tmp_path / "data" / "notALab0001"
    mixed.mkdir()
    (mixed / "child1.vhd").write_bytes(b"disk")
    (mixed / "notes.txt").write_text("mine")
    keeper = app.test_client()
    keeper.get("/")
    kept = tmp_path / "data" / keeper.get("/api/session").get_json()["lab_id"]
    kept.mkdir()
    (kept / "child1.vhd").write_bytes(b"disk")
    app.extensions["hyperlab.db"].close()
    again = make_app(tmp_path, database_url)  # the next start purges
    assert all_rows(again)["identities"] == 1 and all_rows(again)["lesson_progress"] == 0
    assert not disks.exists() and not orphan.exists()
    assert (mixed / "notes.txt").exists() and (kept / "child1.vhd").exists()
    again.extensions["hyperlab.db"].close()


def test_sessions_outlast_a_restart_without_a_configured_key(tmp_path: Path, database_url: str) -> None:
    """No HYPERLAB_SECRET_KEY: the key is made once and kept in the database, so the cookie still works."""
    first = make_app(tmp_path, database_url)
    student = first.test_client()
    student.get("/")
    lab_id = student.get("/api/session").get_json()["lab_id"]
    first.extensions["hyperlab.db"].close()
    second = make_app(tmp_path, database_url)
    again = second.test_client()
    again.set_cookie("hyperlab_session", student.get_cookie("hyperlab_session").value)
    assert again.get("/api/session").get_json()["lab_id"] == lab_id
    second.extensions["hyperlab.db"].close()


def test_new_sessions_are_rate_limited_per_client_address(tmp_path: Path, database_url: str) -> None:
    app = make_app(tmp_path, database_url, HYPERLAB_SESSIONS_PER_MINUTE=3)
    here = {"REMOTE_ADDR": "192.0.2.1"}
    clients = [app.test_client() for _ in range(3)]
    for client in clients:
        assert client.get("/", environ_base=here).status_code == 200
    page = app.test_client().get("/", environ_base=here)
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Too many new sessions" in page.get_data(as_text=True)
    assert 1 <= int(page.headers["Retry-After"]) <= 60
    api = app.test_client().post("/api/labs", environ_base=here)
    assert api.status_code == 429 and "at most 3 a minute" in api.get_json()["error"]
    assert app.test_client().post("/api/session", environ_base=here).status_code == 429
    assert count(app, schema.identities) == 3
    # a student who has a session is never limited; another address has its own budget
    assert clients[0].get("/", environ_base=here).status_code == 200
    assert clients[0].get("/api/session", environ_base=here).status_code == 200
    assert app.test_client().get("/", environ_base={"REMOTE_ADDR": "192.0.2.2"}).status_code == 200
    # IPv6: one /64 is one client
    six = [app.test_client().get("/", environ_base={"REMOTE_ADDR": f"2001:db8::{i}"}).status_code
           for i in range(1, 5)]
    assert six == [200, 200, 200, 429]
    app.extensions["hyperlab.db"].close()


@pytest.mark.parametrize("setting", [{"HYPERLAB_SESSIONS_PER_MINUTE": "many"}, {"HYPERLAB_SESSION_DAYS": 0},
                                     {"HYPERLAB_DATABASE_URL": "mysql://u@h/db"}])
def test_bad_settings_stop_the_server_with_a_clear_message(tmp_path: Path, setting: dict) -> None:
    with pytest.raises((ValueError, DatabaseError), match="HYPERLAB_"):
        create_app({"HYPERLAB_DATA_DIR": tmp_path, **setting})


def test_a_database_outage_is_a_clear_503_and_heals(tmp_path: Path) -> None:
    """PostgreSQL stops mid-class (its own server here, not the shared one): requests get a plain 503
    with Retry-After, nothing crashes, and once it is back the same session goes on."""
    from pgserver import PostgresServer

    with PostgresServer() as pg:
        app = make_app(tmp_path, pg.new_database())
        student = app.test_client()
        assert student.get("/").status_code == 200
        lab_id = student.get("/api/session").get_json()["lab_id"]
        pg.stop()
        down = student.get("/api/lessons")
        assert down.status_code == 503 and down.headers["Retry-After"] == "5"
        assert down.get_json() == {"error": "the database is not answering; try again in a moment"}
        page = student.get("/")
        assert page.status_code == 503 and "Try again in a moment" in page.get_data(as_text=True)
        pg.start()
        back = student.get("/api/session")
        assert back.status_code == 200, (back.status_code, back.get_json())
        assert back.get_json()["lab_id"] == lab_id
        assert student.get("/api/lessons").status_code == 200
        app.extensions["hyperlab.labs"].shutdown()
        app.extensions["hyperlab.db"].close()
