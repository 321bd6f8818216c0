"""The lesson engine: load lesson files, check them, evaluate their checks, replay their solutions.

A lesson is a Markdown file with YAML front matter (the format is ``docs/lessons.md``). This module is
the only code that reads that format, so the web API, the ``hyperlab lessons`` commands and CI agree
on what a lesson means. It imports no Flask: the CLI replays lessons headless.

Why the care with line numbers: the people who write lessons are instructors, not our developers. A
problem is reported as ``file:line: message`` pointing at the line to fix, never as a traceback, so
the YAML is composed into nodes (which keep their position) and validated node by node rather than
loaded into plain dicts.

Why a home-made expression evaluator: checks run on the server against a live lab. ``eval`` of a
lesson's text would run anything; here an expression is parsed with :mod:`ast` and only a short list of
node types and functions is interpreted, each a read of the telemetry snapshot.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from hyperlab.core.lab import DEFAULT_PARTITIONS
from hyperlab.core.partition import ACTIONS, PartitionState

PARTITIONS: tuple[str, ...] = tuple(p["name"] for p in DEFAULT_PARTITIONS)
CHILDREN: tuple[str, ...] = tuple(p["name"] for p in DEFAULT_PARTITIONS if p.get("role") == "child")
DESIGNS = ("microkernel", "monolithic")
STATES: tuple[str, ...] = tuple(s.value for s in PartitionState)
IC_STATES = ("ok", "waiting", "none")
_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

# docs/telemetry.md travels with the package (package data of `hyperlab`): in the repo and in an
# installed wheel alike it sits at <package>/docs/telemetry.md, one folder above this file.
TELEMETRY_DOC = Path(__file__).resolve().parent.parent / "docs" / "telemetry.md"

REPLAY_TIMEOUT = 30.0
MAX_WAIT = 120.0          # a solution's `wait:` (seconds)
MAX_EXPRESSION = 2000     # characters: a check is one idea
MAX_DEPTH = 100           # levels of nesting: bounds the validator's and the evaluator's recursion
_POLL = 0.05


# --- errors ------------------------------------------------------------------------------------------
class LessonError(Exception):
    """A problem in a lesson file, reported as ``path:line: message`` for the instructor to fix.

    One type for one problem and for many: ``errors`` lists every problem found in the file (this one
    first), so a caller that wants the first catches it and prints it, and ``hyperlab lessons check``
    prints them all in one run instead of one per edit.
    """

    def __init__(self, path: str | Path, line: int, message: str,
                 errors: list[LessonError] | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        self.errors: list[LessonError] = errors if errors else [self]
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    @classmethod
    def collect(cls, errors: list[LessonError]) -> LessonError:
        """One exception for all of ``errors``: the first one's position and message, and the list."""
        first = errors[0]
        return cls(first.path, first.line, first.message, list(errors))


LessonErrors = LessonError  # the same type: a LessonError always carries the list of all problems


class ExpressionError(ValueError):
    """An expression that cannot be evaluated on this snapshot (e.g. division by zero)."""


# --- the lesson model --------------------------------------------------------------------------------
@dataclass
class Action:
    """A button beside the step: a partition action, or a settings change (``action`` is then None)."""

    label: str
    partition: str
    action: str | None
    settings: dict | None = None


@dataclass
class Check:
    """What must hold on the hypervisor's state for the step's "Next" to unlock."""

    expr: str
    message: str
    line: int


@dataclass
class Prediction:
    """A number the student commits before the ``measure`` expression reveals the real one."""

    question: str
    unit: str
    measure: str
    line: int


@dataclass
class Step:
    """One idea of a lesson: text, what the student does, and what must happen in the lab."""

    id: str
    title: str
    text: str
    check: Check | None = None
    predict: Prediction | None = None
    hints: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    # Replayed by `hyperlab lessons test`, never sent to a browser. Each item is one of
    # {"type": {"partition", "text"}}, {"action": {"partition", "action" | "settings"}},
    # {"wait_prompt": partition}, {"wait": seconds}, {"wait_until": expr}; and "line".
    solution: list[dict] = field(default_factory=list)
    line: int = 0


