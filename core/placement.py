"""Where each part of a lab runs, by hypervisor design: the one place in the core that decides it.

Three designs run the same guests, device models and VSPs; they differ only in *where* those run,
and therefore in which hops an I/O takes, which code is trusted, and what a fault takes down:

* **micro-kernel** (Hyper-V): a thin hypervisor; a child's emulated devices run in its worker
  process in the root's user mode, the VSPs (VMBus) in the root's kernel. The root is the host:
  its bugcheck stops every partition.
* **monolithic** (ESX): device models, VSPs and drivers run inside the hypervisor; a fault there is
  a hypervisor panic (purple screen) and every partition stops.
* **hosted** (Virtual PC / Virtual Server / VMware Workstation): no hypervisor under the root; the
  root's OS is the host. Each child is run by a VMM application in the host's user mode, entered
  through a VMM driver in the host's kernel by a world switch. CPUID shows no hypervisor to anyone
  and there is no VMBus.

A placement answers three questions: which domain a component kind runs in (``PLACES``), how a
port access and a VMBus signal travel (the routing methods, which record each hop where it happens),
and what a component's exception takes down (:meth:`Placement.failed`, the one containment path that
real exceptions and injected faults share). Nothing else in the core compares designs.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .devices.bus import PortDevice
from .worker import IoIntercept, VmmApplication, WorkerProcess

if TYPE_CHECKING:
    from .hypervisor import Hypervisor
    from .partition import Partition
    from .vhd import VhdDisk
    from .vmbus.server import Channel, VmbusServer

log = logging.getLogger("hyperlab.core")


class Design(str, enum.Enum):
    MICROKERNEL = "microkernel"
    MONOLITHIC = "monolithic"
    HOSTED = "hosted"


DESIGN_NAMES: tuple[str, ...] = tuple(d.value for d in Design)


def parse_design(value: object) -> Design:
    """A design from its name; ValueError naming the valid ones."""
    try:
        return Design(value)
    except ValueError:
        raise ValueError(f"unknown design {value!r}; choose one of {', '.join(DESIGN_NAMES)}") from None


class Domain(str, enum.Enum):
    """A privilege domain of the host side: what a bug there can reach."""

    HYPERVISOR = "hypervisor"
    ROOT_KERNEL = "root_kernel"  # in the hosted design: the host's kernel
    ROOT_USER = "root_user"      # in the hosted design: the host's user mode


class Kind(str, enum.Enum):
    """What a component is; its name in a lab is ``hypervisor`` or ``<partition>.<kind>``."""

    HYPERVISOR = "hypervisor"
    KERNEL = "kernel"          # the root partition's kernel (our guest kernel)
    SHELL = "shell"            # the root's user programs (its shell manages the children)
    VMM_DRIVER = "vmm_driver"  # hosted: the VMM driver in the host's kernel (world switch)
    WORKER = "worker"          # micro-kernel: a child's worker process in the root's user mode
    VMM = "vmm"                # hosted: a child's VMM application in the host's user mode
    IDE = "ide"                # device models
    UART = "uart"
    PIC = "pic"                # the PIC pair, the panic port and port 0x80
    VMBUS = "vmbus"            # the VMBus server: channel messages, GPADLs, rings
    STORVSP = "storvsp"
    CONSOLEVSP = "consolevsp"
    ICVSP = "icvsp"            # heartbeat, shutdown, time sync


@dataclass(frozen=True)
class KindInfo:
    description: str
    modules: tuple[str, ...]  # files under the hyperlab package that make it (globs allowed)
    parses_child_bytes: bool  # part of a child's attack surface


KINDS: dict[Kind, KindInfo] = {
    Kind.HYPERVISOR: KindInfo("the hypervisor: VPs, exits, hypercalls, SynIC, scheduler", (
        "core/hypervisor.py", "core/hypercalls.py", "core/synic.py", "core/cpu.py", "core/memory.py",
        "core/scheduler.py", "core/partition.py", "core/exits.py", "core/wiring.py", "core/placement.py",
        "core/devices/bus.py"), True),
    Kind.KERNEL: KindInfo("the root partition's kernel", ("guests/*.c", "guests/*.h", "guests/*.S"), False),
    Kind.SHELL: KindInfo("the root's shell and user programs", ("guests/user/*.c", "guests/user/*.S"), False),
    # Hosted: what the hypervisor does elsewhere (run the VPs, take their exits, world switch) runs in
    # the host's kernel as the VMM driver; hypercalls and the SynIC do not exist there.
    Kind.VMM_DRIVER: KindInfo("the VMM driver in the host's kernel", (
        "core/hypervisor.py", "core/cpu.py", "core/memory.py", "core/scheduler.py", "core/partition.py",
        "core/exits.py", "core/wiring.py", "core/placement.py", "core/devices/bus.py"), True),
    Kind.WORKER: KindInfo("the child's worker process", ("core/worker.py",), False),
    Kind.VMM: KindInfo("the child's VMM application", ("core/worker.py",), False),
    Kind.IDE: KindInfo("emulated IDE disk", ("core/devices/ide.py", "core/vhd.py", "core/diskimage.py"), True),
    Kind.UART: KindInfo("emulated 16550 UART", ("core/devices/uart16550.py",), True),
    Kind.PIC: KindInfo("emulated PIC pair, panic and POST ports",
                       ("core/devices/pic8259.py", "core/devices/platform.py"), True),
    Kind.VMBUS: KindInfo("the VMBus server", ("core/vmbus/server.py", "core/vmbus/ring.py", "core/vmbus/gpadl.py",
                                              "core/vmbus/messages.py", "core/vsp/__init__.py", "core/vsp/host.py"), True),
    Kind.STORVSP: KindInfo("the storage VSP", ("core/vsp/storvsp.py", "core/vhd.py", "core/diskimage.py"), True),
    Kind.CONSOLEVSP: KindInfo("the synthetic console VSP", ("core/vsp/console.py",), True),
    Kind.ICVSP: KindInfo("the integration services (heartbeat, shutdown, time sync)", ("core/vsp/ic.py",), True),
}
ROOT_KINDS = (Kind.KERNEL, Kind.SHELL, Kind.VMM_DRIVER, Kind.UART, Kind.PIC)
CHILD_KINDS = (Kind.WORKER, Kind.VMM, Kind.IDE, Kind.UART, Kind.PIC, Kind.VMBUS, Kind.STORVSP, Kind.CONSOLEVSP,
               Kind.ICVSP)
DEVICE_KINDS = frozenset({Kind.IDE, Kind.UART, Kind.PIC})
#: The KIND of a component name PARTITION.KIND (the one list; "hypervisor" is a name of its own).
COMPONENT_KINDS: tuple[str, ...] = tuple(k.value for k in Kind if k is not Kind.HYPERVISOR)

H, K, U = Domain.HYPERVISOR, Domain.ROOT_KERNEL, Domain.ROOT_USER


@dataclass(frozen=True)
class Component:
    name: str            # "hypervisor", "child2.ide", "root.kernel", ...
    kind: Kind
    partition: str | None  # whose component it is (None: the hypervisor)
    domain: Domain

    @property
    def description(self) -> str:
        return KINDS[self.kind].description


class ComponentError(Exception):
    """An unknown component (400) or one the current design does not have (409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class InjectedFault(Exception):
    """Raised on purpose, through the same containment path as a real exception."""


FAILED = object()  # what :meth:`Placement.contain` returns when the component raised


class Placement:
    design: Design
    label: str
    hypervisor_present = True  # CPUID.1:ECX[31] and the 0x4000000x leaves, hypercalls
    has_vmbus = True
    root_is_host = True        # a root bugcheck stops every partition
    defers_io = True           # some port accesses leave the hypervisor (see runs_elsewhere)
    PLACES: ClassVar[dict[Kind, Domain | None]]

    def __init__(self, hv: Hypervisor) -> None:
        self.hv = hv

    # --- where things run ------------------------------------------------------------------------
    def domain(self, p: Partition | None, kind: Kind) -> Domain | None:
        """The domain a partition's component of this kind runs in; None if the design has none."""
        if p is not None and p.is_root and kind in DEVICE_KINDS:
            return H if self.hypervisor_present else None  # without a hypervisor: the host's own hardware
        if p is not None and kind not in (ROOT_KINDS if p.is_root else CHILD_KINDS):
            return None
        if p is not None and kind is Kind.IDE and p.config.disk_path is None:
            return None
        return self.PLACES[kind]

    def components(self) -> list[Component]:
        out = []
        if self.PLACES[Kind.HYPERVISOR] is not None:
            out.append(Component("hypervisor", Kind.HYPERVISOR, None, H))
        for p in self.hv.partitions.values():
            for kind in ROOT_KINDS if p.is_root else CHILD_KINDS:
                domain = self.domain(p, kind)
                if domain is not None:
                    out.append(Component(f"{p.name}.{kind.value}", kind, p.name, domain))
        return out

    def component(self, name: str) -> Component:
        """The component called ``name`` in this lab; ComponentError if unknown or absent here."""
        if name == "hypervisor":
            if self.PLACES[Kind.HYPERVISOR] is None:
                raise ComponentError(f"the {self.label} design has no hypervisor: the host's kernel runs "
                                     "everything (try root.kernel or root.vmm_driver)", 409)
            return Component(name, Kind.HYPERVISOR, None, H)
        pname, _, kname = name.rpartition(".")
        p = self.hv.partitions.get(pname)
        try:
            kind = Kind(kname)
        except ValueError:
            kind = None
        if p is None or kind is None or kind is Kind.HYPERVISOR:
            raise ComponentError(f"unknown component {name!r}; components are 'hypervisor' or PARTITION.KIND "
                                 f"with KIND one of {', '.join(k.value for k in Kind if k is not Kind.HYPERVISOR)}"
                                 f" (this lab: {', '.join(c.name for c in self.components())})", 400)
        domain = self.domain(p, kind)
        if domain is None:
            raise ComponentError(f"{name}: the {self.label} design has no {KINDS[kind].description} in "
                                 f"{'the root' if p.is_root else p.name}", 409)
        return Component(name, kind, p.name, domain)

    def core_component(self) -> Component:
        """What runs the VPs and takes their exits: the hypervisor, or (hosted) the host's VMM driver."""
        if self.PLACES[Kind.HYPERVISOR] is not None:
            return Component("hypervisor", Kind.HYPERVISOR, None, H)
        root = self.hv.root.name
        return Component(f"{root}.{Kind.VMM_DRIVER.value}", Kind.VMM_DRIVER, root, K)

    def device_component(self, p: Partition, device: PortDevice | None) -> Component:
        kind = Kind(device.kind) if device is not None else Kind.PIC
        # Not a component of this design: the hosted root's own hardware, driven by the host's kernel.
        domain = self.domain(p, kind) or K
        return Component(f"{p.name}.{kind.value}", kind, p.name, domain)

    def where(self, c: Component) -> str:
        """The words for where a component ran, for a crash reason."""
        if c.domain is H:
            return "the hypervisor"
        if c.domain is K:
            return "the host's kernel" if not self.hypervisor_present else "the root partition's kernel"
        if self.hypervisor_present:
            return f"{c.partition}'s worker process (the root's user mode)"
        return f"{c.partition}'s VMM application (the host's user mode)"

    # --- containment: real exceptions and injected faults take this one path ------------------------
    def contain(self, c: Component | Callable[[], Component], fn: Callable[..., Any], *args: Any) -> Any:
        """Run a host-side component's code; if it raises, stop what its domain takes down, not the lab."""
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 -- any bug in a component: contained where it ran
            self.failed(c() if callable(c) else c, e)
            return FAILED

    def inject(self, name: str) -> Component:
        """Fail a component on purpose: its code raises, through :meth:`contain`."""
        c = self.component(name)
        if c.kind is Kind.SHELL:
            raise ComponentError(f"{name} is guest code: crash it from inside (the root's `crash` command)", 409)
        # Code runs only while what hosts it runs: a child's process while the child does, the root's
        # kernel (and what lives in it) while the root does.
        host = None if c.domain is H else self.hv.root if c.domain is K else self.hv.partitions[c.partition]
        if host is not None and not host.stoppable:
            raise ComponentError(f"{name} is not running: {host.name} is {host.state.value}", 409)

        def raising() -> None:
            raise InjectedFault(f"fault injected into {name}")

        self.hv.count("lab.faults.injected")
        self.contain(c, raising)
        return c

    def failed(self, c: Component, e: BaseException) -> None:
        what = f"{c.name} ({c.description}) raised {type(e).__name__}: {e} in {self.where(c)}"
        if not isinstance(e, InjectedFault):
            log.error("%s", what, exc_info=e)  # the traceback goes to the server's log
        self.hv.count("lab.faults.contained")
        hv = self.hv
        if c.domain is H:
            self.hypervisor_panic(what)
        elif c.domain is K:
            prefix = "host crashed" if not self.hypervisor_present else "bugcheck"
            hv.root.crash(f"{prefix}: {what}")
        else:
            owner = hv.partitions[c.partition] if c.partition else hv.root
            process = "worker process" if self.hypervisor_present else "VMM application"
            owner.crash(f"its {process} died: {what}")

    def hypervisor_panic(self, what: str) -> None:
        panic = "hypervisor panic (purple screen)" if self.design is Design.MONOLITHIC else "hypervisor panic"
        for p in sorted(self.hv.partitions.values(), key=lambda p: p.is_root):  # the root last
            if p.stoppable:
                p.crash(f"{panic}: {what}; every partition stopped")

    def partition_crashed(self, p: Partition) -> None:
        """A partition crashed (any cause). When the root is the host, every other partition stops too."""
        if not (p.is_root and self.root_is_host):
            return
        host = "the host" if not self.hypervisor_present else "the root partition (the host of their I/O)"
        for other in self.hv.partitions.values():
            if other is not p and other.stoppable:
                other.crash(f"stopped with {host}: {p.reason}")

    # --- port I/O -----------------------------------------------------------------------------------
    def runs_elsewhere(self, p: Partition, device: PortDevice | None) -> bool:
        """True if this port access leaves the hypervisor for another place (a worker, a VMM)."""
        return False

    def port_access(self, p: Partition, device: PortDevice | None, port: int, size: int, value: int,
                    is_in: bool) -> int:
        """Run a device model where it is (the hypervisor, or the host's hardware for the hosted root)."""
        try:
            if device is None:
                p.unclaimed(port, "in" if is_in else "out")
                return (1 << (8 * size)) - 1 if is_in else 0
            if is_in:
                return device.read(port, size)
            device.write(port, size, value)
            return 0
        except Exception as e:  # noqa: BLE001 -- inline contain(): this is the hot path
            self.failed(self.device_component(p, device), e)
            return 0

    def io_deferred(self, p: Partition, port: int, size: int, value: int, is_in: bool) -> bool:
        raise AssertionError(f"the {self.label} design serves every port access in place")

    def host_process(self, child: Partition) -> WorkerProcess | None:
        return None

    def disk_for(self, p: Partition, disk: VhdDisk) -> Any:
        """The disk as the IDE model sees it: from user mode each access is a system call into the kernel."""
        if self.domain(p, Kind.IDE) is U:
            return SyscallDisk(disk, self.hv, p, self.hv.root.name)
        return disk

    # --- VMBus ----------------------------------------------------------------------------------------
    def vmbus_signal(self, server: VmbusServer, channel: Channel) -> None:
        raise AssertionError(f"the {self.label} design has no VMBus")

    def vmbus_later(self, server: VmbusServer, channel: Channel) -> None:
        raise AssertionError(f"the {self.label} design has no VMBus")

    def vsp_component(self, server: VmbusServer, channel: Channel | None) -> Component:
        kind = Kind(channel.vsp.component) if channel is not None else Kind.VMBUS
        return Component(f"{server.child.name}.{kind.value}", kind, server.child.name,
                         self.PLACES[kind] or H)

    # --- the root's time -----------------------------------------------------------------------------------
    def queue_intercept(self, p: Partition, intercept: IoIntercept) -> bool:
        """Hand an intercept to the root's host services; True if it was served at once."""
        hv = self.hv
        p.waiting_io = intercept
        hv.root_work.append(intercept)
        if hv.serve_root_work():
            hv.count("lab.transitions.partition_switch", 2)
        return p.waiting_io is None


class Microkernel(Placement):
    design, label = Design.MICROKERNEL, "micro-kernel"
    PLACES: ClassVar[dict[Kind, Domain | None]] = {Kind.HYPERVISOR: H, Kind.KERNEL: K, Kind.SHELL: U, Kind.VMM_DRIVER: None, Kind.WORKER: U,
              Kind.VMM: None, Kind.IDE: U, Kind.UART: U, Kind.PIC: H, Kind.VMBUS: K, Kind.STORVSP: K,
              Kind.CONSOLEVSP: K, Kind.ICVSP: K}

    def runs_elsewhere(self, p: Partition, device: PortDevice | None) -> bool:
        return device is not None and device.kind != "pic" and not p.is_root

    def host_process(self, child: Partition) -> WorkerProcess | None:
        return WorkerProcess(child)

    def io_deferred(self, p: Partition, port: int, size: int, value: int, is_in: bool) -> bool:
        """The VP stopped at an IN/OUT its worker must serve: the hypervisor sends the intercept to the root."""
        p.count_exit()
        self.hv.record(p, p.kernel_mode, "hypervisor", "io_port", None, "vm_exit")
        return self.queue_intercept(p, IoIntercept(p, port, size, value, is_in, time.perf_counter()))

    def vmbus_signal(self, server: VmbusServer, channel: Channel) -> None:
        self.vmbus_later(server, channel)

    def vmbus_later(self, server: VmbusServer, channel: Channel) -> None:
        """Run the channel's VSP on the root's time, in its kernel. Signals that arrive while a run is
        queued add nothing (one run drains the ring): a flooding guest costs itself exits, not the root
        a growing queue."""
        if channel.work_queued:
            server.count("signals_coalesced")
            return
        channel.work_queued = True
        self.hv.root_work.append(VspRun(server, channel, time.perf_counter()))


class Monolithic(Placement):
    design, label = Design.MONOLITHIC, "monolithic"
    root_is_host = False  # the hypervisor owns the devices: the root is one more partition
    defers_io = False     # every device model answers inside the exit
    PLACES: ClassVar[dict[Kind, Domain | None]] = {Kind.HYPERVISOR: H, Kind.KERNEL: K, Kind.SHELL: U, Kind.VMM_DRIVER: None, Kind.WORKER: None,
              Kind.VMM: None, Kind.IDE: H, Kind.UART: H, Kind.PIC: H, Kind.VMBUS: H, Kind.STORVSP: H,
              Kind.CONSOLEVSP: H, Kind.ICVSP: H}

    def vmbus_signal(self, server: VmbusServer, channel: Channel) -> None:
        self._serve_vsp(server, channel)  # the VSP runs inside this very exit

    def vmbus_later(self, server: VmbusServer, channel: Channel) -> None:
        self.hv.after(0, lambda: self._serve_vsp(server, channel))

    def _serve_vsp(self, server: VmbusServer, channel: Channel) -> None:
        t0 = time.perf_counter()
        self.contain(lambda: self.vsp_component(server, None), server.process, channel)
        self.hv.record(server.child, "hypervisor", "hypervisor", f"vsp:{channel.offer.name}",
                       (time.perf_counter() - t0) * 1e6, None)


class Hosted(Placement):
    design, label = Design.HOSTED, "hosted"
    hypervisor_present = False
    has_vmbus = False
    PLACES: ClassVar[dict[Kind, Domain | None]] = {Kind.HYPERVISOR: None, Kind.KERNEL: K, Kind.SHELL: U, Kind.VMM_DRIVER: K, Kind.WORKER: None,
              Kind.VMM: U, Kind.IDE: U, Kind.UART: U, Kind.PIC: U, Kind.VMBUS: None, Kind.STORVSP: None,
              Kind.CONSOLEVSP: None, Kind.ICVSP: None}

    def runs_elsewhere(self, p: Partition, device: PortDevice | None) -> bool:
        return not p.is_root  # every hardware access of a child goes to its VMM application

    def host_process(self, child: Partition) -> WorkerProcess | None:
        return VmmApplication(child)

    def io_deferred(self, p: Partition, port: int, size: int, value: int, is_in: bool) -> bool:
        """The child touched hardware: a world switch into the host's kernel, where the VMM driver
        hands the access to the child's VMM application (served on the host's time)."""
        root = self.hv.root.name
        p.count_exit()
        self.hv.count(f"{p.name}.world_switches")
        self.hv.record(p, p.kernel_mode, f"{root}/kernel", "world_switch", None, "world_switch")
        intercept = IoIntercept(p, port, size, value, is_in, time.perf_counter())
        return self.contain(lambda: self.component(f"{root}.vmm_driver"), self.queue_intercept, p, intercept) is True


class SyscallDisk:
    """A device model's disk seen from user mode: every access is a system call into the kernel,
    recorded as the two hops it costs (the worker's or VMM application's read/write on the file)."""

    def __init__(self, disk: VhdDisk, hv: Hypervisor, p: Partition, root: str) -> None:
        self._disk, self._hv, self._p = disk, hv, p
        self._user, self._kernel = f"{root}/user", f"{root}/kernel"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._disk, name)  # sizes, ids: no system call

    def _syscall(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        hv, p = self._hv, self._p
        t0 = time.perf_counter()
        hv.record(p, self._user, self._kernel, f"host_syscall:{what}", None, "syscall")
        try:
            return fn(*args)
        finally:
            hv.count(f"{p.name}.disk.host_syscalls")
            hv.record(p, self._kernel, self._user, "syscall_return", (time.perf_counter() - t0) * 1e6, None)

    def read(self, lba: int, count: int) -> bytes:
        return self._syscall("read", self._disk.read, lba, count)

    def write(self, lba: int, data: bytes) -> None:
        self._syscall("write", self._disk.write, lba, data)

    def flush(self) -> None:
        self._syscall("flush", self._disk.flush)


@dataclass(slots=True)
class VspRun:
    """Micro-kernel: a guest's VMBus signal, delivered to the root where the VSP runs in kernel mode."""

    server: VmbusServer
    channel: Channel
    raised_at: float

    def component(self, placement: Placement) -> Component:
        return placement.vsp_component(self.server, None)

    def serve(self, root: Partition) -> None:
        child, hv = self.server.child, self.server.child.hv
        kernel = f"{root.name}/kernel"
        t0 = time.perf_counter()
        hv.record(child, "hypervisor", kernel, "vmbus_event", None, "interrupt_injection")
        self.channel.work_queued = False
        self.server.process(self.channel)
        elapsed = time.perf_counter() - t0
        hv.record(child, kernel, kernel, f"vsp:{self.channel.offer.name}", elapsed * 1e6, None)
        hv.record(child, kernel, "hypervisor", "vsp_done", None, "hypercall")  # back to the hypervisor
        hv.count(f"{root.name}.vp.run_us", elapsed * 1e6)
        hv.count(f"{root.name}.vsp.batches")


PLACEMENTS: dict[Design, type[Placement]] = {d.design: d for d in (Microkernel, Monolithic, Hosted)}


def placement_for(hv: Hypervisor, design: Design) -> Placement:
    return PLACEMENTS[design](hv)
