"""The synthetic console VSP (hyperlab's own; Hyper-V offers no serial console over VMBus).

Once the child opened it, its console output arrives as ring packets — one signal for a whole
line or more instead of two port exits per character — and typed keys go to it the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..vmbus.ring import VM_PKT_DATA_INBAND, Packet, RingFull

if TYPE_CHECKING:
    from ..vmbus.server import Channel
    from .host import VspHost

MAX_INPUT_PACKET = 1024
MAX_INPUT_BACKLOG = 64 * 1024  # typed bytes held for a guest that reads none (a paused one, a hung one)
RETRY_SECONDS = 0.02
CTRL_C = b"\x03"


class ConsoleVsp:
    name = "console"
    component = "consolevsp"

    def __init__(self, host: VspHost) -> None:
        self.host = host
        self.channel: Channel | None = None
        self.backlog = bytearray()  # typed bytes waiting for room in the guest's inbound ring
        self._retry_armed = False

    def opened(self, channel: Channel) -> None:
        self.channel = channel

    def closed(self, channel: Channel) -> None:
        self.channel = None
        self.backlog.clear()

    def packet(self, channel: Channel, pkt: Packet) -> None:
        if pkt.type == VM_PKT_DATA_INBAND:
            self.host.console_output(pkt.data.rstrip(b"\0"))

    def send_input(self, data: bytes) -> bool:
        """Typed bytes for the guest; False if the channel is not open (the UART gets them then).

        What does not fit in the ring now waits here, in order, until the guest has read some:
        a big paste is delayed, not reordered. What waits is bounded (a guest that reads nothing
        cannot make the host hold more): beyond it, typed bytes are dropped and counted. A Ctrl-C
        flushes what still waits, as a terminal's INTR flushes typeahead, so it goes next.
        """
        channel = self.channel
        if channel is None or channel.state != "open":
            return False
        if CTRL_C in data:
            self.backlog.clear()
            if len(data) > MAX_INPUT_BACKLOG:
                data = data[data.rfind(CTRL_C):]
        room = MAX_INPUT_BACKLOG - len(self.backlog)
        if len(data) > room:
            self.host.count("console.input_dropped", len(data) - room)
            self.host.note("console input dropped: the guest reads none and "
                           f"{MAX_INPUT_BACKLOG // 1024} KiB already wait")
            data = data[:room]
        self.backlog += data
        self._flush()
        return True

    def _flush(self) -> None:
        channel = self.channel
        if channel is None:
            return
        while self.backlog:
            chunk = bytes(self.backlog[:MAX_INPUT_PACKET])
            try:
                if not self.host.send(channel, VM_PKT_DATA_INBAND, chunk, 0, wait_when_full=True):
                    self.backlog.clear()  # the channel failed: nothing more can go this way
                    return
            except RingFull:
                if not self._retry_armed:
                    self._retry_armed = True
                    self.host.after(RETRY_SECONDS, self._retry)
                return
            del self.backlog[:len(chunk)]

    def _retry(self) -> None:
        self._retry_armed = False
        self._flush()
