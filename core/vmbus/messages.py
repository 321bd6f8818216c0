"""VMBus wire formats, packed and unpacked exactly as the guest's C structs lay them out.

What travels where (docs/vmbus.md):

* §1-2 hypercall inputs: ``HvCallPostMessage``'s ``hv_input_post_message``, ``HvCallSignalEvent``'s
  fast input, ``HvCallSet/GetVpRegisters``' header + elements; and the 256-byte SynIC message slot
  (``struct hv_message``) the hypervisor writes into the guest's message page.
* §3 channel management messages (``vmbus_channel_*``): the payload of a PostMessage or a slot.
* §5 storage: ``vstor_packet`` and ``vmscsi_request`` inside ring packets, READ(10)/WRITE(10) CDBs.
* §7 integration services: ``vmbuspipe_hdr`` + ``icmsg_hdr`` and the heartbeat, shutdown and
  time-sync bodies.

Every class is a dataclass with ``pack() -> bytes`` and ``unpack(data)``; names are Linux's
(``include/linux/hyperv.h``, ``drivers/scsi/storvsc_drv.c``) so a student can put the two side by
side. All bytes come from a guest that may be hostile, so ``unpack`` raises :class:`MessageError`
with a reason for anything too short or impossible, and nothing else. As Linux does
(``channel_message_table[].min_payload_len``), a message *longer* than its struct is accepted and
the extra bytes ignored: slots and pages are bigger than the messages in them.

Where docs/vmbus.md's stated sizes and its field lists disagree, the field lists (and Linux) win:
OFFERCHANNEL is 196 bytes with its header, ``vmscsi_request`` 36 (its CDB is a 20-byte union).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

from . import ring as _ring
from .ring import GpaRange, parse_gpa_ranges

# Re-exported so a VSP needs one import for everything on the wire.
PAGE_SIZE = _ring.PAGE_SIZE
VM_PKT_DATA_INBAND = _ring.VM_PKT_DATA_INBAND
VM_PKT_DATA_USING_GPADL = _ring.VM_PKT_DATA_USING_GPADL
VM_PKT_DATA_USING_GPA_DIRECT = _ring.VM_PKT_DATA_USING_GPA_DIRECT
VM_PKT_COMP = _ring.VM_PKT_COMP
VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED = _ring.VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED


class MessageError(Exception):
    """Bytes that are not the message they claim to be (too short, impossible value, unknown type)."""


# --- small helpers ------------------------------------------------------------------------------------
def _pack(st: struct.Struct, what: str, *values: Any) -> bytes:
    try:
        return st.pack(*values)
    except struct.error as e:
        raise MessageError(f"cannot pack {what}: {e}") from None


def _unpack(st: struct.Struct, data: bytes, offset: int, what: str) -> tuple[Any, ...]:
    if len(data) < offset + st.size:
        raise MessageError(f"{what} needs {offset + st.size} bytes, got {len(data)}")
    return st.unpack_from(data, offset)


def _fixed_bytes(value: bytes, size: int, what: str) -> bytes:
    """A byte array field of the C struct: at most ``size`` bytes, zero-padded."""
    if len(value) > size:
        raise MessageError(f"{what} holds at most {size} bytes, not {len(value)}")
    return bytes(value) + bytes(size - len(value))


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalising a field of a frozen dataclass in __post_init__


# ====================================================================================================
# Hypercalls and the SynIC (docs/vmbus.md §1-2)
# ====================================================================================================
HVCALL_GET_VP_REGISTERS = 0x0050
HVCALL_SET_VP_REGISTERS = 0x0051
HVCALL_POST_MESSAGE = 0x005C
HVCALL_SIGNAL_EVENT = 0x005D

HV_HYPERCALL_FAST_BIT = 1 << 16
HV_HYPERCALL_REP_COMP_OFFSET = 32  # rep count in the input value, reps completed in the result
HV_HYPERCALL_REP_START_OFFSET = 48

HV_STATUS_SUCCESS = 0x0
HV_STATUS_INVALID_HYPERCALL_CODE = 0x2
HV_STATUS_INVALID_HYPERCALL_INPUT = 0x3
HV_STATUS_INVALID_ALIGNMENT = 0x4
HV_STATUS_INVALID_PARAMETER = 0x5
HV_STATUS_ACCESS_DENIED = 0x6
HV_STATUS_INVALID_PARTITION_STATE = 0x7
HV_STATUS_INVALID_CONNECTION_ID = 0x12
HV_STATUS_INSUFFICIENT_BUFFERS = 0x13

HV_PARTITION_ID_SELF = 0xFFFF_FFFF_FFFF_FFFF
HV_VP_INDEX_SELF = 0xFFFF_FFFE

# SynIC registers as arm64 Linux names them (set with HvCallSetVpRegisters, docs/vmbus.md §1).
HV_REGISTER_SINT0 = 0x000A0000
HV_REGISTER_SCONTROL = 0x000A0010
HV_REGISTER_SIEFP = 0x000A0012
HV_REGISTER_SIMP = 0x000A0013
HV_REGISTER_EOM = 0x000A0014
HV_SYNIC_SINT_COUNT = 16
HV_SYNIC_SINT_VECTOR_MASK = 0xFF
HV_SYNIC_SINT_MASKED = 1 << 16
HV_SYNIC_SINT_AUTO_EOI = 1 << 17

HV_MESSAGE_SIZE = 256
HV_MESSAGE_PAYLOAD_BYTE_COUNT = 240
HV_MESSAGE_PAYLOAD_QWORD_COUNT = 30
HVMSG_NONE = 0x00000000
HV_MESSAGE_VMBUS = 0x00000001  # QEMU's name; Linux passes a literal 1 to hv_post_message
HV_MESSAGE_FLAG_PENDING = 0x1  # hv_message_flags.msg_pending: write EOM after freeing the slot

VMBUS_MESSAGE_CONNECTION_ID = 1
VMBUS_MESSAGE_SINT = 2
HYPERLAB_VMBUS_VECTOR = 0x30  # hyperlab's IDT has 64 vectors


def hypercall_control(code: int, rep_count: int = 0, fast: bool = False, rep_start: int = 0) -> int:
    """The hypercall input value (RCX): code 15:0, fast 16, rep count 43:32, rep start 59:48."""
    if not 0 <= code <= 0xFFFF or not 0 <= rep_count <= 0xFFF or not 0 <= rep_start <= 0xFFF:
        raise MessageError(f"hypercall control out of range: code {code}, rep_count {rep_count}, rep_start {rep_start}")
    return (
        code
        | (HV_HYPERCALL_FAST_BIT if fast else 0)
        | (rep_count << HV_HYPERCALL_REP_COMP_OFFSET)
        | (rep_start << HV_HYPERCALL_REP_START_OFFSET)
    )


def hypercall_result(status: int, reps_completed: int = 0) -> int:
    """RAX after a hypercall: status in 15:0, reps completed in 43:32."""
    return (status & 0xFFFF) | ((reps_completed & 0xFFF) << HV_HYPERCALL_REP_COMP_OFFSET)


def split_hypercall_result(rax: int) -> tuple[int, int]:
    """(status, reps_completed) from RAX."""
    return rax & 0xFFFF, (rax >> HV_HYPERCALL_REP_COMP_OFFSET) & 0xFFF


_HV_MESSAGE_HEADER = struct.Struct("<IBBHQ")  # message_type, payload_size, message_flags, reserved, port


@dataclass(frozen=True, slots=True)
class HvMessage:
    """``struct hv_message``: one 256-byte SynIC message slot (``message_type`` 0 = free)."""

    message_type: int
    payload: bytes = b""
    port: int = 0
    message_flags: int = 0

    def __post_init__(self) -> None:
        if len(self.payload) > HV_MESSAGE_PAYLOAD_BYTE_COUNT:
            raise MessageError(f"a SynIC message carries at most 240 bytes, not {len(self.payload)}")

    @property
    def msg_pending(self) -> bool:
        return bool(self.message_flags & HV_MESSAGE_FLAG_PENDING)

    def pack(self) -> bytes:
        header = _pack(
            _HV_MESSAGE_HEADER, "hv_message header", self.message_type, len(self.payload), self.message_flags, 0,
            self.port,
        )
        return header + _fixed_bytes(self.payload, HV_MESSAGE_PAYLOAD_BYTE_COUNT, "hv_message payload")

    @staticmethod
    def slot_type(data: bytes) -> int:
        """The ``message_type`` of a slot, whatever else the guest wrote there (0: the slot is free)."""
        return _unpack(_HV_MESSAGE_HEADER, bytes(data), 0, "hv_message")[0]

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        data = bytes(data)
        message_type, size, flags, _reserved, port = _unpack(_HV_MESSAGE_HEADER, data, 0, "hv_message")
        if size > HV_MESSAGE_PAYLOAD_BYTE_COUNT:
            raise MessageError(f"hv_message payload_size {size} exceeds 240")
        if len(data) < _HV_MESSAGE_HEADER.size + size:
            raise MessageError(f"hv_message payload_size {size} but only {len(data) - 16} payload bytes")
        return cls(message_type, data[16 : 16 + size], port, flags)


_POST_MESSAGE_HEADER = struct.Struct("<IIII")  # connectionid, reserved, message_type, payload_size


@dataclass(frozen=True, slots=True)
class HvInputPostMessage:
    """``struct hv_input_post_message``: HvCallPostMessage's input page.

    ``unpack`` raises :class:`MessageError` for ``payload_size > 240``; the hypervisor answers that
    with ``HV_STATUS_INVALID_PARAMETER``.
    """

    connectionid: int
    payload: bytes
    message_type: int = HV_MESSAGE_VMBUS

    def __post_init__(self) -> None:
        if len(self.payload) > HV_MESSAGE_PAYLOAD_BYTE_COUNT:
            raise MessageError(f"PostMessage carries at most 240 bytes, not {len(self.payload)}")

    def pack(self) -> bytes:
        header = _pack(
            _POST_MESSAGE_HEADER, "hv_input_post_message", self.connectionid, 0, self.message_type, len(self.payload)
        )
        return header + _fixed_bytes(self.payload, HV_MESSAGE_PAYLOAD_BYTE_COUNT, "hv_input_post_message payload")

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        data = bytes(data)
        conn, _reserved, mtype, size = _unpack(_POST_MESSAGE_HEADER, data, 0, "hv_input_post_message")
        if size > HV_MESSAGE_PAYLOAD_BYTE_COUNT:
            raise MessageError(f"PostMessage payload_size {size} exceeds 240")
        if len(data) < _POST_MESSAGE_HEADER.size + size:
            raise MessageError(f"PostMessage payload_size {size} but only {len(data) - 16} bytes follow the header")
        return cls(conn, data[16 : 16 + size], mtype)


@dataclass(frozen=True, slots=True)
class HvInputSignalEvent:
    """``struct hv_input_signal_event`` (u32 connectionid; u16 flag_number; u16 rsvd_z), passed
    in RDX by the fast HvCallSignalEvent."""

    connectionid: int
    flag_number: int = 0

    def to_register(self) -> int:
        if not 0 <= self.connectionid < 1 << 32 or not 0 <= self.flag_number < 1 << 16:
            raise MessageError(f"bad signal event input {self}")
        return self.connectionid | (self.flag_number << 32)

    def pack(self) -> bytes:
        return struct.pack("<Q", self.to_register())

    @classmethod
    def from_register(cls, rdx: int) -> Self:
        if rdx >> 48:
            raise MessageError(f"HvCallSignalEvent input {rdx:#x}: reserved bits 63:48 are not zero")
        return cls(rdx & 0xFFFF_FFFF, (rdx >> 32) & 0xFFFF)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        return cls.from_register(_unpack(struct.Struct("<Q"), bytes(data), 0, "hv_input_signal_event")[0])


_VP_REGISTERS_HEADER = struct.Struct("<QIB3x")  # partitionid, vpindex, inputvtl, padding
_REGISTER_ASSOC = struct.Struct("<IIQQQ")  # name, reserved1, reserved2, value low, value high
_REGISTER_NAME = struct.Struct("<I")
_REGISTER_VALUE = struct.Struct("<QQ")


@dataclass(frozen=True, slots=True)
class HvRegisterAssoc:
    """One 32-byte element of HvCallSetVpRegisters: a register name and its 128-bit value."""

    name: int
    value_low: int = 0
    value_high: int = 0

    def pack(self) -> bytes:
        return _pack(_REGISTER_ASSOC, "hv_register_assoc", self.name, 0, 0, self.value_low, self.value_high)


@dataclass(frozen=True, slots=True)
class HvSetVpRegistersInput:
    """HvCallSetVpRegisters' input page: 16-byte header + one element per rep."""

    elements: tuple[HvRegisterAssoc, ...]
    partition_id: int = HV_PARTITION_ID_SELF
    vp_index: int = HV_VP_INDEX_SELF
    input_vtl: int = 0

    def pack(self) -> bytes:
        header = _pack(_VP_REGISTERS_HEADER, "set_vp_registers header", self.partition_id, self.vp_index, self.input_vtl)
        return header + b"".join(e.pack() for e in self.elements)

    @classmethod
    def unpack(cls, data: bytes, count: int) -> Self:
        """``count`` is the rep count from the hypercall input value: the page does not say it."""
        data = bytes(data)
        partition_id, vp_index, vtl = _unpack(_VP_REGISTERS_HEADER, data, 0, "set_vp_registers header")
        need = _VP_REGISTERS_HEADER.size + count * _REGISTER_ASSOC.size
        if count < 0 or len(data) < need:
            raise MessageError(f"set_vp_registers with {count} elements needs {need} bytes, got {len(data)}")
        elements = tuple(
            HvRegisterAssoc(name, low, high)
            for name, _r1, _r2, low, high in _REGISTER_ASSOC.iter_unpack(data[_VP_REGISTERS_HEADER.size : need])
        )
        return cls(elements, partition_id, vp_index, vtl)


