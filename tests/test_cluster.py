"""Two hyperlab nodes behind a real HAProxy (deploy/haproxy.cfg), sharing a real PostgreSQL, on loopback.

Students come in through the balancer and are spread over both nodes; each one's requests and console
WebSocket stay on the node that holds their lab (HAProxy's node cookie). One node is killed — the server
and its lab processes at once, as a crashed machine. Its students, on their next request, land on the
other node: same identity, progress intact, their lab booted again under the same id, a prompt on its
console. The other node's students keep their running labs, untouched. And in a real browser: the
student's page notices, its open console reconnects to the lab on the other node, and answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cluster import NODE_COOKIE, Balancer, Node
from playwright.sync_api import Page, expect
from wsconsole import PROMPT_TIMEOUT_S, Console

LESSON = "meet-the-partitions"
STUDENTS = 4

pytestmark = pytest.mark.timeout(600)


@dataclass
class Student:
    session: requests.Session
    lab_id: str
    node: str
    root_uptime_ms: float = 0.0


@pytest.fixture
def cluster(tmp_path: Path, postgres: object) -> Iterator[tuple[Balancer, dict[str, Node]]]:
    url = postgres.new_database()
    # One after the other: the first migrates the new database (several at once also works, by a lock).
    with Node("node1", tmp_path / "node1", url) as node1, Node("node2", tmp_path / "node2", url) as node2, \
            Balancer(tmp_path, [node1, node2]) as balancer:
        yield balancer, {"node1": node1, "node2": node2}


def node_of(s: requests.Session) -> str:
    return s.cookies.get(NODE_COOKIE) or ""


def call(s: requests.Session, method: str, url: str, **kwargs: object) -> dict:
    response = s.request(method, url, timeout=60, **kwargs)
    assert response.ok, (method, url, response.status_code, response.text)
    return response.json()


def root_uptime_ms(lab: dict) -> float:
    return next(p["uptime_ms"] for p in lab["partitions"] if p["name"] == "root")


def wait_step_done(lb: Balancer, s: requests.Session, step: str) -> None:
    deadline = time.monotonic() + PROMPT_TIMEOUT_S
    while step not in call(s, "GET", f"{lb.url}/api/lessons/{LESSON}/state")["completed"]:
        assert time.monotonic() < deadline, f"the check of step {step!r} was never met"
        time.sleep(0.3)


def arrive(lb: Balancer) -> Student:
    """A student loads the page through the balancer, opens the first lesson, types `ver` into the root."""
    s = requests.Session()
    assert s.get(lb.url + "/", timeout=30).ok
    node = node_of(s)
    assert node in ("node1", "node2"), f"HAProxy set no node cookie: {s.cookies}"
    lab = call(s, "POST", f"{lb.url}/api/lessons/{LESSON}/open", json={})["lab_description"]
    with Console(lb.ws_url, s, lab["id"], "root") as root:
        root.wait_prompt()
        assert "CreatePartitions" in root.type("ver")
    wait_step_done(lb, s, "the-root")
    assert node_of(s) == node, "a student's requests must stay on their node"
    return Student(s, lab["id"], node)


def test_students_of_a_killed_node_land_on_the_other_with_progress_and_a_rebooted_lab(
        cluster: tuple[Balancer, dict[str, Node]]) -> None:
    lb, nodes = cluster
    students = [arrive(lb) for _ in range(STUDENTS)]
    assert {st.node for st in students} == {"node1", "node2"}, "the balancer should spread new students"
    for st in students:  # each lab is running on its own node, and only there
        own, other = nodes[st.node], nodes["node2" if st.node == "node1" else "node1"]
        st.root_uptime_ms = root_uptime_ms(call(st.session, "GET", f"{lb.url}/api/labs/{st.lab_id}"))
        direct = requests.get(f"{other.url}/api/labs/{st.lab_id}", cookies=st.session.cookies, timeout=30)
        assert direct.status_code == 404, "a lab runs on one node only"
        assert requests.get(f"{own.url}/api/labs/{st.lab_id}", cookies=st.session.cookies, timeout=30).ok

    dead = students[0].node
    survivor = "node2" if dead == "node1" else "node1"
    nodes[dead].kill()
    killed_at = time.monotonic()

    for st in students:
        # A browser retries a request on a new connection when a kept-alive one closes before answering
        # (HAProxy closes those of a dead node); requests does not, so start on fresh connections.
        st.session.close()
        # What the page does when its console drops: ask for its lab again (idempotent), reconnect.
        lab = call(st.session, "POST", f"{lb.url}/api/labs")
        assert lab["id"] == st.lab_id, "the student keeps their lab id"
        assert node_of(st.session) == survivor
        state = call(st.session, "GET", f"{lb.url}/api/lessons/{LESSON}/state")
        assert "the-root" in state["completed"], "progress is kept in the shared PostgreSQL"
        if st.node == dead:
            # a lab process started after the kill...
            assert root_uptime_ms(lab) <= (time.monotonic() - killed_at) * 1000, lab
            with Console(lb.ws_url, st.session, st.lab_id, "root") as root:  # ...that boots to a prompt
                root.wait_prompt()
                assert "CreatePartitions" in root.type("ver")
        else:
            assert root_uptime_ms(lab) > st.root_uptime_ms, "a surviving node's labs keep running"
            with Console(lb.ws_url, st.session, st.lab_id, "child1") as child1:
                child1.wait_prompt()
                assert "hello" in child1.type("echo hello")


def test_a_students_page_follows_their_lab_to_the_other_node(page: Page,
                                                              cluster: tuple[Balancer, dict[str, Node]]) -> None:
    lb, nodes = cluster
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(lb.url + "/")
    root_row = page.locator('#partitions tbody tr[data-partition="root"]')
    expect(root_row.locator(".state")).to_have_text("running", timeout=30_000)
    root_row.get_by_role("button", name="Connect to the console of root").click()
    status = page.locator('.console-pane[data-partition="root"] .console-status')
    expect(status).to_have_text(re.compile(r"^connected to root"), timeout=30_000)
    lab_id = page.evaluate("() => window.__hyperlab.labId")
    [node] = [c["value"] for c in page.context.cookies() if c["name"] == NODE_COOKIE]

    # Every status the console shows from here on: the drop may be on screen for less than a poll of
    # expect() before the page is back (the other node boots the lab in well under a second).
    page.evaluate("""() => {
        const el = document.querySelector('.console-pane[data-partition="root"] .console-status');
        window.__statusSeen = [];
        new MutationObserver(() => window.__statusSeen.push(el.textContent))
            .observe(el, {childList: true, characterData: true, subtree: true});
    }""")
    nodes[node].kill()
    page.wait_for_function("() => window.__statusSeen.some((t) => t.includes('disconnected'))", timeout=30_000)
    # No click: the page asks for its lab again, which now boots on the other node, and reconnects.
    expect(status).to_have_text(re.compile(r"^connected to root"), timeout=60_000)
    page.wait_for_function("() => window.__hyperlab.consoleText('root').endsWith('root$ ')", timeout=30_000)
    page.locator('.console-pane[data-partition="root"] .xterm').click()
    page.keyboard.type("ver")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__hyperlab.consoleText('root').includes('CreatePartitions')",
                           timeout=30_000)
    assert page.evaluate("() => window.__hyperlab.labId") == lab_id
    assert [c["value"] for c in page.context.cookies() if c["name"] == NODE_COOKIE] != [node]
    expect(root_row.locator(".state")).to_have_text("running")
    assert errors == [], errors
