"""The YAML reader: lesson files (Markdown with YAML front matter, ``docs/lessons.md``) into the model.

Why the care with line numbers: the people who write lessons are instructors, not our developers. A
problem is reported as ``file:line: message`` pointing at the line to fix, never as a traceback, so the
YAML is composed into nodes (which keep their position) and validated node by node rather than loaded
into plain dicts.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from hyperlab.core.partition import ACTIONS
from hyperlab.core.placement import COMPONENT_KINDS
from hyperlab.web.lessons.counters import describe, known_counter
from hyperlab.web.lessons.expressions import _validate
from hyperlab.web.lessons.model import (
    _ID,
    DESIGNS,
    PANELS,
    PARTITIONS,
    Action,
    Check,
    Lesson,
    LessonError,
    Prediction,
    Step,
    Watch,
    WatchedCounter,
)

MAX_WAIT = 120.0          # a solution's `wait:` (seconds)


# --- loading -----------------------------------------------------------------------------------------
_NULL = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"

_LESSON_FIELDS = ("id", "title", "summary", "objectives", "lab", "steps")
_LAB_FIELDS = ("design", "design_switch", "partitions")
_STEP_FIELDS = ("id", "title", "text", "check", "predict", "hints", "actions", "cells", "watch", "solution")
_SOLUTION_KINDS = ("type", "action", "fault", "design", "wait_prompt", "wait", "wait_until")
_SETTINGS = ("integration_services", "memory_mb")


class _Reader:
    """Validates composed YAML nodes, collecting every problem with its line in the .md file."""

    def __init__(self, path: str, offset: int) -> None:
        self.path = path
        self.offset = offset  # node.start_mark.line is 0-based within the front matter
        self.errors: list[LessonError] = []
        self._constructor = yaml.SafeLoader("")
        self._key_line: dict[int, int] = {}  # id(value node) -> line of its key (the tree outlives us)

    def line(self, node: yaml.Node) -> int:
        """The node's line; for a field's value, its `name:` line (where a block value is named)."""
        return self._key_line.get(id(node), node.start_mark.line) + self.offset

    def error(self, where: yaml.Node | int, message: str) -> None:
        line = where if isinstance(where, int) else self.line(where)
        self.errors.append(LessonError(self.path, line, message))

    @staticmethod
    def present(node: yaml.Node | None) -> bool:
        return node is not None and not (isinstance(node, yaml.ScalarNode) and node.tag == _NULL)

    def require(self, node: yaml.Node, fields: dict[str, yaml.Node], what: str, required: Iterable[str]) -> None:
        for name in required:
            if not self.present(fields.get(name)):
                self.error(fields.get(name) or node, f"{what} needs {name}")

    def mapping(self, node: yaml.Node, what: str, fields: Iterable[str],
                required: Iterable[str] = ()) -> dict[str, yaml.Node] | None:
        """The fields of a mapping node; unknown and repeated keys are errors (YAML itself allows a
        repeated key and keeps the last, which would hide a mistake)."""
        fields = tuple(fields)
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a set of `name: value` lines, not {_describe(node)}")
            return None
        out: dict[str, yaml.Node] = {}
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.error(key_node, f"{what}: a field name must be a plain word")
            elif key in out:
                self.error(key_node, f"{what}: {key} is given twice")
            elif key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.error(key_node, f"{what}: unknown field {key!r}{hint}; known fields: {', '.join(fields)}")
            else:
                out[key] = value
                self._key_line[id(value)] = key_node.start_mark.line
        self.require(node, out, what, required)
        return out

    def text(self, node: yaml.Node | None, what: str, required: bool = True) -> str | None:
        """Text as written: any scalar counts (title: 1984 or unit: yes is text here, not a number or
        a boolean, which YAML alone would make them)."""
        if not self.present(node):
            return None
        assert node is not None
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{what} must be text, not {_describe(node)}")
            return None
        if required and not node.value.strip():
            self.error(node, f"{what} is empty")
            return None
        return node.value

    def text_list(self, node: yaml.Node | None, what: str) -> list[tuple[str, yaml.Node]]:
        if not self.present(node):
            return []
        assert node is not None
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list (lines starting with `- `), not {_describe(node)}")
            return []
        out = []
        for item in node.value:
            value = self.text(item, f"each of {what}")
            if value is not None:
                out.append((value, item))
        return out

    def sequence(self, node: yaml.Node | None, what: str) -> list[yaml.Node]:
        if not self.present(node):
            return []
        assert node is not None
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list (lines starting with `- `), not {_describe(node)}")
            return []
        return list(node.value)

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
            return bool(self._constructor.construct_object(node))
        self.error(node, f"{what} must be true or false")
        return None

    def number(self, node: yaml.Node, what: str, integer: bool = False) -> float | None:
        tags = (_INT_TAG,) if integer else (_INT_TAG, _FLOAT_TAG)
        if isinstance(node, yaml.ScalarNode) and node.tag in tags:
            value = self._constructor.construct_object(node)
            if isinstance(value, int | float) and math.isfinite(value):
                return value
        self.error(node, f"{what} must be {'a whole number' if integer else 'a number'}")
        return None

    def choice(self, node: yaml.Node | None, what: str, choices: Iterable[str]) -> str | None:
        value = self.text(node, what)
        if value is None:
            return None
        choices = tuple(choices)
        if value not in choices:
            assert node is not None
            self.error(node, f"{what} must be one of {', '.join(choices)}, not {value!r}")
            return None
        return value

    def ident(self, node: yaml.Node | None, what: str) -> str | None:
        value = self.text(node, what)
        if value is not None and not _ID.fullmatch(value):
            assert node is not None
            self.error(node, f"{what} {value!r} must be lower-case letters, digits and dashes (e.g. first-step)")
            return None
        return value

    def expression(self, node: yaml.Node | None, what: str, number: bool = False) -> str | None:
        value = self.text(node, what)
        if value is None:
            return None
        assert node is not None
        problem = _validate(value, known_counter, number)
        if problem is not None:
            self.error(self.content_line(node, problem[0]), f"{what}: {problem[1]}")
            return None
        return value.strip()

    def content_line(self, node: yaml.Node, lineno: int = 1) -> int:
        """The file line of line ``lineno`` of a scalar's text (a `|` block starts one line below)."""
        block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
        return self.line(node) + (1 if block else 0) + lineno - 1

    def settings(self, node: yaml.Node, partition: str | None, what: str) -> dict | None:
        fields = self.mapping(node, what, _SETTINGS)
        if fields is None:
            return None
        out: dict[str, Any] = {}
        if not fields:
            self.error(node, f"{what} is empty: set {' or '.join(_SETTINGS)}")
            return None
        if "integration_services" in fields:
            if partition == "root":
                self.error(fields["integration_services"], f"{what}: the root partition hosts the Integration "
                                                          "Services; it has no integration_services setting")
            else:
                ic = self.boolean(fields["integration_services"], f"{what}: integration_services")
                if ic is not None:
                    out["integration_services"] = ic
        if "memory_mb" in fields:
            memory = self.number(fields["memory_mb"], f"{what}: memory_mb", integer=True)
            if memory is not None:
                if memory % 2 or not 4 <= memory <= 256:
                    self.error(fields["memory_mb"], f"{what}: memory_mb must be even, from 4 to 256")
                else:
                    out["memory_mb"] = int(memory)
        return out

    def partition(self, node: yaml.Node | None, what: str) -> str | None:
        return self.choice(node, what, PARTITIONS)


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a set of fields"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "empty" if node.tag == _NULL else f"{node.value!r}"


