"""Lab processes, seen from the web server: start them, talk to them, notice when they die.

A :class:`LabHandle` owns one lab process (:func:`hyperlab.core.lab.lab_main`)
and its connection. A reader thread receives console output (kept as
scrollback and fanned out to subscribers) and replies to calls. The
:class:`LabManager` keeps one lab per browser session.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hyperlab.core import lab_protocol as wire
from hyperlab.core.lab import lab_main

SCROLLBACK = 64 * 1024
CALL_TIMEOUT = 15.0
READY_TIMEOUT = 30.0
_SNAPSHOT_CACHE_SECONDS = 0.05


class LabError(Exception):
    """A request the lab refused; ``status`` is the HTTP status that says why (``retry_after_s``: when
    trying again may work, for a full server)."""

    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s


def _context() -> multiprocessing.context.BaseContext:
    """Fork lab processes from a clean server process that has the core imported already.

    Forking the web process itself would copy its threads' locks; spawning a
    fresh interpreter per lab costs a second of imports. The forkserver does neither.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["hyperlab.core.lab"])
    return ctx


class _WebEnd(Connection):
    """The web side's end of a lab's pipe: non-blocking, and every read or write that would block waits
    in ``poll`` first.

    Under gevent (``hyperlab serve``) that wait yields to the other connections, where a blocking
    ``os.read``/``os.write`` would stall the whole web process — and could deadlock it: a lab whose
    output pipe is full stops reading its input while the web side, stuck writing to it, never gets to
    drain that output. Without gevent the wait is an ordinary blocking poll.
    """

    def _wait(self, events: int) -> None:
        poller = select.poll()
        poller.register(self._handle, events)
        poller.poll()

    def _send(self, buf: bytes, write: Callable[[int, bytes], int] = os.write) -> None:  # type: ignore[override]
        view = memoryview(buf)
        while view:
            try:
                view = view[write(self._handle, view):]
            except BlockingIOError:
                self._wait(select.POLLOUT)

    def _recv(self, size: int, read: Callable[[int, int], bytes] = os.read) -> io.BytesIO:  # type: ignore[override]
        buf = io.BytesIO()
        while size > 0:
            try:
                chunk = read(self._handle, size)
            except BlockingIOError:
                self._wait(select.POLLIN)
                continue
            if not chunk:
                raise EOFError
            buf.write(chunk)
            size -= len(chunk)
        return buf


def _lab_pipe() -> tuple[_WebEnd, Connection]:
    """(web end, lab end) of a duplex pipe. The lab end is an ordinary blocking connection: the lab
    process has threads of its own and no gevent."""
    web, lab = (s.detach() for s in socket.socketpair())
    os.set_blocking(web, False)
    os.set_blocking(lab, True)  # gevent's sockets are non-blocking underneath whatever they are told
    return _WebEnd(web), Connection(lab)


def _cooperative_read_signed(fd: int) -> int:
    """``forkserver.read_signed``, waiting for the forkserver's answer in a selector first.

    Starting a lab process blocks in a read of the pid the forkserver sends back (at the very first start
    for as long as the forkserver imports the core). Under gevent (``hyperlab serve``) a selector wait
    yields to every other connection, a bare ``os.read`` stalls them all; elsewhere it changes nothing.
    """
    multiprocessing.connection.wait([fd])
    return _read_signed(fd)


_read_signed = forkserver.read_signed
forkserver.read_signed = _cooperative_read_signed