@dataclass
class Lesson:
    """A loaded, validated lesson file. ``path`` is the file it came from (for messages)."""

    id: str
    title: str
    summary: str
    objectives: list[str]
    design: str
    partitions: dict[str, dict]   # the lesson's overrides, by partition name
    steps: list[Step]
    intro: str
    path: str
    id_line: int = 2

    def lab_settings(self) -> dict:
        """Settings for ``LabHandle``: all three partitions, the lesson's overrides applied.

        Always every partition (not only the overridden ones): the lab's settings list replaces the
        default list rather than patching it.
        """
        parts = []
        for default in DEFAULT_PARTITIONS:
            spec = dict(default)
            spec.update(self.partitions.get(default["name"], {}))
            parts.append(spec)
        return {"design": self.design, "partitions": parts}

    def to_dict(self) -> dict:
        """What the UI needs, JSON-able. No solutions: the student should find them."""
        return {
            "id": self.id, "title": self.title, "summary": self.summary, "objectives": list(self.objectives),
            "design": self.design, "partitions": {k: dict(v) for k, v in self.partitions.items()},
            "intro": self.intro,
            "steps": [{
                "id": s.id, "title": s.title, "text": s.text,
                "check": {"expr": s.check.expr, "message": s.check.message} if s.check else None,
                "predict": ({"question": s.predict.question, "unit": s.predict.unit, "measure": s.predict.measure}
                            if s.predict else None),
                "hints": list(s.hints),
                "actions": [{"label": a.label, "partition": a.partition, "action": a.action,
                             "settings": dict(a.settings) if a.settings is not None else None}
                            for a in s.actions],
                "cells": list(s.cells),
            } for s in self.steps],
        }

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


# --- telemetry names (docs/telemetry.md is the single source) ----------------------------------------
@functools.cache
def _telemetry_names() -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
    """Counter and transition-reason patterns, read from the tables of docs/telemetry.md.

    The first cell of each row of the tables under "## Counters" names counters: backticked names,
    where ``<p>`` is a partition, another ``<word>`` any name part (``<p>.faults.<kind>``), and a name
    that starts with a dot (``/ .bytes_in``) replaces the last part of the row's first name.
    """
    text = TELEMETRY_DOC.read_text(encoding="utf-8")
    counters: list[re.Pattern[str]] = []
    reasons: list[re.Pattern[str]] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
            continue
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if section == "counters":
            names = re.findall(r"`([^`]+)`", cells[0])
            base = None
            for name in names:
                if name.startswith(".") and base is not None:
                    name = base.rsplit(".", 1)[0] + name
                elif base is None:
                    base = name
                counters.append(_name_pattern(name))
        elif section == "transitions" and cells[0] == "`reason`" and len(cells) > 1:
            reasons.extend(_name_pattern(n) for n in re.findall(r"`([^`]+)`", cells[1]))
    if not counters:
        raise RuntimeError(f"{TELEMETRY_DOC} lists no counters: the lesson checks cannot be validated")
    return tuple(counters), tuple(reasons)


def _name_pattern(name: str) -> re.Pattern[str]:
    parts = re.split(r"(<[^>]+>)", name)
    regex = "".join(("(?:" + "|".join(PARTITIONS) + ")" if p == "<p>" else "[a-z0-9_]+") if p.startswith("<")
                    else re.escape(p) for p in parts if p)
    return re.compile(regex)


def known_counter(name: str) -> bool:
    """Whether ``name`` is a counter documented in docs/telemetry.md (``<p>`` = root/child1/child2)."""
    return any(p.fullmatch(name) for p in _telemetry_names()[0])


def known_reason(reason: str) -> bool:
    """Whether ``reason`` is a transition reason documented in docs/telemetry.md."""
    return any(p.fullmatch(reason) for p in _telemetry_names()[1])


# --- expressions -------------------------------------------------------------------------------------
_NUM, _STR, _BOOL = "number", "text", "true/false"
_FUNCS = ("counter", "delta", "state", "ic", "transitions", "min", "max", "abs")
_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


class _Invalid(Exception):
    def __init__(self, message: str, lineno: int = 1) -> None:
        super().__init__(message)
        self.lineno = lineno  # within the expression's text, 1-based


def _source(expr: str) -> str:
    """The expression in brackets, each on its own line: an expression may then span lines (a `|`
    block in YAML) as in Python inside brackets, and line n of the expression is line n + 1 here."""
    return "(\n" + expr.strip() + "\n)"