@dataclass(frozen=True, slots=True)
class HvGetVpRegistersInput:
    """HvCallGetVpRegisters' input page: the same header + one ``u32 name`` per rep; the output
    page gets one 16-byte value per rep (:func:`pack_vp_register_values`)."""

    names: tuple[int, ...]
    partition_id: int = HV_PARTITION_ID_SELF
    vp_index: int = HV_VP_INDEX_SELF
    input_vtl: int = 0

    def pack(self) -> bytes:
        header = _pack(_VP_REGISTERS_HEADER, "get_vp_registers header", self.partition_id, self.vp_index, self.input_vtl)
        return header + b"".join(_pack(_REGISTER_NAME, "register name", n) for n in self.names)

    @classmethod
    def unpack(cls, data: bytes, count: int) -> Self:
        data = bytes(data)
        partition_id, vp_index, vtl = _unpack(_VP_REGISTERS_HEADER, data, 0, "get_vp_registers header")
        need = _VP_REGISTERS_HEADER.size + count * _REGISTER_NAME.size
        if count < 0 or len(data) < need:
            raise MessageError(f"get_vp_registers with {count} names needs {need} bytes, got {len(data)}")
        names = tuple(n for (n,) in _REGISTER_NAME.iter_unpack(data[_VP_REGISTERS_HEADER.size : need]))
        return cls(names, partition_id, vp_index, vtl)


