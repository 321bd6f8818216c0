"""One VMBus ring buffer (``struct hv_ring_buffer``), read and written as Linux ``drivers/hv`` does.

A channel has two rings in memory the child shares with the root through a GPADL: the guest writes
the *outbound* ring and the host reads it; the host writes the *inbound* ring and the guest reads
it. Each ring is a 4096-byte header page followed by ``data_pages`` pages of data::

    header page   u32 write_index @0    where the writer puts the next byte   (owned by the writer)
                  u32 read_index  @4    where the reader takes the next byte  (owned by the reader)
                  u32 interrupt_mask @8 1 while the reader is draining: "don't signal me"
                  u32 pending_send_sz @12  a blocked writer's need: "signal me when this much is free"
                  u32 feature_bits @64  bit 0: the reader honours pending_send_sz
    data area     packets, each ``vmpacket_descriptor`` + payload + padding to 8 + an 8-byte
                  trailer, wrapping byte by byte around the end of the area.

``read_index == write_index`` means *empty*; a writer therefore never fills the last 8+ bytes, so a
full ring can never look empty. The writer signals the reader only when the ring goes from empty
to non-empty and the reader has not masked interrupts — which is why a busy channel needs only a
handful of signals (docs/vmbus.md §4).

Everything in the header and the data area is memory the *other side* can scribble on at any time,
so every index and length read from it is checked; a ring that does not make sense raises
:class:`RingError` (never ``IndexError``/``struct.error``) and is left exactly as it was, so the
caller can record the reason and shut that one channel down.

Deliberately free of Unicorn and of every hyperlab import outside ``core/vmbus``: the host hands in
a bounded view of the GPADL pages, tests and Pyodide a :class:`ByteRingMemory`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

PAGE_SIZE = 4096

# Offsets in the header page (struct hv_ring_buffer).
WRITE_INDEX_OFFSET = 0
READ_INDEX_OFFSET = 4
INTERRUPT_MASK_OFFSET = 8
PENDING_SEND_SZ_OFFSET = 12
FEATURE_BITS_OFFSET = 64
FEAT_PENDING_SEND_SZ = 0x1  # feature_bits bit 0

# struct vmpacket_descriptor and what follows a packet.
VMPACKET_DESCRIPTOR_SIZE = 16
VMBUS_PKT_TRAILER = 8
VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED = 0x1

# enum vmbus_packet_type (include/linux/hyperv.h).
VM_PKT_INVALID = 0x0
VM_PKT_SYNCH = 0x1
VM_PKT_ADD_XFER_PAGESET = 0x2
VM_PKT_RM_XFER_PAGESET = 0x3
VM_PKT_ESTABLISH_GPADL = 0x4
VM_PKT_TEARDOWN_GPADL = 0x5
VM_PKT_DATA_INBAND = 0x6
VM_PKT_DATA_USING_XFER_PAGES = 0x7
VM_PKT_DATA_USING_GPADL = 0x8
VM_PKT_DATA_USING_GPA_DIRECT = 0x9
VM_PKT_CANCEL_REQUEST = 0xA
VM_PKT_COMP = 0xB
VM_PKT_DATA_USING_ADDITIONAL_PKT = 0xC
VM_PKT_ADDITIONAL_DATA = 0xD

_U32 = struct.Struct("<I")
_INDICES = struct.Struct("<II")  # write_index, read_index
_SIGNAL_VIEW = struct.Struct("<III")  # write_index, read_index, interrupt_mask
_DESCRIPTOR = struct.Struct("<HHHHQ")  # type, offset8, len8, flags, trans_id
_TRAILER = struct.Struct("<Q")
_GPA_DIRECT_HEADER = struct.Struct("<II")  # u32 reserved; u32 range_count
_GPA_RANGE_HEADER = struct.Struct("<II")  # u32 byte_count; u32 byte_offset
_MAX_LEN8 = 0xFFFF


class RingError(Exception):
    """The other side left the ring in a state no correct writer/reader produces.

    The message says what was wrong; the ring is unchanged, so the caller records the reason and
    stops using the channel (retrying would raise the same error again).
    """


class RingBoundsError(RingError):
    """An access outside the memory the ring was given (a ring placed beyond its GPADL)."""


class RingFull(Exception):
    """The packet does not fit now; the reader has to make room first.

    ``needed`` is packet + trailer in bytes, ``free`` what the ring has. The writer needs strictly
    more than ``needed`` free. A writer that wants to be woken sets ``pending_send_sz = needed``.
    """

    def __init__(self, needed: int, free: int) -> None:
        super().__init__(
            f"ring full: the packet needs {needed} bytes (with its trailer) and more than that must be "
            f"free, but only {free} are"
        )
        self.needed = needed
        self.free = free


class RingMemory(Protocol):
    """The bytes a ring lives in: offsets are relative to the start of the view, and the view
    raises (preferably :class:`RingBoundsError`) rather than touch anything outside itself."""

    def read(self, offset: int, n: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...


class ByteRingMemory:
    """A :class:`RingMemory` over a ``bytearray``: for tests and for rings in the browser."""

    def __init__(self, buffer: bytearray) -> None:
        self.buffer = buffer

    @property
    def size(self) -> int:
        return len(self.buffer)

    def read(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > len(self.buffer):
            raise RingBoundsError(f"read of {n} bytes at {offset:#x} is outside the {len(self.buffer)}-byte view")
        return bytes(self.buffer[offset : offset + n])

    def write(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > len(self.buffer):
            raise RingBoundsError(
                f"write of {len(data)} bytes at {offset:#x} is outside the {len(self.buffer)}-byte view"
            )
        self.buffer[offset : offset + len(data)] = data


@dataclass(frozen=True, slots=True)
class GpaRange:
    """``struct gpa_range``: ``byte_count`` bytes starting ``byte_offset`` into the first of ``pfns``.

    The number of PFNs is not stored on the wire: it is the number of pages the bytes span,
    ``ceil((byte_offset + byte_count) / PAGE_SIZE)`` — so a reader must compute it, and a hostile
    writer can make it disagree with the packet length (which :func:`parse_gpa_ranges` refuses).
    """

    byte_count: int
    byte_offset: int
    pfns: tuple[int, ...]

    @staticmethod
    def pages_spanned(byte_offset: int, byte_count: int) -> int:
        return (byte_offset + byte_count + PAGE_SIZE - 1) // PAGE_SIZE

    @property
    def size(self) -> int:
        """Bytes this range takes on the wire."""
        return _GPA_RANGE_HEADER.size + 8 * len(self.pfns)

    def pack(self) -> bytes:
        """The wire form, as given (not validated, so tests can build hostile ranges)."""
        try:
            return _GPA_RANGE_HEADER.pack(self.byte_count, self.byte_offset) + struct.pack(
                f"<{len(self.pfns)}Q", *self.pfns
            )
        except struct.error as e:
            raise ValueError(f"cannot pack {self}: {e}") from None


def parse_gpa_ranges(buf: bytes, count: int) -> tuple[list[GpaRange], int]:
    """Parse ``count`` consecutive ``gpa_range`` from ``buf``; return them and the bytes consumed.

    Raises ``ValueError`` naming the first range that is impossible (byte_offset not inside the
    first page, zero bytes, more PFNs than ``buf`` holds); callers turn it into their own error.
    """
    ranges: list[GpaRange] = []
    pos = 0
    for i in range(count):
        if pos + _GPA_RANGE_HEADER.size > len(buf):
            raise ValueError(f"gpa_range {i} of {count} starts at byte {pos} but only {len(buf)} bytes are there")
        byte_count, byte_offset = _GPA_RANGE_HEADER.unpack_from(buf, pos)
        if byte_offset >= PAGE_SIZE:
            raise ValueError(f"gpa_range {i}: byte_offset {byte_offset} is not inside the first page")
        if byte_count == 0:
            raise ValueError(f"gpa_range {i}: byte_count is 0")
        npfn = GpaRange.pages_spanned(byte_offset, byte_count)
        end = pos + _GPA_RANGE_HEADER.size + 8 * npfn
        if end > len(buf):
            raise ValueError(
                f"gpa_range {i}: {byte_count} bytes at offset {byte_offset} span {npfn} pages "
                f"({end - pos} bytes of range) but only {len(buf) - pos} bytes are left"
            )
        pfns = struct.unpack_from(f"<{npfn}Q", buf, pos + _GPA_RANGE_HEADER.size)
        ranges.append(GpaRange(byte_count, byte_offset, pfns))
        pos = end
    return ranges, pos


def gpa_direct_header(ranges: Sequence[GpaRange]) -> bytes:
    """The bytes between the descriptor and the payload of a ``VM_PKT_DATA_USING_GPA_DIRECT``
    packet (``struct vmdata_gpa_direct`` after its descriptor): ``u32 reserved; u32 range_count;``
    then the ranges. Always a multiple of 8 bytes, so ``offset8 = (16 + len) / 8``."""
    return _GPA_DIRECT_HEADER.pack(0, len(ranges)) + b"".join(r.pack() for r in ranges)


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet read from a ring.

    ``data`` is everything from ``offset8 * 8`` to ``len8 * 8``: the payload *with* the writer's
    padding to 8 bytes — VMBus does not carry the payload's exact length, the protocol on top
    (vstor, IC, …) knows it. ``raw`` is the whole packet including its descriptor. For
    ``VM_PKT_DATA_USING_GPA_DIRECT`` packets, ``ranges`` holds the parsed, validated GPA ranges.
    """

    type: int
    offset8: int
    len8: int
    flags: int
    trans_id: int
    data: bytes
    raw: bytes
    ranges: list[GpaRange] = field(default_factory=list)

    @property
    def completion_requested(self) -> bool:
        return bool(self.flags & VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED)


