"""The lesson model: what a lesson file means once read, and the errors of reading one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from hyperlab.core.lab import DEFAULT_PARTITIONS
from hyperlab.core.partition import PartitionState
from hyperlab.core.placement import DESIGN_NAMES

PARTITIONS: tuple[str, ...] = tuple(p["name"] for p in DEFAULT_PARTITIONS)
CHILDREN: tuple[str, ...] = tuple(p["name"] for p in DEFAULT_PARTITIONS if p.get("role") == "child")
DESIGNS = DESIGN_NAMES
STATES: tuple[str, ...] = tuple(s.value for s in PartitionState)
IC_STATES = ("ok", "waiting", "none")
#: The lab panels a step can point at (``watch: {panel: …}``), shown next to the step on the lesson page.
PANELS = ("counters", "transitions", "io")
_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


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
    """A button beside the step: a partition action, a settings change (``action`` is then None), a
    fault injected into a component (``fault``, no partition) or a switch of the lab's design (``design``)."""

    label: str
    partition: str | None
    action: str | None
    settings: dict | None = None
    fault: str | None = None   # a component name (docs/architecture.md): POST /api/labs/<id>/faults
    design: str | None = None  # one of DESIGNS: PUT /api/labs/<id>/design


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
    explain: str | None = None  # the author's explanation, shown with the measured value


@dataclass
class WatchedCounter:
    """A counter a step points at, with its meaning and unit from the counter catalogue."""

    name: str
    meaning: str = ""
    short: str = ""
    unit: str = ""


@dataclass
class Watch:
    """What a step asks the student to watch: a panel, a partition, counters (shown next to the step)."""

    panel: str | None = None
    partition: str | None = None
    counters: list[WatchedCounter] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"panel": self.panel, "partition": self.partition,
                "counters": [{"name": c.name, "meaning": c.meaning, "short": c.short, "unit": c.unit}
                             for c in self.counters]}


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
    watch: Watch | None = None
    # Replayed by `hyperlab lessons test`, never sent to a browser. Each item is one of
    # {"type": {"partition", "text"}}, {"action": {"partition", "action" | "settings"}},
    # {"fault": component}, {"design": name},
    # {"wait_prompt": partition}, {"wait": seconds}, {"wait_until": expr}; and "line".
    solution: list[dict] = field(default_factory=list)
    line: int = 0

    def commands(self) -> list[dict]:
        """The shell commands the text already tells the student to type (a `code` span equal to a
        ``type`` item of the solution), with their partition: the page makes them clickable. Nothing
        of the solution that the text does not show is given away."""
        out: list[dict] = []
        for item in self.solution:
            typed = item.get("type")
            if typed and f"`{typed['text']}`" in self.text:
                command = {"text": typed["text"], "partition": typed["partition"]}
                if command not in out:
                    out.append(command)
        return out


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
    design_switch: bool = False   # may the student switch the design during the lesson? (else it is fixed)

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
            "design": self.design, "design_switch": self.design_switch,
            "partitions": {k: dict(v) for k, v in self.partitions.items()},
            "intro": self.intro,
            "steps": [{
                "id": s.id, "title": s.title, "text": s.text,
                "check": {"expr": s.check.expr, "message": s.check.message} if s.check else None,
                "predict": ({"question": s.predict.question, "unit": s.predict.unit, "measure": s.predict.measure,
                             "explain": s.predict.explain} if s.predict else None),
                "watch": s.watch.to_dict() if s.watch else None,
                "commands": s.commands(),
                "hints": list(s.hints),
                "actions": [{"label": a.label, "partition": a.partition, "action": a.action,
                             "settings": dict(a.settings) if a.settings is not None else None,
                             **({"fault": a.fault} if a.fault else {}),
                             **({"design": a.design} if a.design else {})}
                            for a in s.actions],
                "cells": list(s.cells),
            } for s in self.steps],
        }

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


