"""The worker process: where an unenlightened child's emulated devices run in the micro-kernel design.

On Hyper-V each VM has a worker process (vmwp.exe) in the root partition's user mode that emulates
its legacy devices. A port access by the child is a VM exit; the hypervisor turns it into an
intercept message to the root; the root's kernel (VID) hands it to the worker; the worker runs the
device model and completes the intercept with a hypercall; the hypervisor resumes the child.
hyperlab does the same with the child's own device models, on the root's time: if the root is
paused, the child waits. Every hop is recorded as a transition, produced here where it happens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .partition import Partition


class RootWork(Protocol):
    """Something a child needs from the root's host services (worker process, VSP)."""

    def serve(self, root: Partition) -> None: ...


@dataclass(slots=True)
class IoIntercept:
    """HVMSG_X64_IOPORT_INTERCEPT, as the root receives it."""

    child: Partition
    port: int
    size: int
    value: int
    is_in: bool
    raised_at: float  # perf_counter when the child exited

    def serve(self, root: Partition) -> None:
        if self.child.worker is not None and self.child.waiting_io is self:
            self.child.worker.serve(self, root)


class WorkerProcess:
    """One per child, living in the root. Serves that child's port-I/O intercepts."""

    def __init__(self, child: Partition) -> None:
        self.child = child
        self.requests = 0

    def serve(self, intercept: IoIntercept, root: Partition) -> None:
        child, hv = intercept.child, intercept.child.hv
        name, rname = child.name, root.name
        t0 = time.perf_counter()
        hv.record(child, "hypervisor", f"{rname}/kernel", "intercept_message", None, "interrupt_injection")
        hv.record(child, f"{rname}/kernel", f"{rname}/user", "to_worker", None, "syscall")
        device = child.bus.find(intercept.port)
        t_dev = time.perf_counter()
        if device is None:
            value = (1 << (8 * intercept.size)) - 1
        elif intercept.is_in:
            value = device.read(intercept.port, intercept.size)
        else:
            device.write(intercept.port, intercept.size, intercept.value)
            value = 0
        hv.record(child, f"{rname}/user", f"{rname}/user", "device_model", (time.perf_counter() - t_dev) * 1e6,
                  None)  # work, not a change of mode: no modelled transition cost
        hv.record(child, f"{rname}/user", f"{rname}/kernel", "complete_intercept", None, "syscall")
        hv.record(child, f"{rname}/kernel", "hypervisor", "hypercall", None, "hypercall")
        self.requests += 1
        hv.count(f"{rname}.worker.requests")
        hv.count(f"{name}.intercepts.served_by_root")
        child.complete_io(intercept, value)
        elapsed = time.perf_counter() - t0
        hv.count(f"{rname}.vp.run_us", elapsed * 1e6)
        hv.record(child, "hypervisor", f"{name}/kernel", "resume", (time.perf_counter() - intercept.raised_at) * 1e6,
                  "vm_exit")
