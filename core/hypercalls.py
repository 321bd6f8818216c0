"""Hypercalls: what a partition's kernel may ask of the hypervisor with ``vmcall``.

TLFS x64 convention: RCX is the input value (call code in bits 15:0, bit 16 "fast", rep count in
bits 43:32), RDX and R8 the GPAs of the input and output pages (for a fast call, RDX/R8 carry
the input itself); the result goes to RAX (status in bits 15:0, reps completed in bits 43:32).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unicorn import x86_const as X

from .partition import PartitionState
from .placement import FAILED
from .synic import SynicError
from .vmbus import messages as m
from .vmbus.messages import (
    HV_MESSAGE_PAYLOAD_BYTE_COUNT,
    HV_PARTITION_ID_SELF,
    HV_STATUS_ACCESS_DENIED,
    HV_STATUS_INVALID_CONNECTION_ID,
    HV_STATUS_INVALID_HYPERCALL_CODE,
    HV_STATUS_INVALID_HYPERCALL_INPUT,
    HV_STATUS_INVALID_PARAMETER,
    HV_STATUS_INVALID_PARTITION_STATE,
    HV_STATUS_SUCCESS,
    HV_VP_INDEX_SELF,
    HVCALL_GET_VP_REGISTERS,
    HVCALL_POST_MESSAGE,
    HVCALL_SET_VP_REGISTERS,
    HVCALL_SIGNAL_EVENT,
    VMBUS_MESSAGE_CONNECTION_ID,
)

if TYPE_CHECKING:
    from .cpu import VirtualProcessor
    from .hypervisor import Hypervisor
    from .partition import Partition
    from .vmbus.server import VmbusServer

HVCALL_NOTIFY_LONG_SPIN_WAIT = 0x0008
HVCALL_GET_PARTITION_PROPERTY = 0x0044
HVCALL_SET_PARTITION_PROPERTY = 0x0045
HVCALL_GET_PARTITION_ID = 0x0046
HVCALL_GET_NEXT_CHILD_PARTITION = 0x0047
HVCALL_HL_REGISTER_STATS = 0x8001  # hyperlab: where the guest kernel keeps its counters (not in Hyper-V)

HV_STATUS_INVALID_PARTITION_ID = 0xD
PROPERTY_HL_STATE = 0x00FF0001
PROPERTY_HL_NAME = 0x00FF0002
STATE_CODES = ["off", "starting", "running", "paused", "stopping", "crashed"]
POST_MESSAGE_MAX = HV_MESSAGE_PAYLOAD_BYTE_COUNT
REG_ASSOC_SIZE = 32  # u32 name, u32 pad, u64 pad, u128 value


class BadGpa(Exception):
    """Input/output memory that is misaligned, crosses a page or lies outside the partition's RAM."""


@dataclass(frozen=True, slots=True)
class HypercallInput:
    code: int
    fast: bool
    rep_count: int
    in_gpa: int   # for a fast call: the first input register (RDX)
    out_gpa: int  # for a fast call: the second input register (R8)


def _reps_done(status: int, reps: int) -> int:
    return status | (reps << 32)


