"""Boot to the shell prompt: one partition, a three-partition lab, and a real lab process.

(a) one partition: an in-process hypervisor with only a root partition; from
    ``Partition.start()`` (requested on the scheduler thread) until its console
    output contains ``root$ ``. And a child alone: child1 started in a lab whose
    root has booted (in the default micro-kernel design its console goes through
    its worker in the root), until ``child1$ ``.
(b) three-partition lab, in-process: all three started in one request (as
    ``Lab.start`` does) until the last of the three prompts; in the default
    micro-kernel design (a child's UART is served by its worker in the root), and
    again in the monolithic design.
(c) the same through a real lab process (``LabHandle``): from ``started_at`` (the
    lab process's ``time.time()`` just before it starts the partitions) until the
    prompts reach this process; and the process overhead, ``LabHandle()`` until the
    lab's "ready" message. The first lab also starts the forkserver: reported apart.

Clock: host wall. (a)/(b) ``time.perf_counter`` in one process, the prompt time
being when the scheduler hands the output on; (c) ``time.time`` across the two
processes, the prompt time being when this process sees it (polled every 0.5 ms).
"""

from __future__ import annotations

import statistics
import time

from bench._common import InProcessLab, emit, figure, log, wait_console

RUNS = 10
BUDGET_ONE_MS = 150
BUDGET_LAB_MS = 400
NAMES = ("root", "child1", "child2")


def one_partition(tsc_khz: int, name: str) -> list[float]:
    """Boot `name` alone: the root in a root-only lab, or child1 in a lab whose root is up already."""
    partitions = [{"name": "root", "role": "root"}] + ([{"name": name}] if name != "root" else [])
    times = []
    for _ in range(RUNS):
        lab = InProcessLab(partitions=partitions, tsc_khz=tsc_khz)
        if name != "root":
            lab.start(["root"])
            lab.wait_for("root", "root$ ")
        t0 = lab.start([name])
        _, t1 = lab.wait_for(name, f"{name}$ ")
        times.append((t1 - t0) * 1000)
        lab.close()
    return times


def three_partitions(tsc_khz: int, design: str) -> tuple[list[float], dict[str, list[float]]]:
    times, each = [], {n: [] for n in NAMES}
    for _ in range(RUNS):
        lab = InProcessLab(tsc_khz=tsc_khz, design=design)
        t0 = lab.start()
        for n in NAMES:
            each[n].append((lab.wait_for(n, f"{n}$ ")[1] - t0) * 1000)
        times.append(max(each[n][-1] for n in NAMES))
        lab.close()
    return times, each


def lab_process() -> dict:
    from hyperlab.web.labs import LabHandle

    boot, ready, total, cold = [], [], [], None
    for i in range(RUNS + 1):
        t0 = time.time()
        handle = LabHandle(f"bench-boot-{i}", {})
        try:
            handle.wait_ready()
            t_ready = time.time()
            prompts = [wait_console(handle, n, f"{n}$ ") for n in NAMES]
        finally:
            handle.close()
        last = max(prompts)
        sample = ((last - handle.started_at) * 1000, (t_ready - t0) * 1000, (last - t0) * 1000)
        if i == 0:
            cold = sample
            continue
        boot.append(sample[0])
        ready.append(sample[1])
        total.append(sample[2])
    return {
        "lab_process_boot_ms": figure(boot, "ms", "host wall, time.time() across processes", BUDGET_LAB_MS,
                                      note="started_at (in the lab process) to all three prompts seen here"),
        "lab_process_start_overhead_ms": figure(ready, "ms", "host wall",
                                                note="LabHandle() to the ready message"),
        "lab_process_total_ms": figure(total, "ms", "host wall", note="LabHandle() to all three prompts"),
        "lab_process_cold_first_ms": {"boot": round(cold[0], 2), "start_overhead": round(cold[1], 2),
                                      "total": round(cold[2], 2),
                                      "note": "the first lab of this process also starts the forkserver"},
    }


def main() -> None:
    from hyperlab.core.cpu import calibrate_tsc_khz

    tsc_khz = calibrate_tsc_khz()  # once: calibration is lab set-up, not boot
    log("boot: one partition, in-process")
    one = one_partition(tsc_khz, "root")
    child = one_partition(tsc_khz, "child1")
    log("boot: three-partition lab, in-process (micro-kernel design, the default; then monolithic)")
    lab, each = three_partitions(tsc_khz, "microkernel")
    mono, _ = three_partitions(tsc_khz, "monolithic")
    log("boot: three-partition lab, lab process")
    proc = lab_process()
    clock = "host wall, time.perf_counter"
    emit("boot", {
        "one_partition_boot_ms": figure(one, "ms", clock, BUDGET_ONE_MS,
                                        note="root-only lab: start() to 'root$ '"),
        "one_child_boot_ms": figure(child, "ms", clock, BUDGET_ONE_MS,
                                    note="child1 started alone in a lab whose root is up (micro-kernel "
                                         "design: its console is served by its worker in the root)"),
        "three_partition_lab_boot_ms": figure(
            lab, "ms", clock, BUDGET_LAB_MS, note="all three started together, until the last prompt",
            prompt_median_ms={n: round(statistics.median(v), 2) for n, v in each.items()}),
        "three_partition_lab_boot_ms_monolithic": figure(
            mono, "ms", clock, BUDGET_LAB_MS, note="the same, monolithic design (console in the hypervisor)"),
        **proc,
    }, runs=RUNS)


if __name__ == "__main__":
    main()
