"""The host side of VMBus (SynIC, channel manager, storvsp), driven through a child's real memory.

The test plays the guest's part with the same pure ring code the browser exercises use: it writes
channel messages and ring packets into the child's pages and makes the hypercalls' effects happen
by calling the server, then reads what the host wrote back (SynIC message slots, event flags, the
inbound ring, the VHD file).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperlab.core.hypervisor import Hypervisor
from hyperlab.core.partition import Partition, PartitionConfig
from hyperlab.core.vhd import VhdDisk
from hyperlab.core.vmbus import messages as m
from hyperlab.core.vmbus.gpadl import GpadlView
from hyperlab.core.vmbus.messages import (
    HV_REGISTER_SCONTROL,
    HV_REGISTER_SIEFP,
    HV_REGISTER_SIMP,
    HV_REGISTER_SINT0,
)
from hyperlab.core.vmbus.ring import VM_PKT_COMP, Ring, ring_pair

SIMP, SIEFP = 0x200000, 0x201000
RING_BASE = 0x300000          # 18 pages: outbound 1+8, inbound 1+8
DATA_BUF = 0x320000           # 64 KiB data buffer for storage I/O
IDLE_LOOP = b"\xf4\xeb\xfd"   # hlt; jmp back: the "kernel" of this test guest


def _child(tmp_path: Path, design: str) -> tuple[Hypervisor, Partition]:
    hv = Hypervisor([PartitionConfig("root", "root"),
                     PartitionConfig("child1", image=IDLE_LOOP, disk_path=str(tmp_path / "child1.vhd"))],
                    design=design, tsc_khz=1_000_000)
    hv.partitions["root"].start()  # its VSPs serve the child in the micro-kernel design
    child = hv.partitions["child1"]
    child.start()
    syn = child.synic
    syn.set_register(HV_REGISTER_SIMP, SIMP | 1)
    syn.set_register(HV_REGISTER_SIEFP, SIEFP | 1)
    syn.set_register(HV_REGISTER_SINT0 + 2, 0x30)
    syn.set_register(HV_REGISTER_SCONTROL, 1)
    return hv, child


def _take_message(child: Partition) -> m.ChannelMessage:
    """Read SIMP slot 2 as the guest's SINT2 handler would, free it, write EOM if more are pending."""
    mem = child.vp.memory
    slot = m.HvMessage.unpack(mem.read(SIMP + 2 * 256, 256))
    assert slot.message_type == m.HV_MESSAGE_VMBUS, "no message in the slot"
    mem.write(SIMP + 2 * 256, bytes(4))  # MessageType = HVMSG_NONE
    if slot.msg_pending:
        child.synic.end_of_message()
    return m.parse_channel_message(slot.payload)


def _serve_root(hv: Hypervisor) -> None:
    hv.serve_root_work()
    hv.run_timers()


def _open_storage(hv: Hypervisor, child: Partition) -> tuple[Ring, Ring]:
    server = child.vmbus
    assert server.post_message(m.InitiateContact().pack()) == 0
    assert isinstance(_take_message(child), m.VersionResponse)
    assert server.post_message(m.RequestOffers().pack()) == 0
    offers = []
    while True:
        msg = _take_message(child)
        if isinstance(msg, m.AllOffersDelivered):
            break
        offers.append(msg)
    storage = next(o for o in offers if o.if_type == m.HV_SCSI_GUID)
    pfns = tuple((RING_BASE >> 12) + i for i in range(18))
    header = m.GpadlHeader(child_relid=storage.child_relid, gpadl=7,
                           ranges=(m.GpaRange(18 * 4096, 0, pfns),))
    assert server.post_message(header.pack()) == 0
    created = _take_message(child)
    assert isinstance(created, m.GpadlCreated) and created.creation_status == 0
    assert server.post_message(m.OpenChannel(child_relid=storage.child_relid, openid=1, ringbuffer_gpadlhandle=7,
                                             downstream_ringbuffer_pageoffset=9).pack()) == 0
    result = _take_message(child)
    assert isinstance(result, m.OpenChannelResult) and result.status == 0
    out_ring, in_ring = ring_pair(GpadlView(child.vp.memory, list(pfns)), 18, 9)
    return out_ring, in_ring


