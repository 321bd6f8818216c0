"""A partition's devices: the port bus and its models, the child's disk, the console (UART or synthetic).

A fresh set of models at each start; which of them run where is the placement's decision
(core/placement.py), never the wiring's.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .devices.bus import DeviceBus
from .devices.ide import IRQ as IDE_IRQ
from .devices.ide import IdeController
from .devices.pic8259 import Pic8259
from .devices.platform import PIC_PORTS, POST_PORT, PVPANIC_PORT, PanicPort, PicPair, PostPort
from .devices.uart16550 import Uart16550
from .diskimage import DEFAULT_DISK_SIZE, open_or_create_disk
from .vhd import FOOTER_SIZE, VhdDisk, VhdError

if TYPE_CHECKING:
    from .cpu import VirtualProcessor
    from .hypervisor import Hypervisor
    from .partition import PartitionConfig
    from .vsp import ChildServices

COM1, COM1_IRQ = 0x3F8, 4
CONSOLE_SCROLLBACK = 64 * 1024


class DeviceWiring:
    """Mixed into :class:`~hyperlab.core.partition.Partition`: its devices, disk and console."""

    hv: Hypervisor
    name: str
    config: PartitionConfig
    vp: VirtualProcessor | None
    services: ChildServices | None
    disk: VhdDisk | None
    ide: IdeController | None
    console_pending: bytearray
    scrollback: bytearray
    reason: str | None
    _prefix: str
    _k_disk: str

    def crash(self, reason: str) -> None: ...

    def _wire_devices(self) -> None:
        """A fresh set of device models on the port bus (at creation and at each start)."""
        self.pic1, self.pic2 = Pic8259(0x20), Pic8259(0xA0)
        self.uart = Uart16550(COM1, self.console_output, lambda: self.pic1.raise_irq(COM1_IRQ))
        self.bus = DeviceBus()
        self.bus.attach(self.uart, self.uart.ports)
        self.bus.attach(PicPair(self.pic1, self.pic2), PIC_PORTS)
        self.bus.attach(PanicPort(lambda: self.hv.guest_panicked(self)), (PVPANIC_PORT,))
        self.bus.attach(PostPort(), (POST_PORT,))

    # --- disk: a child's VHD on the primary IDE channel (IRQ 14: slave PIC input 6) ---------------
    def _attach_disk(self) -> bool:
        """Open the VHD (made from the base disk if missing); a bad file fails the start, untouched."""
        if self.config.disk_path is None:
            return True
        try:
            self.disk = open_or_create_disk(self.config.disk_path)
        except VhdError as e:
            self.crash(f"cannot start: {e}")
            self.console_pending += f"hyperlab: {self.name} {self.reason}\r\n".encode()
            return False
        self.ide = IdeController(self.hv.placement.disk_for(self, self.disk),
                                 lambda: self.pic2.raise_irq(IDE_IRQ - 8), self._count_disk)
        self.bus.attach(self.ide, IdeController.PORTS)
        return True

    def detach_disk(self) -> None:
        if self.disk is not None:
            self.disk.close()
        self.disk = None
        self.ide = None

    def _count_disk(self, name: str, n: int) -> None:
        self.hv.count(self._k_disk + name, n)

    def _describe_disk(self) -> dict | None:
        path = self.config.disk_path
        if path is None:
            return None
        if self.disk is not None:
            size = self.disk.size_bytes
        else:
            try:
                size = os.stat(path).st_size - FOOTER_SIZE
            except OSError:
                size = DEFAULT_DISK_SIZE  # not created yet: the next start makes it this size
        return {"path": path, "size_bytes": size}

    # --- console -----------------------------------------------------------------------------------
    def console_output(self, data: bytes) -> None:
        self.console_pending += data
        self.hv.count(self._prefix + "console.bytes_out", len(data))

    def take_console_output(self) -> bytes:
        if not self.console_pending:
            return b""
        data = bytes(self.console_pending)
        self.console_pending.clear()
        self.scrollback += data
        if len(self.scrollback) > CONSOLE_SCROLLBACK:
            del self.scrollback[:-CONSOLE_SCROLLBACK]
        return data

    def console_input(self, data: bytes) -> None:
        if self.vp is None:
            return
        self.hv.count(self._prefix + "console.bytes_in", len(data))
        if self.services is None or not self.services.console.send_input(data):
            self.uart.receive(data)  # no synthetic console open: the keys arrive on COM1

