"""The synthetic interrupt controller (SynIC) of a partition's VP, as the Hyper-V TLFS describes it.

The guest enables it by setting SCONTROL, the SIMP (message page) and SIEFP (event flags page)
and a SINT's vector — with ``HvCallSetVpRegisters``, as Linux does on arm64, because Unicorn
cannot trap ``wrmsr`` (docs/vmbus.md §1). The hypervisor then delivers:

* messages into slot *n* of the message page, one at a time per SINT: a message waits in a queue
  while the slot is occupied, and the guest's write to EOM lets the next one in;
* events by setting a bit in SINT *n*'s 2048 event flags;

each followed by an interrupt at the SINT's vector.
"""

from __future__ import annotations

import collections
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .partition import Partition

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
)

QUEUE_LIMIT = 64  # messages waiting per SINT before posting fails with INSUFFICIENT_BUFFERS


class SynicError(Exception):
    """A register or value the SynIC does not accept (-> HV_STATUS_INVALID_PARAMETER)."""


class SynIC:
    def __init__(self, partition: Partition) -> None:
        self.partition = partition
        self.scontrol = 0
        self.simp = 0
        self.siefp = 0
        self.sint = [HV_SYNIC_SINT_MASKED] * HV_SYNIC_SINT_COUNT
        self.queues: list[collections.deque[tuple[int, bytes, int]]] = [collections.deque() for _ in range(HV_SYNIC_SINT_COUNT)]
        self.pending_vectors: set[int] = set()
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
        vp = self.partition.vp
        if value & 1 and (vp is None or (value & ~0xFFF) + 0x1000 > vp.memory.size):
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
        vp = self.partition.vp
        queue = self.queues[sint]
        if page is None or vp is None or not queue:
            return
        slot = page + sint * HV_MESSAGE_SIZE
        mem = vp.memory
        if struct.unpack("<I", mem.read(slot, 4))[0] != HVMSG_NONE:
            # Occupied: tell the guest more is waiting, so it writes EOM when it frees the slot.
            flags = mem.read(slot + 5, 1)[0]
            mem.write(slot + 5, bytes((flags | HV_MESSAGE_FLAG_PENDING,)))
            return
        message_type, payload, port = queue.popleft()
        flags = HV_MESSAGE_FLAG_PENDING if queue else 0
        mem.write(slot, struct.pack("<IBBHQ", message_type, len(payload), flags, 0, port)
                  + payload.ljust(HV_MESSAGE_PAYLOAD_BYTE_COUNT, b"\0"))
        self.messages_delivered += 1
        self._raise(sint)

    # --- events ----------------------------------------------------------------------------------------
    def signal_event(self, sint: int, flag: int) -> bool:
        """Set event flag `flag` of SINT n and interrupt; False if the guest has no event page yet."""
        page = self._page(self.siefp)
        vp = self.partition.vp
        if page is None or vp is None or not 0 <= flag < 2048:
            return False
        addr = page + sint * HV_MESSAGE_SIZE + flag // 8
        byte = vp.memory.read(addr, 1)[0]
        vp.memory.write(addr, bytes((byte | (1 << (flag % 8)),)))
        self._raise(sint)
        return True

    def _raise(self, sint: int) -> None:
        value = self.sint[sint]
        if not value & HV_SYNIC_SINT_MASKED:
            self.pending_vectors.add(value & 0xFF)

    def take_vector(self) -> int | None:
        """The highest pending synthetic interrupt vector, which the caller now injects."""
        if not self.pending_vectors:
            return None
        vector = max(self.pending_vectors)
        self.pending_vectors.discard(vector)
        return vector
