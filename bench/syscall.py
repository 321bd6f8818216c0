"""System call round trip (user -> kernel -> user through the guest's call gate).

``syscalls N`` typed into child1 of an in-process three-partition lab: the guest shell calls
getpid() N times in up to 100 batches, each timed with the TSC, and prints the median batch's ns
per call (with the fastest, the slowest, and the total time its VP ran). No hypervisor exit is
involved: the call gate, the kernel and the return run inside Unicorn.

Two scenarios, each for several N: the lab idle, and child2 running `spin` (a compute loop that
takes every other 10 ms time slice). Per run the bench records three ways to turn the guest's
clocks into "ns per call": the median batch (the shell's figure), the mean over the VP's own time
(``us in all`` / N: steal time left out, host preemption in), and the mean over the TSC (what the
shell printed before: everything that passed). Clock: guest TSC throughout. Where the rest went:
the steal time (other partitions' slices, from the shell's own account), and the time the lab's
scheduler thread waited on a host run queue while the command ran (``/proc/.../schedstat``, the
host taking the CPU away), per call.
"""

from __future__ import annotations

import os
import re

from bench._common import boot_lab, emit, figure, log, parse

NS = (1_000, 10_000, 100_000)
RUNS = 7
BUDGET_US = 15.0
LINE = r"(\d+) system calls: (\d+) ns per call.*\n  median of \d+ batch(?:es)? of \d+; .*; (\d+) us in all"
AWAY = r"\((\d+) us more passed while child1's VP was not running"


def run_queue_wait_ns(tid: int) -> int:
    """How long a host thread has waited on a run queue, ready but not running (schedstat field 2)."""
    with open(f"/proc/{os.getpid()}/task/{tid}/schedstat") as f:
        return int(f.read().split()[1])


def measure(lab, n: int) -> tuple[list[float], ...]:
    median, vp_mean, tsc_mean, host_wait = [], [], [], []
    tid = lab.scheduler._thread.native_id
    for _ in range(RUNS):
        waited = run_queue_wait_ns(tid)
        text, _wall = lab.type("child1", f"syscalls {n}")
        host_wait.append((run_queue_wait_ns(tid) - waited) / 1000 / n)
        m = parse(LINE, text)
        away = re.search(AWAY, text)
        total_us = int(m.group(3)) + (int(away.group(1)) if away else 0)
        median.append(int(m.group(2)) / 1000)
        vp_mean.append(int(m.group(3)) / n)
        tsc_mean.append(total_us / n)
    return median, vp_mean, tsc_mean, host_wait


def main() -> None:
    log("syscall: booting an in-process three-partition lab")
    lab = boot_lab()
    figures = {}
    try:
        before = lab.counters().get("child1.syscalls", 0)
        for scenario in ("idle", "child2_spinning"):
            if scenario == "child2_spinning":
                lab.scheduler.submit(lambda: lab.hv.partitions["child2"].console_input(b"spin 1000000\r"))
            for n in NS:
                median, vp_mean, tsc_mean, host_wait = measure(lab, n)
                log(f"  {scenario} N={n}: median {median} us")
                figures[f"{scenario}_n{n}_median_us"] = figure(median, "us", "guest TSC, median of the batches "
                                                               "(the figure `syscalls` prints)", BUDGET_US, digits=3)
                figures[f"{scenario}_n{n}_vp_mean_us"] = figure(vp_mean, "us", "guest vpclock (TSC minus steal) "
                                                                "over the whole command / N", digits=3)
                figures[f"{scenario}_n{n}_tsc_mean_us"] = figure(tsc_mean, "us", "guest TSC over the whole "
                                                                 "command / N (the figure before)", digits=3)
                figures[f"{scenario}_n{n}_host_wait_us"] = figure(host_wait, "us", "host: the scheduler thread's "
                                                                  "run-queue wait during the command / N", digits=3)
        counted = lab.counters().get("child1.syscalls", 0) - before
    finally:
        lab.close()
    emit("syscall", figures, runs=RUNS, syscalls_counted_by_guest_kernel=counted)


if __name__ == "__main__":
    main()
