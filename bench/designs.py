"""The three hypervisor designs side by side: the same operations, their time and mode switches.

For each design (micro-kernel, monolithic, hosted), on a fresh in-process three-partition lab:

* boot: the whole lab from start to the three prompts (budget 400 ms);
* emulated port I/O: ``io N`` in child2 (no Integration Services: its UART model), ns per access from
  the guest's TSC; mode switches per access from the counters (Δ``child2.mode_switches`` ÷
  Δ``child2.exits.io_port``) — budgets 5 us monolithic, 25 us micro-kernel; hosted measured;
* a sector written through the emulated disk: ``dd write N`` in child2 (IDE PIO), us per sector from
  the guest's timing, and per sector: port exits, mode switches, world switches, host system calls;
* the VMBus path where it exists: ``dd write N`` in child1 (storvsc), us per sector and mode
  switches per VMBus packet and per sector. (In the hosted design child1 finds no VMBus: its disk is
  the emulated one, measured and labelled as such.)

Every per-operation figure is a ratio of counters taken over exactly that command.
"""

from __future__ import annotations

import re
import statistics
import time

from bench._common import InProcessLab, boot_lab, emit, figure, log, parse

DESIGNS = ("microkernel", "monolithic", "hosted")
RUNS = 3
IO_ACCESSES = {"monolithic": 100_000, "microkernel": 20_000, "hosted": 20_000}
SECTORS = 64
IO_BUDGET_US = {"monolithic": 5.0, "microkernel": 25.0}
BOOT_BUDGET_MS = 400.0


def _delta(before: dict, after: dict, name: str) -> float:
    return after.get(name, 0) - before.get(name, 0)


def boot_ms(design: str) -> list[float]:
    out = []
    for _ in range(RUNS):
        lab = InProcessLab(design=design)
        try:
            t0 = lab.start()
            done = max(lab.wait_for(name, f"{name}$ ")[1] for name in lab.hv.partitions)
            out.append((done - t0) * 1000)
        finally:
            lab.close()
    return out


def port_io(lab: InProcessLab, design: str) -> dict:
    n = IO_ACCESSES[design]
    us, switches, worlds = [], [], []
    for _ in range(RUNS):
        before = lab.counters()
        text, _ = lab.type("child2", f"io {n}")
        after = lab.counters()
        us.append(int(parse(r"(\d+) ns per access", text).group(1)) / 1000)
        exits = _delta(before, after, "child2.exits.io_port")
        switches.append(_delta(before, after, "child2.mode_switches") / exits)
        worlds.append(_delta(before, after, "child2.mode_switches.world") / exits)
    return {
        "round_trip_us": figure(us, "us", "guest TSC (printed by `io`)", IO_BUDGET_US.get(design), digits=3,
                                accesses_per_run=n),
        "mode_switches_per_access": round(statistics.median(switches), 3),
        "world_switches_per_access": round(statistics.median(worlds), 3),
    }


def disk(lab: InProcessLab, name: str) -> dict:
    us, per = [], {k: [] for k in ("exits", "mode_switches", "world_switches", "host_syscalls", "packets")}
    for _ in range(RUNS):
        before = lab.counters()
        text, _ = lab.type(name, f"dd write {SECTORS}")
        after = lab.counters()
        m = re.search(r"in (\d+) us: ([\d.]+) MB/s", text)
        if not m:
            raise RuntimeError(f"{name}: unexpected dd output {text!r}")
        sectors = _delta(before, after, f"{name}.disk.sectors_written")
        if sectors != SECTORS:
            raise RuntimeError(f"{name}: {sectors} sectors counted for dd write {SECTORS}")
        us.append(int(m.group(1)) / SECTORS)
        per["exits"].append((_delta(before, after, f"{name}.exits.io_port")
                             + _delta(before, after, f"{name}.exits.hypercall")) / sectors)
        per["mode_switches"].append(_delta(before, after, f"{name}.mode_switches") / sectors)
        per["world_switches"].append(_delta(before, after, f"{name}.mode_switches.world") / sectors)
        per["host_syscalls"].append(_delta(before, after, f"{name}.disk.host_syscalls") / sectors)
        packets = _delta(before, after, f"{name}.vmbus.packets_out")
        per["packets"].append(packets)
        per.setdefault("mode_switches_per_packet", []).append(
            _delta(before, after, f"{name}.mode_switches") / packets if packets else 0.0)
    out = {"us_per_sector": figure(us, "us", "guest TSC (printed by `dd`)", digits=2, sectors_per_run=SECTORS)}
    out.update({f"{k}_per_sector" if k not in ("packets", "mode_switches_per_packet") else k:
                round(statistics.median(v), 2) for k, v in per.items()})
    out["path"] = "vmbus" if out["packets"] else "emulated IDE"
    return out


def main() -> None:
    figures: dict = {}
    for design in DESIGNS:
        log(f"designs: {design}: boot x{RUNS}")
        boots = boot_ms(design)
        lab = boot_lab(design=design)
        try:
            log(f"designs: {design}: port I/O, emulated disk, VMBus")
            figures[design] = {
                "boot_ms": figure(boots, "ms", "host perf_counter, start -> three prompts", BOOT_BUDGET_MS, digits=1),
                "port_io": port_io(lab, design),
                "emulated_disk_child2": disk(lab, "child2"),
                "child1_disk": disk(lab, "child1"),
            }
        finally:
            lab.close()
        time.sleep(0.2)
    emit("designs", figures, runs=RUNS)


if __name__ == "__main__":
    main()
