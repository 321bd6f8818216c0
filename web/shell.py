"""Typing into a partition's shell and waiting for its prompt: the one helper the CLI (``hyperlab run``),
the REST console endpoint and the lesson replay player share.

A :class:`ConsoleLog` records every byte a partition prints from the moment it is opened (the lab's
scrollback first), at positions that never move — the lab's own scrollback is bounded and drops its
head, so positions in it would. :meth:`ConsoleLog.wait_prompt` then answers "did the shell show its
prompt after this point?", giving up when the partition stops or crashes, or the time runs out.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
#: How often a wait looks at the partition's state (a stopped partition prints no prompt).
STATE_EVERY_S = 0.1
#: States in which a partition will print no prompt.
STOPPED = ("crashed", "off")


def console_text(data: bytes) -> str:
    """Console bytes as text: escape sequences dropped, CRLF as LF."""
    text = data.decode("utf-8", "replace")
    return _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")


def prompt_of(partition: str) -> str:
    """The guest shell's prompt on ``partition``'s console."""
    return f"{partition}$ "


@dataclass
class PromptWait:
    """How a wait ended: ``found`` the prompt (``seen_at``, ``time.time()``), or the partition's ``state``
    when it stopped (``crashed``/``off``), or neither (the time ran out; ``state`` as last seen)."""

    found: bool
    state: str | None = None
    seen_at: float | None = None
    stopped: bool = False


class ConsoleLog:
    """Everything ``partition`` printed since this log was opened, the lab's scrollback first."""

    def __init__(self, lab: Any, partition: str) -> None:
        self.lab = lab
        self.partition = partition
        self.prompt = prompt_of(partition)
        self._cond = threading.Condition()
        self._data = bytearray()
        self._unsubscribe = lab.subscribe_console(partition, self._on_output)
        self.history_end = self.mark()  # the scrollback was handed over during subscribe_console

    def _on_output(self, data: bytes) -> None:
        with self._cond:
            self._data += data
            self._cond.notify_all()

    def mark(self) -> int:
        """The position of the next byte the partition prints."""
        with self._cond:
            return len(self._data)

    def text(self, since: int = 0) -> str:
        with self._cond:
            return console_text(bytes(self._data[since:]))

    def at_prompt(self) -> bool:
        """Whether the console, as recorded, ends with the prompt (the shell waits for a command)."""
        return self.text().endswith(self.prompt)

    def _prompt_after(self, since: int, typed: bool) -> bool:
        text = self.text(since)
        if typed:  # a prompt on the line being typed (a redraw) is not the answer: look past the echo
            if "\n" not in text:
                return False
            text = text.split("\n", 1)[1]
        return self.prompt in text

    def wait_prompt(self, since: int, timeout: float, typed: bool = False) -> PromptWait:
        """Until the prompt shows after position ``since`` (after the echoed line if ``typed``)."""
        end = time.monotonic() + timeout
        next_state = 0.0
        state: str | None = None
        while True:
            if self._prompt_after(since, typed):
                return PromptWait(True, state, time.time())
            now = time.monotonic()
            if now >= next_state:
                next_state = now + STATE_EVERY_S
                if not self.lab.alive:
                    return PromptWait(False, state, stopped=True)
                state = str(self.lab.partition(self.partition)["state"])
                if state in STOPPED:
                    return PromptWait(False, state, stopped=True)
            if now >= end:
                return PromptWait(False, state)
            with self._cond:
                self._cond.wait(min(STATE_EVERY_S, max(0.0, end - now)))

    def output_after(self, since: int, typed: bool) -> str:
        """What the partition printed after ``since``: without the echoed line if ``typed``, and without the
        prompt that ends it."""
        text = self.text(since)
        if typed:
            text = text.split("\n", 1)[1] if "\n" in text else ""
        head, sep, _ = text.rpartition(self.prompt)
        return head if sep else text

    def close(self) -> None:
        self._unsubscribe()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def type_and_wait(lab: Any, partition: str, data: bytes, timeout: float) -> dict:
    """Type ``data`` (nothing: only wait) and collect the output that follows until the prompt, the
    partition stopping, or ``timeout`` seconds. The REST console endpoint's answer."""
    with ConsoleLog(lab, partition) as log:
        if not data and log.at_prompt():
            return {"output": "", "prompt": True, "state": lab.partition(partition)["state"], "timed_out": False}
        since = log.mark()
        if data:
            lab.send_console(partition, data)
        wait = log.wait_prompt(since, timeout, typed=bool(data))
        output = log.output_after(since, typed=bool(data))
    return {"output": output, "prompt": wait.found, "state": lab.partition(partition)["state"],
            "timed_out": not wait.found and not wait.stopped}