def _depth(tree: ast.AST) -> int:
    """How deeply the tree nests, counted without recursion: the validator and the evaluator recurse,
    and must not hit Python's recursion limit on a long chain like 1+1+1+…"""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _short(expr: str, limit: int = 100) -> str:
    """The expression on one line, cut to ``limit`` characters, to quote in a message."""
    flat = " ".join(expr.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _parse(expr: str) -> ast.Expression:
    try:
        return ast.parse(_source(expr), mode="eval")
    except SyntaxError as e:
        lineno = min(max((e.lineno or 2) - 1, 1), expr.strip().count("\n") + 1)
        raise _Invalid(f"not a valid expression ({e.msg}): {_short(expr)}", lineno) from None


def validate_expression(expr: str, known_counter: Callable[[str], bool] = known_counter, *,
                        number: bool = False) -> str | None:
    """Why ``expr`` is not a valid check (or, with ``number``, measure) expression; None if it is.

    Checked here, at ``lessons check`` time, rather than when a student reaches the step: a typo in a
    counter name or a state would otherwise be a step that never unlocks.
    """
    problem = _validate(expr, known_counter, number)
    return None if problem is None else problem[1]


def _validate(expr: str, known_counter: Callable[[str], bool], number: bool | None) -> tuple[int, str] | None:
    """Like :func:`validate_expression`, with the line of the expression's text at fault; ``number``
    None accepts any type of result."""
    if not isinstance(expr, str) or not expr.strip():
        return 1, "the expression is empty"
    if len(expr) > MAX_EXPRESSION:
        return 1, f"the expression is longer than {MAX_EXPRESSION} characters: split the step"
    try:
        tree = _parse(expr)
        if _depth(tree) > MAX_DEPTH:
            return 1, f"the expression is nested too deeply (more than {MAX_DEPTH} levels): split it"
        kind = _Typer(_source(expr), known_counter).type(tree.body)
    except _Invalid as e:
        return e.lineno, str(e)
    except RecursionError:
        return 1, "the expression is nested too deeply"
    flat = _short(expr)
    if number is None:
        return None
    if number and kind != _NUM:
        return 1, f"a measure must give a number, but this gives {kind}: {flat}"
    if not number and kind == _STR:
        return 1, (f"a check must be true or false, but this gives text: compare it, "
                   f'e.g. state("child1") == "running": {flat}')
    return None


class _Typer:
    """Walks an expression's tree: refuses what is not whitelisted and works out each node's type."""

    def __init__(self, source: str, known: Callable[[str], bool]) -> None:
        self.source = source
        self.known = known

    def snippet(self, node: ast.AST) -> str:
        return " ".join((ast.get_source_segment(self.source, node) or type(node).__name__).split())

    @staticmethod
    def fail(node: ast.AST, message: str) -> _Invalid:
        return _Invalid(message, max(getattr(node, "lineno", 2) - 1, 1))

    def type(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return _BOOL
            if isinstance(node.value, int | float):
                return _NUM
            if isinstance(node.value, str):
                return _STR
            raise self.fail(node, f"{self.snippet(node)} is not allowed: use numbers, \"text\", True or False")
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self.type(v)
            return _BOOL
        if isinstance(node, ast.UnaryOp):
            inner = self.type(node.operand)
            if isinstance(node.op, ast.Not):
                return _BOOL
            if isinstance(node.op, ast.USub | ast.UAdd) and inner == _NUM:
                return _NUM
            raise self.fail(node, f"{self.snippet(node)}: - and + need a number")
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise self.fail(node, f"{self.snippet(node)}: only + - * / are allowed")
            if self.type(node.left) != _NUM or self.type(node.right) != _NUM:
                raise self.fail(node, f"{self.snippet(node)}: + - * / need numbers on both sides")
            return _NUM
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Name):
            known = ", ".join(f"{f}()" for f in _FUNCS)
            raise self.fail(node, f"unknown name {node.id!r}: an expression may use only numbers, \"text\" and "
                           f"{known}")
        if isinstance(node, ast.Attribute):
            raise self.fail(node, f"{self.snippet(node)}: attributes (a.b) are not allowed")
        raise self.fail(node, f"{self.snippet(node)} is not allowed in a check expression")

    def compare(self, node: ast.Compare) -> str:
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _CMPOPS:
                raise self.fail(node, f"{self.snippet(node)}: use == != < <= > >= in or not in")
            lt = self.type(left)
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right, ast.Tuple | ast.List) or not right.elts:
                    raise self.fail(node, f"{self.snippet(node)}: after in, list the values in brackets, "
                                   f'e.g. ("off", "crashed")')
                items = right.elts
            else:
                items = [right]
            for item in items:
                rt = self.type(item)
                if _NUM in (lt, rt) and (lt == _STR or rt == _STR):
                    raise self.fail(node, f"{self.snippet(node)} compares a number with text")
                if (lt == _STR or rt == _STR) and not isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn):
                    raise self.fail(node, f"{self.snippet(node)}: text can only be compared with == != in or not in")
                self.known_value(left, item, node)
                self.known_value(item, left, node)
            left = right
        return _BOOL

    def known_value(self, call: ast.AST, value: ast.AST, node: ast.AST) -> None:
        """state(...) == "runing" can never hold: say so now."""
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and isinstance(value, ast.Constant) and isinstance(value.value, str)):
            return
        allowed = {"state": STATES, "ic": IC_STATES}.get(call.func.id)
        if allowed is not None and value.value not in allowed:
            raise self.fail(node, f"{self.snippet(node)}: {call.func.id}() is never {value.value!r}; it is one of "
                           + ", ".join(f'"{s}"' for s in allowed))

    def call(self, node: ast.Call) -> str:
        if isinstance(node.func, ast.Attribute):
            raise self.fail(node, f"{self.snippet(node.func)}: attributes (a.b) are not allowed")
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, f"{self.snippet(node)}: only " + ", ".join(f"{f}()" for f in _FUNCS)
                            + " can be called")
        if node.func.id not in _FUNCS:
            raise self.fail(node, f"unknown function {node.func.id}(): use "
                            + ", ".join(f"{f}()" for f in _FUNCS))
        fn = node.func.id
        if node.keywords:
            raise self.fail(node, f"{self.snippet(node)}: {fn}() takes no name=value arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, f"{self.snippet(node)}: * arguments are not allowed")
        if fn in ("min", "max", "abs"):
            want = (1, 1) if fn == "abs" else (2, 99)
            if not want[0] <= len(node.args) <= want[1]:
                raise self.fail(node, f"{self.snippet(node)}: {fn}() takes "
                               + ("one number" if fn == "abs" else "two or more numbers"))
            for a in node.args:
                if self.type(a) != _NUM:
                    raise self.fail(node, f"{self.snippet(node)}: {fn}() takes numbers")
            return _NUM
        args = [self.literal(a, fn) for a in node.args]
        if fn in ("counter", "delta"):
            if len(args) != 1:
                raise self.fail(node, f'{self.snippet(node)}: {fn}() takes one counter name, e.g. {fn}("child1.syscalls")')
            if not self.known(args[0]):
                close = difflib.get_close_matches(args[0], _counter_examples(), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.fail(node, f"unknown counter {args[0]!r}{hint}: counters are listed in docs/telemetry.md")
            return _NUM
        if fn in ("state", "ic"):
            names = PARTITIONS if fn == "state" else CHILDREN
            if len(args) != 1 or args[0] not in names:
                extra = " (the root hosts the Integration Services; it has none)" if args == ["root"] else ""
                raise self.fail(node, f"{self.snippet(node)}: {fn}() takes a partition name: "
                               + ", ".join(f'"{n}"' for n in names) + extra)
            return _STR
        # transitions(reason[, partition])
        if not 1 <= len(args) <= 2:
            raise self.fail(node, f'{self.snippet(node)}: transitions() takes a reason and optionally a partition, '
                           f'e.g. transitions("io_port", "child2")')
        if not known_reason(args[0]):
            raise self.fail(node, f"{self.snippet(node)}: unknown transition reason {args[0]!r}: reasons are listed "
                           "in docs/telemetry.md (io_port, cpuid, hypercall, interrupt, fault:<kind>)")
        if len(args) == 2 and args[1] not in PARTITIONS:
            raise self.fail(node, f"{self.snippet(node)}: unknown partition {args[1]!r}")
        return _NUM

    def literal(self, node: ast.AST, fn: str) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        raise self.fail(node, f'{fn}() takes names in quotes, e.g. {fn}("child1..."): {self.snippet(node)}')


def _counter_examples() -> list[str]:
    """Concrete counter names for "did you mean" hints (patterns with <kind> left out)."""
    out = []
    for pattern in _telemetry_names()[0]:
        src = pattern.pattern.replace("\\", "")
        if "[a-z0-9_]+" in src:
            continue
        group = "(?:" + "|".join(PARTITIONS) + ")"
        if src.startswith(group):
            out.extend(p + src[len(group):] for p in PARTITIONS)
        else:
            out.append(src)
    return out


@functools.lru_cache(maxsize=1024)
def _checked(expr: str) -> ast.Expression:
    """The validated tree of ``expr``: validated once, as the UI evaluates the same checks at every poll."""
    problem = _validate(expr, known_counter, None)
    if problem is not None:
        raise ExpressionError(problem[1])
    return _parse(expr)


class Evaluator:
    """Evaluates check and measure expressions on one telemetry snapshot.

    ``snapshot`` is what ``LabHandle.snapshot()`` returns; ``baseline`` the counters when the step
    began (``snapshot["counters"]`` then), from which ``delta()`` counts; without one, ``delta()`` is
    the counter itself. Expressions are validated again here, so an unchecked lesson cannot run
    anything but the whitelist.
    """

    def __init__(self, snapshot: dict, baseline: dict[str, float] | None = None) -> None:
        self.snapshot = snapshot
        self.baseline = baseline or {}
        self.counters: dict[str, float] = snapshot.get("counters", {})

    def check(self, check: Check | str) -> bool:
        return bool(self.value(check.expr if isinstance(check, Check) else check))

    def measure(self, prediction: Prediction | str) -> float:
        value = self.value(prediction.measure if isinstance(prediction, Prediction) else prediction)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExpressionError(f"the measure gave {value!r}, not a number")
        return value

    def value(self, expr: str) -> Any:
        """The expression's value: a number, text or true/false."""
        return self._eval(_checked(expr).body)

    def explain(self, expr: str) -> list[str]:
        """Each telemetry read in ``expr`` with its value now, e.g. ``delta("child1.syscalls") = 57``:
        what a replay that timed out prints, so the author sees how far it got."""
        try:
            tree = _parse(expr)
        except _Invalid:
            return []
        out = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                    "counter", "delta", "state", "ic", "transitions"):
                try:
                    value = self._eval(node)
                except (ExpressionError, _Invalid):
                    continue
                out.append(f"{' '.join((ast.get_source_segment(_source(expr), node) or '').split())} = "
                           f"{_fmt(value)}")
        return out

    # --- the interpreter ---
    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(v) for v in node.values)
            return any(self._eval(v) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand)
            return not v if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
        if isinstance(node, ast.BinOp):
            try:
                return _BINOPS[type(node.op)](self._eval(node.left), self._eval(node.right))
            except ZeroDivisionError:
                raise ExpressionError("division by zero") from None
        if isinstance(node, ast.Compare):
            left = self._eval(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = (tuple(self._eval(e) for e in comp.elts) if isinstance(comp, ast.Tuple | ast.List)
                         else self._eval(comp))
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node.func.id, [self._eval(a) for a in node.args])
        raise ExpressionError(f"{type(node).__name__} is not allowed")  # validated before: unreachable

    def _call(self, fn: str, args: list[Any]) -> Any:
        if fn == "counter":
            return self.counters.get(args[0], 0)
        if fn == "delta":
            return self.counters.get(args[0], 0) - self.baseline.get(args[0], 0)
        if fn in ("min", "max", "abs"):
            return {"min": min, "max": max, "abs": abs}[fn](*args)
        if fn in ("state", "ic"):
            part = self.snapshot.get("partitions", {}).get(args[0])
            if part is None:
                return "off" if fn == "state" else "none"  # a dead lab: its partitions are gone
            if fn == "state":
                return part.get("state", "off")
            return (part.get("ic") or {}).get("heartbeat", "none")
        reason, *who = args
        return sum(1 for t in self.snapshot.get("transitions", ())
                   if t.get("reason") == reason and (not who or t.get("partition") == who[0]))


