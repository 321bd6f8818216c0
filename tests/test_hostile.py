"""Hostile guests: whatever a child does, only the child's own partition may suffer.

Two kinds of test. Small guest images assembled here (a few instructions at 0x100000, ring 0,
paging off, as in test_core.py) replay what fuzzing found escaping a partition; and in-process
fuzzing (hypothesis, bounded) feeds what a guest controls — channel messages, ring headers and
packets, hypercall registers and input pages, port I/O — to a real hypervisor, then checks that
the host is intact: no exception escaped, the root still runs, only the guest's own state changed.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from guestlab import GuestLab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import x86_const as X

from hyperlab.core.hypervisor import Hypervisor
from hyperlab.core.lab import Lab
from hyperlab.core.partition import Partition, PartitionConfig
from hyperlab.core.vmbus import messages as m
from hyperlab.core.vmbus.gpadl import GpadlView
from hyperlab.core.vmbus.messages import (
    HV_REGISTER_SCONTROL,
    HV_REGISTER_SIEFP,
    HV_REGISTER_SIMP,
    HV_REGISTER_SINT0,
)
from hyperlab.core.vmbus.ring import Ring, RingFull, ring_pair
from hyperlab.core.vmbus.server import (
    MAX_GPADLS_PER_CHANNEL,
    MAX_GPADLS_PER_PARTITION,
    STATUS_INSUFFICIENT_RESOURCES,
)

HLT_LOOP = b"\xf4\xeb\xfd"  # hlt; jmp back to it


# --- a tiny assembler for the hand-made guests --------------------------------------------------------
def mov_al(value: int) -> bytes:
    return b"\xb0" + bytes([value])


def out_imm(port: int) -> bytes:
    """out imm8, al"""
    return b"\xe6" + bytes([port])


def out_dx(port: int, value: int) -> bytes:
    """mov dx, port; mov al, value; out dx, al"""
    return b"\x66\xba" + struct.pack("<H", port) + mov_al(value) + b"\xee"


def mov_ecx(value: int) -> bytes:
    return b"\xb9" + struct.pack("<I", value)


def mov_edx(value: int) -> bytes:
    return b"\xba" + struct.pack("<I", value)


VMCALL = b"\x0f\x01\xc1"
IMAGE_BASE = 0x100000


def lab_with(image: bytes, tmp_path: Path | None = None, **child: object) -> GuestLab:
    """root runs our kernel and is booted; child1 runs `image` (not started yet)."""
    lab = GuestLab({"partitions": [{"name": "root", "role": "root"},
                                   {"name": "child1", "role": "child", "image": image, **child}]}, boot=False)
    lab.call(lambda: lab.partition("root").start())
    lab.wait_for("root", b"root$ ")
    return lab


def wait_until(check: Callable[[], object], what: str, timeout: float = 10) -> None:
    """Poll from the test thread, not through lab.call: a call cuts the guest's slice short, which
    would hide what a guest does within one slice (the races these tests are about)."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, what
        time.sleep(0.005)


def assert_root_alive(lab: GuestLab) -> None:
    """The rest of the lab goes on: the root's shell still answers."""
    assert lab.state("root") == "running"
    assert "still here" in lab.type("root", "echo still here")


# =====================================================================================================
# Found by fuzzing: each of these escaped the guest's partition before its fix.
# =====================================================================================================
def interrupt_with_no_idt_guest() -> bytes:
    """Program the PIC and the UART's receive interrupt, load an empty IDT, then sleep with
    interrupts on: the first keystroke's interrupt cannot be delivered (#GP, #DF, triple fault)."""
    code = b"".join([
        mov_al(0x11), out_imm(0x20),  # ICW1: initialise the master PIC, ICW4 follows
        mov_al(0x20), out_imm(0x21),  # ICW2: vectors 0x20-0x27
        mov_al(0x04), out_imm(0x21),  # ICW3: the slave on IR2
        mov_al(0x01), out_imm(0x21),  # ICW4: 8086 mode
        mov_al(0xEF), out_imm(0x21),  # mask every IRQ but 4 (COM1)
        out_dx(0x3FC, 0x08),          # UART MCR.OUT2: the IRQ line reaches the PIC
        out_dx(0x3F9, 0x01),          # UART IER: interrupt on received data
    ])
    lidt_at = len(code)
    tail = b"\xfb" + HLT_LOOP  # sti; hlt; jmp hlt
    idtr_at = lidt_at + 7 + len(tail)
    code += b"\x0f\x01\x1d" + struct.pack("<i", idtr_at - (lidt_at + 7))  # lidt [rip+idtr]
    return code + tail + struct.pack("<HQ", 0, 0)  # IDTR: limit 0, base 0


