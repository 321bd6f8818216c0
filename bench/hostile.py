"""Hostile typing: a lab process's memory while its consoles are flooded, and Ctrl-C through the flood.

Issue 7 found one WebSocket growing a lab process from 31 to 759 MiB in 20 s while `spin` ran, with
Ctrl-C unable to reach the guest. Here a real lab process (``LabHandle``, default partitions) runs
`spin` in child1 (VMBus console) and child2 (emulated UART), and each console gets typed bytes in
4 KiB messages (the server's WebSocket message cap) as fast as the pipe takes them, for
FLOOD_SECONDS; then a paused child1 gets 8 MiB more. Memory: VmRSS and VmHWM (``/proc/PID/status``)
before, after the floods. Ctrl-C: host wall time from sending it to the partition's next prompt.
Clock: host wall (``time.monotonic``). Last, in process, a child posts 200,000 GPADL_HEADERs: the
host memory they leave held (tracemalloc).
"""

from __future__ import annotations

import time

from bench._common import emit, log, proc_status, type_process, wait_console

FLOOD_SECONDS = 10.0
CHUNK = b"a" * 4096
PAUSED_FLOOD = 8 << 20
NAMES = ("root", "child1", "child2")


def rss(pid: int) -> dict[str, float]:
    status = proc_status(pid)
    return {"VmRSS_MiB": round(status["VmRSS"] / 1024, 1), "VmHWM_MiB": round(status["VmHWM"] / 1024, 1)}


def gpadl_flood(count: int = 200_000) -> dict:
    """Host memory a child can make the host hold in GPADLs: ``count`` GPADL_HEADER messages posted
    as its VMBus driver would (in process; tracemalloc before and after, the replies taken)."""
    import tracemalloc

    from hyperlab.core.hypervisor import Hypervisor
    from hyperlab.core.partition import PartitionConfig
    from hyperlab.core.vmbus import messages as m

    hv = Hypervisor([PartitionConfig("root", "root", image=b"\xf4\xeb\xfd"),
                     PartitionConfig("child1", image=b"\xf4\xeb\xfd")], tsc_khz=1_000_000)
    child = hv.partitions["child1"]
    child.start()
    server = child.vmbus
    server.post_message(m.RequestOffers().pack())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    refused = 0
    for handle in range(1, count + 1):
        header = m.GpadlHeader(child_relid=1 + handle % 5, gpadl=handle, ranges=(m.GpaRange(4096, 0, (0x400,)),))
        server.post_message(header.pack())
        refused += handle not in server.gpadls
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    child.turn_off()
    return {"gpadl_headers_posted": count, "refused": refused, "held": len(server.gpadls),
            "host_memory_held_KiB": round(held / 1024, 1), "clock": "tracemalloc (Python heap), in process",
            "before_the_fix": "~1.2 KiB per GPADL: 200,000 -> +235 MiB (issue 7)"}


def main() -> None:
    from hyperlab.web.labs import LabHandle

    handle = LabHandle("bench-hostile", {})
    try:
        handle.wait_ready()
        for name in NAMES:
            wait_console(handle, name, f"{name}$ ")
        pid = handle.process.pid
        before = rss(pid)
        for name in ("child1", "child2"):
            handle.send_console(name, b"spin 1000000\r")
        time.sleep(0.5)
        log(f"hostile: flooding child1 and child2 for {FLOOD_SECONDS:.0f} s while spin runs")
        sent = dict.fromkeys(("child1", "child2"), 0)
        end = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < end:
            for name in sent:
                handle.send_console(name, CHUNK)
                sent[name] += len(CHUNK)
        flooded = rss(pid)
        ctrl_c_ms = {}
        for name in ("child1", "child2"):
            mark = len(handle.console_text(name))
            t0 = time.monotonic()
            handle.send_console(name, b"\x03")
            wait_console(handle, name, f"{name}$ ", mark=mark)
            ctrl_c_ms[name] = round((time.monotonic() - t0) * 1000, 1)
        log("hostile: 8 MiB into a paused child1")
        handle.action("child1", "pause")
        for _ in range(PAUSED_FLOOD // len(CHUNK)):
            handle.send_console("child1", CHUNK)
        time.sleep(0.5)
        paused = rss(pid)
        dropped = handle.counters().get("child1.console.input_dropped", 0)
        handle.action("child1", "resume")
        handle.send_console("child1", b"\x03")
        type_process(handle, "child1", "echo alive")
        after = rss(pid)
    finally:
        handle.close()
    emit("hostile", {
        "console_flood_while_spin": {
            "bytes_typed": sent, "seconds": FLOOD_SECONDS, "rss_before_MiB": before, "rss_after_flood_MiB": flooded,
            "ctrl_c_to_prompt_ms": ctrl_c_ms, "clock": "host wall; memory from /proc/PID/status",
            "before_the_fixes": "31 -> 759 MiB in 20 s, Ctrl-C never arrived (issue 7); with the console VSP "
                                "bounded but one scheduler request per message: 33.6 -> 383 MiB in 10 s, Ctrl-C 15.5 s"},
        "paused_partition_flood": {
            "bytes_typed": PAUSED_FLOOD, "rss_MiB": paused, "dropped_bytes": dropped,
            "bound": "64 KiB per console waiting for the scheduler (core/typeahead.py) and in the console VSP"},
        "rss_at_end_MiB": after,
        "gpadl_flood": gpadl_flood(),
    })


if __name__ == "__main__":
    main()
