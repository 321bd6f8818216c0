"""The lesson engine (web/lessons/) and `hyperlab lessons check` / `test`.

Bad lesson files live in tests/fixtures/lessons/: each line that must be reported carries a comment
`expect: <part of the message>` (or `expect@N: ...` for a problem reported on line N), so the
fixture itself says which line is at fault and the test checks the engine names exactly those lines.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hyperlab.web.lessons import (
    TELEMETRY_DOC,
    Check,
    Evaluator,
    ExpressionError,
    Lesson,
    LessonError,
    Prediction,
    check_paths,
    known_counter,
    load_lesson,
    load_lessons,
    replay,
    validate_expression,
)

FIXTURES = Path(__file__).parent / "fixtures" / "lessons"
CLI = [sys.executable, "-m", "hyperlab.web.cli"]

GOOD = """\
---
id: tiny
title: A tiny lesson
summary: One step, to test the engine.
objectives:
  - Count system calls.
  - Yes                        # text stays text, though YAML alone would make it true
lab:
  design: monolithic
  partitions:
    child2: {integration_services: true, memory_mb: 32}
steps:
  - id: syscalls
    title: Ask the kernel
    text: |
      Type `syscalls 100` in **child1**.
    check:
      expr: delta("child1.syscalls") >= 100
      message: Type syscalls 100 in child1's console.
    predict:
      question: How many system calls will the guest kernel count?
      unit: system calls
      measure: delta("child1.syscalls")
    hints: [The command is `syscalls N`.]
    actions:
      - {label: Restart child1, partition: child1, action: reset}
      - {label: Enlighten child2, partition: child2, settings: {integration_services: true}}
    cells:
      - |
        from hyperlab.web.client import Lab
        lab = Lab.current()
        await lab.refresh()
    solution:
      - type: {partition: child1, text: syscalls 100}
  - id: read-on
    title: No check here
    text: This step unlocks at once.
---
# Introduction