def _fmt(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3g}"
    return repr(value) if isinstance(value, str) else str(value)


# --- loading -----------------------------------------------------------------------------------------
_NULL = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"

_LESSON_FIELDS = ("id", "title", "summary", "objectives", "lab", "steps")
_LAB_FIELDS = ("design", "partitions")
_STEP_FIELDS = ("id", "title", "text", "check", "predict", "hints", "actions", "cells", "solution")
_SOLUTION_KINDS = ("type", "action", "wait_prompt", "wait", "wait_until")
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
    design, partitions = "microkernel", {}
    if r.present(fields.get("lab")):
        design, partitions = _lab(r, fields["lab"])
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
                  id_line=r.line(fields["id"]))


def _lab(r: _Reader, node: yaml.Node) -> tuple[str, dict[str, dict]]:
    design, partitions = "microkernel", {}
    fields = r.mapping(node, "lab", _LAB_FIELDS)
    if fields is None:
        return design, partitions
    if r.present(fields.get("design")):
        design = r.choice(fields["design"], "lab.design", DESIGNS) or design
    if r.present(fields.get("partitions")):
        parts = r.mapping(fields["partitions"], "lab.partitions", PARTITIONS)
        for name, pnode in (parts or {}).items():
            if r.present(pnode):
                settings = r.settings(pnode, name, f"lab.partitions.{name}")
                if settings:
                    partitions[name] = settings
    return design, partitions


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
    solution = [s for s in (_solution_item(r, s, what)
                            for s in r.sequence(fields.get("solution"), f"{what}: solution")) if s is not None]
    if r.present(fields.get("check")) and not solution and not r.present(fields.get("solution")):
        r.error(fields["check"], f"{what} has a check but no solution: add the steps a student would take "
                                 "(`hyperlab lessons test` replays them to prove the check can pass)")
    if step_id is None or title is None or text is None:
        return None
    return Step(id=step_id, title=title, text=text, check=check, predict=predict, hints=hints, actions=actions,
                cells=cells, solution=solution, line=line)


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
    fields = r.mapping(node, f"{what}: predict", ("question", "unit", "measure"),
                       required=("question", "unit", "measure"))
    if fields is None:
        return None
    question = r.text(fields.get("question"), f"{what}: predict question")
    unit = r.text(fields.get("unit"), f"{what}: predict unit")
    measure = r.expression(fields.get("measure"), f"{what}: predict measure", number=True)
    if question is None or unit is None or measure is None:
        return None
    return Prediction(question=question, unit=unit, measure=measure, line=r.line(fields["measure"]))