def pack_vp_register_values(values: list[tuple[int, int]]) -> bytes:
    """HvCallGetVpRegisters' output: (low, high) per register."""
    return b"".join(_pack(_REGISTER_VALUE, "register value", low, high) for low, high in values)


# ====================================================================================================
# Channel management messages (docs/vmbus.md §3)
# ====================================================================================================
CHANNELMSG_INVALID = 0
CHANNELMSG_OFFERCHANNEL = 1
CHANNELMSG_RESCIND_CHANNELOFFER = 2
CHANNELMSG_REQUESTOFFERS = 3
CHANNELMSG_ALLOFFERS_DELIVERED = 4
CHANNELMSG_OPENCHANNEL = 5
CHANNELMSG_OPENCHANNEL_RESULT = 6
CHANNELMSG_CLOSECHANNEL = 7
CHANNELMSG_GPADL_HEADER = 8
CHANNELMSG_GPADL_BODY = 9
CHANNELMSG_GPADL_CREATED = 10
CHANNELMSG_GPADL_TEARDOWN = 11
CHANNELMSG_GPADL_TORNDOWN = 12
CHANNELMSG_RELID_RELEASED = 13
CHANNELMSG_INITIATE_CONTACT = 14
CHANNELMSG_VERSION_RESPONSE = 15
CHANNELMSG_UNLOAD = 16
CHANNELMSG_UNLOAD_RESPONSE = 17

VERSION_WIN10 = 0x00040000  # (4 << 16) | 0: the only version hyperlab speaks
MAX_USER_DEFINED_BYTES = 120
GPADL_HEADER_MAX_PFNS = 26  # (240 - 20 - 8) / 8: one range in one message, no GPADL_BODY

# Interface types (if_type) of the offers; hyperlab's console has no Hyper-V counterpart.
HV_SCSI_GUID = uuid.UUID("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f")
HV_HEART_BEAT_GUID = uuid.UUID("57164f39-9115-4e78-ab55-382f3bd5422d")
HV_SHUTDOWN_GUID = uuid.UUID("0e0b6031-5213-4934-818b-38d90ced39db")
HV_TS_GUID = uuid.UUID("9527e630-d0ae-497b-adce-e80ab0175caf")
HYPERLAB_CONSOLE_GUID = uuid.UUID("8b60ccf6-709f-4c11-90b5-229c959a9e6a")