class LabHandle:
    """One lab process. Thread-safe: web request threads and WebSocket threads share it."""

    def __init__(self, lab_id: str, settings: dict[str, Any] | None = None) -> None:
        self.id = lab_id
        self.settings = dict(settings or {})
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        # Start, restart and close of this lab run one at a time: two at once closed one pipe twice
        # (EBADF on whatever file reused the number) and left processes no handle knew of.
        self._lifecycle = threading.Lock()
        self._restarts_begun = 0
        self._restarts_done = 0
        # For culling: the last input or action (time.monotonic()), and how many pages watch the lab.
        self.last_active = time.monotonic()
        self.viewers = 0
        self._start()

    def touch(self) -> None:
        """Someone typed or acted: the lab is in use."""
        self.last_active = time.monotonic()

    def attach_viewer(self) -> Callable[[], None]:
        """A page is connected (a console or telemetry WebSocket): the lab is not idle while it is.
        Returns the call that detaches it."""
        with self._lock:
            self.viewers += 1
        done = [False]

        def detach() -> None:
            with self._lock:
                if not done[0]:
                    done[0] = True
                    self.viewers -= 1
            self.touch()  # idle time counts from when the last page left

        return detach

    # --- process lifecycle -------------------------------------------------------------------------
    def _start(self) -> None:
        ctx = _context()
        parent, child = _lab_pipe()
        process = ctx.Process(target=lab_main, args=(child, self.settings), name=f"hyperlab-lab-{self.id}",
                              daemon=True)
        with self._send_lock:  # a call sees one process's pipe, waiters and ids, never a mix of two
            self._conn = parent
            self._pending: dict[int, tuple[threading.Event, list]] = {}
            self._ids = itertools.count(1)
            self.process = process
        self._ready = threading.Event()
        self._dead = threading.Event()
        self.fatal: str | None = None
        self.started_at: float | None = None
        self._scrollback: dict[str, bytearray] = {}
        self._subscribers: dict[str, list[Callable[[bytes], None]]] = {}
        self._snapshot: tuple[float, dict] | None = None
        self._describe: dict | None = None
        process.start()
        child.close()
        # The reader gets this process's own events and waiters: a late reader of a replaced process
        # must not mark its successor dead or answer its calls.
        self._reader = threading.Thread(target=self._read, args=(parent, self._ready, self._dead, self._pending),
                                        name=f"lab-{self.id}-reader", daemon=True)
        self._reader.start()

    def _read(self, conn: Any, ready: threading.Event, dead: threading.Event,
              pending: dict[int, tuple[threading.Event, list]]) -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:
                logging.getLogger(__name__).exception("lab %s: unreadable message", self.id)
                break
            kind = msg[0]
            if kind == wire.CONSOLE:
                self._on_console(msg[1], msg[2])
            elif kind == wire.REPLY:
                _, req_id, ok, payload = msg
                with self._lock:
                    waiter = pending.pop(req_id, None)
                if waiter is not None:
                    waiter[1].extend((ok, payload))
                    waiter[0].set()
            elif kind == wire.READY:
                self.started_at = msg[1]
                self._describe = msg[2]
                ready.set()
            elif kind == wire.FATAL:
                self.fatal = msg[1]
                break
        with self._send_lock:
            conn.close()
        dead.set()
        ready.set()
        with self._lock:
            waiters = list(pending.values())
            pending.clear()
        for event, _ in waiters:
            event.set()  # callers see no reply and raise 503

    @property
    def alive(self) -> bool:
        return not self._dead.is_set()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        if not self._ready.wait(timeout):
            raise LabError(503, "the lab is still starting; try again in a moment")
        if self._dead.is_set():
            raise LabError(503, self._stopped_message())

    def _stopped_message(self) -> str:
        why = f": {self.fatal}" if self.fatal else ""
        return f"lab stopped{why}; restart it to get fresh partitions"

    def restart(self, settings: dict[str, Any] | None = None) -> None:
        """Replace the lab process (dead or alive) with a fresh one, with new ``settings`` if given.

        Restarts that pile up share the work: one that finds a restart begun after it was asked for
        already finished returns at once, since the lab is as fresh as it asked (500 concurrent
        restarts start two or three processes, not 500).
        """
        self.touch()
        asked_at = self._restarts_begun
        with self._lifecycle:
            if settings is None and self._restarts_done > asked_at:
                return
            self._restarts_begun += 1
            if settings is not None:
                self.settings = dict(settings)
            self._stop_process()
            self._start()
            self._restarts_done = self._restarts_begun

    def close(self) -> None:
        with self._lifecycle:
            self._stop_process()

    def _stop_process(self) -> None:
        """End the process and its pipe and reader; called with the lifecycle lock held."""
        try:
            with self._send_lock:
                self._conn.send(wire.close())
        except (OSError, EOFError, BrokenPipeError):
            pass
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        # The process is gone, so its reader sees EOF and closes the pipe itself. Closing it here while
        # the reader might still be between a poll and a read would free the descriptor's number for the
        # next lab's pipe, and the old reader could then steal the new lab's messages.
        self._reader.join(timeout=2)

    # --- calls --------------------------------------------------------------------------------------
    def _call(self, method: str, *args: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """Ask the lab process; a call whose process was replaced (a restart) meanwhile asks the new one."""
        for _ in range(3):
            self.wait_ready()
            event = threading.Event()
            box: list = []
            with self._send_lock:
                conn, pending, process = self._conn, self._pending, self.process
                req_id = next(self._ids)
                with self._lock:
                    pending[req_id] = (event, box)
                try:
                    conn.send(wire.call(req_id, method, args))
                    sent = True
                except (OSError, EOFError, BrokenPipeError):
                    sent = False
            if sent and not event.wait(timeout):
                with self._lock:
                    pending.pop(req_id, None)
                raise LabError(504, f"the lab did not answer {method} within {timeout:.0f} s")
            if sent and box:
                ok, payload = box
                if not ok:
                    status, message = payload
                    raise LabError(status, message)
                return payload
            with self._lock:
                pending.pop(req_id, None)
            if self.process is process:  # no newer process to ask: this lab has stopped
                break
        raise LabError(503, self._stopped_message())

    def describe(self) -> dict:
        if not self.alive:
            base = self._describe or {"design": self.settings.get("design", "microkernel"), "partitions": []}
            reason = self._stopped_message()
            # The partitions died with their process: show that, not their last known state.
            parts = [{**p, "state": "crashed", "reason": reason, "uptime_ms": 0.0, "actions": []}
                     for p in base["partitions"]]
            return {"id": self.id, "alive": False, "stopped_reason": reason, "design": base["design"],
                    "partitions": parts}
        info = _public(self._call("describe"))
        self._describe = info
        return {"id": self.id, "alive": True, **info}

    def partitions(self) -> list[dict]:
        return self.describe()["partitions"]

    def partition(self, name: str) -> dict:
        for p in self.partitions():
            if p["name"] == name:
                return p
        raise LabError(404, f"no partition named {name!r} in this lab")

    def action(self, partition: str, action: str) -> dict:
        self.touch()
        return _public_partition(self._call("action", partition, action))

    def update_settings(self, partition: str, changes: dict) -> dict:
        """Change a partition's settings (memory_mb, integration_services), effective at its next start;
        answers the partition's description. (``self.settings`` is the lab's own settings dict.)"""
        self.touch()
        return _public_partition(self._call("settings", partition, changes))

    def disk_file(self, partition: str) -> str | None:
        """The server path of the partition's VHD (None: it has none). Only for serving the file: the
        descriptions the lab hands out name the disk, never where it lives on the server."""
        for p in self._call("describe")["partitions"]:
            if p["name"] == partition:
                disk = p.get("disk")
                return disk.get("path") if isinstance(disk, dict) else None
        raise LabError(404, f"no partition named {partition!r} in this lab")

    def switch_design(self, design: str) -> None:
        """Restart the lab in another design (a value of core.placement.Design), disks and settings kept."""
        self.restart({**self.settings, "design": design})

    def fault(self, component: str) -> dict:
        """Fail a component as if its code raised (400 unknown name, 409 not in this design); the
        partitions' states after, with reasons."""
        return self._call("fault", component)

    def counters(self) -> dict[str, float]:
        return self._call("counters")

    def snapshot(self) -> dict:
        """Telemetry snapshot; several viewers within 50 ms share one."""
        now = time.monotonic()
        cached = self._snapshot
        if cached is not None and now - cached[0] < _SNAPSHOT_CACHE_SECONDS:
            return cached[1]
        if not self.alive:
            return {"t": 0.0, "alive": False, "stopped_reason": self._stopped_message(), "partitions": {},
                    "counters": {}, "transitions": []}
        snap = self._call("snapshot")
        snap["partitions"] = {name: _public_partition(p) for name, p in snap.get("partitions", {}).items()}
        snap["alive"] = True
        self._snapshot = (now, snap)
        return snap

    # --- console ------------------------------------------------------------------------------------
    def send_console(self, partition: str, data: bytes) -> None:
        self.touch()
        if not self.alive:
            raise LabError(503, self._stopped_message())
        try:
            with self._send_lock:
                self._conn.send(wire.console(partition, data))
        except (OSError, EOFError, BrokenPipeError):
            raise LabError(503, self._stopped_message()) from None

    def _on_console(self, partition: str, data: bytes) -> None:
        with self._lock:
            buf = self._scrollback.setdefault(partition, bytearray())
            buf += data
            if len(buf) > SCROLLBACK:
                del buf[:-SCROLLBACK]
            subscribers = list(self._subscribers.get(partition, ()))
        for callback in subscribers:
            callback(data)

    def subscribe_console(self, partition: str, callback: Callable[[bytes], None]) -> Callable[[], None]:
        """callback gets the scrollback first, then live output (on the reader thread: must not block)."""
        self.partition(partition)  # 404 for an unknown name
        with self._lock:
            history = bytes(self._scrollback.get(partition, b""))
            self._subscribers.setdefault(partition, []).append(callback)
            if history:
                callback(history)

        def unsubscribe() -> None:
            with self._lock:
                subs = self._subscribers.get(partition, [])
                if callback in subs:
                    subs.remove(callback)

        return unsubscribe

    def console_text(self, partition: str) -> bytes:
        with self._lock:
            return bytes(self._scrollback.get(partition, b""))


def _public_partition(partition: dict) -> dict:
    """A partition's description as the lab's users see it: its disk by name and size, not server path."""
    disk = partition.get("disk")
    if isinstance(disk, dict) and "path" in disk:
        partition = {**partition, "disk": {"name": Path(disk["path"]).name, "size_bytes": disk.get("size_bytes")}}
    return partition


def _public(describe: dict) -> dict:
    return {**describe, "partitions": [_public_partition(p) for p in describe.get("partitions", [])]}


class LabManager:
    """One lab per owner (a session's identity), each in its own process.

    At most ``max_labs`` run at once. A lab nobody watches (no page connected) and nobody typed into or
    acted on for ``idle_s`` seconds is *culled*: its process ends, its disks stay, and the owner's next
    ``get_or_create`` starts it again under the same id. A culler thread looks every ``idle_s / 10``
    (at most a minute); a full server also culls before it refuses.
    """

    def __init__(self, data_dir: Path | None = None, max_labs: int = 64,
                 settings: dict[str, Any] | None = None, idle_s: float = 30 * 60) -> None:
        self.data_dir = Path(data_dir) if data_dir else None
        self.max_labs = max_labs
        self.settings = dict(settings or {})
        self.idle_s = idle_s
        self._labs: dict[str, LabHandle] = {}
        self._by_owner: dict[str, str] = {}
        self._closing: dict[str, LabHandle] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        if idle_s > 0:
            threading.Thread(target=self._cull_loop, name="lab-culler", daemon=True).start()

    def get_or_create(self, owner: str, lab_id: str | None = None) -> LabHandle:
        """The owner's lab, started if it has none — as ``lab_id`` (its disks in ``<data dir>/<lab id>``)
        when given, so an owner's lab keeps its id and disks across server restarts."""
        while True:
            with self._lock:
                existing = self._by_owner.get(owner)
                if existing is not None:
                    return self._labs[existing]
                closing = self._closing.get(lab_id) if lab_id else None
                if closing is None:
                    if len(self._labs) >= self.max_labs and not self._cull_locked(time.monotonic()):
                        raise self._full()
                    if len(self._labs) < self.max_labs:
                        return self._start_locked(owner, lab_id)
            if closing is not None:
                closing.close()  # the same lab (same disks) is still ending: wait for it, then start
                with self._lock:
                    self._closing.pop(lab_id or "", None)
            else:
                self._finish_closing()

    def _start_locked(self, owner: str, lab_id: str | None) -> LabHandle:
        lab_id = lab_id or secrets.token_urlsafe(8)
        settings = dict(self.settings)
        if self.data_dir is not None:
            settings["data_dir"] = str(self.data_dir / lab_id)
        lab = LabHandle(lab_id, settings)
        self._labs[lab_id] = lab
        self._by_owner[owner] = lab_id
        return lab

    def _full(self) -> LabError:
        """"Server full", with when a lab is likely to free up: the soonest an unwatched lab gets culled."""
        now = time.monotonic()
        waits = [self.idle_s - (now - lab.last_active) for lab in self._labs.values() if lab.viewers == 0]
        wait_s = max(60.0, min(waits) if waits and self.idle_s > 0 else self.idle_s or 15 * 60)
        minutes = math.ceil(wait_s / 60)
        return LabError(503, f"This server is full: it runs its maximum of {self.max_labs} labs. "
                             f"Please try again in about {minutes} minute{'s' * (minutes != 1)} "
                             "(labs nobody uses are closed after a while), or ask your trainer to raise "
                             "HYPERLAB_MAX_LABS.", retry_after_s=minutes * 60)

    # --- culling -------------------------------------------------------------------------------------
    def cull(self, now: float | None = None) -> list[str]:
        """End every lab idle for ``idle_s`` (disks kept); their ids."""
        with self._lock:
            culled = self._cull_locked(time.monotonic() if now is None else now)
        self._finish_closing()
        return culled

    def _cull_locked(self, now: float) -> list[str]:
        """Move idle labs out of the registry (their processes end in :meth:`_finish_closing`)."""
        if self.idle_s <= 0:
            return []
        idle = [lab for lab in self._labs.values() if lab.viewers == 0 and now - lab.last_active >= self.idle_s]
        for lab in idle:
            del self._labs[lab.id]
            for owner in [o for o, i in self._by_owner.items() if i == lab.id]:
                del self._by_owner[owner]
            self._closing[lab.id] = lab
        return [lab.id for lab in idle]

    def _finish_closing(self) -> None:
        with self._lock:
            closing = list(self._closing.values())
        for lab in closing:
            lab.close()
            with self._lock:
                if self._closing.get(lab.id) is lab:
                    del self._closing[lab.id]

    def _cull_loop(self) -> None:
        period = min(60.0, max(1.0, self.idle_s / 10))
        while not self._stopped.wait(period):
            try:
                self.cull()
            except Exception:
                logging.getLogger(__name__).exception("culling idle labs failed")

    def reconfigure(self, owner: str, settings: dict[str, Any], lab_id: str | None = None) -> LabHandle:
        """Give ``owner``'s lab new settings (e.g. the lab a lesson needs): its process is closed and a
        fresh one started with them, under the same id and data directory (the children keep their disks).
        Open consoles follow the new process, as after a restart. ``lab_id`` as for :meth:`get_or_create`
        (the lab may have ended meanwhile)."""
        lab = self.get_or_create(owner, lab_id=lab_id)
        new = {**self.settings, **settings}
        if "data_dir" in lab.settings:
            new["data_dir"] = lab.settings["data_dir"]
        lab.restart(new)
        return lab

    def get(self, lab_id: str) -> LabHandle | None:
        with self._lock:
            return self._labs.get(lab_id)

    def owned_by(self, owner: str) -> list[LabHandle]:
        with self._lock:
            lab_id = self._by_owner.get(owner)
            return [self._labs[lab_id]] if lab_id else []

    def shutdown(self) -> None:
        self._stopped.set()
        with self._lock:
            labs = list(self._labs.values())
            self._labs.clear()
            self._by_owner.clear()
        for lab in labs:
            lab.close()
