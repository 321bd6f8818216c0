"""The replay player: plays each step's solution on a real lab, the way a student would, and waits for
its check (``hyperlab lessons test``, and CI)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hyperlab.web.lessons.expressions import Evaluator, _fmt
from hyperlab.web.lessons.model import PARTITIONS, ExpressionError, Lesson, Step
from hyperlab.web.shell import ConsoleLog

REPLAY_TIMEOUT = 30.0
_POLL = 0.05


# --- replaying solutions -----------------------------------------------------------------------------
class LabLike(Protocol):
    """What :func:`replay` needs of a lab: the part of ``LabHandle`` it uses."""

    alive: bool
    fatal: str | None

    def wait_ready(self, timeout: float = ...) -> None: ...
    def partition(self, name: str) -> dict: ...
    def action(self, partition: str, action: str) -> dict: ...
    def update_settings(self, partition: str, changes: dict) -> dict: ...
    def fault(self, component: str) -> dict: ...
    def switch_design(self, design: str) -> None: ...
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


class _Player:
    """Plays one lesson's solutions on a lab, the way a student would, and polls its checks."""

    def __init__(self, lab: LabLike, timeout: float) -> None:
        self.lab = lab
        self.timeout = timeout
        self.consoles = {p: ConsoleLog(lab, p) for p in PARTITIONS}
        self.since = dict.fromkeys(PARTITIONS, 0)      # look for the next prompt after this point
        self.at_prompt = dict.fromkeys(PARTITIONS, False)

    def _state(self, partition: str) -> str:
        return str(self.lab.partition(partition)["state"])

    def wait_prompt(self, partition: str, since: int, typed: bool = False) -> bool:
        """Until the partition prints its prompt after ``since``: False if it stopped or crashed first,
        or the time ran out."""
        if self.consoles[partition].wait_prompt(since, self.timeout, typed).found:
            return True
        self._alive()
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
                mark = self.consoles[p].mark()
                self.lab.send_console(p, text.encode() + b"\r")
                self.at_prompt[p] = False
                self.since[p] = mark
                if self.wait_prompt(p, mark, typed=True):
                    self.at_prompt[p] = True
                elif self._state(p) not in ("crashed", "off", "stopping"):
                    raise _StepFailed(f"{p} showed no prompt within {self.timeout:.0f} s after {text!r}")
            elif "action" in item:
                spec = item["action"]
                p = spec["partition"]
                if "settings" in spec:
                    self.lab.update_settings(p, spec["settings"])
                else:
                    self.since[p] = self.consoles[p].mark()
                    self.at_prompt[p] = False
                    self.lab.action(p, spec["action"])
            elif "fault" in item:
                self.lab.fault(item["fault"])
            elif "design" in item:
                # A fresh lab process in that design (disks kept): its counters start again at zero, so
                # the step's baseline does too; then the lab as a student finds it, every prompt up.
                self.lab.switch_design(item["design"])
                self.lab.wait_ready()
                # The new process has consoles of its own: follow those, from their first byte.
                for log in self.consoles.values():
                    log.close()
                self.consoles = {p: ConsoleLog(self.lab, p) for p in PARTITIONS}
                baseline.clear()
                baseline.update(self.lab.counters())
                for p in PARTITIONS:
                    self.at_prompt[p] = False
                    self.since[p] = 0
                    if self._state(p) in ("running", "starting") and self.wait_prompt(p, 0):
                        self.at_prompt[p] = True
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
            for log in player.consoles.values():
                log.close()
        lab.close()

