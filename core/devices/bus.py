"""The port-I/O bus of a partition: which device answers which port, by port ranges.

Every emulated device — the UART, the IDE disk, the PIC pair, the panic and POST ports — is one
model on this bus with a ``kind`` (``"uart"``, ``"ide"``, ...). The bus only knows ports; where a
device runs (in the hypervisor, in the root's worker process, in a hosted VMM application) is
decided by the placement layer (``core/placement.py``) from the device's kind, never here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class PortDevice(Protocol):
    kind: str  # the component kind the placement layer places (docs/architecture.md)

    def read(self, port: int, size: int) -> int: ...
    def write(self, port: int, size: int, value: int) -> None: ...


class DeviceBus:
    def __init__(self) -> None:
        self._ports: dict[int, PortDevice] = {}
        self.devices: list[PortDevice] = []

    def attach(self, device: PortDevice, ports: Iterable[int]) -> None:
        for port in ports:
            if port in self._ports:
                raise ValueError(f"port {port:#x} already belongs to a {self._ports[port].kind} device")
            self._ports[port] = device
        self.devices.append(device)

    def find(self, port: int) -> PortDevice | None:
        return self._ports.get(port)
