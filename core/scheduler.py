"""The scheduler: round-robin time slices over the runnable VPs of a lab, on one thread.

A slice ends when the guest halts (HLT: the VP sleeps until an interrupt is
pending), or when the watchdog calls ``emu_stop`` at the end of the slice —
so a runaway guest loop is preempted and never hangs the lab. When every VP
sleeps the scheduler thread blocks on a condition variable: an idle lab
uses no CPU.

Requests from outside (console input, actions, snapshots) are queued and run
on this thread between slices; a request cuts the current slice short, so
they are served within microseconds of the VP leaving guest code.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .cpu import VirtualProcessor, VpExit
from .hypervisor import Hypervisor
from .partition import Partition
from .steal import StealClock

SLICE_SECONDS = 0.010


class Request:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Scheduler:
    def __init__(self, hv: Hypervisor, on_console: Callable[[str, bytes], None],
                 slice_seconds: float = SLICE_SECONDS) -> None:
        self.hv = hv
        self.on_console = on_console
        self.slice_seconds = slice_seconds
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._wake = threading.Condition()
        self._current: VirtualProcessor | None = None
        self._slice_id = 0
        self._running = True
        self._next = 0
        self._steal: dict[str, StealClock] = {}  # per partition: what its guest's clock must not count
        self._busy = threading.Event()  # set while VPs run: the watchdog sleeps otherwise
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="slice-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._watchdog.start()

    def stop(self) -> None:
        """Stop scheduling and wait for both threads: no thread may touch a VP after this."""
        self._running = False
        self._busy.set()
        self._kick()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._watchdog.is_alive():
            self._watchdog.join(timeout=5)

    # --- requests from other threads ---------------------------------------------------------------
    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run fn on the scheduler thread and return its result (or raise its exception)."""
        if threading.current_thread() is self._thread:
            return fn()
        req = Request(fn)
        self._requests.put(req)
        self._kick()
        if not req.done.wait(timeout):
            raise TimeoutError("the lab did not answer in time")
        if req.error is not None:
            raise req.error
        return req.result

    def submit(self, fn: Callable[[], Any]) -> None:
        """Run fn on the scheduler thread soon, without waiting (console input)."""
        self._requests.put(Request(fn))
        self._kick()

    def pending(self) -> int:
        """Requests waiting for the scheduler thread."""
        return self._requests.qsize()

    def _kick(self) -> None:
        vp = self._current
        if vp is not None:
            vp.stop()
        with self._wake:
            self._wake.notify_all()

    # --- the loop ----------------------------------------------------------------------------------
    def _serve_requests(self) -> None:
        while True:
            try:
                req = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                req.result = req.fn()
            except BaseException as e:  # noqa: BLE001 -- handed back to the caller, who raises it
                req.error = e
            req.done.set()

    def _pick(self) -> Partition | None:
        """Round robin, except that a VP an interrupt has just woken (a key typed, a VMBus completion)
        goes first: it has a little to do and someone is waiting for it, while a busy sibling loses
        one turn. The interrupt is consumed when delivered, so this cannot starve the others."""
        parts = list(self.hv.partitions.values())
        for p in parts:
            if p.vp is not None and p.halted and p.pending_interrupt() and p.vp.interrupts_enabled:
                p.halted = False
                if p.runnable:
                    return p
        for i in range(len(parts)):
            p = parts[(self._next + i) % len(parts)]
            if p.vp is not None and p.pending_interrupt() and p.vp.interrupts_enabled:
                p.halted = False
            if p.runnable:
                self._next = (self._next + i + 1) % len(parts)
                return p
        return None

    def _flush_consoles(self) -> None:
        for p in self.hv.partitions.values():
            data = p.take_console_output()
            if data:
                self.on_console(p.name, data)

    def _loop(self) -> None:
        hv = self.hv
        last: Partition | None = None
        while self._running:
            self._serve_requests()
            next_timer = hv.run_timers()
            if hv.root_work and hv.serve_root_work():
                # The CPU went to the root to run its worker processes, then back.
                hv.count("lab.transitions.partition_switch", 2)
                self._flush_consoles()  # e.g. a synthetic console's output: not after someone's slice
            p = self._pick()
            if p is None:
                self._flush_consoles()
                self._busy.clear()
                with self._wake:
                    if self._requests.empty() and self._running and self._pick_ready() is None:
                        self._wake.wait(timeout=next_timer)
                continue
            if last is not None and last is not p:
                hv.count("lab.transitions.partition_switch")
            last = p
            p.deliver_pending_interrupt()
            vp = p.vp
            if vp is None:
                continue
            steal = self._steal.get(p.name)
            if steal is None:
                steal = self._steal[p.name] = StealClock(p)
            self._slice_id += 1
            self._current = vp
            self._busy.set()
            t0 = time.perf_counter_ns()
            steal.slice_starting(t0)
            # A bug anywhere under the VP's exits is the hypervisor's (hosted: the VMM driver's) fault,
            # contained as the design says; the scheduler goes on.
            exit_reason = hv.placement.contain(hv.placement.core_component, vp.run)
            t1 = time.perf_counter_ns()
            self._current = None
            hv.count(f"{p.name}.vp.run_us", (t1 - t0) / 1000)
            steal.slice_ended(exit_reason is VpExit.PREEMPTED, t1)
            hv.count(f"{p.name}.vp.slices")
            if p.vp is not vp:
                pass  # turned off or crashed from inside a hook (e.g. the panic port)
            elif exit_reason is VpExit.HALTED:
                p.halted = True
                hv.count(f"{p.name}.exits.hlt")
                hv.count("lab.hypervisor.exits")
            elif exit_reason is VpExit.INTERCEPT:
                pass  # waits for the root's worker; counted where the intercept was raised
            elif exit_reason is VpExit.SHUTDOWN:
                p.crash(vp.shutdown_reason or "the virtual processor shut down")
            else:
                hv.count(f"{p.name}.exits.preempt")
            self._flush_consoles()

    def _pick_ready(self) -> Partition | None:
        if self.hv.root_work and self.hv.root.state.value == "running":
            return self.hv.root
        for p in self.hv.partitions.values():
            if p.runnable or (p.vp is not None and p.pending_interrupt() and p.vp.interrupts_enabled):
                return p
        return None

    def _watch(self) -> None:
        """End a slice that outlives its time, so one busy VP cannot starve the others or the lab."""
        seen = -1
        while self._thread.is_alive():  # until the scheduler is gone: it may be in a slice still
            self._busy.wait(timeout=1.0)
            time.sleep(self.slice_seconds)
            vp = self._current
            if vp is not None and self._slice_id == seen:
                vp.stop()
            seen = self._slice_id if vp is not None else -1