def _action(r: _Reader, node: yaml.Node, what: str) -> Action | None:
    fields = r.mapping(node, f"{what}: action button", ("label", "partition", "action", "settings"),
                       required=("label", "partition"))
    if fields is None:
        return None
    label = r.text(fields.get("label"), f"{what}: action label")
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


# --- replaying solutions -----------------------------------------------------------------------------
class LabLike(Protocol):
    """What :func:`replay` needs of a lab: the part of ``LabHandle`` it uses."""

    alive: bool
    fatal: str | None

    def wait_ready(self, timeout: float = ...) -> None: ...
    def partition(self, name: str) -> dict: ...
    def action(self, partition: str, action: str) -> dict: ...
    def update_settings(self, partition: str, changes: dict) -> dict: ...
    def counters(self) -> dict[str, float]: ...
    def snapshot(self) -> dict: ...
    def send_console(self, partition: str, data: bytes) -> None: ...
    def subscribe_console(self, partition: str, callback: Callable[[bytes], None]) -> Callable[[], None]: ...
    def close(self) -> None: ...


@dataclass
class StepResult:
    """How one step's replay went. ``passed`` is None for a step not run (an earlier one failed)."""

    lesson: str
    step: str
    passed: bool | None
    seconds: float = 0.0
    message: str = ""
    measured: float | None = None
    unit: str = ""

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]

    def line(self) -> str:
        """One line of ``hyperlab lessons test``'s output."""
        name = f"{self.lesson}/{self.step}"
        if self.passed:
            extra = f" (measured {_fmt(self.measured)} {self.unit})" if self.measured is not None else ""
            return f"PASS {name} {self.seconds:.1f} s{extra}"
        return f"{self.status} {name}: {self.message}"

    def to_dict(self) -> dict:
        return {"step": self.step, "status": self.status, "passed": self.passed,
                "seconds": round(self.seconds, 3), "message": self.message, "measured": self.measured,
                "unit": self.unit}