def guid_to_bytes(guid: uuid.UUID | str) -> bytes:
    """A GUID in the Windows mixed-endian layout (first three fields little-endian): what a
    ``guid_t`` holds in memory, so ``ba6163d9-04a1-...`` starts with bytes ``d9 63 61 ba a1 04``."""
    return (guid if isinstance(guid, uuid.UUID) else uuid.UUID(guid)).bytes_le


def guid_from_bytes(data: bytes) -> uuid.UUID:
    if len(data) != 16:
        raise MessageError(f"a GUID is 16 bytes, not {len(data)}")
    return uuid.UUID(bytes_le=bytes(data))


_CHANNEL_HEADER = struct.Struct("<II")  # msgtype, padding
CHANNEL_MESSAGE_HEADER_SIZE = _CHANNEL_HEADER.size


class ChannelMessage:
    """Base of the ``vmbus_channel_*`` messages: ``struct vmbus_channel_message_header`` + body.

    A subclass with only integer fields declares ``_body`` (their struct, in field order) and
    inherits pack/unpack; the others override ``_pack_body``/``_unpack_body``.
    """

    __slots__ = ()
    msgtype: ClassVar[int]
    _body: ClassVar[struct.Struct] = struct.Struct("<")

    @classmethod
    def size(cls) -> int:
        """Minimum bytes on the wire, header included."""
        return _CHANNEL_HEADER.size + cls._body.size

    def pack(self) -> bytes:
        out = _CHANNEL_HEADER.pack(self.msgtype, 0) + self._pack_body()
        if len(out) > HV_MESSAGE_PAYLOAD_BYTE_COUNT:
            raise MessageError(f"{type(self).__name__} is {len(out)} bytes; a message carries at most 240")
        return out

    def _pack_body(self) -> bytes:
        return _pack(self._body, type(self).__name__, *(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        data = bytes(data)
        (msgtype, _padding) = _unpack(_CHANNEL_HEADER, data, 0, "vmbus_channel_message_header")
        if msgtype != cls.msgtype:
            raise MessageError(f"msgtype {msgtype} is not {cls.__name__} ({cls.msgtype})")
        return cls._unpack_body(data)

    @classmethod
    def _unpack_body(cls, data: bytes) -> Self:
        return cls(*_unpack(cls._body, data, _CHANNEL_HEADER.size, cls.__name__))


@dataclass(frozen=True, slots=True)
class InitiateContact(ChannelMessage):
    """``vmbus_channel_initiate_contact`` (14), guest -> host: the first message; 40 bytes."""

    msgtype: ClassVar[int] = CHANNELMSG_INITIATE_CONTACT
    _body: ClassVar[struct.Struct] = struct.Struct("<IIQQQ")
    vmbus_version_requested: int = VERSION_WIN10
    target_vcpu: int = 0
    interrupt_page: int = 0
    monitor_page1: int = 0
    monitor_page2: int = 0


@dataclass(frozen=True, slots=True)
class VersionResponse(ChannelMessage):
    """``vmbus_channel_version_response`` (15), host -> guest: 16 bytes."""

    msgtype: ClassVar[int] = CHANNELMSG_VERSION_RESPONSE
    _body: ClassVar[struct.Struct] = struct.Struct("<BBxxI")  # u16 padding between
    version_supported: int = 1
    connection_state: int = 0
    msg_conn_id: int = VMBUS_MESSAGE_CONNECTION_ID


@dataclass(frozen=True, slots=True)
class RequestOffers(ChannelMessage):
    """REQUESTOFFERS (3), guest -> host: header only."""

    msgtype: ClassVar[int] = CHANNELMSG_REQUESTOFFERS


@dataclass(frozen=True, slots=True)
class AllOffersDelivered(ChannelMessage):
    """ALLOFFERS_DELIVERED (4), host -> guest: header only."""

    msgtype: ClassVar[int] = CHANNELMSG_ALLOFFERS_DELIVERED


@dataclass(frozen=True, slots=True)
class Unload(ChannelMessage):
    """UNLOAD (16), guest -> host on a clean shutdown: header only."""

    msgtype: ClassVar[int] = CHANNELMSG_UNLOAD


@dataclass(frozen=True, slots=True)
class UnloadResponse(ChannelMessage):
    """UNLOAD_RESPONSE (17), host -> guest: header only."""

    msgtype: ClassVar[int] = CHANNELMSG_UNLOAD_RESPONSE


@dataclass(frozen=True, slots=True)
class OfferChannel(ChannelMessage):
    """``vmbus_channel_offer_channel`` (1), host -> guest: one device. 196 bytes with the header:
    ``struct vmbus_channel_offer`` (176) + child_relid, monitorid, two bit-field bytes/words,
    connection_id."""

    msgtype: ClassVar[int] = CHANNELMSG_OFFERCHANNEL
    _body: ClassVar[struct.Struct] = struct.Struct("<16s16sQQHH120sHHIBBHI")
    if_type: uuid.UUID
    if_instance: uuid.UUID
    child_relid: int
    connection_id: int
    chn_flags: int = 0
    mmio_megabytes: int = 0
    user_def: bytes = b""
    sub_channel_index: int = 0
    monitorid: int = 0
    monitor_allocated: int = 0  # bit 0 of its byte
    is_dedicated_interrupt: int = 0  # bit 0 of its u16

    def __post_init__(self) -> None:
        _set(self, "user_def", _fixed_bytes(self.user_def, MAX_USER_DEFINED_BYTES, "user_def"))

    def _pack_body(self) -> bytes:
        if self.monitor_allocated not in (0, 1) or self.is_dedicated_interrupt not in (0, 1):
            raise MessageError("monitor_allocated and is_dedicated_interrupt are one-bit fields")
        return _pack(
            self._body, "OfferChannel", guid_to_bytes(self.if_type), guid_to_bytes(self.if_instance), 0, 0,
            self.chn_flags, self.mmio_megabytes, self.user_def, self.sub_channel_index, 0, self.child_relid,
            self.monitorid, self.monitor_allocated, self.is_dedicated_interrupt, self.connection_id,
        )

    @classmethod
    def _unpack_body(cls, data: bytes) -> Self:
        (if_type, if_instance, _r1, _r2, chn_flags, mmio, user_def, sub_index, _r3, relid, monitorid, allocated,
         dedicated, conn_id) = _unpack(cls._body, data, _CHANNEL_HEADER.size, cls.__name__)
        return cls(
            guid_from_bytes(if_type), guid_from_bytes(if_instance), relid, conn_id, chn_flags, mmio, user_def,
            sub_index, monitorid, allocated & 1, dedicated & 1,
        )


@dataclass(frozen=True, slots=True)
class RescindChannelOffer(ChannelMessage):
    """``vmbus_channel_rescind_offer`` (2), host -> guest: a device went away."""

    msgtype: ClassVar[int] = CHANNELMSG_RESCIND_CHANNELOFFER
    _body: ClassVar[struct.Struct] = struct.Struct("<I")
    child_relid: int


_GPADL_HEADER_FIXED = struct.Struct("<IIHH")  # child_relid, gpadl, range_buflen, rangecount


@dataclass(frozen=True, slots=True)
class GpadlHeader(ChannelMessage):
    """``vmbus_channel_gpadl_header`` (8), guest -> host: the pages a GPADL handle will name.

    ``range_buflen`` and ``rangecount`` are computed on pack and checked on unpack: every range
    must be whole in this message (hyperlab does not use GPADL_BODY), so a one-range GPADL has at
    most 26 pages.
    """

    msgtype: ClassVar[int] = CHANNELMSG_GPADL_HEADER
    _body: ClassVar[struct.Struct] = _GPADL_HEADER_FIXED
    child_relid: int
    gpadl: int
    ranges: tuple[GpaRange, ...]

    def __post_init__(self) -> None:
        _set(self, "ranges", tuple(self.ranges))

    @property
    def pfns(self) -> tuple[int, ...]:
        """Every page of the GPADL in order (what the host's bounded view is built from)."""
        return tuple(p for r in self.ranges for p in r.pfns)

    def _pack_body(self) -> bytes:
        try:
            ranges = b"".join(r.pack() for r in self.ranges)
        except ValueError as e:
            raise MessageError(str(e)) from None
        return _pack(_GPADL_HEADER_FIXED, "GpadlHeader", self.child_relid, self.gpadl, len(ranges),
                     len(self.ranges)) + ranges

    @classmethod
    def _unpack_body(cls, data: bytes) -> Self:
        relid, gpadl, range_buflen, rangecount = _unpack(_GPADL_HEADER_FIXED, data, 8, cls.__name__)
        if rangecount == 0:
            raise MessageError("GPADL_HEADER with rangecount 0")
        start = cls.size()
        if len(data) < start + range_buflen:
            raise MessageError(
                f"GPADL_HEADER range_buflen {range_buflen} but only {len(data) - start} bytes follow "
                f"(GPADL_BODY is not supported: every range must fit in this message)"
            )
        try:
            ranges, used = parse_gpa_ranges(data[start : start + range_buflen], rangecount)
        except ValueError as e:
            raise MessageError(f"GPADL_HEADER: {e}") from None
        if used != range_buflen:
            raise MessageError(f"GPADL_HEADER range_buflen {range_buflen} but its {rangecount} range(s) take {used}")
        return cls(relid, gpadl, tuple(ranges))


@dataclass(frozen=True, slots=True)
class GpadlCreated(ChannelMessage):
    """``vmbus_channel_gpadl_created`` (10), host -> guest: 20 bytes; status 0 = success."""

    msgtype: ClassVar[int] = CHANNELMSG_GPADL_CREATED
    _body: ClassVar[struct.Struct] = struct.Struct("<III")
    child_relid: int
    gpadl: int
    creation_status: int = 0


@dataclass(frozen=True, slots=True)
class GpadlTeardown(ChannelMessage):
    """``vmbus_channel_gpadl_teardown`` (11), guest -> host (not used by hyperlab's guest yet)."""

    msgtype: ClassVar[int] = CHANNELMSG_GPADL_TEARDOWN
    _body: ClassVar[struct.Struct] = struct.Struct("<II")
    child_relid: int
    gpadl: int


@dataclass(frozen=True, slots=True)
class GpadlTorndown(ChannelMessage):
    """``vmbus_channel_gpadl_torndown`` (12), host -> guest."""

    msgtype: ClassVar[int] = CHANNELMSG_GPADL_TORNDOWN
    _body: ClassVar[struct.Struct] = struct.Struct("<I")
    gpadl: int


@dataclass(frozen=True, slots=True)
class OpenChannel(ChannelMessage):
    """``vmbus_channel_open_channel`` (5), guest -> host: 148 bytes. ``openid`` is echoed back."""

    msgtype: ClassVar[int] = CHANNELMSG_OPENCHANNEL
    _body: ClassVar[struct.Struct] = struct.Struct("<IIIII120s")
    child_relid: int
    openid: int
    ringbuffer_gpadlhandle: int
    downstream_ringbuffer_pageoffset: int
    target_vp: int = 0
    userdata: bytes = b""

    def __post_init__(self) -> None:
        _set(self, "userdata", _fixed_bytes(self.userdata, MAX_USER_DEFINED_BYTES, "userdata"))

    def _pack_body(self) -> bytes:
        return _pack(self._body, "OpenChannel", self.child_relid, self.openid, self.ringbuffer_gpadlhandle,
                     self.target_vp, self.downstream_ringbuffer_pageoffset, self.userdata)

    @classmethod
    def _unpack_body(cls, data: bytes) -> Self:
        relid, openid, gpadl, target_vp, offset, userdata = _unpack(cls._body, data, 8, cls.__name__)
        return cls(relid, openid, gpadl, offset, target_vp, userdata)


@dataclass(frozen=True, slots=True)
class OpenChannelResult(ChannelMessage):
    """``vmbus_channel_open_result`` (6), host -> guest: 20 bytes; status 0 = success."""

    msgtype: ClassVar[int] = CHANNELMSG_OPENCHANNEL_RESULT
    _body: ClassVar[struct.Struct] = struct.Struct("<III")
    child_relid: int
    openid: int
    status: int = 0


@dataclass(frozen=True, slots=True)
class CloseChannel(ChannelMessage):
    """``vmbus_channel_close_channel`` (7), guest -> host: 12 bytes."""

    msgtype: ClassVar[int] = CHANNELMSG_CLOSECHANNEL
    _body: ClassVar[struct.Struct] = struct.Struct("<I")
    child_relid: int


CHANNEL_MESSAGES: dict[int, type[ChannelMessage]] = {
    cls.msgtype: cls
    for cls in (
        OfferChannel, RescindChannelOffer, RequestOffers, AllOffersDelivered, OpenChannel, OpenChannelResult,
        CloseChannel, GpadlHeader, GpadlCreated, GpadlTeardown, GpadlTorndown, InitiateContact, VersionResponse,
        Unload, UnloadResponse,
    )
}


def parse_channel_message(payload: bytes) -> ChannelMessage:
    """The message a PostMessage / SynIC slot payload holds, by its ``msgtype``."""
    payload = bytes(payload)
    (msgtype, _padding) = _unpack(_CHANNEL_HEADER, payload, 0, "vmbus_channel_message_header")
    cls = CHANNEL_MESSAGES.get(msgtype)
    if cls is None:
        raise MessageError(f"unknown or unsupported channel message type {msgtype}")
    return cls.unpack(payload)


# ====================================================================================================
# Storage: vstor_packet and vmscsi_request (docs/vmbus.md §5)
# ====================================================================================================
VSTOR_OPERATION_COMPLETE_IO = 1
VSTOR_OPERATION_REMOVE_DEVICE = 2
VSTOR_OPERATION_EXECUTE_SRB = 3
VSTOR_OPERATION_RESET_LUN = 4
VSTOR_OPERATION_RESET_ADAPTER = 5
VSTOR_OPERATION_RESET_BUS = 6
VSTOR_OPERATION_BEGIN_INITIALIZATION = 7
VSTOR_OPERATION_END_INITIALIZATION = 8
VSTOR_OPERATION_QUERY_PROTOCOL_VERSION = 9
VSTOR_OPERATION_QUERY_PROPERTIES = 10
VSTOR_OPERATION_ENUMERATE_BUS = 11
VSTOR_OPERATION_FCHBA_DATA = 12
VSTOR_OPERATION_CREATE_SUB_CHANNELS = 13
VSTOR_OPERATION_MAXIMUM = 13

REQUEST_COMPLETION_FLAG = 0x1
VMSTOR_PROTO_VERSION_WIN10 = 0x0602

WRITE_TYPE = 0  # vmscsi_request.data_in
READ_TYPE = 1
UNKNOWN_TYPE = 2

SRB_STATUS_SUCCESS = 0x01
SRB_STATUS_ERROR = 0x04
SAM_STAT_GOOD = 0x00
SAM_STAT_CHECK_CONDITION = 0x02
READ_10 = 0x28
WRITE_10 = 0x2A

STORVSC_MAX_CMD_LEN = 16
STORVSC_SENSE_BUFFER_SIZE = 20  # the CDB/sense union is this big
SECTOR_SIZE = 512
HYPERLAB_MAX_TRANSFER_SECTORS = 128  # 64 KiB per request

_VSTOR_HEADER = struct.Struct("<III")  # operation, flags, status
VSTOR_PACKET_HEADER_SIZE = _VSTOR_HEADER.size
_VMSCSI = struct.Struct("<HBBBBBBBBBBI16s")  # through cdb[16]; the union's 4 last bytes follow
VMSCSI_REQUEST_SIZE = _VMSCSI.size + (STORVSC_SENSE_BUFFER_SIZE - STORVSC_MAX_CMD_LEN)  # 36
_RW10 = struct.Struct(">BBIBHB")  # opcode, flags, LBA, group, transfer length, control


def read10_cdb(lba: int, blocks: int) -> bytes:
    """READ(10): LBA in bytes 2-5, block count in 7-8, both big-endian; padded to 16 bytes."""
    return _rw10_cdb(READ_10, lba, blocks)


def write10_cdb(lba: int, blocks: int) -> bytes:
    return _rw10_cdb(WRITE_10, lba, blocks)


def _rw10_cdb(opcode: int, lba: int, blocks: int) -> bytes:
    return _fixed_bytes(_pack(_RW10, "READ(10)/WRITE(10) CDB", opcode, 0, lba, 0, blocks, 0), STORVSC_MAX_CMD_LEN,
                        "cdb")


@dataclass(frozen=True, slots=True)
class Rw10:
    opcode: int
    lba: int
    blocks: int


def parse_rw10_cdb(cdb: bytes) -> Rw10:
    """Opcode, LBA and block count of a READ(10)/WRITE(10); anything else is a MessageError."""
    if len(cdb) < _RW10.size:
        raise MessageError(f"a READ(10)/WRITE(10) CDB is 10 bytes, got {len(cdb)}")
    opcode, _flags, lba, _group, blocks, _control = _RW10.unpack_from(cdb)
    if opcode not in (READ_10, WRITE_10):
        raise MessageError(f"SCSI opcode {opcode:#04x} is not READ(10) or WRITE(10)")
    return Rw10(opcode, lba, blocks)


@dataclass(frozen=True, slots=True)
class VmscsiRequest:
    """``struct vmscsi_request`` (36 bytes): one SCSI command and, in the completion, its status.

    ``cdb`` is kept as 16 bytes (shorter input is zero-padded); ``cdb_length`` says how many count.
    """

    cdb: bytes = b""
    cdb_length: int = 0
    data_in: int = UNKNOWN_TYPE
    data_transfer_length: int = 0
    srb_status: int = 0
    scsi_status: int = 0
    port_number: int = 0
    path_id: int = 0
    target_id: int = 0
    lun: int = 0
    sense_info_length: int = 0
    reserved: int = 0
    length: int = VMSCSI_REQUEST_SIZE

    def __post_init__(self) -> None:
        _set(self, "cdb", _fixed_bytes(self.cdb, STORVSC_MAX_CMD_LEN, "cdb"))

    @classmethod
    def read10(cls, lba: int, blocks: int) -> Self:
        return cls(read10_cdb(lba, blocks), 10, READ_TYPE, blocks * SECTOR_SIZE)

    @classmethod
    def write10(cls, lba: int, blocks: int) -> Self:
        return cls(write10_cdb(lba, blocks), 10, WRITE_TYPE, blocks * SECTOR_SIZE)

    def rw10(self) -> Rw10:
        return parse_rw10_cdb(self.cdb[: self.cdb_length])

    def pack(self) -> bytes:
        return _pack(
            _VMSCSI, "vmscsi_request", self.length, self.srb_status, self.scsi_status, self.port_number, self.path_id,
            self.target_id, self.lun, self.cdb_length, self.sense_info_length, self.data_in, self.reserved,
            self.data_transfer_length, self.cdb,
        ) + bytes(VMSCSI_REQUEST_SIZE - _VMSCSI.size)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        """Needs the 32 bytes up to the end of ``cdb``; the union's last 4 bytes may be absent."""
        (length, srb_status, scsi_status, port, path, target, lun, cdb_length, sense_len, data_in, reserved,
         xfer, cdb) = _unpack(_VMSCSI, bytes(data), 0, "vmscsi_request")
        if cdb_length > STORVSC_MAX_CMD_LEN:
            raise MessageError(f"vmscsi_request cdb_length {cdb_length} exceeds 16")
        if sense_len > STORVSC_SENSE_BUFFER_SIZE:
            raise MessageError(f"vmscsi_request sense_info_length {sense_len} exceeds 20")
        if data_in > UNKNOWN_TYPE:
            raise MessageError(f"vmscsi_request data_in {data_in} is not 0 (write), 1 (read) or 2 (unknown)")
        return cls(cdb, cdb_length, data_in, xfer, srb_status, scsi_status, port, path, target, lun, sense_len,
                   reserved, length)


_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class VstorPacket:
    """``struct vstor_packet`` (hyperlab subset): ``u32 operation; u32 flags; u32 status;`` + body.

    What the body is depends on the operation *and* on which request a completion answers (the
    ``trans_id`` says), so it stays bytes here; :meth:`srb`, :meth:`major_minor` and
    :meth:`sector_count` read it as each operation needs.
    """

    operation: int
    flags: int = 0
    status: int = 0
    body: bytes = b""

    def pack(self) -> bytes:
        return _pack(_VSTOR_HEADER, "vstor_packet", self.operation, self.flags, self.status) + bytes(self.body)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        data = bytes(data)
        operation, flags, status = _unpack(_VSTOR_HEADER, data, 0, "vstor_packet")
        if not VSTOR_OPERATION_COMPLETE_IO <= operation <= VSTOR_OPERATION_MAXIMUM:
            raise MessageError(f"unknown vstor operation {operation}")
        return cls(operation, flags, status, data[_VSTOR_HEADER.size :])

    @classmethod
    def execute_srb(cls, srb: VmscsiRequest, flags: int = REQUEST_COMPLETION_FLAG) -> Self:
        return cls(VSTOR_OPERATION_EXECUTE_SRB, flags, 0, srb.pack())

    @classmethod
    def complete_io(cls, status: int = 0, body: bytes = b"") -> Self:
        return cls(VSTOR_OPERATION_COMPLETE_IO, 0, status, body)

    @classmethod
    def query_protocol_version(cls, major_minor: int = VMSTOR_PROTO_VERSION_WIN10) -> Self:
        """``vmstorage_protocol_version``: u16 major_minor; u16 revision (0)."""
        return cls(VSTOR_OPERATION_QUERY_PROTOCOL_VERSION, REQUEST_COMPLETION_FLAG, 0,
                   _pack(struct.Struct("<HH"), "protocol version", major_minor, 0))

    @classmethod
    def properties_completion(cls, sector_count: int) -> Self:
        """The answer to QUERY_PROPERTIES: hyperlab's ``u64 sector_count`` after the header."""
        return cls.complete_io(0, _pack(_U64, "sector_count", sector_count))

    def srb(self) -> VmscsiRequest:
        return VmscsiRequest.unpack(self.body)

    def major_minor(self) -> int:
        return _unpack(_U16, self.body, 0, "vmstorage_protocol_version")[0]

    def sector_count(self) -> int:
        return _unpack(_U64, self.body, 0, "QUERY_PROPERTIES sector_count")[0]


# ====================================================================================================
# Integration services (docs/vmbus.md §7)
# ====================================================================================================
ICMSGTYPE_NEGOTIATE = 0
ICMSGTYPE_HEARTBEAT = 1
ICMSGTYPE_KVPEXCHANGE = 2
ICMSGTYPE_SHUTDOWN = 3
ICMSGTYPE_TIMESYNC = 4
ICMSGTYPE_VSS = 5

ICMSGHDRFLAG_TRANSACTION = 1
ICMSGHDRFLAG_REQUEST = 2
ICMSGHDRFLAG_RESPONSE = 4

HV_S_OK = 0x00000000
HV_E_FAIL = 0x80004005

ICTIMESYNCFLAG_PROBE = 0
ICTIMESYNCFLAG_SYNC = 1
ICTIMESYNCFLAG_SAMPLE = 2

# Shutdown flags (hv_util.c tests the values; these names are hyperlab's).
SHUTDOWN_FLAG_FORCED = 1
SHUTDOWN_FLAG_REBOOT = 2
SHUTDOWN_FLAG_HIBERNATE = 4
SHUTDOWN_DISPLAY_MESSAGE_SIZE = 64  # hyperlab's; Linux's struct has 2048

IC_FRAMEWORK_VERSION = (1, 0)  # hyperlab skips negotiation: these are fixed
IC_MESSAGE_VERSION = (3, 0)

_VMBUSPIPE_HDR = struct.Struct("<II")  # flags, msgsize
_ICMSG_HDR = struct.Struct("<HHHHHHIBB2x")
IC_HEADERS_SIZE = _VMBUSPIPE_HDR.size + _ICMSG_HDR.size  # 8 + 20


@dataclass(frozen=True, slots=True)
class IcMessage:
    """``vmbuspipe_hdr`` + ``icmsg_hdr`` + body: one integration-service packet payload.

    ``msgsize`` (icmsg_hdr + body) and ``icmsgsize`` (body) are computed on pack; unpack takes
    exactly ``icmsgsize`` bytes of body (the ring pads packets to 8 bytes).
    """

    icmsgtype: int
    body: bytes = b""
    icflags: int = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_REQUEST
    ictransaction_id: int = 0
    status: int = HV_S_OK
    icverframe: tuple[int, int] = IC_FRAMEWORK_VERSION
    icvermsg: tuple[int, int] = IC_MESSAGE_VERSION
    pipe_flags: int = 0

    def __post_init__(self) -> None:
        _set(self, "icverframe", tuple(self.icverframe))
        _set(self, "icvermsg", tuple(self.icvermsg))

    def response(self, body: bytes | None = None, status: int = HV_S_OK) -> IcMessage:
        """The guest's answer: same header with icflags TRANSACTION|RESPONSE, and its body."""
        return IcMessage(
            self.icmsgtype, self.body if body is None else body, ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE,
            self.ictransaction_id, status, self.icverframe, self.icvermsg, self.pipe_flags,
        )

    def pack(self) -> bytes:
        pipe = _pack(_VMBUSPIPE_HDR, "vmbuspipe_hdr", self.pipe_flags, _ICMSG_HDR.size + len(self.body))
        hdr = _pack(
            _ICMSG_HDR, "icmsg_hdr", *self.icverframe, self.icmsgtype, *self.icvermsg, len(self.body), self.status,
            self.ictransaction_id, self.icflags,
        )
        return pipe + hdr + bytes(self.body)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        data = bytes(data)
        pipe_flags, _msgsize = _unpack(_VMBUSPIPE_HDR, data, 0, "vmbuspipe_hdr")
        (fw_major, fw_minor, msgtype, msg_major, msg_minor, icmsgsize, status, tid,
         icflags) = _unpack(_ICMSG_HDR, data, _VMBUSPIPE_HDR.size, "icmsg_hdr")
        if len(data) < IC_HEADERS_SIZE + icmsgsize:
            raise MessageError(f"icmsgsize {icmsgsize} but only {len(data) - IC_HEADERS_SIZE} bytes follow the headers")
        body = data[IC_HEADERS_SIZE : IC_HEADERS_SIZE + icmsgsize]
        return cls(msgtype, body, icflags, tid, status, (fw_major, fw_minor), (msg_major, msg_minor), pipe_flags)

    def parse_body(self) -> HeartbeatMsgData | ShutdownMsgData | IcTimesyncData:
        body_cls = _IC_BODIES.get(self.icmsgtype)
        if body_cls is None:
            raise MessageError(f"icmsgtype {self.icmsgtype} has no body hyperlab understands")
        return body_cls.unpack(self.body)


@dataclass(frozen=True, slots=True)
class HeartbeatMsgData:
    """``struct heartbeat_msg_data``: u64 seq_num; u32 reserved[8] (40 bytes). The guest answers
    with ``seq_num + 1``."""

    seq_num: int
    _st: ClassVar[struct.Struct] = struct.Struct("<Q32x")

    def pack(self) -> bytes:
        return _pack(self._st, "heartbeat_msg_data", self.seq_num)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        return cls(*_unpack(cls._st, bytes(data), 0, "heartbeat_msg_data"))


@dataclass(frozen=True, slots=True)
class ShutdownMsgData:
    """``struct shutdown_msg_data`` with hyperlab's 64-byte message (76 bytes). ``display_message``
    is kept without its trailing NULs."""

    reason_code: int = 0
    timeout_seconds: int = 0
    flags: int = 0
    display_message: bytes = b""
    _st: ClassVar[struct.Struct] = struct.Struct(f"<III{SHUTDOWN_DISPLAY_MESSAGE_SIZE}s")

    def __post_init__(self) -> None:
        _fixed_bytes(self.display_message, SHUTDOWN_DISPLAY_MESSAGE_SIZE, "display_message")
        _set(self, "display_message", bytes(self.display_message).rstrip(b"\0"))

    @property
    def reboot(self) -> bool:
        return bool(self.flags & SHUTDOWN_FLAG_REBOOT)

    def pack(self) -> bytes:
        return _pack(self._st, "shutdown_msg_data", self.reason_code, self.timeout_seconds, self.flags,
                     self.display_message)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        return cls(*_unpack(cls._st, bytes(data), 0, "shutdown_msg_data"))


@dataclass(frozen=True, slots=True)
class IcTimesyncData:
    """``struct ictimesync_data`` (packed, 25 bytes): times in 100 ns since 1601-01-01."""

    parenttime: int
    childtime: int = 0
    roundtriptime: int = 0
    flags: int = ICTIMESYNCFLAG_SYNC
    _st: ClassVar[struct.Struct] = struct.Struct("<QQQB")

    def pack(self) -> bytes:
        return _pack(self._st, "ictimesync_data", self.parenttime, self.childtime, self.roundtriptime, self.flags)

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        return cls(*_unpack(cls._st, bytes(data), 0, "ictimesync_data"))


_IC_BODIES: dict[int, type[HeartbeatMsgData | ShutdownMsgData | IcTimesyncData]] = {
    ICMSGTYPE_HEARTBEAT: HeartbeatMsgData,
    ICMSGTYPE_SHUTDOWN: ShutdownMsgData,
    ICMSGTYPE_TIMESYNC: IcTimesyncData,
}
