"""What the benchmarks share: statistics, the JSON they print, an in-process lab, a lab process driver.

Each ``bench/NAME.py`` prints one JSON object on stdout (progress goes to stderr)
and is run by ``make bench`` as ``python -m bench.NAME``. This module starts with
an underscore so ``make bench`` does not run it.

Clocks: "host wall" is ``time.perf_counter()`` (or ``time.time()`` where two
processes must agree); "guest TSC" is a figure the guest measured itself with
RDTSC and printed (Unicorn's RDTSC reads the host TSC; the hypervisor calibrates
its rate against ``perf_counter`` at lab start and hands it to the guest).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import statistics
import sys
import threading
import time
from typing import Any

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT_TIMEOUT = 30.0


def _busy_jiffies() -> int:
    """CPU time the whole machine spent busy (all cores), from /proc/stat, in clock ticks."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return user + nice + system + irq + softirq + steal


_START = (time.monotonic(), _busy_jiffies(), sum(os.times()[:2]))


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- statistics and output ---------------------------------------------------------------------------
def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile (with 10 samples: the second largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summary(values: list[float], digits: int = 2) -> dict[str, Any]:
    return {"n": len(values), "median": round(statistics.median(values), digits),
            "p90": round(p90(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "samples": [round(v, digits) for v in values]}


def figure(values: list[float], unit: str, clock: str, budget: float | None = None, kind: str = "max",
           digits: int = 2, **extra: Any) -> dict[str, Any]:
    """A measured figure. With a budget, `met` says whether the median is within it
    (``kind`` "max": at most the budget, "min": at least)."""
    out: dict[str, Any] = {"unit": unit, "clock": clock, **summary(values, digits)}
    if budget is not None:
        median = statistics.median(values)
        out["budget"] = f"{'<=' if kind == 'max' else '>='} {budget} {unit}"
        out["met"] = median <= budget if kind == "max" else median >= budget
        out["met_at_p90"] = p90(values) <= budget if kind == "max" else min(values) >= budget
    out.update(extra)
    return out


def machine() -> dict[str, Any]:
    import unicorn

    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "unicorn": unicorn.__version__, "kernel": platform.release()}


def source() -> dict[str, Any]:
    """Which hyperlab was measured: its commit, and any uncommitted change to core/, guests/ or web/."""
    import subprocess

    import hyperlab

    root = os.path.dirname(os.path.abspath(hyperlab.__file__))
    info: dict[str, Any] = {"path": root}
    try:
        git = ["git", "-C", root]
        info["commit"] = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, check=True).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "--", "core", "guests", "web"],
                                capture_output=True, text=True, check=True).stdout
        info["uncommitted"] = [line[3:] for line in status.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None  # not a git checkout (e.g. an exported snapshot)
    return info


def host_load() -> dict[str, float]:
    """How busy the machine was while this benchmark ran, in cores: this process, and everything else
    (other users' work, and the lab processes this benchmark started). Figures taken while `others`
    is well above 0 on this 2-core machine are not comparable."""
    t0, busy0, own0 = _START
    seconds = time.monotonic() - t0
    busy = (_busy_jiffies() - busy0) / os.sysconf("SC_CLK_TCK") / seconds
    own = (sum(os.times()[:2]) - own0) / seconds
    return {"seconds": round(seconds, 1), "busy_cores": round(busy, 2), "this_process_cores": round(own, 2),
            "others_cores": round(max(0.0, busy - own), 2)}


def emit(name: str, figures: dict[str, Any], **extra: Any) -> None:
    text = json.dumps({"bench": name, "machine": machine(), "source": source(), "host_load": host_load(),
                       "figures": figures, **extra}, indent=2)
    # Lists of numbers on one line each: the samples stay readable.
    print(re.sub(r"\[\s+([-0-9.eE,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text))


def clean(data: bytes) -> str:
    return _ANSI.sub(b"", data).replace(b"\r\n", b"\n").replace(b"\r", b"").decode("utf-8", "replace")


def parse(pattern: str, text: str) -> re.Match:
    m = re.search(pattern, text)
    if m is None:
        raise RuntimeError(f"unexpected guest output (no match for {pattern!r}):\n{text}")
    return m


# --- an in-process lab: what a lab process runs, in this process ----------------------------------------
class InProcessLab:
    """A lab (``hyperlab.core.lab.Lab``: hypervisor, scheduler, the children's disks in a temporary
    directory) in this process, with its console output timestamped. Partitions start when asked."""

    def __init__(self, partitions: list[dict] | None = None, design: str = "microkernel",
                 tsc_khz: int | None = None) -> None:
        from hyperlab.core.lab import DEFAULT_PARTITIONS, Lab

        settings = {"partitions": partitions or DEFAULT_PARTITIONS, "design": design, "tsc_khz": tsc_khz}
        self._cv = threading.Condition()
        self.lab = Lab(settings, self._on_message)
        self.hv = self.lab.hv
        self.scheduler = self.lab.scheduler
        self.out = {name: bytearray() for name in self.hv.partitions}
        self._arrivals: dict[str, list[tuple[int, float]]] = {name: [] for name in self.hv.partitions}
        self.scheduler.start()

    def _on_message(self, msg: tuple) -> None:
        if msg[0] == "console":
            self._on_console(msg[1], msg[2])

    def _on_console(self, name: str, data: bytes) -> None:
        now = time.perf_counter()  # when the lab hands the output on (end of the guest's time slice)
        with self._cv:
            self.out[name] += data
            self._arrivals[name].append((len(self.out[name]), now))
            self._cv.notify_all()

    def start(self, names: list[str] | None = None) -> float:
        """Start partitions (all by default) in one scheduler request, as a lab process does; returns t0."""
        parts = [self.hv.partitions[n] for n in (names or list(self.hv.partitions))]
        t0 = time.perf_counter()
        self.scheduler.call(lambda: [p.start() for p in parts])
        return t0

    def reboot(self, name: str) -> None:
        """Start a partition afresh (a new VP, so a new Unicorn instance) and wait for its prompt."""
        with self._cv:
            mark = len(self.out[name])
        self.start([name])
        self.wait_for(name, f"{name}$ ", mark)

    def wait_for(self, name: str, text: str, mark: int = 0,
                 timeout: float = PROMPT_TIMEOUT) -> tuple[int, float]:
        """(end offset, perf_counter time) at which `text` showed up in `name`'s output after `mark`."""
        needle = text.encode()
        deadline = time.monotonic() + timeout
        with self._cv:
            while (i := self.out[name].find(needle, mark)) < 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.5))
            else:
                end = i + len(needle)
                return end, next(t for n, t in self._arrivals[name] if n >= end)
        p = self.hv.partitions[name]
        raise RuntimeError(f"{name}: no {text!r} within {timeout:.0f} s (state {p.state.value}, {p.reason}); "
                           f"console ends with:\n{clean(bytes(self.out[name][-600:]))}")

    def type(self, name: str, line: str, timeout: float = PROMPT_TIMEOUT) -> tuple[str, float]:
        """Type a line into a partition's shell; returns (output up to the next prompt, wall seconds)."""
        prompt = f"{name}$ "
        with self._cv:
            mark = len(self.out[name])
        p = self.hv.partitions[name]
        t0 = time.perf_counter()
        self.scheduler.submit(lambda: p.console_input(line.encode() + b"\r"))
        end, t1 = self.wait_for(name, prompt, mark, timeout)
        return clean(bytes(self.out[name][mark:end])), t1 - t0

    def counters(self) -> dict[str, float]:
        return self.scheduler.call(self.hv.counters)

    def close(self) -> None:
        self.lab.close()


def boot_lab(**kwargs: Any) -> InProcessLab:
    """A three-partition lab (as a real lab process has), booted to its prompts and idle."""
    lab = InProcessLab(**kwargs)
    lab.start()
    for name in lab.hv.partitions:
        lab.wait_for(name, f"{name}$ ")
    return lab


# --- a real lab process (hyperlab.web.labs.LabHandle) ------------------------------------------------
POLL_SECONDS = 0.0005


def wait_console(handle: Any, name: str, text: str, mark: int = 0, timeout: float = PROMPT_TIMEOUT) -> float:
    """time.time() when `text` appeared in a lab process's console scrollback after `mark`.

    Polls the local scrollback only (no call into the lab), so waiting does not
    interrupt the lab's time slices.
    """
    needle = text.encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in handle.console_text(name)[mark:]:
            return time.time()
        if not handle.alive:
            break
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"{name}: no {text!r} within {timeout:.0f} s; console ends with:\n"
                       f"{clean(handle.console_text(name)[-600:])}")


def type_process(handle: Any, name: str, line: str) -> str:
    mark = len(handle.console_text(name))
    handle.send_console(name, line.encode() + b"\r")
    wait_console(handle, name, f"{name}$ ", mark)
    return clean(handle.console_text(name)[mark:])


def proc_status(pid: int) -> dict[str, int]:
    """/proc/PID/status memory lines, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.startswith(("Vm", "Rss")) and value.strip().endswith("kB"):
                out[key] = int(value.split()[0])
    return out


def proc_pss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_ticks(pid: int, tid: int | None = None) -> int:
    """utime + stime of a process (or one of its threads), in clock ticks."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def threads(pid: int) -> dict[int, str]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            out[int(tid)] = f.read().strip()
    return out