def test_a_triple_fault_while_the_core_injects_an_interrupt_ends_only_that_partition() -> None:
    lab = lab_with(interrupt_with_no_idt_guest())
    try:
        lab.call(lambda: lab.partition("child1").start())
        wait_until(lambda: lab.partition("child1").halted, "child1 never reached its hlt")
        lab.send("child1", b"x")  # one keystroke: IRQ 4 -> vector 0x24 through an IDT of limit 0
        wait_until(lambda: lab.partition("child1").state.value == "crashed", "child1 did not crash")
        assert "triple fault" in lab.call(lambda: lab.partition("child1").reason)
        assert_root_alive(lab)
        lab.call(lambda: lab.partition("child1").start())  # and it can be started again
        assert lab.state("child1") == "running"
    finally:
        lab.close()


INPUT_PAGE = 0x9000
GO_FLAG = 0x8000


def post_message_input(payload: bytes) -> bytes:
    """The input page of HvCallPostMessage: connection id, reserved, message type, size, payload."""
    return struct.pack("<IIII", m.VMBUS_MESSAGE_CONNECTION_ID, 0, 1, len(payload)) + payload


def unload_then_post_guest() -> bytes:
    """Ask for the offers, wait for the host's go, then UNLOAD and — without waiting for anything —
    post a GPADL_HEADER: the second hypercall comes after the UNLOAD turned the partition off."""
    def post(slot: int) -> bytes:
        return mov_ecx(0x5C) + mov_edx(INPUT_PAGE + slot * 0x100) + VMCALL

    code = post(0)
    wait_at = len(code)
    code += b"\x80\x3c\x25" + struct.pack("<I", GO_FLAG) + b"\x00"  # cmp byte [GO_FLAG], 0
    code += b"\x74" + bytes([(wait_at - (len(code) + 2)) & 0xFF])   # je wait
    return code + post(1) + post(2) + HLT_LOOP


def test_a_hypercall_after_a_power_off_inside_a_hypercall_is_refused_not_fatal() -> None:
    lab = lab_with(unload_then_post_guest())
    try:
        def arm() -> None:
            child = lab.partition("child1")
            child.start()
            gpadl = m.GpadlHeader(child_relid=1, gpadl=5, ranges=(m.GpaRange(4096, 0, (0x50,)),))
            for slot, msg in enumerate([m.RequestOffers(), m.Unload(), gpadl]):
                child.vp.memory.write(INPUT_PAGE + slot * 0x100, post_message_input(msg.pack()))

        lab.call(arm)
        wait_until(lambda: lab.hv.telemetry.counters["child1.vmbus.messages_received"] >= 1,
                   "child1 never asked for the offers")

        def shut_down_requested() -> None:
            # What Shut down leaves behind (the shutdown request itself needs the IC channel, which
            # this tiny guest does not open): the partition is stopping, waiting for its UNLOAD.
            child = lab.partition("child1")
            child.state = child.state.STOPPING
            child.vp.memory.write(GO_FLAG, b"\x01")

        lab.call(shut_down_requested)
        wait_until(lambda: lab.partition("child1").state.value == "off", "child1 did not turn off")
        assert lab.counters()["child1.clean_shutdowns"] == 1
        assert_root_alive(lab)
    finally:
        lab.close()


# --- console input: what a student (or a script on a WebSocket) types, bounded ----------------------------
@pytest.fixture(scope="module")
def lab() -> Iterator[GuestLab]:
    """The real lab: root, child1 (Integration Services: synthetic console), child2 (UART)."""
    lab = GuestLab()
    yield lab
    lab.close()


