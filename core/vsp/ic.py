"""Integration services: heartbeat, shutdown and time sync (docs/vmbus.md §7, Linux hv_util.c).

The host asks, the guest answers on the same channel: a heartbeat every few seconds (the guest
returns the sequence number plus one), a shutdown request when the user presses "Shut down", and
the host's wall-clock time when the time sync channel opens and every minute after.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..vmbus import messages as m
from ..vmbus.ring import VM_PKT_DATA_INBAND, VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED, Packet

if TYPE_CHECKING:
    from ..vmbus.server import Channel
    from .host import VspHost

HEARTBEAT_SECONDS = 3.0
TIMESYNC_SECONDS = 60.0
EPOCH_1601_TO_1970_100NS = 116_444_736_000_000_000


def windows_time_now() -> int:
    """100-ns intervals since 1601-01-01 (what Hyper-V's time sync sends)."""
    return EPOCH_1601_TO_1970_100NS + time.time_ns() // 100


class _IcService:
    name = ""
    component = "icvsp"
    msgtype = 0

    def __init__(self, host: VspHost) -> None:
        self.host = host
        self.channel: Channel | None = None
        self._transaction = 0
        self._generation = 0  # bumps on every open/close so stale timers do nothing

    def opened(self, channel: Channel) -> None:
        self.channel = channel
        self._generation += 1

    def closed(self, channel: Channel) -> None:
        self.channel = None
        self._generation += 1

    def _request(self, body: bytes) -> bool:
        channel = self.channel
        if channel is None:
            return False
        self._transaction = (self._transaction + 1) & 0xFF
        payload = m.IcMessage(self.msgtype, body, ictransaction_id=self._transaction).pack()
        return self.host.send(channel, VM_PKT_DATA_INBAND, payload, self._transaction,
                              VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED)

    def packet(self, channel: Channel, pkt: Packet) -> None:
        try:
            message = m.IcMessage.unpack(pkt.data)
            if message.icmsgtype == self.msgtype and message.icflags & m.ICMSGHDRFLAG_RESPONSE:
                self.response(message.body)
        except m.MessageError as e:
            self.host.channel_error(channel, f"{self.name}: {e}")

    def response(self, body: bytes) -> None:
        pass

    def _every(self, seconds: float, fn: object) -> None:
        generation = self._generation

        def tick() -> None:
            if self.channel is not None and generation == self._generation:
                fn()  # type: ignore[operator]
                self.host.after(seconds, tick)

        self.host.after(seconds, tick)


class HeartbeatService(_IcService):
    name = "heartbeat"
    msgtype = m.ICMSGTYPE_HEARTBEAT

    def __init__(self, host: VspHost) -> None:
        super().__init__(host)
        self.seq = 0
        self.last_answer: float | None = None
        self.last_sent: float | None = None

    def opened(self, channel: Channel) -> None:
        super().opened(channel)
        self.last_answer = None
        self.beat()
        self._every(HEARTBEAT_SECONDS, self.beat)

    def beat(self) -> None:
        self.seq += 1
        self.last_sent = time.monotonic()
        self._request(m.HeartbeatMsgData(seq_num=self.seq).pack())

    def response(self, body: bytes) -> None:
        answer = m.HeartbeatMsgData.unpack(body)
        if answer.seq_num == self.seq + 1:
            self.last_answer = time.monotonic()
            self.host.count("ic.heartbeats")

    def status(self) -> tuple[str, float | None]:
        if self.channel is None:
            return "none", None
        if self.last_answer is None:
            return "waiting", None
        ago = (time.monotonic() - self.last_answer) * 1000
        return ("ok" if ago < 2.5 * HEARTBEAT_SECONDS * 1000 else "waiting"), ago


class ShutdownService(_IcService):
    name = "shutdown"
    msgtype = m.ICMSGTYPE_SHUTDOWN

    def request_shutdown(self) -> bool:
        return self._request(m.ShutdownMsgData(reason_code=0, timeout_seconds=30, flags=0,
                                               display_message=b"Shut down from the lab").pack())


class TimeSyncService(_IcService):
    name = "timesync"
    msgtype = m.ICMSGTYPE_TIMESYNC

    def __init__(self, host: VspHost) -> None:
        super().__init__(host)
        self.synced = False

    def opened(self, channel: Channel) -> None:
        super().opened(channel)
        self.synced = False
        self.sync()
        self._every(TIMESYNC_SECONDS, self.sync)

    def sync(self) -> None:
        self._request(m.IcTimesyncData(parenttime=windows_time_now(), flags=m.ICTIMESYNCFLAG_SYNC).pack())

    def response(self, body: bytes) -> None:
        self.synced = True
