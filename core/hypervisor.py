"""The hypervisor: partitions, the CPUID it presents, hypercalls and intercept accounting.

CPUID is presented as Hyper-V does: CPUID.1:ECX[31] set, leaves 0x40000000+
naming "Microsoft Hv" and the "Hv#1" interface, and privilege flags in
0x40000003 (only the root partition holds CreatePartitions). Hypercalls use
the TLFS x64 convention (RCX input value, RDX/R8 input/output GPAs, status in RAX).
"""

from __future__ import annotations

import collections
import struct
import time

from unicorn import x86_const as X

from . import costs
from .cpu import VirtualProcessor, calibrate_tsc_khz, check_context_layout, host_cpuid
from .partition import Partition, PartitionConfig, PartitionState, kernel_image
from .telemetry import Telemetry

# Hypercall codes (TLFS) and the one hyperlab adds.
HVCALL_GET_PARTITION_PROPERTY = 0x0044
HVCALL_SET_PARTITION_PROPERTY = 0x0045
HVCALL_GET_PARTITION_ID = 0x0046
HVCALL_GET_NEXT_CHILD_PARTITION = 0x0047
HVCALL_HL_REGISTER_STATS = 0x8001  # hyperlab: where the guest kernel keeps its counters (not in Hyper-V)

HV_STATUS_SUCCESS = 0x0
HV_STATUS_INVALID_HYPERCALL_CODE = 0x2
HV_STATUS_INVALID_HYPERCALL_INPUT = 0x3
HV_STATUS_INVALID_ALIGNMENT = 0x4
HV_STATUS_INVALID_PARAMETER = 0x5
HV_STATUS_ACCESS_DENIED = 0x6
HV_STATUS_INVALID_PARTITION_STATE = 0x7
HV_STATUS_INVALID_PARTITION_ID = 0xD

PROPERTY_HL_STATE = 0x00FF0001
PROPERTY_HL_NAME = 0x00FF0002
STATE_CODES = ["off", "starting", "running", "paused", "stopping", "crashed"]

# CPUID 0x40000003 EBX: partition privilege flags (TLFS "HV_PARTITION_PRIVILEGE_MASK", high half).
PRIV_CREATE_PARTITIONS = 1 << 0
PRIV_ACCESS_PARTITION_ID = 1 << 1
PRIV_POST_MESSAGES = 1 << 4
PRIV_SIGNAL_EVENTS = 1 << 5
PRIV_CPU_MANAGEMENT = 1 << 12


def _sig(text: str) -> int:
    return struct.unpack("<I", text.encode())[0]


DESIGNS = ("microkernel", "monolithic")


