"""Virtualization service providers: the root's ends of a child's VMBus channels."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ..vmbus.server import Offer, VmbusServer
from .console import ConsoleVsp
from .host import VspHost
from .ic import HeartbeatService, ShutdownService, TimeSyncService
from .storvsp import StorVsp

if TYPE_CHECKING:
    from ..partition import Partition

# Interface GUIDs are Hyper-V's (the console's is hyperlab's own); relids and connection ids are ours.
OFFERS = [
    Offer(1, "storage", uuid.UUID("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"), 0x2001, ic=True),
    Offer(2, "console", uuid.UUID("8b60ccf6-709f-4c11-90b5-229c959a9e6a"), 0x2002, ic=True),
    Offer(3, "heartbeat", uuid.UUID("57164f39-9115-4e78-ab55-382f3bd5422d"), 0x2003, ic=True),
    Offer(4, "shutdown", uuid.UUID("0e0b6031-5213-4934-818b-38d90ced39db"), 0x2004, ic=True),
    Offer(5, "timesync", uuid.UUID("9527e630-d0ae-497b-adce-e80ab0175caf"), 0x2005, ic=True),
]


class ChildServices:
    """Everything the root provides a child over VMBus."""

    def __init__(self, child: Partition) -> None:
        # Each VSP gets a narrow handle on the child (core/vsp/host.py), never the partition itself.
        self.storage = StorVsp(VspHost(child, StorVsp.component))
        self.console = ConsoleVsp(VspHost(child, ConsoleVsp.component))
        self.heartbeat = HeartbeatService(VspHost(child, HeartbeatService.component))
        self.shutdown = ShutdownService(VspHost(child, ShutdownService.component))
        self.timesync = TimeSyncService(VspHost(child, TimeSyncService.component))
        vsps = {v.name: v for v in (self.storage, self.console, self.heartbeat, self.shutdown, self.timesync)}
        self.server = VmbusServer(child, OFFERS, vsps)
