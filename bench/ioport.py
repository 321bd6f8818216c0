"""Port-I/O intercept round trip, in both hypervisor designs.

``io N`` typed into child1 of an in-process three-partition lab (all booted and
idle): a system call in which the guest kernel reads the UART's line status
register (port 0x3FD) N times; each IN is intercepted. The guest times the loop
with its TSC and prints ns per access. The hypervisor's ``child1.exits.io_port``
counter confirms every access was an intercept.

* monolithic: the core's IN hook asks the child's UART model and the guest goes
  on inside the same ``emu_start`` (budget 5 us: handled in the hypervisor);
* micro-kernel (the lab default): the VP leaves the emulator at the IN, the
  intercept goes to the child's worker in the root, which runs the UART model on
  the root's time and completes it; then the child resumes (budget 25 us).
"""

from __future__ import annotations

from bench._common import boot_lab, emit, figure, log, parse

ACCESSES = {"monolithic": 200_000, "microkernel": 50_000}  # each run well under a few seconds
RUNS = 5
BUDGET_US = {"monolithic": 5.0, "microkernel": 25.0}


def measure(design: str) -> tuple[list[float], list[float], int]:
    accesses = ACCESSES[design]
    lab = boot_lab(design=design)
    try:
        before = lab.counters().get("child1.exits.io_port", 0)
        guest_us, wall_us = [], []
        for i in range(RUNS):
            text, wall = lab.type("child1", f"io {accesses}")
            m = parse(r"(\d+) port reads in \d+ us: (\d+) ns per access", text)
            guest_us.append(int(m.group(2)) / 1000)
            wall_us.append(wall / accesses * 1e6)
            log(f"  {design} run {i + 1}/{RUNS}: {guest_us[-1]:.3f} us per access")
        exits = int(lab.counters().get("child1.exits.io_port", 0) - before)
    finally:
        lab.close()
    if exits < RUNS * accesses:
        raise RuntimeError(f"only {exits} port-I/O exits counted for {RUNS * accesses} accesses")
    return guest_us, wall_us, exits


def main() -> None:
    figures = {}
    for design in ("monolithic", "microkernel"):
        log(f"ioport: booting an in-process three-partition lab, design {design}")
        guest_us, wall_us, exits = measure(design)
        figures[f"io_intercept_us_{design}"] = figure(
            guest_us, "us", "guest TSC (printed by `io`)", BUDGET_US[design], digits=3,
            accesses_per_run=ACCESSES[design], io_port_exits_counted=exits)
        figures[f"io_wall_per_access_us_{design}"] = figure(
            wall_us, "us", "host wall around the whole command / accesses", digits=3)
    emit("ioport", figures, runs=RUNS)


if __name__ == "__main__":
    main()
