"""The expression language of checks and predictions: validated when a lesson is read, evaluated on a
lab's telemetry snapshot.

Why a home-made evaluator: checks run on the server against a live lab. ``eval`` of a lesson's text would
run anything; here an expression is parsed with :mod:`ast` and only a short list of node types and
functions is interpreted, each a read of the telemetry snapshot.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
from collections.abc import Callable
from typing import Any

from hyperlab.web.lessons.counters import _telemetry_names, known_counter, known_reason
from hyperlab.web.lessons.model import (
    CHILDREN,
    DESIGNS,
    IC_STATES,
    PARTITIONS,
    STATES,
    Check,
    ExpressionError,
    Prediction,
)

MAX_EXPRESSION = 2000     # characters: a check is one idea
MAX_DEPTH = 100           # levels of nesting: bounds the validator's and the evaluator's recursion


# --- expressions -------------------------------------------------------------------------------------
_NUM, _STR, _BOOL = "number", "text", "true/false"
_FUNCS = ("counter", "delta", "state", "ic", "design", "transitions", "min", "max", "abs")
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
        allowed = {"state": STATES, "ic": IC_STATES, "design": DESIGNS}.get(call.func.id)
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
        if fn == "design":
            if args:
                raise self.fail(node, f'{self.snippet(node)}: design() takes nothing, e.g. design() == "hosted"')
            return _STR
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
                    "counter", "delta", "state", "ic", "design", "transitions"):
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
        if fn == "design":
            return self.snapshot.get("design", "")
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


