"""A partition: an isolated guest with its own memory, one VP, its devices and a state machine.

States (the exact names the API, CLI and telemetry use): ``off`` -> ``starting`` ->
``running`` <-> ``paused`` -> ``stopping`` -> ``off``; and ``crashed`` with a reason.
"""

from __future__ import annotations

import contextlib
import enum
import struct
import time
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from .cpu import VirtualProcessor
from .devices.ide import IdeController
from .exits import ExitHandling
from .memory import GuestMemoryError
from .synic import SynIC
from .vhd import VhdDisk
from .vsp import ChildServices
from .wiring import DeviceWiring
from .worker import IoIntercept, WorkerProcess

if TYPE_CHECKING:
    from .hypervisor import Hypervisor
    from .vmbus.server import VmbusServer

KERNEL_BASE = 0x100000
BOOTINFO_GPA = 0x7000
BOOTINFO_MAGIC = 0x49424C48  # "HLBI"
BOOTINFO_IC = 0x1  # Integration Services installed: the guest connects to VMBus
SHUTDOWN_TIMEOUT = 30.0
# The guest kernel's own counters, in the order of its stats page (guests/hv.c).
GUEST_STATS = ("syscalls", "vmbus.signals_suppressed")


class PartitionState(str, enum.Enum):
    OFF = "off"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    CRASHED = "crashed"


