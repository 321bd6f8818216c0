"""Opening a lesson says first what it would change in the lab: ``GET /api/lessons/<id>/setup``
(changes nothing) and the words it is built from (``setup_changes``)."""

from __future__ import annotations

from pathlib import Path

from test_lessons_web import make_app

from hyperlab.web.api.lessons import setup_changes

LAB = {"alive": True, "design": "microkernel", "partitions": [
    {"name": "root", "role": "root", "state": "running", "memory_mb": 16},
    {"name": "child1", "role": "child", "state": "running", "integration_services": True, "memory_mb": 16},
    {"name": "child2", "role": "child", "state": "off", "integration_services": True, "memory_mb": 32},
]}
WANTED = {"design": "monolithic", "partitions": [
    {"name": "root", "role": "root", "memory_mb": 16},
    {"name": "child1", "role": "child", "integration_services": True, "memory_mb": 16},
    {"name": "child2", "role": "child", "integration_services": False, "memory_mb": 16},
]}


def test_setup_changes_says_each_difference_in_words() -> None:
    assert setup_changes(LAB, WANTED) == [
        "design: microkernel → monolithic",
        "child2: Integration Services on → off",
        "child2: memory 32 → 16 MiB",
        "child2 is off: it boots again",
    ]
    same = {"alive": True, "design": "monolithic",
            "partitions": [{**spec, "state": "starting"} for spec in WANTED["partitions"]]}
    assert setup_changes(same, WANTED) == []
    assert setup_changes({**LAB, "alive": False}, WANTED) == ["the lab is stopped: it starts again"]


def test_the_setup_endpoint_changes_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    try:
        client = app.test_client()
        client.get("/")  # a session, as a page load starts one
        lab = client.post("/api/labs").get_json()
        assert client.get("/api/lessons/tiny/setup").get_json() == {"needed": False, "changes": []}
        lab_path = f"/api/labs/{lab['id']}/partitions/child2"
        assert client.put(lab_path + "/settings", json={"integration_services": True}).status_code == 200
        answer = client.get("/api/lessons/tiny/setup").get_json()
        assert answer == {"needed": True, "changes": ["child2: Integration Services on → off"]}
        assert client.get(lab_path).get_json()["integration_services"] is True  # asked, not done
        assert client.get("/api/lessons/no-such/setup").status_code == 404
    finally:
        app.extensions["hyperlab.labs"].shutdown()


SWITCHING = """\
---
id: switching
title: Switching
summary: A step measured across a design switch.
objectives:
  - Switch.
lab:
  design: microkernel
  design_switch: true
steps:
  - id: write
    title: Write after the switch
    text: Switch to monolithic, then type `dd write 8` in child2.
    check:
      expr: design() == "monolithic" and delta("child2.disk.sectors_written") >= 8
      message: Switch, then dd write 8 in child2.
    solution:
      - design: monolithic
      - type: {partition: child2, text: dd write 8}
---
The introduction.
"""


def test_a_design_switch_measures_the_step_from_the_new_process(tmp_path: Path) -> None:
    """A command typed at once after a design switch counts for the step: the new process's baseline is
    taken by the switch itself, not by the page's next poll (which came after the command: never met)."""
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "01-switching.md").write_text(SWITCHING, encoding="utf-8")
    app = make_app(tmp_path, lessons)
    try:
        client = app.test_client()
        client.get("/")
        opened = client.post("/api/lessons/switching/open", json={}).get_json()
        lab = opened["lab_description"]["id"]
        assert client.get("/api/lessons/switching/state").status_code == 200  # the step's first baseline
        assert client.put(f"/api/labs/{lab}/design", json={"design": "monolithic"}).status_code == 200
        console = f"/api/labs/{lab}/partitions/child2/console"
        booted = client.post(console, json={"text": "", "enter": False, "wait": True, "timeout": 20})
        assert booted.get_json()["prompt"] is True  # the new process's child2 at its prompt
        typed = client.post(console, json={"text": "dd write 8", "wait": True, "timeout": 20})
        assert typed.status_code == 200, typed.get_json()
        state = client.get("/api/lessons/switching/state").get_json()
        assert state["step"]["check"]["met"] is True, state["step"]["check"]
    finally:
        app.extensions["hyperlab.labs"].shutdown()