@pytest.mark.parametrize("design", ["microkernel", "monolithic"])
def test_storage_write_then_read_through_the_rings(tmp_path: Path, design: str) -> None:
    hv, child = _child(tmp_path, design)
    out_ring, in_ring = _open_storage(hv, child)
    server = child.vmbus
    channel = server.channels[1]
    pattern = bytes(range(256)) * 32  # 16 sectors
    child.vp.memory.write(DATA_BUF, pattern)
    rng = m.GpaRange(len(pattern), 0, tuple((DATA_BUF >> 12) + i for i in range(2)))
    srb = m.VmscsiRequest.write10(100, 16)
    needs_signal = out_ring.write_gpa_direct([rng], m.VstorPacket.execute_srb(srb).pack(), trans_id=42, flags=1)
    assert needs_signal  # the ring was empty
    assert server.signal(channel.offer.connection_id, 0) == 0
    _serve_root(hv)
    completion = in_ring.read_packet()
    assert completion is not None and completion.type == VM_PKT_COMP and completion.trans_id == 42
    assert m.VstorPacket.unpack(completion.data).status == 0
    assert hv.telemetry.counters["child1.disk.bytes_written"] == len(pattern)
    # The guest was signalled once (SIEFP SINT2 flag for relid 1) and the vector is pending.
    assert child.vp.memory.read(SIEFP + 2 * 256, 1)[0] & 0b10
    assert 0x30 in child.synic_vectors

    child.vp.memory.write(DATA_BUF, bytes(len(pattern)))
    out_ring.write_gpa_direct([rng], m.VstorPacket.execute_srb(m.VmscsiRequest.read10(100, 16)).pack(), 43, 1)
    server.signal(channel.offer.connection_id, 0)
    _serve_root(hv)
    assert in_ring.read_packet().trans_id == 43
    assert child.vp.memory.read(DATA_BUF, len(pattern)) == pattern
    child.turn_off()
    disk = VhdDisk.open(tmp_path / "child1.vhd")
    assert disk.read(100, 16) == pattern  # on the real file


def test_storage_request_outside_guest_memory_fails_only_that_request(tmp_path: Path) -> None:
    hv, child = _child(tmp_path, "monolithic")
    out_ring, in_ring = _open_storage(hv, child)
    server = child.vmbus
    bad = m.GpaRange(512, 0, (0xFFFFF,))  # a page far beyond the child's RAM
    out_ring.write_gpa_direct([bad], m.VstorPacket.execute_srb(m.VmscsiRequest.read10(0, 1)).pack(), 1, 1)
    server.signal(0x2001, 0)
    reply = in_ring.read_packet()
    assert reply is not None and m.VstorPacket.unpack(reply.data).status != 0
    assert server.channels[1].state == "open"  # the channel goes on
    assert any("outside the partition's memory" in n for n in hv.notes)


def test_corrupt_ring_index_is_an_error_on_that_channel_only(tmp_path: Path) -> None:
    hv, child = _child(tmp_path, "monolithic")
    out_ring, _ = _open_storage(hv, child)
    out_ring.write_index = 0x7FFF_FFF0  # impossible: beyond the data area
    child.vmbus.signal(0x2001, 0)
    channel = child.vmbus.channels[1]
    assert channel.state == "error" and "write_index" in channel.error
    assert child.state.value == "running"
    assert hv.telemetry.counters["child1.vmbus.errors"] == 1


def test_gpadl_outside_guest_memory_is_refused(tmp_path: Path) -> None:
    _, child = _child(tmp_path, "monolithic")
    server = child.vmbus
    server.post_message(m.InitiateContact().pack())
    _take_message(child)
    server.post_message(m.RequestOffers().pack())
    while not isinstance(_take_message(child), m.AllOffersDelivered):
        pass
    header = m.GpadlHeader(child_relid=1, gpadl=9, ranges=(m.GpaRange(2 * 4096, 0, (0x10, 0xFFFFFF)),))
    server.post_message(header.pack())
    created = _take_message(child)
    assert isinstance(created, m.GpadlCreated) and created.creation_status != 0


def test_a_signal_flood_queues_one_vsp_run_per_channel(tmp_path: Path) -> None:
    hv, child = _child(tmp_path, "microkernel")
    _open_storage(hv, child)
    root_paused = hv.partitions["root"]
    root_paused.act("pause")  # nothing serves the queue meanwhile
    for _ in range(10_000):
        assert child.vmbus.signal(0x2001, 0) == 0
    assert len(hv.root_work) == 1
    assert hv.telemetry.counters["child1.vmbus.signals_coalesced"] == 9_999
    assert hv.telemetry.counters["child1.vmbus.signals_sent"] == 10_000  # each was still an exit
