"""The small platform devices of a PC every partition has: the PIC pair, the panic port, port 0x80."""

from __future__ import annotations

from collections.abc import Callable

from .pic8259 import Pic8259

PIC_PORTS = (0x20, 0x21, 0xA0, 0xA1)
PVPANIC_PORT = 0x505  # QEMU's pvpanic device: the guest writes 1 when its kernel bugchecks
POST_PORT = 0x80      # POST diagnostic port: writes are harmless, reads float high


class PicPair:
    """The master and slave 8259A as one device on the bus."""

    kind = "pic"

    def __init__(self, master: Pic8259, slave: Pic8259) -> None:
        self.master, self.slave = master, slave

    def read(self, port: int, size: int) -> int:
        return (self.master if port < 0xA0 else self.slave).read(port)

    def write(self, port: int, size: int, value: int) -> None:
        (self.master if port < 0xA0 else self.slave).write(port, value)


class PanicPort:
    kind = "pic"  # part of the platform: placed with the interrupt controller

    def __init__(self, on_panic: Callable[[], None]) -> None:
        self._on_panic = on_panic

    def read(self, port: int, size: int) -> int:
        return 1  # bit 0: "panic notification supported"

    def write(self, port: int, size: int, value: int) -> None:
        if value & 1:
            self._on_panic()


class PostPort:
    kind = "pic"

    def read(self, port: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def write(self, port: int, size: int, value: int) -> None:
        pass