class Hypervisor:
    """Owns the partitions of one lab. Everything here runs on the scheduler thread."""

    def __init__(self, configs: list[PartitionConfig], design: str = "microkernel",
                 telemetry: Telemetry | None = None, tsc_khz: int | None = None) -> None:
        if design not in DESIGNS:
            raise ValueError(f"unknown design {design!r}; choose one of {', '.join(DESIGNS)}")
        check_context_layout()
        self.design = design
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
        self._leaf1 = host_cpuid(1)

    # --- accounting --------------------------------------------------------------------------------
    def count(self, name: str, n: float = 1) -> None:
        self.telemetry.counters[name] += n

    def record(self, p: Partition, source: str, target: str, reason: str, measured_us: float, cost: str) -> None:
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
        if 0x40000004 <= leaf <= 0x4000000A:
            return (0, 0, 0, 0)
        return None

    # --- hypercalls ---------------------------------------------------------------------------------
    def hypercall(self, p: Partition, vp: VirtualProcessor) -> int:
        control = vp.reg(X.UC_X86_REG_RCX)
        code = control & 0xFFFF
        in_gpa = vp.reg(X.UC_X86_REG_RDX)
        out_gpa = vp.reg(X.UC_X86_REG_R8)
        self.count(f"{p.name}.hypercalls.total")
        handler = {
            HVCALL_GET_PARTITION_ID: self._hc_get_partition_id,
            HVCALL_GET_NEXT_CHILD_PARTITION: self._hc_get_next_child,
            HVCALL_GET_PARTITION_PROPERTY: self._hc_get_property,
            HVCALL_SET_PARTITION_PROPERTY: self._hc_set_property,
            HVCALL_HL_REGISTER_STATS: self._hc_register_stats,
        }.get(code)
        if handler is None:
            self.note(p, f"unknown hypercall code {code:#06x}")
            return HV_STATUS_INVALID_HYPERCALL_CODE
        try:
            status = handler(p, vp, in_gpa, out_gpa)
        except _BadGpa:
            status = HV_STATUS_INVALID_PARAMETER
        if status == HV_STATUS_ACCESS_DENIED:
            self.count(f"{p.name}.hypercalls.denied")
        return status

    def _read_input(self, vp: VirtualProcessor, gpa: int, n: int) -> bytes:
        if gpa % 8 or (gpa & 0xFFF) + n > 0x1000 or gpa + n > vp.memory.size:
            raise _BadGpa
        return vp.memory.read(gpa, n)

    def _write_output(self, vp: VirtualProcessor, gpa: int, data: bytes) -> None:
        if gpa % 8 or (gpa & 0xFFF) + len(data) > 0x1000 or gpa + len(data) > vp.memory.size:
            raise _BadGpa
        vp.memory.write(gpa, data)

    def _hc_get_partition_id(self, p: Partition, vp: VirtualProcessor, _in: int, out: int) -> int:
        self._write_output(vp, out, struct.pack("<Q", p.id))
        return HV_STATUS_SUCCESS

    def _hc_get_next_child(self, p: Partition, vp: VirtualProcessor, in_gpa: int, out: int) -> int:
        if not p.is_root:
            return HV_STATUS_ACCESS_DENIED
        _parent, previous = struct.unpack("<QQ", self._read_input(vp, in_gpa, 16))
        children = sorted(c.id for c in self.partitions.values() if not c.is_root)
        following = [c for c in children if c > previous]
        self._write_output(vp, out, struct.pack("<Q", following[0] if following else 0))
        return HV_STATUS_SUCCESS

    def _child(self, partition_id: int) -> Partition | None:
        child = self.by_id.get(partition_id)
        return child if child is not None and not child.is_root else None

    def _hc_get_property(self, p: Partition, vp: VirtualProcessor, in_gpa: int, out: int) -> int:
        if not p.is_root:
            return HV_STATUS_ACCESS_DENIED
        partition_id, prop, _ = struct.unpack("<QII", self._read_input(vp, in_gpa, 16))
        child = self._child(partition_id)
        if child is None:
            return HV_STATUS_INVALID_PARTITION_ID
        if prop == PROPERTY_HL_STATE:
            value = STATE_CODES.index(child.state.value)
        elif prop == PROPERTY_HL_NAME:
            value = struct.unpack("<Q", child.name.encode()[:8].ljust(8, b"\0"))[0]
        else:
            return HV_STATUS_INVALID_PARAMETER
        self._write_output(vp, out, struct.pack("<Q", value))
        return HV_STATUS_SUCCESS

    def _hc_set_property(self, p: Partition, vp: VirtualProcessor, in_gpa: int, _out: int) -> int:
        if not p.is_root:
            return HV_STATUS_ACCESS_DENIED
        partition_id, prop, _, value = struct.unpack("<QIIQ", self._read_input(vp, in_gpa, 24))
        child = self._child(partition_id)
        if child is None:
            return HV_STATUS_INVALID_PARTITION_ID
        if prop != PROPERTY_HL_STATE or value not in (0, 2):
            return HV_STATUS_INVALID_PARAMETER
        if value == 2:
            if child.state not in (PartitionState.OFF, PartitionState.CRASHED):
                return HV_STATUS_INVALID_PARTITION_STATE
            child.start()
        else:
            if child.state == PartitionState.OFF:
                return HV_STATUS_INVALID_PARTITION_STATE
            child.turn_off()
        self.count(f"{p.name}.hypercalls.partition_management")
        return HV_STATUS_SUCCESS

    def _hc_register_stats(self, p: Partition, vp: VirtualProcessor, in_gpa: int, _out: int) -> int:
        (gpa,) = struct.unpack("<Q", self._read_input(vp, in_gpa, 8))
        if gpa % 8 or gpa + 8 > vp.memory.size:
            return HV_STATUS_INVALID_PARAMETER
        p.stats_gpa = gpa
        return HV_STATUS_SUCCESS

    # --- snapshots ---------------------------------------------------------------------------------
    def snapshot(self, transitions: int = 64) -> dict:
        return {
            "t": round(time.perf_counter() - self.telemetry.started, 3),
            "design": self.design,
            "partitions": {name: p.describe() for name, p in self.partitions.items()},
            "counters": self.counters(),
            "transitions": self.telemetry.recent_transitions(transitions),
            # Modelled costs are published figures for real hardware, never measured here: say whose.
            "cost_model": {kind: {"cycles": c.cycles, "source": c.source} for kind, c in costs.COSTS.items()},
            "notes": list(self.notes),
        }


class _BadGpa(Exception):
    """A hypercall named input/output memory that is misaligned, crosses a page or is outside RAM."""
