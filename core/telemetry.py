"""Telemetry: counters incremented where an event happens, and a bounded log of transitions.

Counter names are dotted (``child1.exits.io_port``) and documented in
``docs/telemetry.md``, the single list the UI, the CLI and the benchmarks read.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass

from . import costs


@dataclass(frozen=True, slots=True)
class Transition:
    """One hop of control between domains/modes, recorded by the code that performs it."""

    t: float               # seconds since the lab started
    partition: str
    source: str            # e.g. "child1/user", "child1/kernel", "hypervisor"
    target: str
    reason: str            # io_port, cpuid, hypercall, hlt, fault, interrupt, ...
    measured_us: float | None  # wall time in this emulator; None for a hop not timed on its own
    model: str | None      # the kind of hop in core/costs.py whose published cost models it (None: work, not a hop)

    def as_dict(self) -> dict:
        return {"t": round(self.t, 6), "partition": self.partition, "from": self.source, "to": self.target,
                "reason": self.reason, "measured_us": None if self.measured_us is None else round(self.measured_us, 3),
                "modeled_cycles": costs.cycles(self.model) if self.model else None, "model": self.model}


LEVELS = ("user", "kernel", "hypervisor")


def _level(endpoint: str) -> tuple[str, str]:
    """("child1", "kernel") for "child1/kernel"; ("", "hypervisor") for "hypervisor"."""
    owner, _, mode = endpoint.rpartition("/")
    return owner, mode


def mode_switch_counters(partition: str, source: str, target: str) -> tuple[str, ...]:
    """The counters one hop between two places increments (docs/telemetry.md "Mode switches").

    ``<p>.mode_switches`` counts every change of privilege level or world made on behalf of
    partition p; ``.user_kernel``, ``.kernel_hypervisor``, ``.user_hypervisor`` say which two levels;
    ``.world`` is a switch between two kernels (the hosted design's world switch into the host).
    """
    (a_owner, a), (b_owner, b) = _level(source), _level(target)
    if a == b:
        kind = "world" if a_owner != b_owner else ""
    else:
        kind = "_".join(sorted((a, b), key=LEVELS.index)) if a in LEVELS and b in LEVELS else ""
    total = f"{partition}.mode_switches"
    return (total, f"{total}.{kind}") if kind else (total,)


class Telemetry:
    """Counters and recent transitions of one lab. Written by the scheduler thread only."""

    def __init__(self, transition_log: int = 256) -> None:
        self.started = time.perf_counter()
        self.counters: collections.Counter[str] = collections.Counter()
        # Plain tuples (Transition's fields, in order): recording sits on the per-exit hot path.
        self.transitions: collections.deque[tuple] = collections.deque(maxlen=transition_log)
        self.transitions_total = 0
        # Every hop counted by its two ends and reason: the architecture picture's edges (bounded: the
        # places and reasons of one lab are a few dozen).
        self.hops: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        self.round_trips: collections.Counter[tuple[str, str, str, str]] = collections.Counter()  # see round_trip
        self._switch_keys: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def count(self, name: str, n: float = 1) -> None:
        self.counters[name] += n

    def transition(self, partition: str, source: str, target: str, reason: str, measured_us: float | None,
                   model: str | None) -> None:
        self.transitions_total += 1
        counters = self.counters
        counters[partition + ".transitions"] += 1
        self.hops[partition, source, target, reason] += 1
        if source != target:  # a change of mode (or of world), counted per partition and kind
            keys = self._switch_keys.get((partition, source, target))
            if keys is None:
                keys = self._switch_keys[(partition, source, target)] = mode_switch_counters(partition, source,
                                                                                                 target)
            for key in keys:
                counters[key] += 1
        self.transitions.append((time.perf_counter() - self.started, partition, source, target, reason,
                                 measured_us, model))

    def round_trip(self, partition: str, source: str, target: str, reason: str, measured_us: float | None,
                   model: str | None) -> None:
        """An exit and its resume (``target`` -> ``source``, reason ``resume``): the per-exit hot path of
        the monolithic design, two hops recorded with one lookup of their mode-switch counters."""
        keys = self._switch_keys.get((partition, source, target))
        if keys is None:
            keys = self._switch_keys[(partition, source, target)] = mode_switch_counters(partition, source, target)
        counters = self.counters
        counters[partition + ".transitions"] += 2
        for key in keys:
            counters[key] += 2  # the way back is the same kind of switch
        self.transitions_total += 2
        now = time.perf_counter() - self.started
        self.transitions.append((now, partition, source, target, reason, measured_us, model))
        self.transitions.append((now, partition, target, source, "resume", None, None))
        self.round_trips[partition, source, target, reason] += 1  # both hops, counted once: the hot path

    def hop_counts(self) -> list[dict]:
        """How often each hop happened since the lab started: every one, not a sample."""
        hops = collections.Counter(self.hops)
        for (p, a, b, r), n in self.round_trips.items():
            hops[p, a, b, r] += n
            hops[p, b, a, "resume"] += n
        return [{"partition": p, "from": a, "to": b, "reason": r, "count": n} for (p, a, b, r), n in hops.items()]

    def recent_transitions(self, limit: int = 64) -> list[dict]:
        items = list(self.transitions)[-limit:]
        return [Transition(*t).as_dict() for t in items]