def _split(path: str, text: str) -> tuple[str, str, int]:
    """Front matter, body, and the file line of the front matter's first line."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        raise LessonError(path, 1, "a lesson starts with a line `---`, then its front matter (YAML), "
                                   "then another `---` line, then the introduction in Markdown")
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1:]), 2
    raise LessonError(path, 1, "the front matter has no end: add a line `---` after it")


def load_lesson(path: str | Path) -> Lesson:
    """Load and validate one lesson file.

    Raises :class:`LessonError` for the first problem, carrying every problem found in ``errors``.
    """
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise LessonError(path, 1, "no such file") from None
    except OSError as e:
        raise LessonError(path, 1, f"cannot read it: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise LessonError(path, line, "not UTF-8 text (save the file as UTF-8)") from None
    front, body, offset = _split(path, text)
    try:
        root = yaml.compose(front, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = (mark.line if mark else 0) + offset
        problem = e.problem or e.context or "cannot read it"
        if e.context and e.problem and e.context_mark and e.context_mark.line != (mark.line if mark else 0):
            problem = f"{problem} ({e.context} that began on line {e.context_mark.line + offset})"
        if "\t" in problem or "'\\t'" in problem:
            problem += " (indent with spaces, not tabs)"
        raise LessonError(path, line, f"the front matter is not valid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise LessonError(path, offset, f"the front matter is not valid YAML: {e}") from None
    if root is None:
        raise LessonError(path, 1, "the front matter is empty: it needs " + ", ".join(_LESSON_FIELDS))
    reader = _Reader(path, offset)
    lesson = _lesson(reader, root, body)
    if reader.errors:
        raise LessonError.collect(sorted(reader.errors, key=lambda e: e.line))
    assert lesson is not None
    return lesson


def _lesson(r: _Reader, root: yaml.Node, body: str) -> Lesson | None:
    fields = r.mapping(root, "the lesson", _LESSON_FIELDS, required=("id", "title", "summary", "objectives",
                                                                      "steps"))
    if fields is None:
        return None
    lesson_id = r.ident(fields.get("id"), "the lesson's id")
    title = r.text(fields.get("title"), "title")
    summary = r.text(fields.get("summary"), "summary")
    objectives = [t for t, _ in r.text_list(fields.get("objectives"), "objectives")]
    objectives_node = fields.get("objectives")
    if isinstance(objectives_node, yaml.SequenceNode) and not objectives_node.value:
        r.error(objectives_node, "objectives: list at least one")
    design, partitions, design_switch = "microkernel", {}, False
    if r.present(fields.get("lab")):
        design, partitions, design_switch = _lab(r, fields["lab"])
    steps: list[Step] = []
    seen: dict[str, int] = {}
    step_nodes = r.sequence(fields.get("steps"), "steps")
    if r.present(fields.get("steps")) and isinstance(fields.get("steps"), yaml.SequenceNode) and not step_nodes:
        r.error(fields["steps"], "steps: a lesson needs at least one step")
    for n, node in enumerate(step_nodes, 1):
        step = _step(r, node, n)
        if step is None:
            continue
        if step.id in seen:
            r.error(step.line, f"step {n}: id {step.id!r} is already used by the step on line {seen[step.id]}")
        else:
            seen[step.id] = step.line
        steps.append(step)
    if r.errors or lesson_id is None or title is None or summary is None:
        return None
    return Lesson(id=lesson_id, title=title, summary=summary, objectives=objectives, design=design,
                  partitions=partitions, steps=steps, intro=body.strip("\n"), path=r.path,
                  id_line=r.line(fields["id"]), design_switch=design_switch)


def _lab(r: _Reader, node: yaml.Node) -> tuple[str, dict[str, dict], bool]:
    design, partitions, switch = "microkernel", {}, False
    fields = r.mapping(node, "lab", _LAB_FIELDS)
    if fields is None:
        return design, partitions, switch
    if r.present(fields.get("design")):
        design = r.choice(fields["design"], "lab.design", DESIGNS) or design
    if r.present(fields.get("design_switch")):
        switch = bool(r.boolean(fields["design_switch"], "lab.design_switch"))
    if r.present(fields.get("partitions")):
        parts = r.mapping(fields["partitions"], "lab.partitions", PARTITIONS)
        for name, pnode in (parts or {}).items():
            if r.present(pnode):
                settings = r.settings(pnode, name, f"lab.partitions.{name}")
                if settings:
                    partitions[name] = settings
    return design, partitions, switch


def _step(r: _Reader, node: yaml.Node, n: int) -> Step | None:
    what = f"step {n}"
    if isinstance(node, yaml.MappingNode):  # name the step by its id in every message, if it has one
        ids = [v.value for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "id"
               and isinstance(v, yaml.ScalarNode) and _ID.fullmatch(v.value)]
        if ids:
            what = f"step {n} ({ids[0]})"
    fields = r.mapping(node, what, _STEP_FIELDS)
    if fields is None:
        return None
    line = r.line(node)
    step_id = r.ident(fields.get("id"), f"{what}: id")
    r.require(node, fields, what, ("id", "title", "text"))
    title = r.text(fields.get("title"), f"{what}: title")
    text = r.text(fields.get("text"), f"{what}: text")
    check = predict = None
    if r.present(fields.get("check")):
        check = _check(r, fields["check"], what)
    if r.present(fields.get("predict")):
        predict = _predict(r, fields["predict"], what)
        if not r.present(fields.get("check")):
            r.error(fields["predict"], f"{what}: a prediction needs a check: the measured value is revealed "
                                       "when the check is met")
    hints = [t for t, _ in r.text_list(fields.get("hints"), f"{what}: hints")]
    actions = [a for a in (_action(r, a, what) for a in r.sequence(fields.get("actions"), f"{what}: actions"))
               if a is not None]
    cells = []
    for cell, cnode in r.text_list(fields.get("cells"), f"{what}: cells"):
        problem = _cell_problem(cell)
        if problem is not None:
            r.error(r.content_line(cnode, problem[0]), f"{what}: notebook cell: {problem[1]}")
        cells.append(cell)
    watch = _watch(r, fields["watch"], what) if r.present(fields.get("watch")) else None
    solution = [s for s in (_solution_item(r, s, what)
                            for s in r.sequence(fields.get("solution"), f"{what}: solution")) if s is not None]
    if r.present(fields.get("check")) and not solution and not r.present(fields.get("solution")):
        r.error(fields["check"], f"{what} has a check but no solution: add the steps a student would take "
                                 "(`hyperlab lessons test` replays them to prove the check can pass)")
    if step_id is None or title is None or text is None:
        return None
    return Step(id=step_id, title=title, text=text, check=check, predict=predict, hints=hints, actions=actions,
                cells=cells, watch=watch, solution=solution, line=line)


def _check(r: _Reader, node: yaml.Node, what: str) -> Check | None:
    fields = r.mapping(node, f"{what}: check", ("expr", "message"), required=("expr", "message"))
    if fields is None:
        return None
    expr = r.expression(fields.get("expr"), f"{what}: check expr")
    message = r.text(fields.get("message"), f"{what}: check message")
    if expr is None or message is None:
        return None
    return Check(expr=expr, message=message, line=r.line(fields["expr"]))


def _predict(r: _Reader, node: yaml.Node, what: str) -> Prediction | None:
    fields = r.mapping(node, f"{what}: predict", ("question", "unit", "measure", "explain"),
                       required=("question", "unit", "measure"))
    if fields is None:
        return None
    question = r.text(fields.get("question"), f"{what}: predict question")
    unit = r.text(fields.get("unit"), f"{what}: predict unit")
    measure = r.expression(fields.get("measure"), f"{what}: predict measure", number=True)
    if question is None or unit is None or measure is None:
        return None
    explain = r.text(fields.get("explain"), f"{what}: predict explain") if r.present(fields.get("explain")) else None
    return Prediction(question=question, unit=unit, measure=measure, line=r.line(fields["measure"]),
                      explain=explain)


def _watch(r: _Reader, node: yaml.Node, what: str) -> Watch | None:
    """``watch: {panel: io, partition: child2, counters: [child2.exits.io_port]}``: every part optional."""
    fields = r.mapping(node, f"{what}: watch", ("panel", "partition", "counters"))
    if fields is None:
        return None
    panel = r.choice(fields["panel"], f"{what}: watch panel", PANELS) if r.present(fields.get("panel")) else None
    partition = (r.partition(fields["partition"], f"{what}: watch partition")
                 if r.present(fields.get("partition")) else None)
    counters = []
    for name, cnode in r.text_list(fields.get("counters"), f"{what}: watch counters"):
        doc = describe(name)
        if doc is None:
            r.error(cnode, f"{what}: watch counters: no counter {name!r} in docs/telemetry.md")
            continue
        counters.append(WatchedCounter(name, doc.meaning, doc.short, doc.unit))
    return Watch(panel=panel, partition=partition, counters=counters)


def _action(r: _Reader, node: yaml.Node, what: str) -> Action | None:
    fields = r.mapping(node, f"{what}: action button", ("label", "partition", "action", "settings", "fault",
                                                          "design"), required=("label",))
    if fields is None:
        return None
    label = r.text(fields.get("label"), f"{what}: action label")
    if r.present(fields.get("fault")) or r.present(fields.get("design")):
        if len([k for k in ("partition", "action", "settings", "fault", "design") if r.present(fields.get(k))]) > 1:
            r.error(node, f"{what}: action button: a fault or design button has only a label beside it")
            return None
        fault = r.present(fields.get("fault")) and _component(r, fields["fault"], f"{what}: action fault")
        design = r.present(fields.get("design")) and r.choice(fields["design"], f"{what}: action design", DESIGNS)
        if label is None or not (fault or design):
            return None
        return Action(label=label, partition=None, action=None, fault=fault or None, design=design or None)
    if not r.present(fields.get("partition")):
        r.error(node, f"{what}: action button needs partition (or fault, or design)")
        return None
    partition = r.partition(fields.get("partition"), f"{what}: action partition")
    action, settings = _action_or_settings(r, node, fields, partition, f"{what}: action button")
    if label is None or partition is None or (action is None and settings is None):
        return None
    return Action(label=label, partition=partition, action=action, settings=settings)


def _action_or_settings(r: _Reader, node: yaml.Node, fields: dict[str, yaml.Node], partition: str | None,
                        what: str) -> tuple[str | None, dict | None]:
    has_action, has_settings = r.present(fields.get("action")), r.present(fields.get("settings"))
    if has_action == has_settings:
        r.error(node, f"{what} has both action and settings: give one of them" if has_action else
                f"{what} needs action ({', '.join(ACTIONS)}) or settings")
        return None, None
    if has_action:
        return r.choice(fields["action"], f"{what}: action", ACTIONS), None
    return None, r.settings(fields["settings"], partition, f"{what}: settings")


def _solution_item(r: _Reader, node: yaml.Node, what: str) -> dict | None:
    where = f"{what}: solution"
    if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
        r.error(node, f"{where}: each item is one of " + ", ".join(f"`{k}:`" for k in _SOLUTION_KINDS)
                + ", e.g. `- type: {partition: child1, text: ver}`")
        return None
    fields = r.mapping(node, where, _SOLUTION_KINDS)
    if not fields:
        return None
    (kind, value), = fields.items()
    line = r.line(node)
    if kind == "type":
        f = r.mapping(value, f"{where}: type", ("partition", "text"), required=("partition", "text"))
        if f is None:
            return None
        partition = r.partition(f.get("partition"), f"{where}: type partition")
        text = r.text(f.get("text"), f"{where}: type text")
        if text is not None and ("\n" in text or "\r" in text):
            r.error(f["text"], f"{where}: type one line per item")
            return None
        if partition is None or text is None:
            return None
        return {"type": {"partition": partition, "text": text}, "line": line}
    if kind == "action":
        f = r.mapping(value, f"{where}: action", ("partition", "action", "settings"), required=("partition",))
        if f is None:
            return None
        partition = r.partition(f.get("partition"), f"{where}: action partition")
        action, settings = _action_or_settings(r, value, f, partition, f"{where}: action")
        if partition is None or (action is None and settings is None):
            return None
        return {"action": {"partition": partition, **({"action": action} if action else {"settings": settings})},
                "line": line}
    if kind == "fault":
        component = _component(r, value, f"{where}: fault")
        return None if component is None else {"fault": component, "line": line}
    if kind == "design":
        design = r.choice(value, f"{where}: design", DESIGNS)
        return None if design is None else {"design": design, "line": line}
    if kind == "wait_prompt":
        partition = r.partition(value, f"{where}: wait_prompt")
        return None if partition is None else {"wait_prompt": partition, "line": line}
    if kind == "wait":
        seconds = r.number(value, f"{where}: wait (seconds)")
        if seconds is None:
            return None
        if not 0 < seconds <= MAX_WAIT:
            r.error(value, f"{where}: wait must be more than 0 and at most {MAX_WAIT:.0f} seconds")
            return None
        return {"wait": seconds, "line": line}
    expr = r.expression(value, f"{where}: wait_until")
    return None if expr is None else {"wait_until": expr, "line": line}


def _cell_problem(source: str) -> tuple[int, str] | None:
    """A notebook cell that does not even parse: the line within the cell and why. Top-level ``await``
    is allowed, as Pyodide runs cells with it."""
    try:
        compile(source, "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError as e:
        return (e.lineno or 1), f"Python syntax error: {e.msg}"
    return None


# --- many files --------------------------------------------------------------------------------------
def lessons_dir() -> Path:
    """The packaged lessons (``hyperlab.lessons``): the repo's lessons/ folder, or the installed copy."""
    from importlib.resources import files

    return Path(str(files("hyperlab.lessons")))


