"""The hypervisor: partitions, the CPUID it presents, hypercalls and intercept accounting.

CPUID is presented as Hyper-V does: CPUID.1:ECX[31] set, leaves 0x40000000+
naming "Microsoft Hv" and the "Hv#1" interface, and privilege flags in
0x40000003 (only the root partition holds CreatePartitions). Hypercalls use
the TLFS x64 convention (RCX input value, RDX/R8 input/output GPAs, status in RAX).
"""

from __future__ import annotations

import collections
import heapq
import struct
import time
from collections.abc import Callable

from . import costs
from .cpu import VirtualProcessor, calibrate_tsc_khz, check_context_layout, host_cpuid
from .hypercalls import Hypercalls
from .partition import Partition, PartitionConfig, PartitionState, kernel_image
from .placement import Design, parse_design, placement_for
from .telemetry import Telemetry
from .worker import RootWork

# CPUID 0x40000003 EBX: partition privilege flags (TLFS "HV_PARTITION_PRIVILEGE_MASK", high half).
PRIV_CREATE_PARTITIONS = 1 << 0
PRIV_ACCESS_PARTITION_ID = 1 << 1
PRIV_POST_MESSAGES = 1 << 4
PRIV_SIGNAL_EVENTS = 1 << 5
PRIV_CPU_MANAGEMENT = 1 << 12


def _sig(text: str) -> int:
    return struct.unpack("<I", text.encode())[0]


class Hypervisor:
    """Owns the partitions of one lab. Everything here runs on the scheduler thread."""

    def __init__(self, configs: list[PartitionConfig], design: Design | str = Design.MICROKERNEL,
                 telemetry: Telemetry | None = None, tsc_khz: int | None = None) -> None:
        self.design = parse_design(design)
        check_context_layout()
        # Where every component runs, how I/O travels, what a fault takes down: decided there alone.
        self.placement = placement_for(self, self.design)
        self.telemetry = telemetry or Telemetry()
        self.image = kernel_image()
        self.tsc_khz = tsc_khz or calibrate_tsc_khz()
        self.notes: collections.deque[str] = collections.deque(maxlen=32)
        self.partitions: dict[str, Partition] = {}
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ValueError("partition names must be unique")
        if sum(c.role == "root" for c in configs) != 1:
            raise ValueError("a lab has exactly one root partition")
        for i, config in enumerate(sorted(configs, key=lambda c: c.role != "root"), start=1):
            self.partitions[config.name] = Partition(self, config, i)
        self.by_id = {p.id: p for p in self.partitions.values()}
        self.root = next(p for p in self.partitions.values() if p.is_root)
        # Work for the root's host services (worker processes, VMM applications, VSPs), as the
        # placement queues it: each item has serve(root) and runs on the root's time.
        self.root_work: collections.deque[RootWork] = collections.deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self._leaf1 = host_cpuid(1)
        self.hypercalls = Hypercalls(self)

    # --- accounting --------------------------------------------------------------------------------
    def count(self, name: str, n: float = 1) -> None:
        self.telemetry.counters[name] += n

    def record(self, p: Partition, source: str, target: str, reason: str, measured_us: float | None,
               cost: str | None) -> None:
        self.telemetry.transition(p.name, source, target, reason, measured_us, cost)

    def note(self, p: Partition, text: str) -> None:
        """Something a guest did that the hypervisor ignored, kept with its reason."""
        entry = f"{p.name}: {text}"
        if not self.notes or self.notes[-1] != entry:
            self.notes.append(entry)

    def counters(self) -> dict[str, float]:
        out = dict(self.telemetry.counters)
        for p in self.partitions.values():
            out.update(p.guest_counters())
        return out

    def partition_crashed(self, p: Partition) -> None:
        self.placement.partition_crashed(p)

    def serve_root_work(self) -> int:
        """Run the root's host services (worker processes) on the root's time; a paused root serves none."""
        root = self.root
        if root.state != PartitionState.RUNNING or not self.root_work:
            return 0
        served = 0
        while self.root_work and root.state == PartitionState.RUNNING:
            item = self.root_work.popleft()
            self.placement.contain(lambda item=item: item.component(self.placement), item.serve, root)
            served += 1
        return served

    # --- timers (heartbeats, time sync, shutdown deadlines), run by the scheduler --------------------
    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (time.monotonic() + seconds, self._timer_seq, fn))

    def run_timers(self) -> float | None:
        """Run what is due; return the seconds until the next timer (None: no timers)."""
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            self.placement.contain(self.placement.core_component, fn)  # a VSP's timer contains itself
        return max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else None

    # --- events from guests -----------------------------------------------------------------------
    def guest_panicked(self, p: Partition) -> None:
        """The guest kernel bugchecked and said so on the panic port."""
        vp = p.vp
        cause = p.last_kernel_fault or "a fault in kernel mode"
        p.crash(f"bugcheck: the guest kernel stopped itself after a {cause} (see its console)")
        if vp is not None:
            vp.uc.emu_stop()

    # --- CPUID --------------------------------------------------------------------------------------
    def cpuid(self, p: Partition, leaf: int, subleaf: int) -> tuple[int, int, int, int] | None:
        if not self.placement.hypervisor_present:
            # Hosted: the real CPU answers, and it runs no hypervisor (the emulator's own CPU model
            # would claim one: QEMU sets the bit and a "TCGTCGTCGTCG" leaf).
            if leaf == 1:
                a, b, c, d = self._leaf1
                return a, b, c & ~(1 << 31), d
            return (0, 0, 0, 0) if 0x40000000 <= leaf <= 0x4FFFFFFF else None
        if leaf == 1:
            a, b, c, d = self._leaf1
            return a, b, c | (1 << 31), d  # "a hypervisor is present"
        if leaf == 0x40000000:
            return (0x4000000A, _sig("Micr"), _sig("osof"), _sig("t Hv"))
        if leaf == 0x40000001:
            return (_sig("Hv#1"), 0, 0, 0)
        if leaf == 0x40000002:
            return (1, (0 << 16) | 1, 0, 0)  # build 1, version 0.1
        if leaf == 0x40000003:
            privileges = PRIV_ACCESS_PARTITION_ID | PRIV_POST_MESSAGES | PRIV_SIGNAL_EVENTS
            if p.is_root:
                privileges |= PRIV_CREATE_PARTITIONS | PRIV_CPU_MANAGEMENT
            return (0, privileges, 0, 0)
        if leaf == 0x40000004:
            return (0, 0x40, 0, 0)  # recommendations: EBX = spins before HvCallNotifyLongSpinWait
        if 0x40000005 <= leaf <= 0x4000000A:
            return (0, 0, 0, 0)
        return None

    # --- hypercalls ---------------------------------------------------------------------------------
    def hypercall(self, p: Partition, vp: VirtualProcessor) -> int:
        return self.hypercalls.dispatch(p, vp)

    # --- snapshots ---------------------------------------------------------------------------------
    def snapshot(self, transitions: int = 64) -> dict:
        return {
            "t": round(time.perf_counter() - self.telemetry.started, 3),
            "design": self.design.value,
            "partitions": {name: p.describe() for name, p in self.partitions.items()},
            "counters": self.counters(),
            "transitions": self.telemetry.recent_transitions(transitions),
            "hops": self.telemetry.hop_counts(),
            # Modelled costs are published figures for real hardware, never measured here: say whose.
            "cost_model": {kind: {"cycles": c.cycles, "source": c.source} for kind, c in costs.COSTS.items()},
            "notes": list(self.notes),
        }