@dataclass
class ReplayResult:
    """One lesson's replay: a result per step, in order."""

    lesson: str
    path: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    def to_dict(self) -> dict:
        return {"lesson": self.lesson, "path": self.path, "passed": self.passed,
                "steps": [s.to_dict() for s in self.steps]}


class _StepFailed(Exception):
    pass


class _Consoles:
    """Every byte each partition printed since the replay began.

    LabHandle keeps a bounded scrollback that drops its head; positions in it would move. Here
    positions are stable, so "a prompt after this point" stays meaningful.
    """

    def __init__(self, lab: LabLike) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, bytearray] = {p: bytearray() for p in PARTITIONS}
        self._unsubscribe = [lab.subscribe_console(p, functools.partial(self._on, p)) for p in PARTITIONS]

    def _on(self, partition: str, data: bytes) -> None:
        with self._lock:
            self._data[partition] += data

    def mark(self, partition: str) -> int:
        with self._lock:
            return len(self._data[partition])

    def has(self, partition: str, needle: bytes, since: int) -> bool:
        with self._lock:
            return self._data[partition].find(needle, since) >= 0

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()


class _Player:
    """Plays one lesson's solutions on a lab, the way a student would, and polls its checks."""

    def __init__(self, lab: LabLike, timeout: float) -> None:
        self.lab = lab
        self.timeout = timeout
        self.consoles = _Consoles(lab)
        self.since = dict.fromkeys(PARTITIONS, 0)      # look for the next prompt after this point
        self.at_prompt = dict.fromkeys(PARTITIONS, False)

    def _state(self, partition: str) -> str:
        return str(self.lab.partition(partition)["state"])

    def wait_prompt(self, partition: str, since: int) -> bool:
        """Until the partition prints its prompt after ``since``: False if it stopped or crashed first,
        or the time ran out."""
        prompt = f"{partition}$ ".encode()
        end = time.monotonic() + self.timeout
        next_state = 0.0
        while time.monotonic() < end:
            if self.consoles.has(partition, prompt, since):
                return True
            now = time.monotonic()
            if now >= next_state:
                next_state = now + 0.1
                self._alive()
                if self._state(partition) in ("crashed", "off"):
                    return False
            time.sleep(0.005)
        return False

    def _alive(self) -> None:
        if not self.lab.alive:
            raise _StepFailed(f"the lab stopped{': ' + self.lab.fatal if self.lab.fatal else ''}")

    def boot(self) -> None:
        """Wait for the prompt of every partition that runs: the lab as a student finds it."""
        for p in PARTITIONS:
            if self._state(p) in ("running", "starting"):
                if not self.wait_prompt(p, 0):
                    raise _StepFailed(f"{p} showed no prompt within {self.timeout:.0f} s of the lab starting "
                                      f"(it is {self._state(p)})")
                self.at_prompt[p] = True

    def play(self, item: dict, baseline: dict[str, float]) -> None:
        line = item.get("line", 0)
        try:
            self._play(item, baseline)
        except _StepFailed as e:
            raise _StepFailed(f"solution line {line}: {e}") from None

    def _play(self, item: dict, baseline: dict[str, float]) -> None:
        from hyperlab.web.labs import LabError

        try:
            if "type" in item:
                p, text = item["type"]["partition"], item["type"]["text"]
                if not self.at_prompt[p] and not self.wait_prompt(p, self.since[p]):
                    raise _StepFailed(f"cannot type {text!r}: {p} shows no prompt (it is {self._state(p)})")
                mark = self.consoles.mark(p)
                self.lab.send_console(p, text.encode() + b"\r")
                self.at_prompt[p] = False
                self.since[p] = mark
                if self.wait_prompt(p, mark):
                    self.at_prompt[p] = True
                elif self._state(p) not in ("crashed", "off", "stopping"):
                    raise _StepFailed(f"{p} showed no prompt within {self.timeout:.0f} s after {text!r}")
            elif "action" in item:
                spec = item["action"]
                p = spec["partition"]
                if "settings" in spec:
                    self.lab.update_settings(p, spec["settings"])
                else:
                    self.since[p] = self.consoles.mark(p)
                    self.at_prompt[p] = False
                    self.lab.action(p, spec["action"])
            elif "wait_prompt" in item:
                p = item["wait_prompt"]
                if not self.wait_prompt(p, self.since[p]):
                    raise _StepFailed(f"{p} showed no prompt within {self.timeout:.0f} s (it is {self._state(p)})")
                self.at_prompt[p] = True
            elif "wait" in item:
                time.sleep(float(item["wait"]))
            elif "wait_until" in item:
                ok, explain = self.poll(item["wait_until"], baseline)
                if not ok:
                    raise _StepFailed(f"wait_until not met within {self.timeout:.0f} s: {item['wait_until']}"
                                      + (f" ({'; '.join(explain)})" if explain else ""))
        except LabError as e:
            raise _StepFailed(e.message) from None

    def poll(self, expr: str, baseline: dict[str, float]) -> tuple[bool, list[str]]:
        """Until ``expr`` holds on the lab's snapshot: (True, []) or (False, the figures at the end)."""
        end = time.monotonic() + self.timeout
        while True:
            self._alive()
            evaluator = Evaluator(self.lab.snapshot(), baseline)
            if evaluator.check(expr):
                return True, []
            if time.monotonic() >= end:
                return False, evaluator.explain(expr)
            time.sleep(_POLL)

    def step(self, lesson: Lesson, step: Step) -> StepResult:
        t0 = time.monotonic()
        unit = step.predict.unit if step.predict else ""
        try:
            self._alive()
            baseline = dict(self.lab.counters())
            for item in step.solution:
                self.play(item, baseline)
            measured = None
            if step.check is not None:
                ok, explain = self.poll(step.check.expr, baseline)
                if not ok:
                    figures = f" ({'; '.join(explain)})" if explain else ""
                    raise _StepFailed(f"check not met within {self.timeout:.0f} s: {step.check.expr}{figures}")
                if step.predict is not None:
                    measured = Evaluator(self.lab.snapshot(), baseline).measure(step.predict)
        except (_StepFailed, ExpressionError) as e:
            return StepResult(lesson.id, step.id, False, time.monotonic() - t0, str(e), unit=unit)
        return StepResult(lesson.id, step.id, True, time.monotonic() - t0, measured=measured, unit=unit)


