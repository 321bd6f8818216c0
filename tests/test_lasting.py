"""Found item 6: a student's progress, lab and disks come back after the browser closes and after a real
server restart (gunicorn in a subprocess, no HYPERLAB_SECRET_KEY: the key lives in the database), on
SQLite and on a real PostgreSQL server; and the lab's disks are in one folder per identity, nothing left
orphaned.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests
from liveserver import LiveServer

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"


def call(s: requests.Session, server: LiveServer, method: str, path: str, **kwargs: object) -> dict:
    response = s.request(method, server.url + path, timeout=60, **kwargs)
    assert response.ok, (method, path, response.status_code, response.text, server.log())
    return response.json()


def type_line(s: requests.Session, server: LiveServer, lab: str, text: str) -> str:
    answer = call(s, server, "POST", f"/api/labs/{lab}/partitions/child1/console",
                  json={"text": text, "wait": True, "timeout": 30})
    assert answer["prompt"] is True, answer
    return answer["output"]


def test_progress_lab_and_disks_come_back_after_a_server_restart(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {"HYPERLAB_SECRET_KEY": "", "HYPERLAB_DATABASE_URL": database_url,
           "HYPERLAB_LESSONS_DIR": str(FIXTURES)}
    browser = requests.Session()
    with LiveServer(data, env=env) as server:
        page = browser.get(server.url + "/", timeout=30)
        assert page.ok and "Expires=" in page.headers["Set-Cookie"]  # kept when the browser closes
        lab = call(browser, server, "POST", "/api/labs")["id"]
        call(browser, server, "POST", "/api/lessons/tiny/open")
        call(browser, server, "POST", "/api/lessons/tiny/goto", json={"index": 1})
        call(browser, server, "POST", "/api/lessons/tiny/steps/count-syscalls/prediction", json={"value": 100})
        type_line(browser, server, lab, "")
        type_line(browser, server, lab, "syscalls 100")
        type_line(browser, server, lab, "write kept.txt written-before-the-restart")
        deadline = time.monotonic() + 30  # the page polls the state; the check is met on a later snapshot
        while "count-syscalls" not in (state := call(browser, server, "GET", "/api/lessons/tiny/state"))["completed"]:
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state["completed"] == ["look", "count-syscalls"], state

    # the browser closed meanwhile: all it keeps is its lasting cookie
    [cookie] = list(browser.cookies)
    assert cookie.expires is not None
    student = requests.Session()
    student.cookies.set(cookie.name, cookie.value, domain=cookie.domain, path=cookie.path)
    with LiveServer(data, env=env) as server:
        state = call(student, server, "GET", "/api/lessons/tiny/state")
        assert state["completed"] == ["look", "count-syscalls"] and state["current"] == 1
        assert state["step"]["prediction"]["value"] == 100 and state["step"]["prediction"]["revealed"]
        assert call(student, server, "GET", "/api/session")["lab_id"] == lab
        again = call(student, server, "POST", "/api/labs")
        assert again["id"] == lab  # the same lab id the student's page knows, on the same disks
        type_line(student, server, lab, "")
        assert "written-before-the-restart" in type_line(student, server, lab, "cat kept.txt")
    # one folder of disks for the one identity: nothing orphaned by the restart
    folders = sorted(p.name for p in data.iterdir() if p.is_dir())
    assert folders == [lab], folders