Some *Markdown*.
"""


def write(tmp_path: Path, text: str, name: str = "lesson.md") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- loading a good lesson -----------------------------------------------------------------------------
def test_a_lesson_may_switch_designs_and_inject_faults(tmp_path: Path) -> None:
    text = GOOD.replace("  design: monolithic\n", "  design: hosted\n  design_switch: true\n").replace(
        "      - {label: Restart child1, partition: child1, action: reset}\n",
        "      - {label: Fail the IDE model, fault: child2.ide}\n      - {label: Go micro-kernel, design: microkernel}\n"
    ).replace("      - type: {partition: child1, text: syscalls 100}\n",
              "      - design: monolithic\n      - fault: child2.ide\n      - type: {partition: child1, text: syscalls 100}\n")
    lesson = load_lesson(write(tmp_path, text))
    assert (lesson.design, lesson.design_switch) == ("hosted", True)
    buttons = lesson.to_dict()["steps"][0]["actions"]
    assert buttons[0] == {"label": "Fail the IDE model", "partition": None, "action": None, "settings": None,
                          "fault": "child2.ide"}
    assert buttons[1]["design"] == "microkernel"
    assert [next(k for k in item if k != "line") for item in lesson.steps[0].solution] == ["design", "fault", "type"]
    bad = text.replace("fault: child2.ide}", "fault: child2.gpu}").replace("- design: monolithic", "- design: xen")
    with pytest.raises(LessonError) as e:
        load_lesson(write(tmp_path, bad))
    messages = " ".join(err.message for err in e.value.errors)
    assert "unknown component 'child2.gpu'" in messages and "must be one of microkernel, monolithic, hosted" in messages



def test_a_good_lesson_loads_with_every_field(tmp_path: Path) -> None:
    lesson = load_lesson(write(tmp_path, GOOD))
    assert (lesson.id, lesson.title, lesson.design) == ("tiny", "A tiny lesson", "monolithic")
    assert lesson.objectives == ["Count system calls.", "Yes"]
    assert lesson.intro == "# Introduction\n\nSome *Markdown*."
    assert lesson.partitions == {"child2": {"integration_services": True, "memory_mb": 32}}
    first, second = lesson.steps
    assert first.text == "Type `syscalls 100` in **child1**.\n"
    assert first.check == Check('delta("child1.syscalls") >= 100', "Type syscalls 100 in child1's console.", 18)
    assert first.predict == Prediction("How many system calls will the guest kernel count?", "system calls",
                                       'delta("child1.syscalls")', 23)
    assert first.hints == ["The command is `syscalls N`."]
    assert [(a.label, a.partition, a.action, a.settings) for a in first.actions] == [
        ("Restart child1", "child1", "reset", None),
        ("Enlighten child2", "child2", None, {"integration_services": True})]
    assert first.cells[0].startswith("from hyperlab.web.client import Lab\n")
    assert first.solution == [{"type": {"partition": "child1", "text": "syscalls 100"}, "line": 34}]
    assert (second.check, second.predict, second.solution) == (None, None, [])


def test_lab_settings_name_all_three_partitions_with_the_overrides(tmp_path: Path) -> None:
    settings = load_lesson(write(tmp_path, GOOD)).lab_settings()
    assert settings["design"] == "monolithic"
    parts = {p["name"]: p for p in settings["partitions"]}
    assert list(parts) == ["root", "child1", "child2"]
    assert parts["root"]["role"] == "root"
    assert parts["child1"]["integration_services"] is True
    assert parts["child2"] == {"name": "child2", "role": "child", "integration_services": True, "memory_mb": 32}


def test_to_dict_is_json_and_keeps_the_solutions_out(tmp_path: Path) -> None:
    data = load_lesson(write(tmp_path, GOOD)).to_dict()
    text = json.dumps(data)
    assert "syscalls 100\"}" not in text and "solution" not in text
    step = data["steps"][0]
    assert step["check"] == {"expr": 'delta("child1.syscalls") >= 100',
                             "message": "Type syscalls 100 in child1's console."}
    assert step["predict"]["unit"] == "system calls"
    assert step["actions"][1] == {"label": "Enlighten child2", "partition": "child2", "action": None,
                                  "settings": {"integration_services": True}}
    assert data["steps"][1]["check"] is None


def test_load_lessons_reports_a_bad_file_and_loads_the_others(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "01-good.md")
    write(tmp_path, GOOD.replace("id: tiny", "id: tiny-two"), "03-good.md")
    write(tmp_path, GOOD.replace("  - Yes ", "  - {a: b} "), "02-bad.md")
    lessons, errors = load_lessons(tmp_path)
    assert [lesson.id for lesson in lessons] == ["tiny", "tiny-two"]  # file-name order
    assert [str(e) for e in errors] == [(f"{tmp_path / '02-bad.md'}:7: each of objectives must be text, "
                                        "not a set of fields")]


def test_a_lesson_id_used_twice_is_reported_on_the_second_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.md")
    write(tmp_path, GOOD, "b.md")
    lessons, errors = load_lessons(tmp_path)
    assert [lesson.path for lesson in lessons] == [str(tmp_path / "a.md")]
    assert [(Path(e.path).name, e.line) for e in errors] == [("b.md", 2)]
    assert f"already used by {tmp_path / 'a.md'}" in errors[0].message


def test_one_exception_carries_every_problem_of_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("title: A tiny lesson", "title: [x]").replace("design: monolithic",
                                                                                       "design: x"))
    with pytest.raises(LessonError) as info:
        load_lesson(path)
    assert str(info.value) == f"{path}:3: title must be text, not a list"
    assert [e.line for e in info.value.errors] == [3, 9]


# --- bad files: every kind, each with the exact line ----------------------------------------------------
def expected(path: Path) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = re.search(r"expect(?:@(\d+))?: (.*?)\s*(?:-->)?$", line)
        if m:
            out.append((int(m.group(1)) if m.group(1) else n, m.group(2)))
    return out


BAD = sorted(FIXTURES.glob("*.md"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_a_bad_file_is_reported_at_the_right_lines(path: Path) -> None:
    want = expected(path)
    assert want, f"{path.name} says nothing it expects"
    with pytest.raises(LessonError) as info:
        load_lesson(path)
    got = [(e.line, e.message) for e in info.value.errors]
    assert [line for line, _ in got] == [line for line, _ in want], "\n".join(f"{ln}: {m}" for ln, m in got)
    for (line, message), (_, part) in zip(got, want, strict=True):
        assert part in message, f"line {line}: {message!r} does not say {part!r}"
    for e in info.value.errors:
        assert str(e) == f"{path}:{e.line}: {e.message}"


def test_the_fixtures_cover_every_kind_of_bad_input() -> None:
    messages = " | ".join(m for p in BAD for _, m in expected(p))
    for kind in ("needs summary", "unknown field", "must be text", "must be true or false", "given twice",
                 "already used", "not a valid expression", "attributes", "unknown name", "unknown counter",
                 "must be one of root, child1, child2", "action must be one of", "check but no solution",
                 "not valid YAML", "has no end", "starts with a line `---`", "tabs", "Python syntax error"):
        assert kind in messages, kind


def test_check_paths_gathers_the_problems_of_a_whole_folder() -> None:
    errors = check_paths([FIXTURES])
    assert {Path(e.path).name for e in errors} == {p.name for p in BAD}
    assert len(errors) == sum(len(expected(p)) for p in BAD)


def test_a_missing_file_and_a_non_utf8_file_are_problems_not_tracebacks(tmp_path: Path) -> None:
    assert [str(e) for e in check_paths([tmp_path / "nope.md"])] == [f"{tmp_path / 'nope.md'}:1: no such file"]
    bad = tmp_path / "latin1.md"
    bad.write_bytes(b"---\nid: x\ntitle: caf\xe9\n---\n")
    assert [(e.line, e.message) for e in check_paths([bad])] == [(3, "not UTF-8 text (save the file as UTF-8)")]


# --- expressions -------------------------------------------------------------------------------------
SNAPSHOT = {
    "partitions": {
        "root": {"name": "root", "state": "running"},
        "child1": {"name": "child1", "state": "crashed", "ic": {"heartbeat": "ok"}},
        "child2": {"name": "child2", "state": "running", "ic": {"heartbeat": "none"}},
    },
    "counters": {"child1.syscalls": 1500, "child2.exits.io_port": 40, "child2.disk.sectors_written": 8},
    "transitions": [{"reason": "io_port", "partition": "child2"}, {"reason": "io_port", "partition": "child1"},
                    {"reason": "hypercall", "partition": "child1"}],
}


@pytest.mark.parametrize(("expr", "value"), [
    ('delta("child1.syscalls")', 500),
    ('counter("child1.syscalls")', 1500),
    ('delta("child2.exits.io_port")', 40),              # not in the baseline: counted from 0
    ('counter("child1.exits.cpuid")', 0),               # documented, not yet incremented
    ('state("child1")', "crashed"),
    ('ic("child1")', "ok"),
    ('ic("child2")', "none"),
    ('transitions("io_port")', 2),
    ('transitions("io_port", "child2")', 1),
    ('delta("child2.exits.io_port") / counter("child2.disk.sectors_written")', 5.0),
    ('max(delta("child1.syscalls"), 7) - min(1, 2) + abs(-3) * 2', 505),
    ('state("child1") == "crashed" and state("child2") == "running"', True),
    ('state("child2") in ("off", "crashed")', False),
    ('not state("child2") not in ("running",)', True),
    ('delta("child1.syscalls") >= 1000 or ic("child1") != "ok"', False),
    ('0 < delta("child1.syscalls") <= 500', True),
    ('-delta("child1.syscalls") < 0', True),
])
def test_evaluator_reads_the_snapshot(expr: str, value: object) -> None:
    assert validate_expression(expr) is None or isinstance(value, str)  # a text is no check by itself
    ev = Evaluator(SNAPSHOT, {"child1.syscalls": 1000})
    assert ev.value(expr) == value


def test_evaluator_check_and_measure() -> None:
    ev = Evaluator(SNAPSHOT, {"child1.syscalls": 1000})
    assert ev.check(Check('delta("child1.syscalls") >= 500', "m", 1)) is True
    assert ev.check(Check('delta("child1.syscalls") >= 501', "m", 1)) is False
    assert ev.measure(Prediction("q", "u", 'delta("child1.syscalls")', 1)) == 500
    assert Evaluator(SNAPSHOT, None).measure(Prediction("q", "u", 'delta("child1.syscalls")', 1)) == 1500
    with pytest.raises(ExpressionError, match="division by zero"):
        ev.measure(Prediction("q", "u", 'counter("child1.syscalls") / counter("child1.boots")', 1))
    assert ev.explain('delta("child1.syscalls") >= 900 and state("child2") == "off"') == [
        'delta("child1.syscalls") = 500', 'state("child2") = \'running\'']


@pytest.mark.parametrize(("expr", "why"), [
    ('counter("child1.syscalls").bit_length()', "attributes (a.b) are not allowed"),
    ("__import__('os').system('true')", "attributes (a.b) are not allowed"),
    ("__import__('os')", "unknown function __import__()"),
    ("eval('1')", "unknown function eval()"),
    ("open('/etc/passwd')", "unknown function open()"),
    ("syscalls > 1", "unknown name 'syscalls'"),
    ("True", None),
    ("x", "unknown name 'x'"),
    ("[c for c in ()]", "is not allowed"),
    ("(lambda: 1)()", "can be called"),
    ("import os", "not a valid expression"),
    ("delta('child1.syscalls') ** 2 > 0", "only + - * / are allowed"),
    ('delta("child1.syscalls", "child2") > 0', "takes one counter name"),
    ("delta(name) > 0", 'delta() takes names in quotes, e.g. delta("child1...")'),
    ('delta("child9.syscalls") > 0', "unknown counter 'child9.syscalls'"),
    ('counter("child1.syscals") > 0', "did you mean 'child1.syscalls'"),
    ('state("child1") == "runing"', "never 'runing'"),
    ('state("child1") < "running"', "text can only be compared with"),
    ('ic("root") == "ok"', "the root hosts the Integration Services"),
    ('transitions("teleport") > 0', "unknown transition reason"),
    ('transitions("io_port", "child7") > 0', "unknown partition 'child7'"),
    ('state("child1") in "crashed"', "after in, list the values"),
    ('delta("child1.syscalls") + "x" > 0', "need numbers on both sides"),
    ('max(delta(x="child1.syscalls"), 1)', "takes no name=value arguments"),
    ("", "the expression is empty"),
])
def test_validate_expression_refuses_what_is_not_whitelisted(expr: str, why: str | None) -> None:
    problem = validate_expression(expr)
    if why is None:
        assert problem is None
    else:
        assert problem is not None and why in problem, problem


def test_measures_must_be_numbers_and_checks_not_text() -> None:
    assert "gives text" in (validate_expression('state("child1")') or "")
    assert validate_expression('delta("child1.syscalls")') is None           # a number is a fine check (> 0)
    assert "must give a number" in (validate_expression('delta("child1.syscalls") > 1', number=True) or "")
    assert validate_expression('delta("child1.syscalls") / 2', number=True) is None


def test_the_evaluator_refuses_unvalidated_code_too() -> None:
    with pytest.raises(ExpressionError, match="attributes"):
        Evaluator(SNAPSHOT).value("().__class__.__bases__[0].__subclasses__()")
    with pytest.raises(ExpressionError, match="unknown function"):
        Evaluator(SNAPSHOT).check(Check("exit(1)", "m", 1))


def test_validate_expression_takes_the_known_counter_predicate() -> None:
    assert validate_expression('counter("made.up") > 0', lambda name: name == "made.up") is None
    assert "unknown counter" in (validate_expression('counter("child1.boots") > 0', lambda name: False) or "")


# --- known_counter and docs/telemetry.md ---------------------------------------------------------------
def documented_names() -> list[str]:
    """Every name in the first column of the counter tables, spelled out (an independent reading)."""
    text = TELEMETRY_DOC.read_text()
    section = text.split("\n## Counters", 1)[1].split("\n## ", 1)[0]
    names = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first = row.split("|")[1]
        found = re.findall(r"`([^`]+)`", first)
        base = found[0]
        for name in found:
            full = base.rsplit(".", 1)[0] + name if name.startswith(".") else name
            for p in ("root", "child1", "child2"):
                names.append(full.replace("<p>", p).replace("<kind>", "page"))
    return names


def test_every_documented_counter_is_known() -> None:
    names = documented_names()
    assert len(names) > 100
    for name in names:
        assert known_counter(name), name
    for name in ("child1.exits.io_port", "child2.console.bytes_in", "root.vp.run_us", "lab.hypervisor.exits",
                 "child2.vmbus.ring_full", "child1.vmbus.signals_to_guest_suppressed", "root.faults.general_protection",
                 "child2.disk.bytes_written", "lab.transitions.partition_switch", "child1.ic.heartbeats"):
        assert known_counter(name), name


@pytest.mark.parametrize("name", ["child3.boots", "child1.boot", "child1.exits", "lab.hypervisor",
                                  "child1.exits.io_port.x", "CHILD1.boots", "child1.faults.", "boots",
                                  "child1.worker.requests", "<p>.boots", "child1.disk.sectors_writen"])
def test_undocumented_names_are_unknown(name: str) -> None:
    assert not known_counter(name)


def test_the_telemetry_doc_ships_with_the_package() -> None:
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert '"hyperlab" = ["docs/telemetry.md"' in pyproject  # the first file of the package's data
    assert TELEMETRY_DOC.is_file()


# --- the command line ----------------------------------------------------------------------------------
def hyperlab(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)


def test_lessons_check_prints_file_line_message_and_exits_1() -> None:
    res = hyperlab("lessons", "check", str(FIXTURES))
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert len(lines) == sum(len(expected(p)) for p in BAD)
    for line in lines:
        assert re.fullmatch(r"\S+\.md:\d+: .+", line), line
    assert f"{FIXTURES / 'duplicates.md'}:5: the lesson: title is given twice" in lines
    assert "Traceback" not in res.stderr


def test_lessons_check_passes_a_good_lesson(tmp_path: Path) -> None:
    res = hyperlab("lessons", "check", str(write(tmp_path, GOOD)))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "1 lesson OK"


def test_the_packaged_lessons_check_clean() -> None:
    res = hyperlab("lessons", "check")
    assert res.returncode == 0, res.stdout + res.stderr


def test_lessons_test_with_no_lessons_says_so_and_passes(tmp_path: Path) -> None:
    res = hyperlab("lessons", "test", str(tmp_path))
    assert res.returncode == 0
    assert res.stdout.strip() == f"no lessons in {tmp_path}: nothing to test"


def test_lessons_test_counts_a_lesson_that_does_not_load_as_a_failure(tmp_path: Path) -> None:
    write(tmp_path, "not a lesson\n", "bad.md")
    res = hyperlab("lessons", "test", str(tmp_path))
    assert res.returncode == 1
    assert res.stdout.splitlines() == [(f"FAIL {tmp_path / 'bad.md'}:1: a lesson starts with a line `---`, then its "
                                       "front matter (YAML), then another `---` line, then the introduction in "
                                       "Markdown"), "0 passed, 1 failed"]


# --- a real replay -------------------------------------------------------------------------------------
TINY = """\
---
id: tiny-replay
title: Replay
summary: Solutions replayed on a real lab.
objectives: [Prove the checks can pass.]
steps:
  - id: syscalls
    title: System calls
    text: Type `syscalls 100` in child1.
    check:
      expr: delta("child1.syscalls") >= 100 and state("child1") == "running"
      message: Type syscalls 100 in child1.
    predict:
      question: How many system calls?
      unit: calls
      measure: delta("child1.syscalls")
    solution:
      - type: {partition: child1, text: syscalls 100}
  - id: kernel-crash
    title: A kernel crash
    text: Crash child1's kernel; child2 runs on.
    check:
      expr: state("child1") == "crashed" and delta("child1.crashes") == 1 and state("child2") == "running"
      message: Type crash kernel in child1.
    solution:
      - type: {partition: child1, text: crash kernel}
  - id: start-again
    title: Start it again
    text: Press Start.
    check:
      expr: delta("child1.boots") >= 1 and delta("child1.syscalls") >= 5
      message: Start child1 and type syscalls 5.
    solution:
      - action: {partition: child1, action: start}
      - wait_prompt: child1
      - type: {partition: child1, text: syscalls 5}
      - wait_until: state("child1") == "running"
