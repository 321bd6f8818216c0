"""core/vmbus/ring.py: the VMBus ring buffer, its boundaries and its signalling rule.

The unit tests pin the behaviour a student reads about in docs/vmbus.md §4. The property-based tests
(hypothesis, 14,300 generated cases) drive the ring with random traffic against a model (a
``RuleBasedStateMachine`` checked step by step against a deque) and feed ``read_packet`` and
``write_packet`` rings whose header and data a hostile other side wrote, through a memory view that
fails the test on any access outside itself: the only acceptable outcomes are a valid packet or
``RingError`` with the ring untouched.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hyperlab.core.vmbus.ring import (
    FEAT_PENDING_SEND_SZ,
    PAGE_SIZE,
    VM_PKT_COMP,
    VM_PKT_DATA_INBAND,
    VM_PKT_DATA_USING_GPA_DIRECT,
    ByteRingMemory,
    GpaRange,
    Packet,
    Ring,
    RingBoundsError,
    RingError,
    RingFull,
    gpa_direct_header,
    packet_size,
    ring_pair,
)

DATA = PAGE_SIZE  # one data page: small enough that traffic wraps often


def examples(n: int) -> settings:
    """Hypothesis settings for a property run of ``n`` cases (no deadline: CI machines vary)."""
    return settings(max_examples=n, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])



def make_ring(data_pages: int = 1, header_offset: int = 0, extra: int = 0) -> tuple[Ring, bytearray]:
    buf = bytearray(header_offset + PAGE_SIZE * (1 + data_pages) + extra)
    ring = Ring(ByteRingMemory(buf), header_offset, data_pages)
    ring.init()
    return ring, buf


def start_at(ring: Ring, index: int) -> None:
    """An empty ring whose indices sit at ``index`` (as after earlier traffic)."""
    ring.write_index = index
    ring.read_index = index


class BoundedView:
    """A RingMemory that fails the test (AssertionError, not RingError) on any access outside
    itself, and records every write so a test can say what the ring touched."""

    def __init__(self, buf: bytearray) -> None:
        self.buf = buf
        self.writes: list[tuple[int, int]] = []

    def read(self, offset: int, n: int) -> bytes:
        assert 0 <= offset and 0 <= n and offset + n <= len(self.buf), f"read {offset:#x}+{n} outside the view"
        return bytes(self.buf[offset : offset + n])

    def write(self, offset: int, data: bytes) -> None:
        assert 0 <= offset and offset + len(data) <= len(self.buf), f"write {offset:#x}+{len(data)} outside the view"
        self.writes.append((offset, len(data)))
        self.buf[offset : offset + len(data)] = data


# ==================================================================================================
# Pure Python: the same file runs under Pyodide
# ==================================================================================================
def test_ring_module_is_standard_library_only_and_loads_on_its_own() -> None:
    import ast
    import importlib.util
    import sys

    import hyperlab.core.vmbus.ring as ring_module

    source = Path(ring_module.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "ring.py must not import relatively: it is loaded as a lone file"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    spec = importlib.util.spec_from_file_location("lone_ring", ring_module.__file__)
    assert spec is not None and spec.loader is not None
    lone = importlib.util.module_from_spec(spec)
    sys.modules["lone_ring"] = lone  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(lone)
        ring = lone.Ring(lone.ByteRingMemory(bytearray(2 * PAGE_SIZE)), 0, 1)
        ring.init()
        assert ring.write_packet(6, b"from the browser", 1)
        assert ring.read_packet().data.startswith(b"from the browser")
    finally:
        del sys.modules["lone_ring"]


# ==================================================================================================
# Layout
# ==================================================================================================
def test_header_fields_live_where_linux_puts_them() -> None:
    ring, buf = make_ring()
    ring.write_index, ring.read_index, ring.interrupt_mask, ring.pending_send_sz = 8, 16, 1, 200
    ring.feature_bits = FEAT_PENDING_SEND_SZ
    assert struct.unpack_from("<IIII", buf, 0) == (8, 16, 1, 200)
    assert struct.unpack_from("<I", buf, 64)[0] == 1
    assert bytes(buf[16:64]) == bytes(48)
    ring.init()
    assert bytes(buf[:PAGE_SIZE]) == bytes(PAGE_SIZE)
    ring.init(feature_bits=FEAT_PENDING_SEND_SZ)
    assert ring.feature_bits == 1


def test_data_area_follows_the_header_page_at_any_offset() -> None:
    ring, buf = make_ring(data_pages=2, header_offset=3 * PAGE_SIZE)
    assert ring.data_size == 2 * PAGE_SIZE
    ring.write_packet(VM_PKT_DATA_INBAND, b"hello", trans_id=7)
    assert struct.unpack_from("<I", buf, 3 * PAGE_SIZE)[0] == 24 + 8  # write_index
    desc = struct.unpack_from("<HHHHQ", buf, 4 * PAGE_SIZE)
    assert desc == (VM_PKT_DATA_INBAND, 2, 3, 0, 7)
    assert bytes(buf[4 * PAGE_SIZE + 16 : 4 * PAGE_SIZE + 24]) == b"hello\0\0\0"


def test_packet_layout_descriptor_payload_padding_trailer() -> None:
    ring, buf = make_ring()
    start_at(ring, 64)
    ring.write_packet(VM_PKT_DATA_INBAND, b"x" * 13, trans_id=0x1122334455667788, flags=1)
    base = PAGE_SIZE + 64
    assert struct.unpack_from("<HHHHQ", buf, base) == (6, 2, 4, 1, 0x1122334455667788)  # len8 = (16+13+7)/8
    assert bytes(buf[base + 16 : base + 32]) == b"x" * 13 + bytes(3)
    assert struct.unpack_from("<Q", buf, base + 32)[0] == 64 << 32  # trailer: old write_index << 32
    assert ring.write_index == 64 + 32 + 8
    pkt = ring.read_packet()
    assert pkt is not None
    assert (pkt.type, pkt.offset8, pkt.len8, pkt.flags, pkt.trans_id) == (6, 2, 4, 1, 0x1122334455667788)
    assert pkt.completion_requested
    assert pkt.data == b"x" * 13 + bytes(3)
    assert pkt.raw == bytes(buf[base : base + 32])
    assert ring.read_index == ring.write_index


def test_offset8_leaves_room_between_descriptor_and_payload() -> None:
    ring, _ = make_ring()
    ring.write_packet(VM_PKT_COMP, b"abcdefgh", trans_id=1, offset8=4)
    pkt = ring.read_packet()
    assert pkt is not None and pkt.offset8 == 4 and pkt.len8 == 5
    assert pkt.data == b"abcdefgh" and pkt.raw[16:32] == bytes(16)


def test_packet_size_counts_descriptor_padding_and_trailer() -> None:
    assert packet_size(0) == 24
    assert packet_size(1) == 32
    assert packet_size(512) == 16 + 512 + 8
    assert packet_size(8, header_extra_len=24) == 16 + 24 + 8 + 8


# ==================================================================================================
# Empty and full
# ==================================================================================================
def test_empty_ring() -> None:
    ring, _ = make_ring(data_pages=8)
    assert ring.read_packet() is None
    assert ring.bytes_to_read() == 0
    assert ring.bytes_to_write() == 8 * PAGE_SIZE
    start_at(ring, 8 * PAGE_SIZE - 8)
    assert ring.read_packet() is None and ring.bytes_to_write() == 8 * PAGE_SIZE


def test_full_boundary_needs_strictly_more_free_than_the_packet() -> None:
    ring, _ = make_ring()
    # First packet: 2048 bytes in the ring; 2048 free.
    ring.write_packet(VM_PKT_DATA_INBAND, bytes(2048 - 24), trans_id=1)
    assert ring.bytes_to_write() == 2048
    # A packet needing exactly the 2048 free bytes would make write == read: refused.
    with pytest.raises(RingFull) as e:
        ring.write_packet(VM_PKT_DATA_INBAND, bytes(2048 - 24), trans_id=2)
    assert (e.value.needed, e.value.free) == (2048, 2048)
    assert ring.bytes_to_write() == 2048  # nothing written
    # 8 bytes less fits, and leaves the ring "full" with 8 bytes free — never read == write.
    ring.write_packet(VM_PKT_DATA_INBAND, bytes(2048 - 32), trans_id=3)
    assert ring.bytes_to_write() == 8 and ring.bytes_to_read() == DATA - 8
    assert ring.write_index != ring.read_index
    with pytest.raises(RingFull):
        ring.write_packet(VM_PKT_DATA_INBAND, b"", trans_id=4)
    assert [p.trans_id for p in iter(ring.read_packet, None)] == [1, 3]
    assert ring.bytes_to_read() == 0


def test_a_packet_that_could_never_fit_is_a_value_error() -> None:
    ring, _ = make_ring()
    with pytest.raises(ValueError):
        ring.write_packet(VM_PKT_DATA_INBAND, bytes(DATA - 24), trans_id=1)  # needs == data_size
    ring.write_packet(VM_PKT_DATA_INBAND, bytes(DATA - 32), trans_id=1)  # needs data_size - 8: fits, once
    with pytest.raises(ValueError):
        ring.write_packet(VM_PKT_DATA_INBAND, b"", trans_id=1, offset8=1)
    with pytest.raises(ValueError):
        ring.write_raw(VM_PKT_DATA_INBAND, b"abc", b"", trans_id=1)
    with pytest.raises(ValueError):
        ring.write_packet(0x10000, b"", trans_id=1)
    with pytest.raises(ValueError):
        ring.write_packet(VM_PKT_DATA_INBAND, b"", trans_id=-1)


# ==================================================================================================
# Wrap-around
# ==================================================================================================
def test_packet_wraps_around_the_end_of_the_data_area() -> None:
    ring, buf = make_ring()
    start_at(ring, DATA - 24)  # descriptor + 8 payload bytes before the end, the rest at the start
    payload = bytes(range(100))
    ring.write_packet(VM_PKT_DATA_INBAND, payload, trans_id=9)
    base = PAGE_SIZE
    assert struct.unpack_from("<HHHHQ", buf, base + DATA - 24)[0] == VM_PKT_DATA_INBAND
    assert bytes(buf[base + DATA - 8 : base + DATA]) == payload[:8]
    assert bytes(buf[base : base + 92]) == payload[8:]
    assert ring.write_index == (DATA - 24 + 16 + 104 + 8) % DATA
    pkt = ring.read_packet()
    assert pkt is not None and pkt.data[:100] == payload and pkt.trans_id == 9
    assert ring.read_index == ring.write_index == 104


def test_descriptor_itself_split_across_the_end() -> None:
    ring, buf = make_ring()
    start_at(ring, DATA - 8)
    ring.write_packet(VM_PKT_COMP, b"12345678", trans_id=0xABCDEF)
    assert struct.unpack_from("<HHHH", buf, PAGE_SIZE + DATA - 8) == (VM_PKT_COMP, 2, 3, 0)
    assert struct.unpack_from("<Q", buf, PAGE_SIZE)[0] == 0xABCDEF
    pkt = ring.read_packet()
    assert pkt is not None and (pkt.trans_id, pkt.data) == (0xABCDEF, b"12345678")
    assert ring.read_index == 24


def test_trailer_wraps_to_the_start_when_the_packet_ends_at_the_end() -> None:
    ring, buf = make_ring()
    start_at(ring, DATA - 32)
    ring.write_packet(VM_PKT_DATA_INBAND, bytes(16), trans_id=1)  # 32 bytes: ends exactly at the end
    assert struct.unpack_from("<Q", buf, PAGE_SIZE)[0] == (DATA - 32) << 32  # trailer at data offset 0
    assert ring.write_index == 8
    assert ring.read_packet() is not None and ring.read_index == 8


def test_trailer_in_the_last_bytes_then_index_wraps_to_zero() -> None:
    ring, buf = make_ring()
    start_at(ring, DATA - 40)
    ring.write_packet(VM_PKT_DATA_INBAND, bytes(16), trans_id=1)
    assert struct.unpack_from("<Q", buf, PAGE_SIZE + DATA - 8)[0] == (DATA - 40) << 32
    assert ring.write_index == 0
    assert ring.read_packet() is not None and ring.read_index == 0


# ==================================================================================================
# Signalling (docs/vmbus.md §4)
# ==================================================================================================
def test_signal_only_on_empty_to_non_empty() -> None:
    ring, _ = make_ring()
    assert ring.write_packet(VM_PKT_DATA_INBAND, b"a", 1) is True  # empty -> signal
    assert ring.write_packet(VM_PKT_DATA_INBAND, b"b", 2) is False  # reader has work already
    assert ring.write_packet(VM_PKT_DATA_INBAND, b"c", 3) is False
    while ring.read_packet():
        pass
    assert ring.write_packet(VM_PKT_DATA_INBAND, b"d", 4) is True  # drained -> signal again


def test_no_signal_while_the_reader_masks_interrupts() -> None:
    ring, _ = make_ring()
    ring.interrupt_mask = 1
    assert ring.write_packet(VM_PKT_DATA_INBAND, b"a", 1) is False  # empty, but masked
    ring.interrupt_mask = 0
    assert ring.write_packet(VM_PKT_DATA_INBAND, b"b", 2) is False  # unmasked, but not empty


def test_signal_rule_reads_read_index_after_the_write() -> None:
    """The writer compares its old write_index with the read_index it sees *after* writing: a
    reader that emptied the ring meanwhile gets its signal."""
    ring, _ = make_ring()
    ring.write_packet(VM_PKT_DATA_INBAND, b"a", 1)
    old = ring.write_index

    class ReaderCatchesUp(ByteRingMemory):
        def write(self, offset: int, data: bytes) -> None:
            super().write(offset, data)
            if offset == 0 and len(data) == 4:  # the writer publishing write_index
                self.buffer[4:8] = struct.pack("<I", old)  # the reader consumed packet 1 meanwhile

    racing = Ring(ReaderCatchesUp(ring.memory.buffer), 0, 1)  # type: ignore[attr-defined]
    assert racing.write_packet(VM_PKT_DATA_INBAND, b"b", 2) is True


def test_batched_read_with_begin_and_end_read() -> None:
    ring, _ = make_ring()
    signals = [ring.write_packet(VM_PKT_DATA_INBAND, b"p1", 1)]  # the one signal that wakes the reader
    assert ring.begin_read() == 24 + 8
    assert ring.interrupt_mask == 1
    assert ring.read_packet() is not None
    # The ring is empty now, but the reader is still in its loop: the writer must not signal.
    signals.append(ring.write_packet(VM_PKT_DATA_INBAND, b"p2", 2))
    signals.append(ring.write_packet(VM_PKT_DATA_INBAND, b"p3", 3))
    assert signals == [True, False, False]
    assert [p.trans_id for p in iter(ring.read_packet, None)] == [2, 3]
    # A packet arriving after the last read but before end_read: no signal, and end_read says so.
    assert ring.write_packet(VM_PKT_DATA_INBAND, b"p4", 4) is False
    assert ring.end_read() == 32
    assert ring.interrupt_mask == 0
    pkt = ring.read_packet()
    assert pkt is not None and pkt.trans_id == 4
    assert ring.end_read() == 0


def test_writer_wakeup_with_pending_send_sz() -> None:
    ring, _ = make_ring()
    ring.init(feature_bits=FEAT_PENDING_SEND_SZ)
    ring.write_packet(VM_PKT_DATA_INBAND, bytes(2000), 1)
    ring.write_packet(VM_PKT_DATA_INBAND, bytes(1900), 2)
    with pytest.raises(RingFull) as full:
        ring.write_packet(VM_PKT_DATA_INBAND, bytes(1000), 3)
    ring.pending_send_sz = full.value.needed  # the blocked writer asks to be woken
    free_before = ring.bytes_to_write()
    assert not ring.writer_needs_signal(free_before)  # nothing read yet
    ring.read_packet()
    assert ring.writer_needs_signal(free_before)
    assert not ring.writer_needs_signal(ring.bytes_to_write())  # was not blocked before this batch
    ring.feature_bits = 0
    assert not ring.writer_needs_signal(free_before)
    ring.feature_bits, ring.pending_send_sz = FEAT_PENDING_SEND_SZ, 0
    assert not ring.writer_needs_signal(free_before)


# ==================================================================================================
# GPA-direct packets
# ==================================================================================================
def test_gpa_direct_round_trip_and_offset8() -> None:
    ring, _ = make_ring()
    ranges = [GpaRange(8192, 512, (0x100, 0x101, 0x7F))]
    ring.write_gpa_direct(ranges, b"vstor-packet", trans_id=42, flags=1)
    pkt = ring.read_packet()
    assert pkt is not None and pkt.type == VM_PKT_DATA_USING_GPA_DIRECT
    assert pkt.offset8 == (16 + 8 + 8 + 3 * 8) // 8  # descriptor, reserved+range_count, range header, 3 pfns
    assert pkt.ranges == ranges
    assert pkt.data[:12] == b"vstor-packet"
    assert gpa_direct_header(ranges) == pkt.raw[16 : pkt.offset8 * 8]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (struct.pack("<II", 0, 0), "range_count 0"),
        (struct.pack("<II", 0, 1), "starts at byte 0"),  # a range promised, none there
        (struct.pack("<IIII", 0, 1, 4097, 0) + struct.pack("<Q", 5), "span 2 pages"),  # needs 2 pfns, has 1
        (struct.pack("<IIII", 0, 1, 10, 4096) + struct.pack("<Q", 5), "not inside the first page"),
        (struct.pack("<IIII", 0, 1, 0, 0) + struct.pack("<Q", 5), "byte_count is 0"),
        (struct.pack("<IIII", 0, 2, 10, 0) + struct.pack("<Q", 5), "range 1 of 2"),
        (b"", "no room for range_count"),
    ],
)
def test_bad_gpa_direct_packets_are_ring_errors(extra: bytes, reason: str) -> None:
    ring, _ = make_ring()
    ring.write_raw(VM_PKT_DATA_USING_GPA_DIRECT, extra, b"payload!", trans_id=1)
    before = ring.read_index
    with pytest.raises(RingError, match=reason):
        ring.read_packet()
    assert ring.read_index == before


# ==================================================================================================
# A corrupted ring: RingError with a reason, nothing consumed
# ==================================================================================================
def _corrupt_ring_with_packet() -> tuple[Ring, bytearray]:
    ring, buf = make_ring()
    ring.write_packet(VM_PKT_DATA_INBAND, bytes(24), trans_id=1)  # len8 5, 48 bytes in the ring
    return ring, buf


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("write_index", DATA, "write_index .* outside"),
        ("write_index", 0xFFFFFFFF, "write_index .* outside"),
        ("write_index", 44, "write_index .* not 8-byte aligned"),
        ("read_index", DATA + 8, "read_index .* outside"),
        ("read_index", 3, "read_index .* not 8-byte aligned"),
        ("write_index", 16, "less than a descriptor"),
    ],
)
def test_impossible_indices(field: str, value: int, reason: str) -> None:
    ring, _ = _corrupt_ring_with_packet()
    setattr(ring, field, value)
    with pytest.raises(RingError, match=reason):
        ring.read_packet()
    if field in reason:  # the index itself is impossible: every operation refuses
        with pytest.raises(RingError):
            ring.bytes_to_read()
        with pytest.raises(RingError):
            ring.write_packet(VM_PKT_DATA_INBAND, b"x", 2)


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "reason"),
    [
        (4, "<H", 1, "len8 1 is shorter"),
        (4, "<H", 0, "len8 0 is shorter"),
        (4, "<H", 6, "only 48 bytes"),  # 48 + 8 trailer > 48
        (4, "<H", 0xFFFF, "only 48 bytes"),
        (2, "<H", 1, "offset8 1"),
        (2, "<H", 0, "offset8 0"),
        (2, "<H", 6, "offset8 6 is not between 2 and len8 5"),
    ],
)
def test_impossible_descriptors(offset: int, fmt: str, value: int, reason: str) -> None:
    ring, buf = _corrupt_ring_with_packet()
    struct.pack_into(fmt, buf, PAGE_SIZE + offset, value)
    snapshot = bytes(buf)
    with pytest.raises(RingError, match=reason):
        ring.read_packet()
    assert bytes(buf) == snapshot  # nothing consumed, nothing written


def test_packet_exactly_filling_what_was_published_is_fine() -> None:
    ring, buf = _corrupt_ring_with_packet()
    struct.pack_into("<H", buf, PAGE_SIZE + 2, 5)  # offset8 == len8: empty payload is legal
    pkt = ring.read_packet()
    assert pkt is not None and pkt.data == b""


def test_memory_view_bounds() -> None:
    mem = ByteRingMemory(bytearray(100))
    with pytest.raises(RingBoundsError):
        mem.read(96, 8)
    with pytest.raises(RingBoundsError):
        mem.read(-1, 1)
    with pytest.raises(RingBoundsError):
        mem.write(99, b"ab")
    # A ring placed beyond its memory fails with a RingError, never an IndexError.
    ring = Ring(ByteRingMemory(bytearray(PAGE_SIZE + 100)), 0, 1)
    ring.init()
    with pytest.raises(RingError):
        ring.write_packet(VM_PKT_DATA_INBAND, bytes(200), 1)


def test_constructor_and_header_setters_validate() -> None:
    mem = ByteRingMemory(bytearray(2 * PAGE_SIZE))
    with pytest.raises(ValueError):
        Ring(mem, 0, 0)
    with pytest.raises(ValueError):
        Ring(mem, -4096, 1)
    ring = Ring(mem, 0, 1)
    with pytest.raises(ValueError):
        ring.write_index = 1 << 32
    assert "data_pages=1" in repr(ring)


def test_ring_pair_splits_a_gpadl_as_the_spec_says() -> None:
    mem = ByteRingMemory(bytearray(18 * PAGE_SIZE))
    out, inb = ring_pair(mem, 18, 9)
    assert (out.header_offset, out.data_pages) == (0, 8)
    assert (inb.header_offset, inb.data_pages) == (9 * PAGE_SIZE, 8)
    out.init()
    inb.init()
    out.write_packet(VM_PKT_DATA_INBAND, b"to host", 1)
    inb.write_packet(VM_PKT_DATA_INBAND, b"to guest", 2)
    assert out.read_packet().data.startswith(b"to host")  # type: ignore[union-attr]
    assert inb.read_packet().data.startswith(b"to guest")  # type: ignore[union-attr]
    for bad in (0, 1, 17, 18, 100):
        with pytest.raises(RingError):
            ring_pair(mem, 18, bad)


# ==================================================================================================
# Property-based: traffic against a model
# ==================================================================================================
payloads = st.binary(min_size=0, max_size=1200)
aligned_index = st.integers(0, DATA // 8 - 1).map(lambda i: i * 8)


@examples(2000)
@given(start=aligned_index, sizes=st.lists(st.integers(0, 1500), max_size=12), seed=st.integers(0, 2**32))
def test_whatever_fits_comes_out_unchanged_in_order(start: int, sizes: list[int], seed: int) -> None:
    ring, _ = make_ring()
    start_at(ring, start)
    rng = random.Random(seed)  # content drawn cheaply: sizes and positions are what shrink usefully
    written: list[tuple[int, bytes]] = []
    for i, size in enumerate(sizes):
        payload = rng.randbytes(size)
        free = ring.bytes_to_write()
        if free > packet_size(size):
            ring.write_packet(VM_PKT_DATA_INBAND, payload, trans_id=i)
            written.append((i, payload))
        else:
            with pytest.raises(RingFull):
                ring.write_packet(VM_PKT_DATA_INBAND, payload, trans_id=i)
        assert ring.bytes_to_read() + ring.bytes_to_write() == DATA
        assert ring.bytes_to_write() > 0
    for i, payload in written:
        pkt = ring.read_packet()
        assert pkt is not None and pkt.trans_id == i
        assert pkt.data == payload + bytes(-len(payload) % 8)
    assert ring.read_packet() is None


class RingModel(RuleBasedStateMachine):
    """A writer and a reader sharing one ring, checked step by step against a deque: contents,
    free space, and the signalling rule (signal iff unmasked and the model was empty)."""

    def __init__(self) -> None:
        super().__init__()
        self.ring, _ = make_ring()
        self.model: deque[tuple[int, int, bytes, list[GpaRange]]] = deque()
        self.used = 0
        self.masked = False
        self.next_id = 0
        self.signals_sent = 0
        self.signals_suppressed = 0

    @initialize(start=aligned_index)
    def place(self, start: int) -> None:
        start_at(self.ring, start)

    def _expect_write(self, size: int, write: object) -> None:
        needed = packet_size(size)
        was_empty = not self.model
        if DATA - self.used > needed:
            signal = write()  # type: ignore[operator]
            assert signal == (was_empty and not self.masked)
            self.used += needed
            if signal:
                self.signals_sent += 1
            else:
                self.signals_suppressed += 1
        else:
            with pytest.raises(RingFull):
                write()  # type: ignore[operator]

    @rule(payload=payloads, ptype=st.sampled_from([VM_PKT_DATA_INBAND, VM_PKT_COMP]), flags=st.integers(0, 1))
    def write(self, payload: bytes, ptype: int, flags: int) -> None:
        tid = self.next_id
        self.next_id += 1

        def go() -> bool:
            return self.ring.write_packet(ptype, payload, tid, flags)

        fits = DATA - self.used > packet_size(len(payload))
        self._expect_write(len(payload), go)
        if fits:
            self.model.append((tid, ptype, payload, []))

    @rule(
        payload=st.binary(max_size=200),
        pfns=st.lists(st.integers(0, (1 << 40) - 1), min_size=1, max_size=20),
        offset=st.integers(0, PAGE_SIZE - 1),
        within=st.integers(0, PAGE_SIZE - 1),
    )
    def write_gpa_direct(self, payload: bytes, pfns: list[int], offset: int, within: int) -> None:
        # byte_count such that the range spans exactly len(pfns) pages from byte_offset
        low = max(1, (len(pfns) - 1) * PAGE_SIZE - offset + 1)
        high = len(pfns) * PAGE_SIZE - offset
        count = low + within % (high - low + 1)
        assert GpaRange.pages_spanned(offset, count) == len(pfns)
        ranges = [GpaRange(count, offset, tuple(pfns))]
        tid = self.next_id
        self.next_id += 1
        extra = len(gpa_direct_header(ranges))
        size = extra + len(payload)

        def go() -> bool:
            return self.ring.write_gpa_direct(ranges, payload, tid)

        fits = DATA - self.used > packet_size(size)
        self._expect_write(size, go)
        if fits:
            self.model.append((tid, VM_PKT_DATA_USING_GPA_DIRECT, payload, ranges))

    @rule()
    def read(self) -> None:
        pkt = self.ring.read_packet()
        if not self.model:
            assert pkt is None
            return
        tid, ptype, payload, ranges = self.model.popleft()
        assert pkt is not None
        assert (pkt.trans_id, pkt.type, pkt.ranges) == (tid, ptype, ranges)
        assert pkt.data == payload + bytes(-len(payload) % 8)
        self.used -= pkt.len8 * 8 + 8

    @rule(on=st.booleans())
    def begin_or_end_read(self, on: bool) -> None:
        """The reader's batching: begin_read masks and end_read unmasks; both report what waits."""
        if on and not self.masked:
            assert self.ring.begin_read() == self.used
            self.masked = True
        elif not on and self.masked:
            assert self.ring.end_read() == self.used
            self.masked = False

    @invariant()
    def space_matches_the_model(self) -> None:
        assert self.ring.bytes_to_read() == self.used
        assert self.ring.bytes_to_write() == DATA - self.used
        assert self.ring.interrupt_mask == int(self.masked)
        assert (self.ring.read_index == self.ring.write_index) == (not self.model)