def flood(lab: GuestLab, name: str, total: int, chunk: int = 4096) -> None:
    """Type `total` bytes in WebSocket-sized messages, as fast as they can be sent."""
    for _ in range(total // chunk):
        lab.send(name, b"a" * chunk)


def test_typing_at_a_partition_that_reads_nothing_holds_a_bounded_backlog(lab: GuestLab) -> None:
    vsp = lab.partition("child1").services.console
    lab.call(lambda: lab.partition("child1").act("pause"))  # its guest reads no input meanwhile
    try:
        flood(lab, "child1", 1 << 20)
        assert lab.call(lambda: len(vsp.backlog)) <= 64 * 1024
        assert lab.counters()["child1.console.input_dropped"] > 0
        lab.send("child1", b"\x03")  # Ctrl-C flushes what still waits: it goes next
        assert lab.call(lambda: bytes(vsp.backlog)) in (b"", b"\x03")
    finally:
        lab.call(lambda: lab.partition("child1").act("resume"))
    lab.type("child1", "")  # the rest of the flood, one long line the shell refuses
    assert "alive" in lab.type("child1", "echo alive")


@pytest.mark.parametrize(("name", "amount"), [("child1", 256 * 1024), ("child2", 16 * 1024)])
def test_ctrl_c_reaches_a_program_behind_a_flood_of_typing(lab: GuestLab, name: str, amount: int) -> None:
    """child1 reads keys from its VMBus console, child2 from its emulated UART: in both, the
    program that reads no input cannot make a Ctrl-C wait behind the keys typed meanwhile."""
    mark = lab.send(name, b"spin 100000\r")
    lab.wait_for(name, b"spin 100000", mark)
    flood(lab, name, amount)
    lab.send(name, b"\x03")
    assert "^C" in lab.wait_for(name, lab.prompt(name), mark, timeout=30)
    assert "alive" in lab.type(name, "echo alive")


# --- the host side of VMBus, driven as a guest would from inside the child's memory --------------------
SIMP, SIEFP = 0x200000, 0x201000
RING_BASE = 0x300000  # 18 pages: outbound 1+8, inbound 1+8


def host_side_child(tmp_path: Path, design: str = "microkernel") -> tuple[Hypervisor, Partition]:
    """A hypervisor with the root and one child running an idle loop: the test plays the child's
    kernel by writing messages and ring packets into its memory and calling the server."""
    hv = Hypervisor([PartitionConfig("root", "root"),
                     PartitionConfig("child1", image=HLT_LOOP, disk_path=str(tmp_path / "child1.vhd"))],
                    design=design, tsc_khz=1_000_000)
    hv.partitions["root"].start()
    child = hv.partitions["child1"]
    child.start()
    syn = child.synic
    syn.set_register(HV_REGISTER_SIMP, SIMP | 1)
    syn.set_register(HV_REGISTER_SIEFP, SIEFP | 1)
    syn.set_register(HV_REGISTER_SINT0 + 2, 0x30)
    syn.set_register(HV_REGISTER_SCONTROL, 1)
    return hv, child


def take_message(child: Partition) -> m.ChannelMessage | None:
    """Read SIMP slot 2 as the guest's SINT2 handler would and free it (None: empty)."""
    mem = child.vp.memory
    slot = m.HvMessage.unpack(mem.read(SIMP + 2 * 256, 256))
    if slot.message_type != m.HV_MESSAGE_VMBUS:
        return None
    mem.write(SIMP + 2 * 256, bytes(4))
    if slot.msg_pending:
        child.synic.end_of_message()
    return m.parse_channel_message(slot.payload)


def drain_messages(child: Partition) -> list[m.ChannelMessage]:
    out = []
    while (msg := take_message(child)) is not None:
        out.append(msg)
    return out


def request_offers(child: Partition) -> list[m.OfferChannel]:
    server = child.vmbus
    server.post_message(m.InitiateContact().pack())
    drain_messages(child)
    server.post_message(m.RequestOffers().pack())
    return [o for o in drain_messages(child) if isinstance(o, m.OfferChannel)]


def create_gpadl(child: Partition, relid: int, handle: int) -> int:
    """A one-page GPADL; returns the host's creation status."""
    header = m.GpadlHeader(child_relid=relid, gpadl=handle, ranges=(m.GpaRange(4096, 0, (0x400,)),))
    assert child.vmbus.post_message(header.pack()) == 0
    (created,) = drain_messages(child)
    assert isinstance(created, m.GpadlCreated) and created.gpadl == handle
    return created.creation_status


def test_a_child_cannot_make_the_host_hold_gpadls_without_limit(tmp_path: Path) -> None:
    _, child = host_side_child(tmp_path)
    offers = request_offers(child)
    server = child.vmbus
    statuses = [create_gpadl(child, 1, handle) for handle in range(1, 201)]
    assert statuses[:MAX_GPADLS_PER_CHANNEL] == [0] * MAX_GPADLS_PER_CHANNEL
    assert set(statuses[MAX_GPADLS_PER_CHANNEL:]) == {STATUS_INSUFFICIENT_RESOURCES}
    # Across its channels, the partition as a whole is bounded too.
    handle = 1000
    for offer in offers[1:]:
        for _ in range(MAX_GPADLS_PER_CHANNEL):
            handle += 1
            create_gpadl(child, offer.child_relid, handle)
    assert len(server.gpadls) == MAX_GPADLS_PER_PARTITION
    assert any("GPADL" in note for note in child.hv.notes)
    # Tearing one down makes room again, and the guest is told it is gone.
    assert server.post_message(m.GpadlTeardown(child_relid=1, gpadl=1).pack()) == 0
    assert drain_messages(child) == [m.GpadlTorndown(gpadl=1)]
    assert create_gpadl(child, 1, 1) == 0
    assert child.state.value == "running"


# =====================================================================================================
# In-process fuzzing of what a guest controls. One hypervisor per test (root, the hostile child1,
# a bystander child2); each example starts from a freshly booted child1.
# =====================================================================================================
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
RING_PAGES = 18  # outbound 1+8, inbound 1+8 pages, as our guest's channels use


class Fuzzed:
    def __init__(self, tmp_path: Path, design: str) -> None:
        self.hv = Hypervisor([PartitionConfig("root", "root", image=HLT_LOOP),
                              PartitionConfig("child1", image=HLT_LOOP, disk_path=str(tmp_path / "child1.vhd")),
                              PartitionConfig("child2", image=HLT_LOOP, disk_path=str(tmp_path / "child2.vhd"))],
                             design=design, tsc_khz=1_000_000)
        for p in self.hv.partitions.values():
            p.start()
        self.child = self.hv.partitions["child1"]

    def reboot(self) -> Partition:
        """A freshly started child1 with its SynIC on: the state a booting guest kernel reaches."""
        child = self.child
        child.start()
        syn = child.synic
        syn.set_register(HV_REGISTER_SIMP, SIMP | 1)
        syn.set_register(HV_REGISTER_SIEFP, SIEFP | 1)
        syn.set_register(HV_REGISTER_SINT0 + 2, 0x30)
        syn.set_register(HV_REGISTER_SCONTROL, 1)
        return child

    def open_channels(self) -> dict[int, tuple[Ring, Ring]]:
        """Every offered channel opened on rings in the child's pages: relid -> (outbound, inbound)."""
        child = self.child
        rings = {}
        for i, offer in enumerate(request_offers(child)):
            base = (RING_BASE >> 12) + i * RING_PAGES
            pfns = tuple(range(base, base + RING_PAGES))
            header = m.GpadlHeader(child_relid=offer.child_relid, gpadl=100 + i,
                                   ranges=(m.GpaRange(RING_PAGES * 4096, 0, pfns),))
            child.vmbus.post_message(header.pack())
            drain_messages(child)
            view = GpadlView(child.vp.memory, list(pfns))
            out_ring, in_ring = ring_pair(view, RING_PAGES, 9)
            out_ring.init()
            in_ring.init()
            child.vmbus.post_message(m.OpenChannel(child_relid=offer.child_relid, openid=i, ringbuffer_gpadlhandle=100 + i,
                                                   downstream_ringbuffer_pageoffset=9).pack())
            drain_messages(child)
            rings[offer.child_relid] = (out_ring, in_ring)
        return rings

    def settle(self) -> None:
        """Let the host do what the guest's requests queued: the root's VSP runs, timers."""
        for _ in range(4):
            self.hv.serve_root_work()
            self.hv.run_timers()
            drain_messages(self.child) if self.child.vp is not None else None

    def assert_contained(self) -> None:
        """Only child1 may have suffered; the host holds a bounded amount for it."""
        for name in ("root", "child2"):
            p = self.hv.partitions[name]
            assert p.state.value == "running" and p.vp is not None, f"{name}: {p.state.value} {p.reason}"
        server = self.child.vmbus
        if server is None:  # the hosted design: no VMBus, one intercept at a time for the VMM application
            assert len(self.hv.root_work) <= 1
            return
        assert len(server.gpadls) <= MAX_GPADLS_PER_PARTITION
        assert len(self.hv.root_work) <= len(server.channels) + 1
        assert len(self.child.services.console.backlog) <= 64 * 1024


@pytest.fixture(params=["microkernel", "monolithic"])
def fuzzed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fuzzed]:
    f = Fuzzed(tmp_path, request.param)
    yield f
    for p in f.hv.partitions.values():
        p.detach_disk()


