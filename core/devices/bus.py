"""The port-I/O bus of a partition's emulated devices: which device answers which port.

The same device models serve both hypervisor designs; the bus only knows ports. Where the bus
runs — inside the hypervisor (monolithic) or in the root's worker process (micro-kernel) — is
decided by the partition, not by the devices.
"""

from __future__ import annotations

from typing import Protocol


class PortDevice(Protocol):
    def handles(self, port: int) -> bool: ...
    def read(self, port: int, size: int) -> int: ...
    def write(self, port: int, size: int, value: int) -> None: ...


class DeviceBus:
    def __init__(self) -> None:
        self.devices: list[PortDevice] = []

    def attach(self, device: PortDevice) -> None:
        self.devices.append(device)

    def find(self, port: int) -> PortDevice | None:
        for device in self.devices:
            if device.handles(port):
                return device
        return None