TestRingModel = RingModel.TestCase
TestRingModel.settings = settings(
    max_examples=600, stateful_step_count=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ==================================================================================================
# Property-based: a hostile other side
# ==================================================================================================
def _hostile_ring(header: bytes, data: bytes) -> tuple[Ring, BoundedView]:
    buf = bytearray(PAGE_SIZE + DATA)
    buf[: len(header)] = header
    buf[PAGE_SIZE : PAGE_SIZE + len(data)] = data
    view = BoundedView(buf)
    return Ring(view, 0, 1), view


index_values = st.one_of(aligned_index, st.integers(0, (1 << 32) - 1), st.sampled_from([DATA - 8, DATA, 4, 0]))


def _reason(message: str) -> str:
    """The kind of refusal, without the numbers (for hypothesis' event statistics)."""
    for kind in ("range_count 0", "no room for range_count", "byte_offset", "byte_count is 0", "span", "starts at",
                 "outside", "aligned", "less than a descriptor", "shorter", "trailer", "offset8"):
        if kind in message:
            return kind
    return message


def _check_read_outcome(ring: Ring, view: BoundedView) -> None:
    before = bytes(view.buf)
    try:
        write, read = ring.write_index, ring.read_index
        pkt = ring.read_packet()
    except RingError as e:
        assert bytes(view.buf) == before, "a refused packet must leave the ring as it was"
        event(f"RingError: {_reason(str(e))}")
        return
    event("empty" if pkt is None else f"packet type {pkt.type}" + (" with ranges" if pkt.ranges else ""))
    if pkt is None:
        assert write == read and not view.writes
        return
    assert isinstance(pkt, Packet)
    assert len(pkt.raw) == pkt.len8 * 8 >= 16
    assert 2 <= pkt.offset8 <= pkt.len8
    assert pkt.data == pkt.raw[pkt.offset8 * 8 :]
    assert (write - read) % DATA >= pkt.len8 * 8 + 8
    assert ring.read_index == (read + pkt.len8 * 8 + 8) % DATA
    assert view.writes == [(4, 4)], "the reader writes nothing but read_index"
    if pkt.type == VM_PKT_DATA_USING_GPA_DIRECT:
        assert pkt.ranges and sum(r.size for r in pkt.ranges) + 24 <= pkt.offset8 * 8


@examples(4000)
@given(write=index_values, read=index_values, data=st.binary(min_size=0, max_size=DATA))
def test_read_packet_on_arbitrary_bytes(write: int, read: int, data: bytes) -> None:
    ring, view = _hostile_ring(struct.pack("<II", write, read), data)
    _check_read_outcome(ring, view)


# Descriptors that are *almost* right reach the deeper checks far more often than random bytes.
near_len8 = st.one_of(st.integers(0, 8), st.integers(0, DATA // 8 + 2), st.just(0xFFFF))
descriptors = st.tuples(
    st.sampled_from([VM_PKT_DATA_INBAND, VM_PKT_DATA_USING_GPA_DIRECT, VM_PKT_COMP, 0, 0xFFFF]),
    st.integers(0, 12),
    near_len8,
    st.integers(0, 0xFFFF),
    st.integers(0, (1 << 64) - 1),
)
gpa_headers = st.tuples(
    st.integers(0, (1 << 32) - 1),
    st.one_of(st.integers(0, 3), st.integers(0, (1 << 32) - 1)),
    st.one_of(st.integers(0, 3 * PAGE_SIZE), st.integers(0, (1 << 32) - 1)),
    st.one_of(st.integers(0, PAGE_SIZE), st.integers(0, (1 << 32) - 1)),
)


@examples(3000)
@given(
    read=aligned_index,
    published=st.integers(0, DATA // 8 - 1),
    desc=descriptors,
    gpa=gpa_headers,
    rest=st.binary(max_size=256),
)
def test_read_packet_on_nearly_valid_descriptors(
    read: int, published: int, desc: tuple[int, int, int, int, int], gpa: tuple[int, int, int, int], rest: bytes
) -> None:
    body = struct.pack("<HHHHQ", *desc) + struct.pack("<IIII", *gpa) + rest
    data = bytearray(DATA)
    for i, b in enumerate(body[:DATA]):
        data[(read + i) % DATA] = b
    ring, view = _hostile_ring(struct.pack("<II", (read + published * 8) % DATA, read), bytes(data))
    _check_read_outcome(ring, view)


gpa_ranges = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 3 * PAGE_SIZE), st.integers(0, (1 << 32) - 1)),  # byte_count
        st.one_of(st.integers(0, PAGE_SIZE), st.integers(0, (1 << 32) - 1)),  # byte_offset
        st.integers(-1, 1),  # pfns written: as many as spanned, one fewer, one more
    ),
    max_size=3,
)


