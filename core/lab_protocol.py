"""The lab message protocol: the one definition of what the web side and a lab process say to each other.

A lab runs in its own OS process (:mod:`hyperlab.core.lab`); the web side (:mod:`hyperlab.web.labs`)
talks to it over a ``multiprocessing`` connection with these messages, tuples whose first item is the
kind. Both sides build messages with the functions below and match on the kind constants, so a
change to a message is a change here.

web -> lab
    ("console", partition, data: bytes)       keyboard bytes into the partition's UART
    ("call", request_id, method, args: tuple) one of :data:`METHODS`; answered by a "reply"
    ("close",)                                stop the lab

lab -> web
    ("ready", started_at: float, describe)    partitions are booting (started_at: time.time())
    ("console", partition, data: bytes)       console output, batched per time slice
    ("reply", request_id, ok: bool, payload)  payload is the result, or (status, message) on error
    ("fatal", message)                        the lab could not start
"""

from __future__ import annotations

from typing import Any

CONSOLE = "console"
CALL = "call"
CLOSE = "close"
READY = "ready"
REPLY = "reply"
FATAL = "fatal"

#: The lab's request methods a "call" may name (methods of :class:`hyperlab.core.lab.Lab`).
METHODS = ("describe", "action", "settings", "snapshot", "counters", "fault")


def console(partition: str, data: bytes) -> tuple:
    """Keyboard bytes for a partition (web -> lab), or its output (lab -> web)."""
    return (CONSOLE, partition, bytes(data))


def call(request_id: int, method: str, args: tuple) -> tuple:
    return (CALL, request_id, method, tuple(args))


def close() -> tuple:
    return (CLOSE,)


def ready(started_at: float, describe: dict) -> tuple:
    return (READY, started_at, describe)


def reply(request_id: int, ok: bool, payload: Any) -> tuple:
    """``payload`` is the result when ``ok``, else ``(status, message)``."""
    return (REPLY, request_id, ok, payload)


def fatal(message: str) -> tuple:
    return (FATAL, message)