CHANNEL_TYPES = sorted(m.CHANNEL_MESSAGES)


@st.composite
def channel_messages(draw: st.DrawFn) -> bytes:
    """Random bytes behind a channel message header: mostly a known type, sometimes any."""
    msgtype = draw(st.sampled_from(CHANNEL_TYPES) | st.integers(0, 0xFFFFFFFF))
    body = draw(st.binary(max_size=m.HV_MESSAGE_PAYLOAD_BYTE_COUNT - 8))
    return struct.pack("<II", msgtype, 0) + body


@FUZZ
@given(messages=st.lists(channel_messages(), min_size=1, max_size=12))
def test_fuzz_channel_messages(fuzzed: Fuzzed, messages: list[bytes]) -> None:
    child = fuzzed.reboot()
    request_offers(child)
    for payload in messages:
        status = child.vmbus.post_message(payload)
        assert isinstance(status, int)
        fuzzed.settle()
    fuzzed.assert_contained()


@FUZZ
@given(relid=st.integers(1, 5), header=st.tuples(*[st.integers(0, 0xFFFFFFFF)] * 4),
       data=st.binary(max_size=512), at=st.integers(0, 8 * 4096 - 1))
def test_fuzz_ring_headers(fuzzed: Fuzzed, relid: int, header: tuple[int, int, int, int], data: bytes,
                           at: int) -> None:
    child = fuzzed.reboot()
    rings = fuzzed.open_channels()
    out_ring, _ = rings[relid]
    out_ring.write_index, out_ring.read_index, out_ring.interrupt_mask, out_ring.pending_send_sz = header
    child.vp.memory.write(RING_BASE + (relid - 1) * RING_PAGES * 4096 + 4096 + at, data[: 8 * 4096 - at])
    child.vmbus.signal(child.vmbus.channels[relid].offer.connection_id, 0)
    fuzzed.settle()
    fuzzed.assert_contained()


