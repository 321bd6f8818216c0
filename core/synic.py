"""The synthetic interrupt controller (SynIC) of a partition's VP, as the Hyper-V TLFS describes it.

The guest enables it by setting SCONTROL, the SIMP (message page) and SIEFP (event flags page)
and a SINT's vector — with ``HvCallSetVpRegisters``, as Linux does on arm64, because Unicorn
cannot trap ``wrmsr`` (docs/vmbus.md §1). The hypervisor then delivers:

* messages into slot *n* of the message page, one at a time per SINT: a message waits in a queue
  while the slot is occupied, and the guest's write to EOM lets the next one in;
* events by setting a bit in SINT *n*'s 2048 event flags;

each followed by an interrupt at the SINT's vector, raised through the callback it was given: the
SynIC knows the partition's memory and how to raise a vector, nothing else of it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .memory import GuestMemory

from .vmbus.messages import (
    HV_MESSAGE_FLAG_PENDING,
    HV_MESSAGE_PAYLOAD_BYTE_COUNT,
    HV_MESSAGE_SIZE,
    HV_REGISTER_EOM,
    HV_REGISTER_SCONTROL,
    HV_REGISTER_SIEFP,
    HV_REGISTER_SIMP,
    HV_REGISTER_SINT0,
    HV_SYNIC_SINT_COUNT,
    HV_SYNIC_SINT_MASKED,
    HVMSG_NONE,
    HvMessage,
)

QUEUE_LIMIT = 64  # messages waiting per SINT before posting fails with INSUFFICIENT_BUFFERS


class SynicError(Exception):
    """A register or value the SynIC does not accept (-> HV_STATUS_INVALID_PARAMETER)."""


class SynIC:
    def __init__(self, memory: GuestMemory | None, raise_vector: Callable[[int], None]) -> None:
        self.memory = memory  # None while the partition is off
        self._raise_vector = raise_vector
        self.scontrol = 0
        self.simp = 0
        self.siefp = 0
        self.sint = [HV_SYNIC_SINT_MASKED] * HV_SYNIC_SINT_COUNT
        self.queues: list[collections.deque[tuple[int, bytes, int]]] = [collections.deque() for _ in range(HV_SYNIC_SINT_COUNT)]
        self.messages_delivered = 0

    # --- registers ----------------------------------------------------------------------------------
    def set_register(self, name: int, value: int) -> None:
        if HV_REGISTER_SINT0 <= name < HV_REGISTER_SINT0 + HV_SYNIC_SINT_COUNT:
            vector = value & 0xFF
            if not value & HV_SYNIC_SINT_MASKED and vector < 0x10:
                raise SynicError(f"SINT vector {vector:#x} is reserved for exceptions")
            self.sint[name - HV_REGISTER_SINT0] = value
        elif name == HV_REGISTER_SCONTROL:
            self.scontrol = value
        elif name == HV_REGISTER_SIMP:
            self._check_page(value, "SIMP")
            self.simp = value
        elif name == HV_REGISTER_SIEFP:
            self._check_page(value, "SIEFP")
            self.siefp = value
        elif name == HV_REGISTER_EOM:
            self.end_of_message()
        else:
            raise SynicError(f"unknown synthetic register {name:#x}")

    def get_register(self, name: int) -> int:
        if HV_REGISTER_SINT0 <= name < HV_REGISTER_SINT0 + HV_SYNIC_SINT_COUNT:
            return self.sint[name - HV_REGISTER_SINT0]
        values = {HV_REGISTER_SCONTROL: self.scontrol, HV_REGISTER_SIMP: self.simp, HV_REGISTER_SIEFP: self.siefp,
                  HV_REGISTER_EOM: 0}
        if name not in values:
            raise SynicError(f"unknown synthetic register {name:#x}")
        return values[name]

    def _check_page(self, value: int, what: str) -> None:
        mem = self.memory
        if value & 1 and (mem is None or (value & ~0xFFF) + 0x1000 > mem.size):
            raise SynicError(f"{what} page {value & ~0xFFF:#x} is outside the partition's memory")

    @property
    def enabled(self) -> bool:
        return bool(self.scontrol & 1)

    def _page(self, reg: int) -> int | None:
        return reg & ~0xFFF if self.enabled and reg & 1 else None

    # --- messages ------------------------------------------------------------------------------------
    def post(self, sint: int, message_type: int, payload: bytes, port: int = 0) -> bool:
        """Queue a message for SINT n; False if the queue is full. Delivered as soon as the slot is free."""
        if len(payload) > HV_MESSAGE_PAYLOAD_BYTE_COUNT:
            raise SynicError(f"message payload of {len(payload)} bytes exceeds {HV_MESSAGE_PAYLOAD_BYTE_COUNT}")
        queue = self.queues[sint]
        if len(queue) >= QUEUE_LIMIT:
            return False
        queue.append((message_type, payload, port))
        self._deliver(sint)
        return True

    def end_of_message(self) -> None:
        for sint in range(HV_SYNIC_SINT_COUNT):
            if self.queues[sint]:
                self._deliver(sint)

    def _deliver(self, sint: int) -> None:
        page = self._page(self.simp)
        mem = self.memory
        queue = self.queues[sint]
        if page is None or mem is None or not queue:
            return
        slot = page + sint * HV_MESSAGE_SIZE
        if HvMessage.slot_type(mem.read(slot, 16)) != HVMSG_NONE:
            # Occupied: tell the guest more is waiting, so it writes EOM when it frees the slot.
            flags = mem.read(slot + 5, 1)[0]
            mem.write(slot + 5, bytes((flags | HV_MESSAGE_FLAG_PENDING,)))
            return
        message_type, payload, port = queue.popleft()
        flags = HV_MESSAGE_FLAG_PENDING if queue else 0
        mem.write(slot, HvMessage(message_type, payload, port, flags).pack())
        self.messages_delivered += 1
        self._raise(sint)

    # --- events ----------------------------------------------------------------------------------------
    def signal_event(self, sint: int, flag: int) -> bool:
        """Set event flag `flag` of SINT n and interrupt; False if the guest has no event page yet."""
        page = self._page(self.siefp)
        mem = self.memory
        if page is None or mem is None or not 0 <= flag < 2048:
            return False
        addr = page + sint * HV_MESSAGE_SIZE + flag // 8
        byte = mem.read(addr, 1)[0]
        mem.write(addr, bytes((byte | (1 << (flag % 8)),)))
        self._raise(sint)
        return True

    def _raise(self, sint: int) -> None:
        value = self.sint[sint]
        if not value & HV_SYNIC_SINT_MASKED:
            self._raise_vector(value & 0xFF)
