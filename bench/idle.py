"""An idle lab process: its CPU use over 10 s, and its memory.

A real lab process (``LabHandle``, default three partitions) boots to its three
prompts; then nothing is typed for 10 s and the process's utime + stime
(``/proc/PID/stat``, clock ticks) is read before and after: CPU % of one core.
Memory: VmRSS (``/proc/PID/status``) after boot and again after a few commands
in two partitions, with VmHWM (the peak), the anonymous/file split and PSS
(``smaps_rollup``: pages shared with the forkserver counted by share).
Clock: host wall (``time.monotonic``) for the 10 s window; CPU time from the kernel.
"""

from __future__ import annotations

import os
import time

from bench._common import cpu_ticks, emit, log, proc_pss_kib, proc_status, type_process, wait_console

IDLE_SECONDS = 10.0
BUDGET_IDLE_PCT = 1.0    # "≈ 0": under 1 % of one core
BUDGET_RSS_MIB = 64
NAMES = ("root", "child1", "child2")
COMMANDS = {"child1": ["help", "ver", "ps", "uptime", "spin 20", "syscalls 20000", "io 20000"],
            "root": ["ver", "vm list", "ps"]}


def memory(pid: int) -> dict:
    status = proc_status(pid)
    return {"VmRSS_MiB": round(status["VmRSS"] / 1024, 1), "VmHWM_MiB": round(status["VmHWM"] / 1024, 1),
            "RssAnon_MiB": round(status.get("RssAnon", 0) / 1024, 1),
            "RssFile_MiB": round(status.get("RssFile", 0) / 1024, 1),
            "Pss_MiB": round((proc_pss_kib(pid) or 0) / 1024, 1)}


def main() -> None:
    from hyperlab.web.labs import LabHandle

    hz = os.sysconf("SC_CLK_TCK")
    handle = LabHandle("bench-idle", {})
    try:
        handle.wait_ready()
        for name in NAMES:
            wait_console(handle, name, f"{name}$ ")
        pid = handle.process.pid
        time.sleep(0.5)  # let the last console batch and the ready/describe traffic settle
        log(f"idle: lab process {pid} booted; measuring CPU over {IDLE_SECONDS:.0f} s of idleness")
        after_boot = memory(pid)
        c0, t0 = cpu_ticks(pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        c1, t1 = cpu_ticks(pid), time.monotonic()
        cpu_pct = (c1 - c0) / hz / (t1 - t0) * 100
        log("idle: running a few commands")
        for name, lines in COMMANDS.items():
            for line in lines:
                type_process(handle, name, line)
        after_commands = memory(pid)
    finally:
        handle.close()
    emit("idle", {
        "idle_cpu_percent_of_one_core": {
            "value": round(cpu_pct, 3), "budget": f"<= {BUDGET_IDLE_PCT} % of one core (approx. 0)",
            "met": cpu_pct <= BUDGET_IDLE_PCT,
            "cpu_ticks": c1 - c0, "tick_seconds": 1 / hz, "window_s": round(t1 - t0, 2),
            "clock": "utime+stime from /proc/PID/stat over a host-wall window"},
        "rss_after_boot_MiB": {**after_boot, "budget": f"<= {BUDGET_RSS_MIB} MiB VmRSS",
                               "met": after_boot["VmRSS_MiB"] <= BUDGET_RSS_MIB},
        "rss_after_commands_MiB": {**after_commands, "budget": f"<= {BUDGET_RSS_MIB} MiB VmRSS",
                                   "met": after_commands["VmRSS_MiB"] <= BUDGET_RSS_MIB,
                                   "commands": COMMANDS},
    })


if __name__ == "__main__":
    main()
