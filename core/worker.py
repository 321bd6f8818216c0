"""Host processes that run a child's device models outside the hypervisor, on the root's time.

* Micro-kernel (Hyper-V): each VM has a worker process (vmwp.exe) in the root partition's user mode
  that emulates its legacy devices. A port access by the child is a VM exit; the hypervisor turns it
  into an intercept message to the root; the root's kernel (VID) hands it to the worker; the worker
  runs the device model and completes the intercept with a hypercall; the hypervisor resumes the child.
* Hosted (Virtual PC, VMware Workstation): each VM is a VMM application in the host's user mode. A
  port access is a world switch into the host's kernel, where the VMM driver returns to the VMM
  application; it runs the device model and asks the driver (an ioctl) to switch back into the VM.

Both serve the child's own device models, on the root's time: if the root is paused, the child
waits. Every hop is recorded as a transition, here where it happens; the device model runs through
the placement's containment, so its exception stops what the design says, never the lab.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .hypervisor import Hypervisor
    from .partition import Partition
    from .placement import Component, Placement


class RootWork(Protocol):
    """Something a child needs from the root's host services (a worker process, a VSP)."""

    def serve(self, root: Partition) -> None: ...
    def component(self, placement: Placement) -> Component: ...


@dataclass(slots=True)
class IoIntercept:
    """A child's port access waiting for its host process (HVMSG_X64_IOPORT_INTERCEPT on Hyper-V)."""

    child: Partition
    port: int
    size: int
    value: int
    is_in: bool
    raised_at: float  # perf_counter when the child exited

    def component(self, placement: Placement) -> Component:
        return placement.component(f"{self.child.name}.{self.child.host_process.kind}")  # type: ignore[union-attr]

    def serve(self, root: Partition) -> None:
        if self.child.host_process is not None and self.child.waiting_io is self:
            self.child.host_process.serve(self, root)


class WorkerProcess:
    """Micro-kernel: one per child, living in the root's user mode. Serves that child's intercepts."""

    kind = "worker"
    counter = "worker.requests"

    def __init__(self, child: Partition) -> None:
        self.child = child
        self.requests = 0

    def _enter(self, hv: Hypervisor, name: str, rname: str) -> None:
        hv.record(self.child, "hypervisor", f"{rname}/kernel", "intercept_message", None, "interrupt_injection")
        hv.record(self.child, f"{rname}/kernel", f"{rname}/user", "to_worker", None, "syscall")

    def _leave(self, hv: Hypervisor, name: str, rname: str, raised_at: float) -> None:
        hv.record(self.child, f"{rname}/user", f"{rname}/kernel", "complete_intercept", None, "syscall")
        hv.record(self.child, f"{rname}/kernel", "hypervisor", "hypercall", None, "hypercall")
        hv.record(self.child, "hypervisor", f"{name}/kernel", "resume", (time.perf_counter() - raised_at) * 1e6,
                  "vm_exit")

    def serve(self, intercept: IoIntercept, root: Partition) -> None:
        child, hv = intercept.child, intercept.child.hv
        name, rname = child.name, root.name
        t0 = time.perf_counter()
        self._enter(hv, name, rname)
        device = child.bus.find(intercept.port)
        t_dev = time.perf_counter()
        value = hv.placement.port_access(child, device, intercept.port, intercept.size, intercept.value,
                                         intercept.is_in)
        hv.record(child, f"{rname}/user", f"{rname}/user", "device_model", (time.perf_counter() - t_dev) * 1e6,
                  None)  # work, not a change of mode: no modelled transition cost
        if child.waiting_io is not intercept:
            return  # the child stopped meanwhile (e.g. its device model failed and took this process down)
        self.requests += 1
        hv.count(f"{rname}.{self.counter}")
        hv.count(f"{name}.intercepts.served_by_root")
        self._leave(hv, name, rname, intercept.raised_at)
        child.complete_io(intercept, value)
        hv.count(f"{rname}.vp.run_us", (time.perf_counter() - t0) * 1e6)


class VmmApplication(WorkerProcess):
    """Hosted: one per child, a process in the host's user mode, entered through the VMM driver."""

    kind = "vmm"
    counter = "vmm.requests"

    def _enter(self, hv: Hypervisor, name: str, rname: str) -> None:
        hv.record(self.child, f"{rname}/kernel", f"{rname}/user", "to_vmm", None, "syscall")

    def _leave(self, hv: Hypervisor, name: str, rname: str, raised_at: float) -> None:
        hv.record(self.child, f"{rname}/user", f"{rname}/kernel", "run_vm", None, "syscall")
        hv.count(f"{name}.world_switches")
        hv.record(self.child, f"{rname}/kernel", f"{name}/kernel", "world_switch",
                  (time.perf_counter() - raised_at) * 1e6, "world_switch")