def _default_lab(lesson: Lesson) -> LabLike:
    from hyperlab.web.labs import LabHandle

    return LabHandle(f"lesson-{lesson.id}", lesson.lab_settings())


def replay(lesson: Lesson, lab_factory: Callable[[Lesson], LabLike] = _default_lab,
           timeout: float = REPLAY_TIMEOUT, on_step: Callable[[StepResult], None] | None = None) -> ReplayResult:
    """Boot the lesson's lab, then for each step take the counters as its baseline, play its solution
    and wait (``timeout`` s at most) for its check, then measure its prediction.

    This is what proves in CI that every check of every lesson can be met by real events. Steps after
    a failed one are reported as not run: they would start from a state the lesson never meant.
    ``on_step`` sees each result as it is known (the CLI prints them as they come).
    """
    result = ReplayResult(lesson.id, lesson.path)

    def report(r: StepResult) -> None:
        result.steps.append(r)
        if on_step is not None:
            on_step(r)

    from hyperlab.web.labs import LabError

    t0 = time.monotonic()
    lab = lab_factory(lesson)
    player: _Player | None = None
    try:
        try:
            lab.wait_ready()
            player = _Player(lab, timeout)
            player.boot()
        except (LabError, _StepFailed) as e:
            why = e.message if isinstance(e, LabError) else str(e)
            report(StepResult(lesson.id, lesson.steps[0].id, False, time.monotonic() - t0,
                              f"the lesson's lab did not start: {why}"))
            for s in lesson.steps[1:]:
                report(StepResult(lesson.id, s.id, None, message="not run: the lab did not start"))
            return result
        failed = False
        for step in lesson.steps:
            if failed:
                report(StepResult(lesson.id, step.id, None, message="not run: an earlier step failed"))
                continue
            r = player.step(lesson, step)
            failed = not r.passed
            report(r)
        return result
    finally:
        if player is not None:
            player.consoles.close()
        lab.close()