@examples(2500)
@given(
    read=aligned_index,
    range_count=st.one_of(st.integers(0, 4), st.integers(0, (1 << 32) - 1)),
    ranges=gpa_ranges,
    payload=st.binary(max_size=64),
    offset8_delta=st.sampled_from([0, 0, 0, -1, 1, -3]),
    len8_delta=st.sampled_from([0, 0, 0, -1, 1]),
    slack=st.sampled_from([8, 8, 0, 16, 4096]),
)
def test_read_packet_on_nearly_valid_gpa_direct(
    read: int,
    range_count: int,
    ranges: list[tuple[int, int, int]],
    payload: bytes,
    offset8_delta: int,
    len8_delta: int,
    slack: int,
) -> None:
    """GPA-direct packets whose range_count, ranges, pfn counts, offset8 and len8 are each a little off."""
    header = struct.pack("<II", 0, range_count)
    for byte_count, byte_offset, pfn_delta in ranges:
        npfn = max(0, min(8, GpaRange.pages_spanned(byte_offset, byte_count) + pfn_delta))
        header += struct.pack("<II", byte_count, byte_offset) + struct.pack(f"<{npfn}Q", *range(npfn))
    offset8 = max(0, (16 + len(header)) // 8 + offset8_delta)
    length = 16 + len(header) + len(payload)
    len8 = max(0, (length + 7) // 8 + len8_delta)
    body = struct.pack("<HHHHQ", VM_PKT_DATA_USING_GPA_DIRECT, offset8, len8, 1, 7) + header + payload
    data = bytearray(DATA)
    for i, b in enumerate(body[: DATA - 8]):
        data[(read + i) % DATA] = b
    published = min(((length + 7) // 8) * 8 + slack, DATA - 8)
    ring, view = _hostile_ring(struct.pack("<II", (read + published) % DATA, read), bytes(data))
    _check_read_outcome(ring, view)


@examples(2000)
@given(
    write=index_values,
    read=index_values,
    mask=st.sampled_from([0, 1, 0xFFFFFFFF]),
    payload=st.binary(max_size=600),
    junk=st.binary(max_size=DATA),
)
def test_write_packet_on_arbitrary_header(write: int, read: int, mask: int, payload: bytes, junk: bytes) -> None:
    ring, view = _hostile_ring(struct.pack("<III", write, read, mask), junk)
    before = bytes(view.buf)
    try:
        signal = ring.write_packet(VM_PKT_DATA_INBAND, payload, trans_id=5)
    except (RingError, RingFull):
        assert bytes(view.buf) == before
        return
    assert signal == (mask == 0 and read == write)
    assert all(off >= PAGE_SIZE or (off, n) == (0, 4) for off, n in view.writes), "only data and write_index"
    assert view.writes[-1] == (0, 4), "write_index is published last"
    reader = Ring(view, 0, 1)
    reader.read_index = write
    pkt = reader.read_packet()
    assert pkt is not None and pkt.trans_id == 5 and pkt.data[: len(payload)] == payload


@examples(200)
@given(data_pages=st.integers(1, 16), header_page=st.integers(0, 4), payload=st.binary(max_size=4000))
def test_any_geometry(data_pages: int, header_page: int, payload: bytes) -> None:
    ring, _ = make_ring(data_pages, header_page * PAGE_SIZE)
    assume(packet_size(len(payload)) < ring.data_size)
    start_at(ring, ring.data_size - 16)
    assert ring.write_packet(VM_PKT_DATA_INBAND, payload, 1)
    pkt = ring.read_packet()
    assert pkt is not None and pkt.data[: len(payload)] == payload
