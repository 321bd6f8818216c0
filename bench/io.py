"""Emulated vs VMBus disk I/O: the same dd workload on child2 (IDE, emulated) and child1 (storvsc).

Prints one JSON object. Throughput is guest-visible: the guest times `dd` with its own TSC. Exits,
transitions and signals come from the hypervisor's counters over exactly that command. The
port-I/O intercept round trip is `io N` on child2 (each access served by the root's worker in the
micro-kernel design, inside the hypervisor in the monolithic one).

Run: python -m bench.io   (make bench runs every bench module)
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time

from hyperlab.core.hypervisor import Hypervisor
from hyperlab.core.lab import partition_configs
from hyperlab.core.scheduler import Scheduler

SECTORS = 1024            # 512 KiB per run: dd's maximum scratch area is 2047 sectors
RUNS = 3
IO_ACCESSES = 20_000
MIB = 1 << 20


class Lab:
    """A real lab in this process: the real guest kernel on the real core."""

    def __init__(self, design: str, data_dir: str) -> None:
        self.out: dict[str, bytearray] = {}
        self.hv = Hypervisor(partition_configs({"data_dir": data_dir}), design=design)
        self.sched = Scheduler(self.hv, lambda n, d: self.out.setdefault(n, bytearray()).extend(d))
        self.sched.start()
        self.sched.call(lambda: [p.start() for p in self.hv.partitions.values()])
        for name in self.hv.partitions:
            self._wait(name, 0)

    def _wait(self, name: str, mark: int, timeout: float = 300) -> str:
        prompt = f"{name}$ ".encode()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            buf = bytes(self.out.get(name, b""))
            if prompt in buf[mark:]:
                return buf[mark:].decode("utf-8", "replace")
            time.sleep(0.002)
        raise RuntimeError(f"{name}: no prompt within {timeout} s")

    def type(self, name: str, line: str) -> tuple[str, dict[str, float]]:
        before = self.sched.call(self.hv.counters)
        mark = len(self.out.get(name, b""))
        self.sched.submit(lambda: self.hv.partitions[name].console_input(line.encode() + b"\r"))
        text = self._wait(name, mark)
        after = self.sched.call(self.hv.counters)
        return text, {k: after.get(k, 0) - before.get(k, 0) for k in after}

    def close(self) -> None:
        self.sched.stop()


def dd(lab: Lab, name: str, op: str) -> dict[str, float]:
    text, delta = lab.type(name, f"dd {op} {SECTORS}")
    m = re.search(r"in (\d+) us: ([\d.]+) MB/s", text)
    if not m:
        raise RuntimeError(f"{name}: unexpected dd output {text!r}")
    mib = SECTORS * 512 / MIB
    return {
        "mb_per_s": float(m.group(2)), "elapsed_us": int(m.group(1)),
        "exits_per_mib": (delta.get(f"{name}.exits.io_port", 0) + delta.get(f"{name}.exits.hypercall", 0)) / mib,
        "transitions_per_mib": delta.get(f"{name}.transitions", 0) / mib,
        "signals_per_mib": delta.get(f"{name}.vmbus.signals_sent", 0) / mib,
        "signals_suppressed_per_mib": delta.get(f"{name}.vmbus.signals_suppressed", 0) / mib,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


def measure(design: str) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        lab = Lab(design, data_dir)
        try:
            result: dict = {}
            for name, path in (("child1", "vmbus"), ("child2", "emulated")):
                for op in ("write", "read"):
                    runs = []
                    for _ in range(RUNS):
                        runs.append(dd(lab, name, op))
                    result[f"{path}_{op}"] = median_of(runs)
                    print(f"{design} {path} {op}: {result[f'{path}_{op}']['mb_per_s']} MB/s", file=sys.stderr)
            text, _ = lab.type("child2", f"io {IO_ACCESSES}")
            m = re.search(r"(\d+) ns per access", text)
            result["emulated_port_io_round_trip_us"] = int(m.group(1)) / 1000 if m else None
        finally:
            lab.close()
    for op in ("write", "read"):
        v, e = result[f"vmbus_{op}"], result[f"emulated_{op}"]
        result[f"throughput_ratio_{op}"] = round(v["mb_per_s"] / e["mb_per_s"], 1) if e["mb_per_s"] else None
        result[f"exits_ratio_{op}"] = round(v["exits_per_mib"] / e["exits_per_mib"], 5) if e["exits_per_mib"] else None
    return result


def main() -> None:
    figures = {"sectors_per_run": SECTORS, "runs": RUNS, "designs": {}}
    for design in ("microkernel", "monolithic"):
        figures["designs"][design] = measure(design)
    mk = figures["designs"]["microkernel"]
    mono = figures["designs"]["monolithic"]
    worst_vmbus = min(mk["vmbus_write"]["mb_per_s"], mk["vmbus_read"]["mb_per_s"])
    figures["budgets"] = {
        "vmbus_at_least_50_mb_s": {"measured": worst_vmbus, "met": worst_vmbus >= 50},
        "vmbus_at_least_50x_emulated": {
            "measured": min(mk["throughput_ratio_write"], mk["throughput_ratio_read"]),
            "met": min(mk["throughput_ratio_write"], mk["throughput_ratio_read"]) >= 50},
        "vmbus_exits_at_most_1_per_100_of_emulated": {
            "measured": max(mk["exits_ratio_write"], mk["exits_ratio_read"]),
            "met": max(mk["exits_ratio_write"], mk["exits_ratio_read"]) <= 0.01},
        "emulated_round_trip_via_root_worker_at_most_25_us": {
            "measured": mk["emulated_port_io_round_trip_us"], "met": mk["emulated_port_io_round_trip_us"] <= 25},
        "emulated_round_trip_in_hypervisor_at_most_5_us": {
            "measured": mono["emulated_port_io_round_trip_us"], "met": mono["emulated_port_io_round_trip_us"] <= 5},
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
