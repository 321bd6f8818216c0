"""What a VSP may touch of the child it serves: narrow handles, never the partition itself.

A VSP gets its channel's send and error report, a view of the child's memory bounded to the child's
RAM (and nothing of the root's), the child's disk, a counter sink under the child's name, notes, the
child's console, and timers that run through the placement's containment (a VSP that raises on a
timer is a fault of its own domain, like any other VSP call). So nothing a VSP does reaches back up
through the partition or the hypervisor (Linux drivers/hv, Firecracker's device model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..memory import GuestMemory
    from ..partition import Partition
    from ..vhd import VhdDisk
    from ..vmbus.server import Channel


class VspHost:
    def __init__(self, child: Partition, component: str) -> None:
        self._child = child
        self._component = f"{child.name}.{component}"
        self.name = child.name

    # --- the channel --------------------------------------------------------------------------------
    def send(self, channel: Channel, ptype: int, payload: bytes, trans_id: int, flags: int = 0,
             wait_when_full: bool = False) -> bool:
        """Write a packet into the channel's inbound ring (see VmbusServer.send_packet); False if closed."""
        server = self._child.vmbus
        if server is None:
            return False
        return server.send_packet(channel, ptype, payload, trans_id, flags, wait_when_full)

    def channel_error(self, channel: Channel, reason: str) -> None:
        if self._child.vmbus is not None:
            self._child.vmbus.channel_error(channel, reason)

    # --- the child's resources ------------------------------------------------------------------------
    def memory(self) -> GuestMemory | None:
        """The child's RAM (every access bounds-checked against its size), or None while it is off."""
        vp = self._child.vp
        return vp.memory if vp is not None else None

    def disk(self) -> VhdDisk | None:
        return self._child.disk

    def console_output(self, data: bytes) -> None:
        self._child.console_output(data)

    # --- accounting and time ----------------------------------------------------------------------------
    def count(self, name: str, n: float = 1) -> None:
        """Counter ``<child>.<name>`` (docs/telemetry.md)."""
        self._child.hv.count(f"{self.name}.{name}", n)

    def note(self, text: str) -> None:
        self._child.hv.note(self._child, text)

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` later on the lab's thread, contained as this VSP."""
        placement = self._child.hv.placement
        component = self._component
        self._child.hv.after(seconds, lambda: placement.contain(lambda: placement.component(component), fn))