class ActionError(Exception):
    """An action the partition's state does not allow (HTTP 409), or a bad request (400)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PartitionConfig:
    name: str
    role: str = "child"                # "root" or "child"
    memory_mb: int = 16
    integration_services: bool = True  # takes effect at the next start
    image: bytes | None = None         # another guest kernel than ours (tests, hostile guests)
    disk_path: str | None = None       # a child's VHD on the IDE channel, created at start if missing


def kernel_image() -> bytes:
    return (resources.files("hyperlab.core") / "images" / "kernel.bin").read_bytes()


ACTIONS = ("start", "turn_off", "shut_down", "reset", "pause", "resume")


class Partition(DeviceWiring, ExitHandling):
    """Runs on the scheduler thread: its state and actions here; its devices (core/wiring.py) and its
    VP's exits (core/exits.py) in the two classes it is made of."""

    def __init__(self, hv: Hypervisor, config: PartitionConfig, partition_id: int) -> None:
        self.hv = hv
        self.config = config
        self.id = partition_id
        self.name = config.name
        self.state = PartitionState.OFF
        self.reason: str | None = None
        self.vp: VirtualProcessor | None = None
        self.halted = False
        self.booted_at: float | None = None
        self.stats_gpa: int | None = None
        self.console_pending = bytearray()   # output not yet handed to the lab's console sink
        self.scrollback = bytearray()
        self._prefix = f"{self.name}."
        self._k_io_exits = f"{self.name}.exits.io_port"
        self._k_user, self._k_kernel = f"{self.name}/user", f"{self.name}/kernel"
        self._guest_base = dict.fromkeys(GUEST_STATS, 0)
        self.last_kernel_fault: str | None = None
        self.synic_vectors: set[int] = set()  # SINT vectors raised, not yet injected
        self.synic = SynIC(None, self.synic_vectors.add)
        # The root's VMBus server and VSPs for this child (the root itself is the host side); the
        # hosted design has none. Where they run is the placement's business (core/placement.py).
        self.services = ChildServices(self) if not self.is_root and hv.placement.has_vmbus else None
        self.vmbus: VmbusServer | None = self.services.server if self.services else None
        # The process that runs this child's device models outside the hypervisor, if the design has one.
        self.host_process: WorkerProcess | None = None if self.is_root else hv.placement.host_process(self)
        self.waiting_io: IoIntercept | None = None
        self.disk: VhdDisk | None = None        # open while the partition runs
        self.ide: IdeController | None = None
        self._k_disk = f"{self.name}.disk."
        self._wire_devices()

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self.config.role == "root"

    def allowed_actions(self) -> list[str]:
        s = self.state
        allowed = {
            PartitionState.OFF: ["start"],
            PartitionState.STARTING: ["turn_off"],
            PartitionState.RUNNING: ["turn_off", "reset", "pause"] + (["shut_down"] if self._can_shut_down() else []),
            PartitionState.PAUSED: ["turn_off", "reset", "resume"],
            PartitionState.STOPPING: ["turn_off"],
            PartitionState.CRASHED: ["start", "turn_off", "reset"],
        }[s]
        return allowed

    def act(self, action: str) -> None:
        if action not in ACTIONS:
            raise ActionError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}", 400)
        if action == "shut_down" and self.state == PartitionState.RUNNING and "shut_down" not in self.allowed_actions():
            raise ActionError(f"cannot shut down {self.name} cleanly: {self.shutdown_unavailable_reason()}; "
                              "use turn_off")
        if action not in self.allowed_actions():
            raise ActionError(f"cannot {action.replace('_', ' ')} {self.name}: it is {self.state.value}")
        getattr(self, action)()

    def update_settings(self, changes: dict) -> None:
        """Change settings; they take effect at the next start, as on Hyper-V."""
        if not isinstance(changes, dict) or not changes:
            raise ActionError("settings must be a non-empty JSON object", 400)
        unknown = set(changes) - {"memory_mb", "integration_services"}
        if unknown:
            raise ActionError(f"unknown settings: {', '.join(sorted(unknown))}; "
                              "known: memory_mb, integration_services", 400)
        memory = changes.get("memory_mb", self.config.memory_mb)
        if isinstance(memory, bool) or not isinstance(memory, int) or memory % 2 or not 4 <= memory <= 256:
            raise ActionError("memory_mb must be an even whole number of MiB from 4 to 256", 400)
        ic = changes.get("integration_services", self.config.integration_services)
        if not isinstance(ic, bool):
            raise ActionError("integration_services must be true or false", 400)
        if self.is_root and "integration_services" in changes:
            raise ActionError("the root partition hosts the Integration Services; it has no such setting", 400)
        self.config.memory_mb = memory
        self.config.integration_services = ic

    def start(self) -> None:
        self.turn_off_quietly()
        self.state = PartitionState.STARTING
        self.reason = None
        self.scrollback.clear()
        self.console_pending += b"\x1b[0m\x1b[2J\x1b[H"  # a fresh screen for a fresh boot
        memory = self.config.memory_mb << 20
        self.vp = VirtualProcessor(memory, self)
        image = self.config.image or self.hv.image
        self.vp.memory.write(KERNEL_BASE, image)
        name = self.name.encode()[:15]
        flags = BOOTINFO_IC if self.config.integration_services and not self.is_root else 0
        self.vp.memory.write(BOOTINFO_GPA, struct.pack("<IIQQ16sI", BOOTINFO_MAGIC, 1, memory, self.hv.tsc_khz,
                                                        name, flags))
        self.vp.boot(KERNEL_BASE, BOOTINFO_GPA, BOOTINFO_GPA)
        self._wire_devices()
        if not self._attach_disk():
            return
        self.waiting_io = None
        self.halted = False
        self.stats_gpa = None
        self.last_kernel_fault = None
        self.synic_vectors.clear()
        self.synic = SynIC(self.vp.memory, self.synic_vectors.add)
        if self.vmbus is not None:
            self.vmbus.reset()
        self.booted_at = time.monotonic()
        self.state = PartitionState.RUNNING
        self.hv.count(self._prefix + "boots")

    def turn_off(self) -> None:
        self.turn_off_quietly()
        self.state = PartitionState.OFF

    def turn_off_quietly(self) -> None:
        self._fold_guest_counters()
        self.detach_disk()
        self._end_vp()
        self.waiting_io = None
        self.halted = False
        self.booted_at = None

    def reset(self) -> None:
        self.start()

    # --- clean shutdown through the Integration Services --------------------------------------------
    def _can_shut_down(self) -> bool:
        return self.services is not None and self.services.shutdown.channel is not None

    def shutdown_unavailable_reason(self) -> str:
        if self.is_root:
            return "the root partition is shut down from inside"
        if self.services is None:
            return f"the {self.hv.placement.label} design has no VMBus to ask it through"
        if not self.config.integration_services:
            return "Integration Services are not installed in it (turn them on in Settings and restart)"
        return "its guest has not opened the shutdown channel"

    def shut_down(self) -> None:
        assert self.services is not None
        if not self.services.shutdown.request_shutdown():
            raise ActionError(f"cannot shut down {self.name}: the shutdown request could not be sent")
        self.state = PartitionState.STOPPING
        booted = self.booted_at
        self.hv.after(SHUTDOWN_TIMEOUT, lambda: self._shutdown_overdue(booted))

    def _shutdown_overdue(self, booted: float | None) -> None:
        if self.state == PartitionState.STOPPING and self.booted_at == booted:
            self.state = PartitionState.RUNNING
            self.hv.note(self, f"did not shut down within {SHUTDOWN_TIMEOUT:.0f} s; still running (turn off works)")

    def guest_unloaded_vmbus(self) -> None:
        """The guest said goodbye to VMBus (UNLOAD): the last step of its clean shutdown."""
        if self.state == PartitionState.STOPPING:
            self.turn_off()
            self.hv.count(self._prefix + "clean_shutdowns")

    def pause(self) -> None:
        self.state = PartitionState.PAUSED

    def resume(self) -> None:
        self.state = PartitionState.RUNNING

    def crash(self, reason: str) -> None:
        """The partition stops for good; what else stops with it is the design's call (the root as host)."""
        self._fold_guest_counters()
        self.detach_disk()
        self.state = PartitionState.CRASHED
        self.reason = reason
        self._end_vp()
        self.waiting_io = None
        self.hv.count(self._prefix + "crashes")
        self.hv.partition_crashed(self)

    @property
    def stoppable(self) -> bool:
        """Running in some way: a crash of its host would take it down."""
        return self.state not in (PartitionState.OFF, PartitionState.CRASHED)

    def _end_vp(self) -> None:
        """Drop the VP. Turned off or crashed from inside one of its own exits (an UNLOAD hypercall
        during Shut down), it must not run on to the end of its slice: its next hypercall would
        find no partition behind it."""
        if self.vp is not None:
            self.vp.stop()
        self.vp = None
        self.synic.memory = None  # its memory is gone with it

    @property
    def runnable(self) -> bool:
        return (self.state in (PartitionState.RUNNING, PartitionState.STOPPING) and self.vp is not None
                and not self.halted
                and self.waiting_io is None)

    def uptime_ms(self) -> float:
        if self.booted_at is None or self.state in (PartitionState.OFF, PartitionState.CRASHED):
            return 0.0
        return (time.monotonic() - self.booted_at) * 1000

    def describe(self) -> dict:
        return {
            "name": self.name, "id": self.id, "role": self.config.role, "state": self.state.value,
            "reason": self.reason, "uptime_ms": round(self.uptime_ms(), 1),
            "integration_services": self.config.integration_services, "memory_mb": self.config.memory_mb,
            "actions": self.allowed_actions(), "disk": self._describe_disk(),
            **({"ic": self._ic_status(), "vmbus": self.vmbus.describe() if self.vmbus else []}
               if self.services is not None else {}),
        }

    def _ic_status(self) -> dict:
        assert self.services is not None
        heartbeat, ago = self.services.heartbeat.status()
        return {"heartbeat": heartbeat, "last_heartbeat_ms_ago": None if ago is None else round(ago, 1),
                "shutdown_available": self._can_shut_down(), "time_synced": self.services.timesync.synced}

    # --- guest counters (kept by the guest kernel in the page it registered) ----------------------
    def guest_counters(self) -> dict[str, int]:
        """Counters the guest kernel keeps in the page it registered (slot order: GUEST_STATS)."""
        values = dict(self._guest_base)
        if self.vp is not None and self.stats_gpa is not None:
            with contextlib.suppress(GuestMemoryError):  # a bad address the guest gave reads as nothing
                raw = self.vp.memory.read(self.stats_gpa, 8 * len(GUEST_STATS))
                for i, name in enumerate(GUEST_STATS):
                    values[name] += struct.unpack_from("<Q", raw, 8 * i)[0]
        return {self._prefix + name: value for name, value in values.items()}

    def _fold_guest_counters(self) -> None:
        """Keep guest-kept counts across reboots: counters only ever go up."""
        current = self.guest_counters()
        self._guest_base = {name: current[self._prefix + name] for name in GUEST_STATS}
        self.stats_gpa = None