---
"""


def test_replay_plays_a_tiny_lesson_on_a_real_lab(tmp_path: Path) -> None:
    lesson = load_lesson(write(tmp_path, TINY))
    seen = []
    result = replay(lesson, timeout=60, on_step=seen.append)
    assert [(s.step, s.status) for s in result.steps] == [("syscalls", "PASS"), ("kernel-crash", "PASS"),
                                                          ("start-again", "PASS")], [s.message for s in result.steps]
    assert result.passed and seen == result.steps
    first = result.steps[0]
    assert first.measured is not None and first.measured >= 100 and first.unit == "calls"
    assert re.fullmatch(r"PASS tiny-replay/syscalls \d+\.\d s \(measured \d+ calls\)", first.line())


def test_replay_fails_a_check_that_cannot_pass_and_skips_the_rest(tmp_path: Path) -> None:
    text = TINY.replace('delta("child1.syscalls") >= 100 and', 'delta("child1.syscalls") >= 100000 and')
    lesson = load_lesson(write(tmp_path, text))
    result = replay(lesson, timeout=2)
    assert [s.status for s in result.steps] == ["FAIL", "SKIP", "SKIP"]
    message = result.steps[0].message
    assert message.startswith('check not met within 2 s: delta("child1.syscalls") >= 100000'), message
    assert 'delta("child1.syscalls") = ' in message  # how far it got
    assert result.steps[0].line().startswith("FAIL tiny-replay/syscalls: check not met")


def test_replay_reports_an_action_the_lab_refuses(tmp_path: Path) -> None:
    text = TINY.replace("      - type: {partition: child1, text: syscalls 100}\n",
                        "      - action: {partition: child2, action: start}\n", 1)
    result = replay(load_lesson(write(tmp_path, text)), timeout=10)
    assert result.steps[0].status == "FAIL"
    assert "cannot start child2: it is running" in result.steps[0].message
    assert "solution line 18" in result.steps[0].message


class _DeadLab:
    """A lab whose process never got going: replay must report it, not hang or raise."""

    alive = False
    fatal = "RuntimeError: no CPU"

    def __init__(self, lesson: Lesson) -> None:
        self.closed = False

    def wait_ready(self, timeout: float = 0) -> None:
        from hyperlab.web.labs import LabError

        raise LabError(503, f"lab stopped: {self.fatal}")

    def close(self) -> None:
        self.closed = True


def test_replay_reports_a_lab_that_does_not_start(tmp_path: Path) -> None:
    labs: list[_DeadLab] = []

    def factory(lesson: Lesson) -> _DeadLab:
        labs.append(_DeadLab(lesson))
        return labs[-1]

    result = replay(load_lesson(write(tmp_path, TINY)), lab_factory=factory)  # type: ignore[arg-type]
    assert [s.status for s in result.steps] == ["FAIL", "SKIP", "SKIP"]
    assert "the lesson's lab did not start: lab stopped: RuntimeError: no CPU" in result.steps[0].message
    assert labs[0].closed


def test_lessons_test_cli_prints_a_line_per_step_and_json(tmp_path: Path) -> None:
    path = write(tmp_path, TINY)
    res = hyperlab("lessons", "test", str(path))
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert [line.split(" ")[:2] for line in lines[:3]] == [["PASS", "tiny-replay/syscalls"],
                                                          ["PASS", "tiny-replay/kernel-crash"],
                                                          ["PASS", "tiny-replay/start-again"]]
    assert lines[3] == "3 passed, 0 failed"
    res = hyperlab("lessons", "test", "--json", "--timeout", "2",
                   str(write(tmp_path, TINY.replace(">= 100 and", ">= 100000 and"), "failing.md")))
    assert res.returncode == 1
    data = json.loads(res.stdout)
    assert (data["passed"], data["failed"], data["skipped"]) == (0, 1, 2)
    steps = data["lessons"][0]["steps"]
    assert [s["status"] for s in steps] == ["FAIL", "SKIP", "SKIP"]
    assert data["lessons"][0]["lesson"] == "tiny-replay" and data["lessons"][0]["passed"] is False


def test_the_example_in_docs_lessons_md_checks_and_replays(tmp_path: Path) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "lessons.md").read_text()
    example = re.search(r"```markdown\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    lesson = load_lesson(write(tmp_path, example.group(1)))
    assert lesson.id == "user-vs-kernel" and lesson.steps[1].predict is not None
    result = replay(lesson, timeout=60)
    assert result.passed, [s.line() for s in result.steps]
    measured = result.steps[1].measured
    assert measured is not None and measured > 0


def test_a_huge_or_deeply_nested_expression_is_refused_not_a_crash() -> None:
    assert "nested too deeply" in (validate_expression("1+" * 990 + "1 > 0") or "")
    assert "longer than 2000" in (validate_expression(" + ".join(['delta("child1.syscalls")'] * 100)) or "")
    assert "not a valid expression" in (validate_expression("(" * 300 + "1" + ")" * 300) or "")


HOSTED_REPLAY = """\
---
id: designs-replay
title: Designs in a replay
summary: A design switch and a fault, replayed.
objectives: [See a VMM application fail.]
lab:
  design: microkernel
  design_switch: true
steps:
  - id: go-hosted
    title: Hosted
    text: Switch to the hosted design and fail child2's VMM application.
    check:
      expr: design() == "hosted" and state("child2") == "crashed" and state("child1") == "running"
      message: Switch to hosted, then inject a fault into child2.vmm.
    solution:
      - design: hosted
      - type: {partition: child1, text: ver}
      - fault: child2.vmm
---
"""


def test_replay_switches_the_design_and_injects_a_fault(tmp_path: Path) -> None:
    lesson = load_lesson(write(tmp_path, HOSTED_REPLAY))
    result = replay(lesson, timeout=60)
    assert [(s.step, s.status) for s in result.steps] == [("go-hosted", "PASS")], [s.message for s in result.steps]


def test_design_is_a_function_of_checks_with_known_values() -> None:
    assert Evaluator({"design": "hosted"}, {}).check('design() == "hosted"')
    assert "design() is never 'xen'" in (validate_expression('design() == "xen"') or "")
    assert "design() takes nothing" in (validate_expression('design("child1") == "hosted"') or "")