class Hypercalls:
    """The hypercall dispatcher of one hypervisor."""

    def __init__(self, hv: Hypervisor) -> None:
        self.hv = hv
        self._handlers: dict[int, Callable[[Partition, VirtualProcessor, HypercallInput], int]] = {
            HVCALL_NOTIFY_LONG_SPIN_WAIT: self._notify_long_spin_wait,
            HVCALL_GET_PARTITION_ID: self._get_partition_id,
            HVCALL_GET_NEXT_CHILD_PARTITION: self._get_next_child,
            HVCALL_GET_PARTITION_PROPERTY: self._get_property,
            HVCALL_SET_PARTITION_PROPERTY: self._set_property,
            HVCALL_GET_VP_REGISTERS: self._get_vp_registers,
            HVCALL_SET_VP_REGISTERS: self._set_vp_registers,
            HVCALL_POST_MESSAGE: self._post_message,
            HVCALL_SIGNAL_EVENT: self._signal_event,
            HVCALL_HL_REGISTER_STATS: self._register_stats,
        }

    def dispatch(self, p: Partition, vp: VirtualProcessor) -> int:
        control = vp.reg(X.UC_X86_REG_RCX)
        call = HypercallInput(code=control & 0xFFFF, fast=bool(control & (1 << 16)),
                              rep_count=(control >> 32) & 0xFFF, in_gpa=vp.reg(X.UC_X86_REG_RDX),
                              out_gpa=vp.reg(X.UC_X86_REG_R8))
        self.hv.count(f"{p.name}.hypercalls.total")
        if p.vp is not vp:  # the partition was turned off under this VP (it stops at once)
            return HV_STATUS_INVALID_PARTITION_STATE
        handler = self._handlers.get(call.code)
        if handler is None:
            self.hv.note(p, f"unknown hypercall code {call.code:#06x}")
            return HV_STATUS_INVALID_HYPERCALL_CODE
        try:
            status = handler(p, vp, call)
        except (BadGpa, m.MessageError):  # input outside its page, or not what the message class accepts
            status = HV_STATUS_INVALID_PARAMETER
        if status & 0xFFFF == HV_STATUS_ACCESS_DENIED:
            self.hv.count(f"{p.name}.hypercalls.denied")
        return status

    # --- guest memory for hypercall input and output ------------------------------------------------
    @staticmethod
    def read_input(vp: VirtualProcessor, gpa: int, n: int) -> bytes:
        if gpa % 8 or (gpa & 0xFFF) + n > 0x1000 or gpa + n > vp.memory.size:
            raise BadGpa
        return vp.memory.read(gpa, n)

    @staticmethod
    def write_output(vp: VirtualProcessor, gpa: int, data: bytes) -> None:
        if gpa % 8 or (gpa & 0xFFF) + len(data) > 0x1000 or gpa + len(data) > vp.memory.size:
            raise BadGpa
        vp.memory.write(gpa, data)

    # --- scheduling -------------------------------------------------------------------------------------
    def _notify_long_spin_wait(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        """The guest has spun a long time waiting for something (here: the root's VSPs during its
        VMBus set-up): end its time slice, so what it waits for can run."""
        vp.yield_requested = True
        self.hv.count(f"{p.name}.hypercalls.spin_wait_yields")
        return HV_STATUS_SUCCESS

    # --- partitions --------------------------------------------------------------------------------
    def _get_partition_id(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        self.write_output(vp, call.out_gpa, struct.pack("<Q", p.id))
        return HV_STATUS_SUCCESS

    def _get_next_child(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        if not p.is_root:
            return HV_STATUS_ACCESS_DENIED
        _parent, previous = struct.unpack("<QQ", self.read_input(vp, call.in_gpa, 16))
        children = sorted(c.id for c in self.hv.partitions.values() if not c.is_root)
        following = [c for c in children if c > previous]
        self.write_output(vp, call.out_gpa, struct.pack("<Q", following[0] if following else 0))
        return HV_STATUS_SUCCESS

    def _child(self, partition_id: int) -> Partition | None:
        child = self.hv.by_id.get(partition_id)
        return child if child is not None and not child.is_root else None

    def _get_property(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        if not p.is_root:
            return HV_STATUS_ACCESS_DENIED
        partition_id, prop, _ = struct.unpack("<QII", self.read_input(vp, call.in_gpa, 16))
        child = self._child(partition_id)
        if child is None:
            return HV_STATUS_INVALID_PARTITION_ID
        if prop == PROPERTY_HL_STATE:
            value = STATE_CODES.index(child.state.value)
        elif prop == PROPERTY_HL_NAME:
            value = struct.unpack("<Q", child.name.encode()[:8].ljust(8, b"\0"))[0]
        else:
            return HV_STATUS_INVALID_PARAMETER
        self.write_output(vp, call.out_gpa, struct.pack("<Q", value))
        return HV_STATUS_SUCCESS

    def _set_property(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        if not p.is_root:
            return HV_STATUS_ACCESS_DENIED
        partition_id, prop, _, value = struct.unpack("<QIIQ", self.read_input(vp, call.in_gpa, 24))
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
        self.hv.count(f"{p.name}.hypercalls.partition_management")
        return HV_STATUS_SUCCESS

    def _register_stats(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        (gpa,) = struct.unpack("<Q", self.read_input(vp, call.in_gpa, 8))
        if gpa % 8 or gpa + 8 > vp.memory.size:
            return HV_STATUS_INVALID_PARAMETER
        p.stats_gpa = gpa
        return HV_STATUS_SUCCESS

    # --- SynIC registers (docs/vmbus.md §1); the input pages parsed by the message classes ------------
    def _vp_registers_refused(self, vp: VirtualProcessor, call: HypercallInput) -> int | None:
        header = m.HvSetVpRegistersInput.unpack(self.read_input(vp, call.in_gpa, 16), 0)  # the same 16 bytes
        if header.partition_id != HV_PARTITION_ID_SELF or header.vp_index not in (HV_VP_INDEX_SELF, 0):
            return HV_STATUS_ACCESS_DENIED  # a partition may only touch its own VP
        if call.rep_count == 0 or 16 + call.rep_count * REG_ASSOC_SIZE > 0x1000:
            return HV_STATUS_INVALID_HYPERCALL_INPUT
        return None

    def _set_vp_registers(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        refused = self._vp_registers_refused(vp, call)
        if refused is not None:
            return refused
        request = m.HvSetVpRegistersInput.unpack(
            self.read_input(vp, call.in_gpa, 16 + call.rep_count * REG_ASSOC_SIZE), call.rep_count)
        for i, element in enumerate(request.elements):
            try:
                p.synic.set_register(element.name, element.value_low)
            except SynicError as e:
                self.hv.note(p, f"HvCallSetVpRegisters: {e}")
                return _reps_done(HV_STATUS_INVALID_PARAMETER, i)
        return _reps_done(HV_STATUS_SUCCESS, call.rep_count)

    def _get_vp_registers(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        refused = self._vp_registers_refused(vp, call)
        if refused is not None:
            return refused
        request = m.HvGetVpRegistersInput.unpack(self.read_input(vp, call.in_gpa, 16 + 4 * call.rep_count),
                                                 call.rep_count)
        values: list[tuple[int, int]] = []
        for i, name in enumerate(request.names):
            try:
                values.append((p.synic.get_register(name), 0))
            except SynicError as e:
                self.hv.note(p, f"HvCallGetVpRegisters: {e}")
                self.write_output(vp, call.out_gpa, m.pack_vp_register_values(values))
                return _reps_done(HV_STATUS_INVALID_PARAMETER, i)
        self.write_output(vp, call.out_gpa, m.pack_vp_register_values(values))
        return _reps_done(HV_STATUS_SUCCESS, call.rep_count)

    # --- VMBus transport: messages and events ------------------------------------------------------------
    def _post_message(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        # hv_input_post_message is 256 bytes; read what of it lies in the input page (the payload may be short).
        available = min(16 + POST_MESSAGE_MAX, 0x1000 - (call.in_gpa & 0xFFF))
        message = m.HvInputPostMessage.unpack(self.read_input(vp, call.in_gpa, available))  # MessageError: 240+
        if message.message_type == 0:
            return HV_STATUS_INVALID_PARAMETER
        server = p.vmbus
        if message.connectionid != VMBUS_MESSAGE_CONNECTION_ID or server is None:
            return HV_STATUS_INVALID_CONNECTION_ID
        return self._to_vmbus(server, server.post_message, message.payload)

    def _signal_event(self, p: Partition, vp: VirtualProcessor, call: HypercallInput) -> int:
        event = (m.HvInputSignalEvent.from_register(call.in_gpa) if call.fast
                 else m.HvInputSignalEvent.unpack(self.read_input(vp, call.in_gpa, 8)))
        server = p.vmbus
        if server is None:
            return HV_STATUS_INVALID_CONNECTION_ID
        return self._to_vmbus(server, server.signal, event.connectionid, event.flag_number)

    def _to_vmbus(self, server: VmbusServer, fn: Callable[..., int], *args: object) -> int:
        """Hand a guest's message or signal to the VMBus server, through the placement's containment."""
        placement = self.hv.placement
        status = placement.contain(lambda: placement.vsp_component(server, None), fn, *args)
        return HV_STATUS_INVALID_PARAMETER if status is FAILED else status
