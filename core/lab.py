"""A lab in its own OS process: one hypervisor with its partitions, behind a small message protocol.

Each lab runs in a process of its own so labs use several cores and a crash in one cannot take the
others (or the web server) down. The web side talks to it with the messages of
:mod:`hyperlab.core.lab_protocol`.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from . import lab_protocol as wire
from .hypervisor import Hypervisor
from .partition import ActionError, Partition, PartitionConfig
from .placement import ComponentError, Design
from .scheduler import Scheduler
from .tcb import describe_components
from .typeahead import Typeahead

DEFAULT_PARTITIONS: list[dict[str, Any]] = [
    {"name": "root", "role": "root"},
    {"name": "child1", "role": "child", "integration_services": True},
    {"name": "child2", "role": "child", "integration_services": False},
]


class LabCallError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def partition_configs(settings: dict[str, Any]) -> list[PartitionConfig]:
    """With ``data_dir`` in the settings, each child gets its disk there as ``<name>.vhd``; without, none."""
    configs = []
    data_dir = settings.get("data_dir")
    for spec in settings.get("partitions", DEFAULT_PARTITIONS):
        name, role = str(spec["name"]), str(spec.get("role", "child"))
        configs.append(PartitionConfig(
            name=name, role=role,
            memory_mb=int(spec.get("memory_mb", 16)),
            integration_services=bool(spec.get("integration_services", True)),
            image=spec.get("image"),
            disk_path=_disk_path(data_dir, name) if data_dir and role == "child" else None))
    return configs


def _disk_path(data_dir: str, name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name):
        raise ValueError(f"partition name {name!r} cannot name a disk file: use letters, digits, - and _")
    return str(Path(data_dir) / f"{name}.vhd")


class Lab:
    """The lab process's view: a hypervisor, its scheduler, and the request methods."""

    def __init__(self, settings: dict[str, Any], send: Any) -> None:
        # The children's disks live in data_dir; without one, in a directory that ends with the lab.
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if settings.get("data_dir"):
            Path(settings["data_dir"]).mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="hyperlab-lab-")
            settings = {**settings, "data_dir": self._tmp.name}
        self.hv = Hypervisor(partition_configs(settings), design=settings.get("design", Design.MICROKERNEL),
                             tsc_khz=settings.get("tsc_khz"))
        self._send = send
        self.scheduler = Scheduler(self.hv, lambda name, data: send(wire.console(name, data)))
        self.typeahead = Typeahead(self.scheduler.submit, self._typed)

    def start(self, autostart: bool = True) -> float:
        self.scheduler.start()
        started_at = time.time()
        if autostart:
            self.scheduler.call(lambda: [p.start() for p in self.hv.partitions.values()])
        return started_at

    def close(self) -> None:
        """End the lab: stop the scheduler, close the disks, remove a temporary data directory."""
        self.scheduler.stop()
        for p in self.hv.partitions.values():
            p.detach_disk()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _partition(self, name: str):
        p = self.hv.partitions.get(name)
        if p is None:
            raise LabCallError(404, f"no partition named {name!r} in this lab")
        return p

    # --- request methods (run on the scheduler thread) --------------------------------------------
    def describe(self) -> dict:
        return {"design": self.hv.design.value, **describe_components(self.hv.placement),
                "partitions": [p.describe() for p in self.hv.partitions.values()]}

    def fault(self, component: str) -> dict:
        """Fail a component as if its code raised (the one containment path); the partitions' states after."""
        try:
            c = self.hv.placement.inject(component)
        except ComponentError as e:
            raise LabCallError(e.status, str(e)) from None
        return {"component": c.name, "domain": c.domain.value,
                "partitions": [p.describe() for p in self.hv.partitions.values()]}

    def action(self, name: str, action: str) -> dict:
        return self._change(name, lambda p: p.act(action))

    def settings(self, name: str, changes: dict) -> dict:
        return self._change(name, lambda p: p.update_settings(changes))

    def _change(self, name: str, change: Callable[[Partition], None]) -> dict:
        """Apply a change to a partition; its refusal becomes the caller's HTTP status and reason."""
        p = self._partition(name)
        try:
            change(p)
        except ActionError as e:
            raise LabCallError(e.status, str(e)) from None
        return p.describe()

    def snapshot(self, transitions: int = 64) -> dict:
        return self.hv.snapshot(transitions)

    def counters(self) -> dict:
        return self.hv.counters()

    # --- console input (any thread) ------------------------------------------------------------------
    def type(self, name: str, data: bytes) -> None:
        """Keys typed at a console: they wait, bounded, for the scheduler (core/typeahead.py)."""
        self.typeahead.put(name, data)

    def _typed(self, name: str, data: bytes, dropped: int) -> None:
        p = self.hv.partitions.get(name)
        if p is None:
            return
        if dropped:
            self.hv.count(f"{name}.console.input_dropped", dropped)
        if data:
            p.console_input(data)



# How far below the web server a lab process runs (nice increment). When guests keep every core busy,
# the web worker that relays every student's console and telemetry must not queue behind them:
# bench/classroom.py, 100 labs with 10 running dd and every page open, gave the worker 0.16 cores and a
# console echo p99 of 1.3 s at equal priority.
LAB_NICE = 10


def lab_main(conn: Connection, settings: dict[str, Any]) -> None:
    """Entry point of a lab process."""
    try:
        os.nice(LAB_NICE)
    except OSError:
        pass  # a platform without nice: the lab still runs, at the server's priority
    lock = threading.Lock()

    def send(msg: tuple) -> None:
        with lock:
            try:
                conn.send(msg)
            except (BrokenPipeError, EOFError, OSError):
                pass  # the web side went away; the reader below ends the process

    try:
        lab = Lab(settings, send)
        started_at = lab.start(settings.get("autostart", True))
        send(wire.ready(started_at, lab.scheduler.call(lab.describe)))
    except Exception as e:  # noqa: BLE001 -- report why, then end: the web side shows "lab stopped"
        send(wire.fatal(f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        kind = msg[0]
        if kind == wire.CONSOLE:
            _, name, data = msg
            lab.type(name, data)
        elif kind == wire.CALL:
            _, req_id, method, args = msg
            if method not in wire.METHODS:
                send(wire.reply(req_id, False, (400, f"unknown method {method!r}")))
                continue
            try:
                result = lab.scheduler.call(lambda method=method, args=args: getattr(lab, method)(*args))
                send(wire.reply(req_id, True, result))
            except LabCallError as e:
                send(wire.reply(req_id, False, (e.status, e.message)))
            except Exception as e:  # noqa: BLE001 -- a bug in a method must not end the lab
                send(wire.reply(req_id, False, (500, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")))
        elif kind == wire.CLOSE:
            break
    lab.close()
