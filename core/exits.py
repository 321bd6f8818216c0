"""A partition's exits: what its VP asks of the hypervisor (port I/O, CPUID, hypercalls, faults) and the
interrupts it injects. Where a port access is served is the placement's decision (core/placement.py);
this is the hypervisor's side of the VP (the ``Intercepts`` protocol of core/cpu.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from unicorn import x86_const as X

from .cpu import FAULT_NAMES
from .devices.pic8259 import cascade_acknowledge, cascade_pending_vector

if TYPE_CHECKING:
    from .cpu import VirtualProcessor
    from .devices.bus import DeviceBus
    from .devices.pic8259 import Pic8259
    from .hypervisor import Hypervisor
    from .worker import IoIntercept

HV_STATUS_INVALID_HYPERCALL_CODE = 0x2


class ExitHandling:
    """Mixed into :class:`~hyperlab.core.partition.Partition`: the exits of its VP."""

    hv: Hypervisor
    name: str
    vp: VirtualProcessor | None
    bus: DeviceBus
    pic1: Pic8259
    pic2: Pic8259
    halted: bool
    waiting_io: IoIntercept | None
    last_kernel_fault: str | None
    synic_vectors: set[int]
    _prefix: str
    _k_io_exits: str
    _k_user: str
    _k_kernel: str

    # --- interrupts --------------------------------------------------------------------------------
    def pending_interrupt(self) -> bool:
        return bool(self.synic_vectors) or cascade_pending_vector(self.pic1, self.pic2) is not None

    def deliver_pending_interrupt(self) -> None:
        """At VP entry: wake from HLT and inject the PIC's interrupt if the guest has IF set."""
        vp = self.vp
        if vp is None or not self.pending_interrupt() or not vp.interrupts_enabled:
            return
        t0 = time.perf_counter()
        vector = max(self.synic_vectors) if self.synic_vectors else None  # the highest SINT vector first
        if vector is not None:
            self.synic_vectors.discard(vector)
        if vector is None:
            vector = cascade_acknowledge(self.pic1, self.pic2)
        if vector is None:
            return
        self.halted = False
        mode = "user" if vp.cpl else "kernel"
        vp.inject_interrupt(vector)
        self.hv.count(self._prefix + "interrupts_injected")
        self.hv.record(self, f"{self.name}/{mode}", f"{self.name}/kernel", "interrupt",
                       (time.perf_counter() - t0) * 1e6, "interrupt_injection")

    # --- intercepts (called from the VP's hooks); the placement decides where each is served ----------
    def _mode(self) -> str:
        return f"{self.name}/{'user' if self.vp is not None and self.vp.cpl else 'kernel'}"

    @property
    def kernel_mode(self) -> str:
        return self._k_kernel

    def io_in(self, port: int, size: int, cpl: int) -> int:
        t0 = time.perf_counter()
        placement = self.hv.placement
        device = self.bus.find(port)
        if placement.defers_io and placement.runs_elsewhere(self, device):
            return self.vp.defer_io(port, size, 0, True) if self.vp else 0
        value = placement.port_access(self, device, port, size, 0, True)
        if placement.hypervisor_present:
            self._io_exit(t0, cpl)
        return value

    def io_out(self, port: int, size: int, value: int, cpl: int) -> None:
        t0 = time.perf_counter()
        placement = self.hv.placement
        device = self.bus.find(port)
        if placement.defers_io and placement.runs_elsewhere(self, device):
            if self.vp:
                self.vp.defer_io(port, size, value, False)
            return
        placement.port_access(self, device, port, size, value, False)
        if placement.hypervisor_present:
            self._io_exit(t0, cpl)

    def io_deferred(self, port: int, size: int, value: int, is_in: bool) -> bool:
        """The VP stopped at an IN/OUT served outside the hypervisor: True if it was served at once
        (the root was running, so the CPU went there and came back without a trip through the
        scheduler's loop); otherwise the VP waits for :meth:`complete_io`."""
        return self.hv.placement.io_deferred(self, port, size, value, is_in)

    def complete_io(self, intercept: IoIntercept, value: int) -> None:
        if self.waiting_io is not intercept or self.vp is None:
            return  # the partition was turned off or reset meanwhile
        self.vp.finish_io(intercept.size, intercept.is_in, value)
        self.waiting_io = None

    def count_exit(self) -> None:
        counters = self.hv.telemetry.counters
        counters[self._k_io_exits] += 1
        counters["lab.hypervisor.exits"] += 1

    def unclaimed(self, port: int, direction: str) -> None:
        self.hv.count(self._prefix + "io.unclaimed")
        self.hv.note(self, f"{direction} to port {port:#x} ignored: no device there")

    def _io_exit(self, t0: float, cpl: int) -> None:
        """Account one port-I/O exit served in the hypervisor: the hot path of emulated devices, kept lean."""
        counters = self.hv.telemetry.counters
        counters[self._k_io_exits] += 1
        counters["lab.hypervisor.exits"] += 1
        mode = self._k_user if cpl else self._k_kernel
        telemetry = self.hv.telemetry
        if self.vp is not None:
            telemetry.round_trip(self.name, mode, "hypervisor", "io_port", (time.perf_counter() - t0) * 1e6, "vm_exit")
        else:  # the panic port stopped it: no way back
            telemetry.transition(self.name, mode, "hypervisor", "io_port", (time.perf_counter() - t0) * 1e6, "vm_exit")

    def cpuid(self, leaf: int, subleaf: int) -> tuple[int, int, int, int] | None:
        if not self.hv.placement.hypervisor_present:
            return self.hv.cpuid(self, leaf, subleaf)  # no hypervisor: no exit, the CPU answers
        t0 = time.perf_counter()
        mode = self._mode()
        regs = self.hv.cpuid(self, leaf, subleaf)
        self.hv.count(f"{self._prefix}exits.cpuid")
        self.hv.count("lab.hypervisor.exits")
        self.hv.record(self, mode, "hypervisor", "cpuid", (time.perf_counter() - t0) * 1e6, "cpuid_exit")
        self.hv.record(self, "hypervisor", mode, "resume", None, None)
        return regs

    def hypercall(self, vp: VirtualProcessor) -> int:
        if not self.hv.placement.hypervisor_present:
            self.hv.count(f"{self._prefix}hypercalls.no_hypervisor")
            return HV_STATUS_INVALID_HYPERCALL_CODE  # nothing answers vmcall: as a guest would learn it
        t0 = time.perf_counter()
        self.hv.record(self, self._k_kernel, "hypervisor", "hypercall", None, "hypercall")
        status = self.hv.hypercall(self, vp)
        self.hv.count(f"{self._prefix}exits.hypercall")
        self.hv.count("lab.hypervisor.exits")
        self.hv.record(self, "hypervisor", self._k_kernel, "resume", (time.perf_counter() - t0) * 1e6, None)
        return status

    def fault(self, vector: int, cpl: int) -> None:
        """Every guest exception passes through the core (Unicorn does not deliver them)."""
        name = FAULT_NAMES.get(vector, f"vector_{vector}")
        self.hv.count(f"{self._prefix}faults.{name}")
        if cpl == 0 and self.vp is not None:
            self.last_kernel_fault = f"{name.replace('_', ' ')} fault in kernel mode at rip {self.rip():#x}"
        self.hv.record(self, f"{self.name}/{'user' if cpl else 'kernel'}", f"{self.name}/kernel",
                       f"fault:{name}", None, "guest_exception")

    def rip(self) -> int:
        return self.vp.reg(X.UC_X86_REG_RIP) if self.vp else 0
