"""The VMBus server for one child partition: channel offers, GPADLs, open channels, and their VSPs.

On Hyper-V this is the root's VMBus driver and the VSPs in the root's kernel. Channel management
messages arrive by HvCallPostMessage and are answered into the child's SynIC message slot (SINT2);
data moves through the ring buffers in the child's own pages (a GPADL); each side signals the
other only when it wrote into an empty ring (docs/vmbus.md). Where the VSPs run — on the root's
time in its kernel (micro-kernel) or inside the hypervisor (monolithic) — is the placement's
decision (core/placement.py); each VSP call goes through its containment, so a VSP that raises
stops what the design says, never the lab.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..placement import FAILED
from . import messages as m
from .gpadl import GpadlError, GpadlView
from .ring import Packet, Ring, RingError, RingFull, ring_pair

if TYPE_CHECKING:
    from ..partition import Partition

VMBUS_SINT = m.VMBUS_MESSAGE_SINT
VMBUS_MESSAGE_TYPE = m.HV_MESSAGE_VMBUS  # the SynIC message type VMBus channel messages travel as
VERSION_WIN10 = m.VERSION_WIN10
HV_STATUS_SUCCESS = m.HV_STATUS_SUCCESS
HV_STATUS_INVALID_PARAMETER = m.HV_STATUS_INVALID_PARAMETER
HV_STATUS_INVALID_CONNECTION_ID = m.HV_STATUS_INVALID_CONNECTION_ID
HV_STATUS_INSUFFICIENT_BUFFERS = m.HV_STATUS_INSUFFICIENT_BUFFERS
MAX_PACKETS_PER_PASS = 256  # a flooding guest is served in bounded batches
# What a child can make the host hold in GPADLs: each costs host memory for as long as it lives.
# A channel needs one (its rings; Linux's netvsc uses three); the rest is headroom.
MAX_GPADLS_PER_CHANNEL = 8
MAX_GPADLS_PER_PARTITION = 32
STATUS_UNSUCCESSFUL = 0xC0000001
STATUS_INSUFFICIENT_RESOURCES = 0xC000009A  # NTSTATUS: what a GPADL over the limit is refused with


class Vsp(Protocol):
    """A virtualization service provider: the host end of one channel."""

    name: str
    component: str  # its component kind (core/placement.py Kind): storvsp, consolevsp, icvsp

    def opened(self, channel: Channel) -> None: ...
    def packet(self, channel: Channel, pkt: Packet) -> None: ...
    def closed(self, channel: Channel) -> None: ...


@dataclass
class Offer:
    relid: int
    name: str
    if_type: uuid.UUID
    connection_id: int
    ic: bool  # an integration service (offered only when Integration Services are installed)


@dataclass
class Channel:
    offer: Offer
    vsp: Vsp
    state: str = "offered"           # offered -> open -> closed | error
    gpadl: GpadlView | None = None
    outbound: Ring | None = None     # guest -> host
    inbound: Ring | None = None      # host -> guest
    error: str | None = None
    work_queued: bool = False        # a VSP run for this channel is already waiting for the root
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("packets_out", "bytes_out", "packets_in", "bytes_in", "signals_received", "signals_to_guest",
         "signals_to_guest_suppressed", "errors"), 0))

    @property
    def relid(self) -> int:
        return self.offer.relid


class VmbusServer:
    def __init__(self, child: Partition, offers: list[Offer], vsps: dict[str, Vsp]) -> None:
        self.child = child
        self.offers = offers
        self.vsps = vsps
        self.reset()

    def reset(self) -> None:
        """The child rebooted: every channel and GPADL is gone."""
        for channel in getattr(self, "channels", {}).values():
            if channel.state == "open":
                self._vsp(channel, "closed")
        self.connected = False
        self.gpadls: dict[int, tuple[int, list[int]]] = {}  # handle -> (channel relid, pages)
        self.channels: dict[int, Channel] = {}
        self.by_connection: dict[int, Channel] = {}
        self.unloaded = False

    # --- accounting ---------------------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        self.child.hv.count(f"{self.child.name}.vmbus.{name}", n)

    def _vsp(self, channel: Channel, method: str, *args: object) -> object:
        """Call the channel's VSP through the placement's containment (a raising VSP is a fault of its domain)."""
        placement = self.child.hv.placement
        return placement.contain(lambda: placement.vsp_component(self, channel), getattr(channel.vsp, method),
                                 channel, *args)

    def channel_error(self, channel: Channel, reason: str) -> None:
        """A guest broke the protocol on this channel: the channel stops, nothing else does."""
        channel.state = "error"
        channel.error = reason
        channel.stats["errors"] += 1
        self.count("errors")
        self.child.hv.note(self.child, f"vmbus channel {channel.relid} ({channel.offer.name}): {reason}")

    # --- messages from the guest (HvCallPostMessage) -------------------------------------------------
    def post_message(self, payload: bytes) -> int:
        self.count("messages_received")
        try:
            msg = m.parse_channel_message(payload)
        except m.MessageError as e:
            self.child.hv.note(self.child, f"vmbus: bad channel message: {e}")
            return HV_STATUS_INVALID_PARAMETER
        handler = {
            m.CHANNELMSG_INITIATE_CONTACT: self._initiate_contact,
            m.CHANNELMSG_REQUESTOFFERS: self._request_offers,
            m.CHANNELMSG_GPADL_HEADER: self._gpadl_header,
            m.CHANNELMSG_GPADL_TEARDOWN: self._gpadl_teardown,
            m.CHANNELMSG_OPENCHANNEL: self._open_channel,
            m.CHANNELMSG_CLOSECHANNEL: self._close_channel,
            m.CHANNELMSG_UNLOAD: self._unload,
        }.get(msg.msgtype)
        if handler is None:
            self.child.hv.note(self.child, f"vmbus: channel message type {msg.msgtype} not handled")
            return HV_STATUS_SUCCESS
        return handler(msg)

    def _send(self, msg: object) -> int:
        if not self.child.synic.post(VMBUS_SINT, VMBUS_MESSAGE_TYPE, msg.pack()):  # type: ignore[attr-defined]
            return HV_STATUS_INSUFFICIENT_BUFFERS
        self.count("messages_sent")
        return HV_STATUS_SUCCESS

    def _initiate_contact(self, msg: m.InitiateContact) -> int:
        supported = msg.vmbus_version_requested == VERSION_WIN10
        self.connected = supported
        return self._send(m.VersionResponse(version_supported=int(supported)))

    def _visible_offers(self) -> list[Offer]:
        return [o for o in self.offers if not o.ic or self.child.config.integration_services]

    def _request_offers(self, msg: object) -> int:
        for offer in self._visible_offers():
            if offer.relid not in self.channels:
                self.channels[offer.relid] = Channel(offer, self.vsps[offer.name])
                self.by_connection[offer.connection_id] = self.channels[offer.relid]
            self._send(m.OfferChannel(if_type=offer.if_type, if_instance=uuid.UUID(int=offer.relid),
                                      child_relid=offer.relid, connection_id=offer.connection_id))
        return self._send(m.AllOffersDelivered())

    def _gpadl_header(self, msg: m.GpadlHeader) -> int:
        status = 0
        pfns = [pfn for r in msg.ranges for pfn in r.pfns]
        if msg.gpadl == 0 or msg.gpadl in self.gpadls or not pfns or msg.child_relid not in self.channels:
            status = STATUS_UNSUCCESSFUL
        elif (len(self.gpadls) >= MAX_GPADLS_PER_PARTITION
              or sum(relid == msg.child_relid for relid, _ in self.gpadls.values()) >= MAX_GPADLS_PER_CHANNEL):
            self.child.hv.note(self.child, f"vmbus: GPADL {msg.gpadl} refused: at most {MAX_GPADLS_PER_CHANNEL} "
                               f"per channel and {MAX_GPADLS_PER_PARTITION} per partition")
            status = STATUS_INSUFFICIENT_RESOURCES
        else:
            try:
                GpadlView(self.child.vp.memory, pfns)  # validates every page now
            except GpadlError as e:
                self.child.hv.note(self.child, f"vmbus: GPADL {msg.gpadl} refused: {e}")
                status = STATUS_UNSUCCESSFUL
        if status == 0:
            self.gpadls[msg.gpadl] = (msg.child_relid, pfns)
        return self._send(m.GpadlCreated(child_relid=msg.child_relid, gpadl=msg.gpadl, creation_status=status))

    def _gpadl_teardown(self, msg: m.GpadlTeardown) -> int:
        """The guest gives the pages back; not while an open channel's rings live in them."""
        in_use = any(c.state == "open" and c.gpadl is not None and c.gpadl.handle == msg.gpadl
                     for c in self.channels.values())
        if msg.gpadl not in self.gpadls or in_use:
            self.child.hv.note(self.child, f"vmbus: teardown of GPADL {msg.gpadl} refused: "
                               f"{'its channel is open' if in_use else 'no such GPADL'}")
            return HV_STATUS_SUCCESS
        del self.gpadls[msg.gpadl]
        return self._send(m.GpadlTorndown(gpadl=msg.gpadl))

    def _open_channel(self, msg: m.OpenChannel) -> int:
        channel = self.channels.get(msg.child_relid)
        status = 0
        if channel is None or msg.ringbuffer_gpadlhandle not in self.gpadls:
            status = STATUS_UNSUCCESSFUL
        else:
            _, pfns = self.gpadls[msg.ringbuffer_gpadlhandle]
            try:
                view = GpadlView(self.child.vp.memory, pfns, msg.ringbuffer_gpadlhandle)
                channel.outbound, channel.inbound = ring_pair(view, len(pfns), msg.downstream_ringbuffer_pageoffset)
            except (GpadlError, RingError) as e:
                self.child.hv.note(self.child, f"vmbus: open of channel {msg.child_relid} refused: {e}")
                status = STATUS_UNSUCCESSFUL
            else:
                channel.gpadl = view
                channel.state = "open"
                channel.error = None
                self.count("channels_opened")
        result = self._send(m.OpenChannelResult(child_relid=msg.child_relid, openid=msg.openid, status=status))
        if status == 0 and channel is not None:
            self._vsp(channel, "opened")
        return result

    def _close_channel(self, msg: m.CloseChannel) -> int:
        channel = self.channels.get(msg.child_relid)
        if channel is not None and channel.state == "open":
            channel.state = "closed"
            self._vsp(channel, "closed")
        return HV_STATUS_SUCCESS

    def _unload(self, msg: object) -> int:
        self.unloaded = True
        for channel in self.channels.values():
            if channel.state == "open":
                channel.state = "closed"
                self._vsp(channel, "closed")
        status = self._send(m.UnloadResponse())
        self.child.guest_unloaded_vmbus()
        return status

    # --- signals from the guest (HvCallSignalEvent) ---------------------------------------------------
    def signal(self, connection_id: int, flag: int) -> int:
        channel = self.by_connection.get(connection_id)
        if channel is None:
            return HV_STATUS_INVALID_CONNECTION_ID
        channel.stats["signals_received"] += 1
        self.count("signals_sent")  # sent by the guest: counted where it arrives
        if channel.state != "open":
            return HV_STATUS_SUCCESS
        self.child.hv.placement.vmbus_signal(self, channel)  # where the VSP runs: the design's call
        return HV_STATUS_SUCCESS

    def process(self, channel: Channel) -> None:
        """Drain the guest's outbound ring with interrupt_mask set (batching), hand packets to the VSP."""
        ring = channel.outbound
        if channel.state != "open" or ring is None:
            return
        try:
            handled = 0
            ring.begin_read()
            while handled < MAX_PACKETS_PER_PASS:
                pkt = ring.read_packet()
                if pkt is None:
                    if ring.end_read() == 0:
                        break
                    ring.begin_read()
                    continue
                handled += 1
                channel.stats["packets_out"] += 1
                channel.stats["bytes_out"] += len(pkt.raw)
                self.count("packets_out")
                self.count("bytes_out", len(pkt.raw))
                if self._vsp(channel, "packet", pkt) is FAILED or channel.state != "open":
                    return  # the VSP failed (its domain stopped), or the packet closed the channel
            else:
                # A flooding guest: stop here, come back for the rest after others had their turn.
                ring.end_read()
                self.child.hv.placement.vmbus_later(self, channel)
        except (RingError, GpadlError) as e:
            self.channel_error(channel, str(e))

    # --- packets to the guest ---------------------------------------------------------------------------
    def send_packet(self, channel: Channel, ptype: int, payload: bytes, trans_id: int, flags: int = 0,
                    wait_when_full: bool = False) -> bool:
        """Write into the inbound ring; signal the guest only if the ring was empty and unmasked.

        A full ring drops the packet (noted), or with ``wait_when_full`` raises RingFull so the
        caller can keep it and try again later.
        """
        ring = channel.inbound
        if channel.state != "open" or ring is None:
            return False
        try:
            needs_signal = ring.write_packet(ptype, payload, trans_id, flags)
        except RingFull:
            self.count("ring_full")
            if wait_when_full:
                raise
            self.child.hv.note(self.child, f"vmbus channel {channel.relid}: inbound ring full, packet dropped")
            return False
        except (RingError, GpadlError, ValueError) as e:
            self.channel_error(channel, str(e))
            return False
        size = len(payload) + 16
        channel.stats["packets_in"] += 1
        channel.stats["bytes_in"] += size
        self.count("packets_in")
        self.count("bytes_in", size)
        if needs_signal:
            channel.stats["signals_to_guest"] += 1
            self.count("signals_to_guest")
            self.child.synic.signal_event(VMBUS_SINT, channel.relid)
        else:
            channel.stats["signals_to_guest_suppressed"] += 1
            self.count("signals_to_guest_suppressed")
        return True

    def describe(self) -> list[dict]:
        return [{"relid": c.relid, "device": c.offer.name, "state": c.state, "error": c.error, **c.stats}
                for c in self.channels.values()]
