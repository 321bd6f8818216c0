"""The storage VSP: serves a child's storvsc over VMBus from its VHD (docs/vmbus.md §5).

Control requests (initialisation) come inband; reads and writes come as GPA-direct packets
naming the guest's data pages, with a SCSI READ(10)/WRITE(10) CDB. The data moves with one copy
per page between the guest's pages and the disk file — no exit per byte, one completion per request.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..memory import PAGE
from ..vhd import VhdError
from ..vmbus import messages as m
from ..vmbus.ring import VM_PKT_COMP, VM_PKT_DATA_INBAND, VM_PKT_DATA_USING_GPA_DIRECT, Packet

if TYPE_CHECKING:
    from ..vmbus.server import Channel
    from .host import VspHost

SECTOR = 512
MAX_REQUEST_SECTORS = 128
SRB_STATUS_SUCCESS = 0x01
SRB_STATUS_ERROR = 0x04
SCSI_CHECK_CONDITION = 0x02


class StorVsp:
    name = "storage"
    component = "storvsp"

    def __init__(self, host: VspHost) -> None:
        self.host = host

    def opened(self, channel: Channel) -> None:
        pass

    def closed(self, channel: Channel) -> None:
        pass

    def packet(self, channel: Channel, pkt: Packet) -> None:
        try:
            request = m.VstorPacket.unpack(pkt.data)
        except m.MessageError as e:
            self.host.channel_error(channel, f"storvsp: {e}")
            return
        if pkt.type == VM_PKT_DATA_INBAND:
            self._control(channel, pkt, request)
        elif pkt.type == VM_PKT_DATA_USING_GPA_DIRECT:
            self._io(channel, pkt, request)
        else:
            self.host.channel_error(channel, f"storvsp: unexpected packet type {pkt.type}")

    def _complete(self, channel: Channel, pkt: Packet, reply: m.VstorPacket) -> None:
        self.host.send(channel, VM_PKT_COMP, reply.pack(), pkt.trans_id)

    def _control(self, channel: Channel, pkt: Packet, request: m.VstorPacket) -> None:
        op = request.operation
        if op == m.VSTOR_OPERATION_QUERY_PROPERTIES:
            disk = self.host.disk()
            reply = m.VstorPacket.properties_completion(disk.sector_count if disk is not None else 0)
        elif op in (m.VSTOR_OPERATION_BEGIN_INITIALIZATION, m.VSTOR_OPERATION_END_INITIALIZATION,
                    m.VSTOR_OPERATION_QUERY_PROTOCOL_VERSION):
            reply = m.VstorPacket.complete_io(0)
        else:
            reply = m.VstorPacket.complete_io(1)
        self._complete(channel, pkt, reply)

    def _io(self, channel: Channel, pkt: Packet, request: m.VstorPacket) -> None:
        why = ""
        srb: m.VmscsiRequest | None = None
        try:
            if request.operation != m.VSTOR_OPERATION_EXECUTE_SRB or len(pkt.ranges) != 1:
                raise ValueError("not an EXECUTE_SRB with one data range")
            srb = request.srb()
            self._transfer(pkt, srb)
        except (VhdError, ValueError, m.MessageError) as e:
            why = str(e)
        if why:
            self.host.note(f"storvsp: request failed: {why}")
            self.host.count("disk.errors")
        result = dataclasses.replace(srb, srb_status=SRB_STATUS_ERROR if why else SRB_STATUS_SUCCESS,
                                     scsi_status=SCSI_CHECK_CONDITION if why else 0) if srb else None
        reply = m.VstorPacket.complete_io(1 if why else 0, result.pack() if result else b"")
        self._complete(channel, pkt, reply)

    def _transfer(self, pkt: Packet, srb: m.VmscsiRequest) -> None:
        disk, memory = self.host.disk(), self.host.memory()
        if disk is None or memory is None:
            raise ValueError("no disk attached")
        rw = srb.rw10()
        op, lba, blocks = rw.opcode, rw.lba, rw.blocks
        rng = pkt.ranges[0]
        nbytes = blocks * SECTOR
        if not 0 < blocks <= MAX_REQUEST_SECTORS or rng.byte_count != nbytes or srb.data_transfer_length != nbytes:
            raise ValueError(f"{blocks} sectors with a {rng.byte_count}-byte buffer: sizes disagree")
        for pfn in rng.pfns:
            if pfn < 0 or (pfn + 1) * PAGE > memory.size:
                raise ValueError(f"data page {pfn:#x} is outside the partition's memory")
        pieces = _pieces(rng.pfns, rng.byte_offset, nbytes)
        if op == m.READ_10:
            data = disk.read(lba, blocks)
            pos = 0
            for gpa, n in pieces:
                memory.write(gpa, data[pos:pos + n])
                pos += n
            self.host.count("disk.bytes_read", nbytes)
            self.host.count("disk.sectors_read", blocks)
        elif op == m.WRITE_10:
            disk.write(lba, b"".join(memory.read(gpa, n) for gpa, n in pieces))
            self.host.count("disk.bytes_written", nbytes)
            self.host.count("disk.sectors_written", blocks)
        else:
            raise ValueError(f"SCSI opcode {op:#x} not supported")


def _pieces(pfns: tuple[int, ...], offset: int, n: int) -> list[tuple[int, int]]:
    """(GPA, length) runs of a buffer that starts `offset` bytes into the first page."""
    out = []
    for pfn in pfns:
        if n <= 0:
            break
        chunk = min(n, PAGE - offset)
        out.append((pfn * PAGE + offset, chunk))
        n -= chunk
        offset = 0
    return out