@FUZZ
@given(packets=st.lists(st.tuples(st.integers(1, 5), st.sampled_from([6, 7, 8, 9, 10, 11]) | st.integers(0, 0xFFFF),
                                  st.binary(max_size=300), st.integers(0, 0xFFFF)), min_size=1, max_size=8))
def test_fuzz_packets_to_every_vsp(fuzzed: Fuzzed, packets: list[tuple[int, int, bytes, int]]) -> None:
    """Well-formed ring descriptors around whatever payload: every VSP's packet parser."""
    child = fuzzed.reboot()
    rings = fuzzed.open_channels()
    for relid, ptype, payload, flags in packets:
        out_ring, _ = rings[relid]
        try:
            out_ring.write_packet(ptype, payload, trans_id=relid, flags=flags)
        except RingFull:
            continue
        child.vmbus.signal(child.vmbus.channels[relid].offer.connection_id, 0)
        fuzzed.settle()
    fuzzed.assert_contained()


HYPERCALL_CODES = [0x0008, 0x0044, 0x0045, 0x0046, 0x0047, 0x0050, 0x0051, 0x005C, 0x005D, 0x8001]


@FUZZ
@given(calls=st.lists(st.tuples(st.sampled_from(HYPERCALL_CODES) | st.integers(0, 0xFFFF), st.booleans(),
                                st.integers(0, 0xFFF), st.integers(0, 1 << 64 - 1),
                                st.integers(0, 1 << 64 - 1), st.binary(min_size=0, max_size=64)),
                      min_size=1, max_size=8))
