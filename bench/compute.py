"""Compute-bound guest code vs bare Unicorn running the same loop, in the same run.

The loop is ``spin_loop(n, x)`` of ``guests/user/spin.c`` (an xorshift, no memory
access, no system call). The very same machine code runs twice:

* bare: a fresh ``Uc(UC_ARCH_X86, UC_MODE_64)`` with the spin program's flat image
  (built from ``guests/`` into a temporary directory) mapped at 0x40000000, a stack,
  RDI = n, RSI = seed, a return address pointing at a HLT; ``emu_start`` at
  ``spin_loop``. No hooks, no paging, no preemption. Clock: host wall
  (``perf_counter`` around ``emu_start``).
* guest: ``spin M`` typed into child1 of an in-process three-partition lab (all
  booted and idle): ring 3, paging on, the core's hooks installed, preempted by the
  slice watchdog every 10 ms. Clock: guest TSC (the ms the guest prints), and also
  host wall around the whole command (spawn, echo, printing included).

Before measuring, the benchmark checks that the lab's kernel image carries exactly
the spin program built here, and that both runs return the same value.
Rounds interleave the two (alternating which goes first), and each round uses a
fresh Unicorn instance on both sides (a new ``Uc`` for bare, child1 rebooted for
the guest): on this machine Unicorn's translated loop runs in a fast or a slow
mode that is drawn per instance (see docs/performance.md), so both sides draw
equally often. The ratio is guest throughput / bare throughput.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from unicorn import UC_ARCH_X86, UC_MODE_64, Uc
from unicorn import x86_const as X

from bench._common import boot_lab, emit, figure, log, parse

MILLIONS = 100
ROUNDS = 10
SLOW = 250  # M iterations/s: below this a run drew Unicorn's slow mode (~140 vs ~455 here)
BUDGET_RATIO = 0.7
SEED = 88172645463325252  # as in spin.c
USER_BASE = 0x40000000
STACK_TOP = 0x7FFF0000


def build_spin(out: Path) -> tuple[bytes, int]:
    """Build spin.bin/spin.elf from guests/ into `out`; returns (flat image, spin_loop address)."""
    import hyperlab

    guests = Path(hyperlab.__file__).resolve().parent / "guests"  # the tree whose core/ is measured
    (out / "user").mkdir(parents=True, exist_ok=True)
    subprocess.run(["make", "-s", "-C", str(guests), f"B={out}", f"{out}/spin.bin"], check=True,
                   stdout=subprocess.DEVNULL)
    symbols = subprocess.run(["nm", str(out / "spin.elf")], check=True, capture_output=True, text=True).stdout
    addr = next(int(line.split()[0], 16) for line in symbols.splitlines() if line.endswith(" spin_loop"))
    return (out / "spin.bin").read_bytes(), addr


def bare_run(image: bytes, entry: int, n: int) -> tuple[float, int]:
    """Seconds for spin_loop(n, SEED) on a fresh bare Unicorn, and its return value."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    size = (len(image) + 0xFFF) & ~0xFFF
    uc.mem_map(USER_BASE, size + 0x1000)
    uc.mem_write(USER_BASE, image)
    hlt = USER_BASE + size
    uc.mem_write(hlt, b"\xf4")
    uc.mem_map(STACK_TOP - 0x10000, 0x10000)
    rsp = STACK_TOP - 8
    uc.mem_write(rsp, hlt.to_bytes(8, "little"))  # spin_loop's `ret` lands on the HLT
    uc.reg_write(X.UC_X86_REG_RSP, rsp)
    uc.reg_write(X.UC_X86_REG_RDI, n)
    uc.reg_write(X.UC_X86_REG_RSI, SEED)
    t0 = time.perf_counter()
    uc.emu_start(entry, hlt)
    seconds = time.perf_counter() - t0
    if uc.reg_read(X.UC_X86_REG_RIP) != hlt:
        raise RuntimeError(f"bare run stopped at {uc.reg_read(X.UC_X86_REG_RIP):#x}, not at the HLT")
    return seconds, uc.reg_read(X.UC_X86_REG_RAX)


def guest_run(lab, millions: int) -> tuple[float, float, int]:
    """`spin M` in child1: (guest-TSC seconds, host-wall seconds of the command, low byte of the result)."""
    text, wall = lab.type("child1", f"spin {millions}")
    m = parse(r"spin: (\d+) iterations in (\d+) ms \(\d+ M iterations/s\) \[([0-9a-f]+)\]", text)
    if int(m.group(1)) != millions * 1_000_000:
        raise RuntimeError(f"guest ran {m.group(1)} iterations, not {millions} million")
    return int(m.group(2)) / 1000, wall, int(m.group(3), 16)


def main() -> None:
    n = MILLIONS * 1_000_000
    with tempfile.TemporaryDirectory(prefix="hyperlab-bench-") as tmp:
        log("compute: building the spin program from guests/")
        image, entry = build_spin(Path(tmp))
    log("compute: booting an in-process three-partition lab")
    lab = boot_lab()
    try:
        if image not in lab.hv.image:
            raise SystemExit("compute: core/images/kernel.bin does not carry the spin program built from "
                             "guests/ (stale image?): run `make guests`, or this compares different code")
        bare, guest, wall, ratios = [], [], [], []
        for r in range(ROUNDS):
            lab.reboot("child1")  # a fresh Unicorn instance on both sides, every round
            for which in (("bare", "guest") if r % 2 == 0 else ("guest", "bare")):
                if which == "bare":
                    seconds, value = bare_run(image, entry, n)
                    bare.append(MILLIONS / seconds)
                    bare_value = value & 0xFF
                else:
                    g_seconds, w_seconds, guest_value = guest_run(lab, MILLIONS)
                    guest.append(MILLIONS / g_seconds)
                    wall.append(MILLIONS / w_seconds)
            if bare_value != guest_value:
                raise RuntimeError(f"bare and guest loops disagree: {bare_value:#x} vs {guest_value:#x}")
            ratios.append(guest[-1] / bare[-1])
            log(f"  round {r + 1}/{ROUNDS}: bare {bare[-1]:.0f}, guest {guest[-1]:.0f} M iterations/s")
    finally:
        lab.close()
    ratio = statistics.median(guest) / statistics.median(bare)
    emit("compute", {
        "bare_unicorn_M_iter_per_s": figure(bare, "M iterations/s", "host wall around emu_start",
                                            digits=1, slow_runs=sum(v < SLOW for v in bare)),
        "guest_M_iter_per_s": figure(guest, "M iterations/s", "guest TSC (printed by spin)", digits=1,
                                     slow_runs=sum(v < SLOW for v in guest)),
        "guest_wall_M_iter_per_s": figure(wall, "M iterations/s", "host wall around the whole command",
                                          digits=1),
        "guest_vs_bare_ratio": {
            "value": round(ratio, 3), "budget": f">= {BUDGET_RATIO}", "met": ratio >= BUDGET_RATIO,
            "how": "median guest throughput (guest TSC) / median bare throughput",
            "per_round": figure(ratios, "x", "guest/bare within one round", digits=3),
            "peak": round(max(guest) / max(bare), 3),
            "wall_clock": round(statistics.median(wall) / statistics.median(bare), 3),
        },
    }, iterations=n, rounds=ROUNDS, spin_loop=hex(entry),
        slow_mode=f"runs below {SLOW} M iterations/s: Unicorn's slow mode, see docs/performance.md")


if __name__ == "__main__":
    main()
