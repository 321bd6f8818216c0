"""What a step points the student at (``watch``), the author's explanation of a prediction
(``predict.explain``), and the counter catalogue they are described from (docs/telemetry.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperlab.web.lessons import LessonError, load_lesson
from hyperlab.web.lessons.counters import catalogue, describe

LESSON = """\
---
id: watching
title: Watching
summary: A step that names its panel and counters.
objectives:
  - Watch.
steps:
  - id: io
    title: Port I/O
    text: Type `io 10` in child2.
    watch:
      panel: io
      partition: child2
      counters: [child2.exits.io_port, child2.vp.run_us]
    predict:
      question: How many exits?
      unit: exits
      measure: delta("child2.exits.io_port")
      explain: Each IN is one exit; the kernel does a few more of its own.
    check:
      expr: delta("child2.exits.io_port") >= 10
      message: Type io 10 in child2.
    solution:
      - type: {partition: child2, text: io 10}
---
The introduction.
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watching.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_step_names_its_panel_partition_and_counters_with_their_meaning(tmp_path: Path) -> None:
    step = load_lesson(write(tmp_path, LESSON)).to_dict()["steps"][0]
    assert step["watch"]["panel"] == "io" and step["watch"]["partition"] == "child2"
    io_port, run_us = step["watch"]["counters"]
    assert io_port["name"] == "child2.exits.io_port" and io_port["meaning"].startswith("port-I/O intercepts")
    assert io_port["unit"] == ""
    assert run_us["unit"] == "µs"
    assert step["predict"]["explain"].startswith("Each IN is one exit")


@pytest.mark.parametrize(("bad", "message", "line"), [
    ("      panel: console\n", "watch panel", 12),
    ("      counters: [child2.exits.no_such]\n", "no counter 'child2.exits.no_such'", 12),
    ("      partition: child9\n", "watch partition", 12),
])
def test_a_bad_watch_is_reported_with_its_line(tmp_path: Path, bad: str, message: str, line: int) -> None:
    text = LESSON.replace("      panel: io\n      partition: child2\n      counters: [child2.exits.io_port, child2.vp.run_us]\n",
                          bad)
    with pytest.raises(LessonError) as info:
        load_lesson(write(tmp_path, text))
    assert message in info.value.message and info.value.line == line, str(info.value)


def test_the_catalogue_has_every_documented_counter_once_with_a_meaning() -> None:
    names = [d.name for d in catalogue()]
    assert len(names) == len(set(names)) and len(names) > 30
    assert all(d.meaning for d in catalogue())
    doc = describe("child1.disk.sectors_written")
    assert doc is not None and doc.unit == "sectors"
    assert describe("child1.faults.page") is not None
    assert describe("child1.nonsense") is None


def test_commands_the_text_shows_are_clickable_and_no_others(tmp_path: Path) -> None:
    text = LESSON.replace("      - type: {partition: child2, text: io 10}\n",
                          "      - type: {partition: child2, text: io 10}\n"
                          "      - type: {partition: child1, text: secret 5}\n")
    step = load_lesson(write(tmp_path, text)).to_dict()["steps"][0]
    # `io 10` is in the text: clickable, in child2; `secret 5` is only in the solution: not given away
    assert step["commands"] == [{"text": "io 10", "partition": "child2"}]
