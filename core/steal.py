"""Steal time: how long a VP was ready to run but did not, told to its guest so it can time its own work.

A guest times work with RDTSC, and Unicorn's RDTSC reads the host's TSC: it keeps counting while
the scheduler runs other partitions' time slices or serves the lab's requests. So a guest's "ns per
system call" grew with whatever else ran in the lab. Real hypervisors tell the guest what it lost:
KVM writes the *steal time* into a page the guest registered (MSR_KVM_STEAL_TIME; Linux takes it
out of its scheduler clock), Hyper-V offers the VP's run time (HvRegisterVpRuntime). hyperlab
writes the steal time, in TSC ticks, into the stats page the guest kernel registered with
hypercall 0x8001; the kernel's clock for its own work is ``rdtsc() - steal`` (guests/hv.c).

Stolen is the time from a preemption (the slice was over, or the lab needed the CPU) until the VP
runs again. A VP that halted is idle, and one waiting for the root to serve its intercept is doing
I/O: neither is stolen. The value changes only between slices, while the VP is stopped, so the
guest reads it exactly. What it cannot show is the host taking the CPU from the lab process in
the middle of a slice: that is known only when the slice ends, too late to place it before or
after a reading the guest took inside the slice. Guests measure that noise away with the median
of many short runs (the shell's ``syscalls``; docs/performance.md).
"""

from __future__ import annotations

import contextlib
import struct
from typing import TYPE_CHECKING

from .memory import GuestMemoryError

if TYPE_CHECKING:
    from .cpu import VirtualProcessor
    from .partition import Partition

STEAL_SLOT = 16  # the u64 slot of the guest's stats page the hypervisor writes (guests/hv.c: STATS_STEAL)


class StealClock:
    """The steal time of one partition's VP since it booted; the scheduler calls it around each slice."""

    def __init__(self, partition: Partition) -> None:
        self.partition = partition
        self._vp: VirtualProcessor | None = None  # the boot the figures belong to
        self._stolen_ns = 0
        self._written_ns = 0
        self._ready_since: int | None = None  # preempted at; None while running, halted or waiting on I/O

    def slice_starting(self, now_ns: int) -> None:
        """Before the VP runs: end a wait that began with a preemption, and tell the guest its total."""
        p = self.partition
        if p.vp is not self._vp:  # a new boot: its kernel's page starts at zero
            self._vp, self._stolen_ns, self._written_ns, self._ready_since = p.vp, 0, 0, None
        if self._ready_since is not None:
            self._stolen_ns += now_ns - self._ready_since
            p.hv.count(f"{p.name}.vp.steal_us", (now_ns - self._ready_since) / 1000)
            self._ready_since = None
        if self._stolen_ns == self._written_ns or p.vp is None or p.stats_gpa is None:
            return
        ticks = self._stolen_ns * p.hv.tsc_khz // 1_000_000
        with contextlib.suppress(GuestMemoryError):  # a bad page address from the guest: it hears nothing
            p.vp.memory.write(p.stats_gpa + 8 * STEAL_SLOT, struct.pack("<Q", ticks))
            self._written_ns = self._stolen_ns

    def slice_ended(self, preempted: bool, now_ns: int) -> None:
        """After a slice: a preempted VP is ready to run from now on, and waits for the CPU."""
        self._ready_since = now_ns if preempted and self.partition.vp is self._vp else None
