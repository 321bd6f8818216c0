"""Drive a real lab in this process: a Hypervisor and its Scheduler running the real guest kernel.

Tests type into a partition's console and read what the guest printed, as a
student would, but without a browser or a lab process in between.
"""

from __future__ import annotations

import re
import time
from typing import Any

from hyperlab.core.hypervisor import Hypervisor
from hyperlab.core.lab import partition_configs
from hyperlab.core.scheduler import Scheduler


class GuestLab:
    def __init__(self, settings: dict[str, Any] | None = None, boot: bool = True) -> None:
        self.output: dict[str, bytearray] = {}
        settings = settings or {}
        self.hv = Hypervisor(partition_configs(settings), design=settings.get("design", "microkernel"))
        self.scheduler = Scheduler(self.hv, self._on_console)
        self.scheduler.start()
        if boot:
            self.call(lambda: [p.start() for p in self.hv.partitions.values()])
            for name in self.hv.partitions:
                self.wait_for(name, self.prompt(name))

    def _on_console(self, name: str, data: bytes) -> None:
        self.output.setdefault(name, bytearray()).extend(data)

    @staticmethod
    def prompt(name: str) -> bytes:
        return f"{name}$ ".encode()

    def call(self, fn: Any) -> Any:
        return self.scheduler.call(fn)

    def partition(self, name: str) -> Any:
        return self.hv.partitions[name]

    def state(self, name: str) -> str:
        return self.call(lambda: self.hv.partitions[name].state.value)

    def counters(self) -> dict[str, float]:
        return self.call(self.hv.counters)

    def wait_for(self, name: str, text: bytes, since: int = 0, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            buf = bytes(self.output.get(name, b""))
            if text in buf[since:]:
                return buf[since:].decode("utf-8", "replace")
            time.sleep(0.002)
        raise AssertionError(f"{name} did not print {text!r} within {timeout} s; it printed:\n"
                             f"{bytes(self.output.get(name, b''))[since:].decode('utf-8', 'replace')}")

    def send(self, name: str, data: bytes) -> int:
        """Type bytes; returns the output mark to wait from."""
        mark = len(self.output.get(name, b""))
        self.scheduler.submit(lambda: self.hv.partitions[name].console_input(data))
        return mark

    def type(self, name: str, line: str, expect: bytes | None = None, timeout: float = 20.0) -> str:
        """Type a line + Enter and return what the guest printed up to its next prompt (or `expect`)."""
        mark = self.send(name, line.encode() + b"\r")
        return self.wait_for(name, expect or self.prompt(name), mark, timeout)

    def close(self) -> None:
        self.scheduler.stop()


_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z@])")


def screen(output: str) -> list[str]:
    """What a terminal shows for `output`, as lines (rows of unlimited width): a minimal VT100 that
    knows what the guest's line editor sends: text, CR, LF, backspace, bell, erase screen (ESC [ 2 J)
    and the modes it switches (ignored). Enough to assert the line a student sees after editing."""
    rows: list[list[str]] = [[]]
    x = 0
    i = 0
    while i < len(output):
        c = output[i]
        m = _CSI.match(output, i)
        if m:
            if m.group(2) == "J" and m.group(1) in ("2", "3"):
                rows, x = [[]], 0
            i = m.end()
            continue
        if c == "\r":
            x = 0
        elif c == "\n":
            rows.append([])
            x = 0
        elif c == "\b":
            x = max(0, x - 1)
        elif c >= " ":
            row = rows[-1]
            row.extend(" " * (x + 1 - len(row)))
            row[x] = c
            x += 1
        i += 1
    return ["".join(r).rstrip() for r in rows]