def packet_size(payload_len: int, header_extra_len: int = 0) -> int:
    """Bytes a packet occupies in the ring, trailer included (what the writer needs, plus one)."""
    return _align8(VMPACKET_DESCRIPTOR_SIZE + header_extra_len + payload_len) + VMBUS_PKT_TRAILER


def _align8(n: int) -> int:
    return (n + 7) & ~7


class Ring:
    """A ring buffer: header page at ``header_offset`` in ``memory``, data pages right after it.

    All state lives in the shared memory (nothing is cached here), so the same object works for
    either side and sees whatever the other side did since the last call.
    """

    def __init__(self, memory: RingMemory, header_offset: int, data_pages: int) -> None:
        if header_offset < 0:
            raise ValueError(f"header_offset must be >= 0, not {header_offset}")
        if data_pages < 1 or data_pages * PAGE_SIZE >= 1 << 32:
            raise ValueError(f"a ring needs between 1 and {(1 << 32) // PAGE_SIZE - 1} data pages, not {data_pages}")
        self.memory = memory
        self.header_offset = header_offset
        self.data_pages = data_pages
        self.data_size = data_pages * PAGE_SIZE
        self.data_offset = header_offset + PAGE_SIZE

    def __repr__(self) -> str:
        return f"Ring(header_offset={self.header_offset:#x}, data_pages={self.data_pages})"

    # --- header fields ------------------------------------------------------------------------------
    def _read(self, offset: int, n: int) -> bytes:
        data = self.memory.read(offset, n)
        if len(data) != n:  # a broken view; never let struct.error escape
            raise RingBoundsError(f"memory returned {len(data)} bytes for a read of {n} at {offset:#x}")
        return data

    def _get(self, field_offset: int) -> int:
        return _U32.unpack(self._read(self.header_offset + field_offset, 4))[0]

    def _set(self, field_offset: int, value: int) -> None:
        if not 0 <= value < 1 << 32:
            raise ValueError(f"ring header fields are u32; {value} does not fit")
        self.memory.write(self.header_offset + field_offset, _U32.pack(value))

    @property
    def write_index(self) -> int:
        return self._get(WRITE_INDEX_OFFSET)

    @write_index.setter
    def write_index(self, value: int) -> None:
        self._set(WRITE_INDEX_OFFSET, value)

    @property
    def read_index(self) -> int:
        return self._get(READ_INDEX_OFFSET)

    @read_index.setter
    def read_index(self, value: int) -> None:
        self._set(READ_INDEX_OFFSET, value)

    @property
    def interrupt_mask(self) -> int:
        return self._get(INTERRUPT_MASK_OFFSET)

    @interrupt_mask.setter
    def interrupt_mask(self, value: int) -> None:
        self._set(INTERRUPT_MASK_OFFSET, value)

    @property
    def pending_send_sz(self) -> int:
        return self._get(PENDING_SEND_SZ_OFFSET)

    @pending_send_sz.setter
    def pending_send_sz(self, value: int) -> None:
        self._set(PENDING_SEND_SZ_OFFSET, value)

    @property
    def feature_bits(self) -> int:
        return self._get(FEATURE_BITS_OFFSET)

    @feature_bits.setter
    def feature_bits(self, value: int) -> None:
        self._set(FEATURE_BITS_OFFSET, value)

    def init(self, feature_bits: int = 0) -> None:
        """Zero the header page (an empty ring at index 0), then set ``feature_bits``."""
        self.memory.write(self.header_offset, bytes(PAGE_SIZE))
        if feature_bits:
            self.feature_bits = feature_bits

    # --- space ------------------------------------------------------------------------------------
    def _check_index(self, name: str, value: int) -> None:
        if value >= self.data_size:
            raise RingError(f"{name} {value:#x} is outside the {self.data_size}-byte data area")
        if value % 8:
            raise RingError(f"{name} {value:#x} is not 8-byte aligned")

    def _indices(self) -> tuple[int, int]:
        """(write_index, read_index), both checked: everything else is computed from them."""
        write, read = _INDICES.unpack(self._read(self.header_offset, _INDICES.size))
        self._check_index("write_index", write)
        self._check_index("read_index", read)
        return write, read

    def bytes_to_read(self) -> int:
        """Bytes written and not yet read (``hv_get_bytes_to_read``)."""
        write, read = self._indices()
        return (write - read) % self.data_size

    def bytes_to_write(self) -> int:
        """Free bytes (``hv_get_bytes_to_write``): ``data_size`` when empty, never 0."""
        write, read = self._indices()
        return self.data_size - (write - read) % self.data_size

    # --- data area, wrapping byte by byte -----------------------------------------------------------
    def _copy_to(self, pos: int, data: bytes) -> int:
        first = min(len(data), self.data_size - pos)
        self.memory.write(self.data_offset + pos, data[:first])
        if first < len(data):
            self.memory.write(self.data_offset, data[first:])
        return (pos + len(data)) % self.data_size

    def _copy_from(self, pos: int, n: int) -> bytes:
        first = min(n, self.data_size - pos)
        data = self._read(self.data_offset + pos, first)
        if first < n:
            data += self._read(self.data_offset, n - first)
        return data

    # --- writer -----------------------------------------------------------------------------------
    def write_packet(self, ptype: int, payload: bytes, trans_id: int, flags: int = 0, offset8: int = 2) -> bool:
        """Write one packet; return True if the reader must be signalled.

        ``offset8 > 2`` leaves zeroed 8-byte words between the descriptor and the payload.
        Raises :class:`RingFull` when it does not fit now, ``ValueError`` when it never could,
        :class:`RingError` when the other side corrupted the indices.
        """
        if not VMPACKET_DESCRIPTOR_SIZE // 8 <= offset8 <= _MAX_LEN8:
            raise ValueError(f"offset8 must be at least 2 (the 16-byte descriptor), not {offset8}")
        return self.write_raw(ptype, bytes(8 * offset8 - VMPACKET_DESCRIPTOR_SIZE), payload, trans_id, flags)

    def write_gpa_direct(
        self, ranges: Sequence[GpaRange], payload: bytes, trans_id: int, flags: int = 0
    ) -> bool:
        """Write a ``VM_PKT_DATA_USING_GPA_DIRECT`` packet naming ``ranges`` (e.g. a storvsc I/O)."""
        return self.write_raw(VM_PKT_DATA_USING_GPA_DIRECT, gpa_direct_header(ranges), payload, trans_id, flags)

    def write_raw(self, ptype: int, header_extra: bytes, payload: bytes, trans_id: int, flags: int = 0) -> bool:
        """Write descriptor + ``header_extra`` + ``payload`` + padding + trailer, then publish.

        ``header_extra`` (a multiple of 8 bytes) goes between the descriptor and the payload;
        ``offset8`` is set to point past it. The order is Linux's ``hv_ringbuffer_write``: copy the
        packet and the trailer (``old write_index << 32``), then — only then — store the new
        ``write_index``, so the reader never sees a half-written packet. Returns whether the reader
        must be signalled: its ``interrupt_mask`` is clear and the ring was empty before this
        write (``old write_index == read_index``, read *after* the write, as ``hv_signal_on_write``).
        """
        if len(header_extra) % 8:
            raise ValueError(f"header_extra must be a multiple of 8 bytes, not {len(header_extra)}")
        offset8 = (VMPACKET_DESCRIPTOR_SIZE + len(header_extra)) // 8
        body = VMPACKET_DESCRIPTOR_SIZE + len(header_extra) + len(payload)
        len8 = _align8(body) // 8
        needed = len8 * 8 + VMBUS_PKT_TRAILER
        if len8 > _MAX_LEN8 or needed >= self.data_size:
            raise ValueError(f"a {body}-byte packet can never fit a ring of {self.data_size} data bytes")
        try:
            descriptor = _DESCRIPTOR.pack(ptype, offset8, len8, flags, trans_id)
        except struct.error as e:
            raise ValueError(f"bad descriptor field (type/flags are u16, trans_id u64): {e}") from None
        old_write, read = self._indices()
        free = self.data_size - (old_write - read) % self.data_size
        if free <= needed:
            raise RingFull(needed, free)
        padding = bytes(len8 * 8 - body)
        trailer = _TRAILER.pack(old_write << 32)
        new_write = self._copy_to(old_write, descriptor + header_extra + payload + padding + trailer)
        self.write_index = new_write  # publish last
        return self._reader_needs_signal(old_write)

    def _reader_needs_signal(self, old_write: int) -> bool:
        _, read, mask = _SIGNAL_VIEW.unpack(self._read(self.header_offset, _SIGNAL_VIEW.size))
        return mask == 0 and read == old_write

    # --- reader -----------------------------------------------------------------------------------
    def read_packet(self) -> Packet | None:
        """Take the next packet, or None if the ring is empty.

        Checks the descriptor against what the writer published (``len8`` covers at least the
        descriptor, ``offset8`` lies inside the packet, packet + trailer are all in the ring, a
        GPA-direct packet's ranges fit before its payload), then advances ``read_index`` past packet
        and trailer. On :class:`RingError` nothing is consumed.
        """
        write, read = self._indices()
        available = (write - read) % self.data_size
        if available == 0:
            return None
        where = f"packet at read_index {read:#x}"
        if available < VMPACKET_DESCRIPTOR_SIZE + VMBUS_PKT_TRAILER:
            raise RingError(f"{where}: only {available} bytes in the ring, less than a descriptor and its trailer")
        descriptor = self._copy_from(read, VMPACKET_DESCRIPTOR_SIZE)
        ptype, offset8, len8, flags, trans_id = _DESCRIPTOR.unpack(descriptor)
        length = len8 * 8
        if length < VMPACKET_DESCRIPTOR_SIZE:
            raise RingError(f"{where}: len8 {len8} is shorter than the 16-byte descriptor")
        if length + VMBUS_PKT_TRAILER > available:
            raise RingError(
                f"{where}: len8 {len8} means {length} bytes + an 8-byte trailer, but only {available} "
                f"bytes are in the ring"
            )
        if not VMPACKET_DESCRIPTOR_SIZE // 8 <= offset8 <= len8:
            raise RingError(f"{where}: offset8 {offset8} is not between 2 and len8 {len8}")
        raw = descriptor + self._copy_from((read + VMPACKET_DESCRIPTOR_SIZE) % self.data_size,
                                           length - VMPACKET_DESCRIPTOR_SIZE)
        ranges: list[GpaRange] = []
        if ptype == VM_PKT_DATA_USING_GPA_DIRECT:
            ranges = self._gpa_direct_ranges(raw, offset8, where)
        self.read_index = (read + length + VMBUS_PKT_TRAILER) % self.data_size
        return Packet(ptype, offset8, len8, flags, trans_id, raw[offset8 * 8 :], raw, ranges)

    @staticmethod
    def _gpa_direct_ranges(raw: bytes, offset8: int, where: str) -> list[GpaRange]:
        header = raw[VMPACKET_DESCRIPTOR_SIZE : offset8 * 8]  # what lies before the payload
        if len(header) < _GPA_DIRECT_HEADER.size:
            raise RingError(f"{where}: GPA-direct packet with offset8 {offset8} has no room for range_count")
        _reserved, range_count = _GPA_DIRECT_HEADER.unpack_from(header)
        if range_count == 0:
            raise RingError(f"{where}: GPA-direct packet with range_count 0")
        try:
            ranges, _ = parse_gpa_ranges(header[_GPA_DIRECT_HEADER.size :], range_count)
        except ValueError as e:
            raise RingError(f"{where}: GPA-direct packet (range_count {range_count}, offset8 {offset8}): {e}") from None
        return ranges

    def begin_read(self) -> int:
        """Start draining: mask the writer's signals; return the bytes waiting (``hv_begin_read``)."""
        self.interrupt_mask = 1
        return self.bytes_to_read()

    def end_read(self) -> int:
        """Stop draining: unmask, then return the bytes waiting (``hv_end_read``).

        Non-zero means a packet arrived while the mask was set — its writer did not signal, so the
        reader must go round again instead of waiting for an interrupt that will not come.
        """
        self.interrupt_mask = 0
        return self.bytes_to_read()

    def writer_needs_signal(self, free_before: int) -> bool:
        """After reading: does a writer blocked on a full ring have to be woken?

        ``free_before`` is ``bytes_to_write()`` before this batch of reads. As Linux's
        ``hv_pkt_iter_close``: only if the ring advertises ``FEAT_PENDING_SEND_SZ``, the writer set
        ``pending_send_sz``, free space is now above it and was not before (else the writer was not
        blocked, or still is).
        """
        if not self.feature_bits & FEAT_PENDING_SEND_SZ:
            return False
        pending = self.pending_send_sz
        if not pending:
            return False
        return free_before <= pending < self.bytes_to_write()


def ring_pair(memory: RingMemory, total_pages: int, downstream_ringbuffer_pageoffset: int) -> tuple[Ring, Ring]:
    """The (outbound, inbound) rings of a channel whose GPADL of ``total_pages`` pages is ``memory``.

    The outbound ring (guest -> host) starts at page 0, the inbound ring (host -> guest) at
    ``downstream_ringbuffer_pageoffset`` — a number the guest sends in OPENCHANNEL, so it is checked:
    each ring needs its header page and at least one data page.
    """
    off = downstream_ringbuffer_pageoffset
    if not 2 <= off <= total_pages - 2:
        raise RingError(
            f"downstream_ringbuffer_pageoffset {off} does not leave a header and a data page "
            f"for both rings in a {total_pages}-page GPADL"
        )
    return Ring(memory, 0, off - 1), Ring(memory, off * PAGE_SIZE, total_pages - off - 1)
