"""System call round trip (user -> kernel -> user through the guest's call gate).

``syscalls 200000`` typed into child1 of an in-process three-partition lab (all
booted and idle): the guest shell calls getpid() that many times and prints the
ns per call, timed with its own TSC. No hypervisor exit is involved: the call
gate, the kernel and the return run inside Unicorn. Clock: guest TSC; the
command's host wall time per call (spawn-free: a shell built-in, echo and
printing included) is reported as an upper bound.
"""

from __future__ import annotations

from bench._common import boot_lab, emit, figure, log, parse

CALLS = 200_000
RUNS = 7
BUDGET_US = 15.0


def main() -> None:
    log("syscall: booting an in-process three-partition lab")
    lab = boot_lab()
    try:
        before = lab.counters().get("child1.syscalls", 0)
        guest_us, wall_us = [], []
        for i in range(RUNS):
            text, wall = lab.type("child1", f"syscalls {CALLS}")
            m = parse(r"(\d+) system calls in \d+ us: (\d+) ns per call", text)
            guest_us.append(int(m.group(2)) / 1000)
            wall_us.append(wall / CALLS * 1e6)
            log(f"  run {i + 1}/{RUNS}: {guest_us[-1]:.3f} us per call")
        counted = lab.counters().get("child1.syscalls", 0) - before
    finally:
        lab.close()
    emit("syscall", {
        "syscall_round_trip_us": figure(guest_us, "us", "guest TSC (printed by `syscalls`)", BUDGET_US,
                                        digits=3),
        "syscall_wall_per_call_us": figure(wall_us, "us", "host wall around the whole command / calls",
                                           digits=3),
    }, calls_per_run=CALLS, runs=RUNS, syscalls_counted_by_guest_kernel=counted)


if __name__ == "__main__":
    main()