def lesson_files(paths: Iterable[str | Path] | None = None) -> list[Path]:
    """The .md files named, or found in the folders named (the packaged folder by default), in file-name
    order: the order of the lesson list."""
    out: list[Path] = []
    for p in ([lessons_dir()] if paths is None else [Path(p) for p in paths]):
        out.extend(sorted(p.glob("*.md")) if p.is_dir() else [p])
    return out


def load_paths(paths: Iterable[str | Path] | None = None) -> tuple[list[Lesson], list[LessonError]]:
    """The lessons in the files or folders given (default: the packaged lessons) and the problems of
    those that did not load; a lesson id used twice is a problem of the later file."""
    files = lesson_files(paths)
    lessons: list[Lesson] = []
    errors: list[LessonError] = []
    by_id: dict[str, Lesson] = {}
    for f in files:
        try:
            lesson = load_lesson(f)
        except LessonError as e:
            errors.extend(e.errors)
            continue
        other = by_id.get(lesson.id)
        if other is not None:
            errors.append(LessonError(lesson.path, lesson.id_line,
                                      f"lesson id {lesson.id!r} is already used by {other.path}"))
            continue
        by_id[lesson.id] = lesson
        lessons.append(lesson)
    return lessons, errors


def load_lessons(directory: str | Path | None = None) -> tuple[list[Lesson], list[LessonError]]:
    """Every lesson in ``directory`` (default: the packaged lessons) in file-name order, and the
    problems of those that did not load: one bad file must not hide the others from students."""
    return load_paths(None if directory is None else [directory])


def check_paths(paths: Iterable[str | Path] | None = None) -> list[LessonError]:
    """Every problem in the lesson files or folders given (default: the packaged lessons)."""
    return load_paths(paths)[1]


def _component(r: _Reader, node: yaml.Node, what: str) -> str | None:
    """A component name as the lab knows them: ``hypervisor`` or PARTITION.KIND (docs/architecture.md)."""
    name = r.text(node, what)
    if name is None:
        return None
    partition, _, kind = name.rpartition(".")
    if name != "hypervisor" and (partition not in PARTITIONS or kind not in COMPONENT_KINDS):
        r.error(node, f"{what}: unknown component {name!r}: 'hypervisor' or PARTITION.KIND, PARTITION one of "
                      f"{', '.join(PARTITIONS)}, KIND one of {', '.join(COMPONENT_KINDS)}")
        return None
    return name
