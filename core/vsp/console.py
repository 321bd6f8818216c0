"""The synthetic console VSP (hyperlab's own; Hyper-V offers no serial console over VMBus).

Once the child opened it, its console output arrives as ring packets — one signal for a whole
line or more instead of two port exits per character — and typed keys go to it the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..vmbus.ring import VM_PKT_DATA_INBAND, Packet

if TYPE_CHECKING:
    from ..partition import Partition
    from ..vmbus.server import Channel

MAX_INPUT_PACKET = 1024


class ConsoleVsp:
    name = "console"

    def __init__(self, child: Partition) -> None:
        self.child = child
        self.channel: Channel | None = None

    def opened(self, channel: Channel) -> None:
        self.channel = channel

    def closed(self, channel: Channel) -> None:
        self.channel = None

    def packet(self, channel: Channel, pkt: Packet) -> None:
        if pkt.type == VM_PKT_DATA_INBAND:
            self.child.console_output(pkt.data.rstrip(b"\0"))

    def send_input(self, data: bytes) -> bool:
        """Typed bytes for the guest; False if the channel is not open (the UART gets them then)."""
        channel = self.channel
        if channel is None or channel.state != "open" or self.child.vmbus is None:
            return False
        for i in range(0, len(data), MAX_INPUT_PACKET):
            if not self.child.vmbus.send_packet(channel, VM_PKT_DATA_INBAND, data[i:i + MAX_INPUT_PACKET], 0):
                return False
        return True