def test_fuzz_hypercalls(fuzzed: Fuzzed, calls: list[tuple[int, bool, int, int, int, bytes]]) -> None:
    child = fuzzed.reboot()
    request_offers(child)
    for code, fast, reps, rdx, r8, page in calls:
        vp = child.vp
        if vp is None:
            break  # it turned itself off (or crashed): its own business
        vp.memory.write(INPUT_PAGE, page)
        vp.set_reg(X.UC_X86_REG_RCX, code | (fast << 16) | (reps << 32))
        # Mostly the input page, sometimes any address.
        vp.set_reg(X.UC_X86_REG_RDX, rdx if rdx % 3 == 0 else INPUT_PAGE)
        vp.set_reg(X.UC_X86_REG_R8, r8 if r8 % 3 == 0 else INPUT_PAGE + 0x800)
        status = fuzzed.hv.hypercall(child, vp)
        assert 0 <= status < 1 << 64
        fuzzed.settle()
    fuzzed.assert_contained()


@pytest.mark.parametrize("fuzzed", ["microkernel", "monolithic", "hosted"], indirect=True)
@FUZZ
@given(accesses=st.lists(st.tuples(st.integers(0, 0xFFFF) | st.sampled_from([0x20, 0x21, 0xA0, 0xA1, 0x3F8, 0x3F9,
                                                                              0x3FD, 0x1F0, 0x1F7, 0x3F6, 0x505]),
                                   st.sampled_from([1, 2, 4]), st.integers(0, 0xFFFFFFFF), st.booleans()),
                         min_size=1, max_size=40))
def test_fuzz_ports(fuzzed: Fuzzed, accesses: list[tuple[int, int, int, bool]]) -> None:
    """Every port, as the hostile child's kernel (CPL 0); a deferred access is served by the root (its
    worker process, or in the hosted design its VMM application)."""
    child = fuzzed.reboot()
    for port, size, value, is_in in accesses:
        vp = child.vp
        if vp is None:
            break  # the panic port: a bugcheck of its own
        if is_in:
            child.io_in(port, size, 0)
        else:
            child.io_out(port, size, value, 0)
        pending = vp._pending  # what the VP would do on leaving emu_start
        if pending is not None and pending.io is not None:
            vp._pending = None
            child.io_deferred(*pending.io)
        fuzzed.settle()
    fuzzed.assert_contained()


def test_keys_typed_faster_than_the_lab_takes_them_wait_bounded_and_ctrl_c_goes_first(tmp_path: Path) -> None:
    """The lab process's own queue: a WebSocket that types faster than the scheduler serves it (here
    the scheduler is held busy) leaves at most one delivery queued and 64 KiB per console waiting,
    and a Ctrl-C typed last is delivered first when the scheduler comes back."""
    sent: list[tuple] = []
    lab = Lab({"data_dir": str(tmp_path)}, sent.append)
    lab.start()
    try:
        child = lab.hv.partitions["child2"]
        end = time.monotonic() + 20
        while b"child2$ " not in bytes(child.scrollback) and time.monotonic() < end:
            lab.scheduler.call(lambda: None)
            time.sleep(0.05)
        lab.type("child2", b"spin 1000000\r")
        busy, release = threading.Event(), threading.Event()
        lab.scheduler.submit(lambda: (busy.set(), release.wait(20)))  # the scheduler is held up here
        assert busy.wait(10)
        for _ in range(2560):  # 10 MiB in WebSocket-sized messages
            lab.type("child2", b"a" * 4096)
        lab.type("child2", b"\x03")
        assert lab.scheduler.pending() <= 1
        assert lab.typeahead.waiting("child2") <= 64 * 1024
        release.set()
        mark = len(child.scrollback)
        end = time.monotonic() + 30
        while b"child2$ " not in bytes(child.scrollback)[mark:] and time.monotonic() < end:
            lab.scheduler.call(lambda: None)
            time.sleep(0.05)
        assert "^C" in bytes(child.scrollback)[mark:].decode()
        assert lab.scheduler.call(lambda: lab.hv.counters()["child2.console.input_dropped"]) > 9 << 20
    finally:
        lab.close()
