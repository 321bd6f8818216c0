"""The hypervisor core with small hand-made guests: what a misbehaving guest can and cannot do."""

from __future__ import annotations

import struct
import time

from guestlab import GuestLab
from unicorn.x86_const import UC_X86_REG_RAX

from hyperlab.core.cpu import check_context_layout
from hyperlab.core.hypervisor import Hypervisor
from hyperlab.core.partition import PartitionConfig
from hyperlab.core.scheduler import Scheduler

HLT = b"\xf4\xeb\xfd"  # hlt; jmp back to it: an idle loop, as real kernels halt


def out_port(port: int, value: int) -> bytes:
    """mov dx, port; mov al, value; out dx, al"""
    return b"\x66\xba" + struct.pack("<H", port) + b"\xb0" + bytes([value]) + b"\xee"


def lab_with(image: bytes) -> GuestLab:
    """root runs our kernel; child1 runs `image` at 0x100000 (ring 0, paging off, no IDT)."""
    return GuestLab({"partitions": [{"name": "root", "role": "root"},
                                    {"name": "child1", "role": "child", "image": image}]}, boot=False)


def start(lab: GuestLab, name: str) -> None:
    lab.call(lambda: lab.partition(name).start())


def wait_halted(lab: GuestLab, name: str, timeout: float = 10) -> None:
    """Until the partition's VP sleeps in HLT (the hand-made guests end in an idle loop)."""
    end = time.monotonic() + timeout
    while not lab.call(lambda: lab.partition(name).halted):
        assert time.monotonic() < end, f"{name} never halted"
        time.sleep(0.005)


def wait_state(lab: GuestLab, name: str, state: str, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while lab.state(name) != state:
        assert time.monotonic() < end, f"{name} is {lab.state(name)}, expected {state}"
        time.sleep(0.005)


def test_the_installed_unicorn_has_the_context_layout_the_core_patches() -> None:
    check_context_layout()  # raises if unicorn is not 2.1.4


def test_cpuid_presents_hyperv_and_privileges_by_role() -> None:
    hv = Hypervisor([PartitionConfig("root", "root"), PartitionConfig("child1")], tsc_khz=1_000_000)
    root, child = hv.partitions["root"], hv.partitions["child1"]
    assert hv.cpuid(child, 1, 0)[2] & (1 << 31)
    max_leaf, *vendor = hv.cpuid(child, 0x40000000, 0)
    assert max_leaf >= 0x40000005
    assert b"".join(struct.pack("<I", r) for r in vendor) == b"Microsoft Hv"
    assert struct.pack("<I", hv.cpuid(child, 0x40000001, 0)[0]) == b"Hv#1"
    assert hv.cpuid(root, 0x40000003, 0)[1] & 1  # CreatePartitions: root only
    assert not hv.cpuid(child, 0x40000003, 0)[1] & 1
    assert hv.cpuid(child, 0x40000003, 0)[1] & (1 << 4)  # PostMessages


def test_triple_fault_crashes_only_that_partition() -> None:
    lab = lab_with(b"\x0f\x0b")  # ud2 with no IDT: #UD -> #GP -> #DF -> triple fault
    try:
        start(lab, "root")
        lab.wait_for("root", b"root$ ")
        start(lab, "child1")
        wait_state(lab, "child1", "crashed")
        assert "triple fault" in lab.call(lambda: lab.partition("child1").reason)
        assert "ok" in lab.type("root", "echo ok")
    finally:
        lab.close()


def test_garbage_port_io_is_ignored_with_a_reason() -> None:
    image = out_port(0x1234, 0x55) + out_port(0xCF8, 0xFF) + b"\x66\xba\x99\x99\xec" + HLT  # ... in al, dx
    lab = lab_with(image)
    try:
        start(lab, "child1")
        wait_halted(lab, "child1")
        notes = lab.call(lambda: list(lab.hv.notes))
        assert "child1: out to port 0x1234 ignored: no device there" in notes
        assert "child1: in to port 0x9999 ignored: no device there" in notes
        assert lab.counters()["child1.io.unclaimed"] == 3
        assert lab.state("child1") == "running"
        vp = lab.call(lambda: lab.partition("child1").vp)
        assert lab.call(lambda: vp.reg(UC_X86_REG_RAX) & 0xFF) == 0xFF  # AL: nothing on the bus reads as all ones
    finally:
        lab.close()


def test_hypercall_with_input_outside_guest_memory_is_refused() -> None:
    # mov ecx, 0x46 (HvCallGetPartitionId); mov r8, 0xfffffff0 (beyond RAM); vmcall; hlt
    image = b"\xb9\x46\x00\x00\x00" + b"\x49\xb8" + struct.pack("<Q", 0xFFFF_FFF0) + b"\x0f\x01\xc1" + HLT
    lab = lab_with(image)
    try:
        start(lab, "child1")
        wait_halted(lab, "child1")
        vp = lab.call(lambda: lab.partition("child1").vp)
        assert lab.call(lambda: vp.reg(UC_X86_REG_RAX)) == 0x5  # HV_STATUS_INVALID_PARAMETER
        assert lab.state("child1") == "running"
    finally:
        lab.close()


def test_kernel_mode_hang_with_interrupts_off_cannot_stall_the_lab() -> None:
    lab = lab_with(b"\xfa\xeb\xfe")  # cli; jmp $
    try:
        start(lab, "root")
        lab.wait_for("root", b"root$ ")
        start(lab, "child1")
        for i in range(3):
            assert f"tick {i}" in lab.type("root", f"echo tick {i}")
        assert lab.counters()["child1.exits.preempt"] >= 1
    finally:
        lab.close()


def test_an_idle_lab_runs_no_time_slices() -> None:
    lab = GuestLab()
    try:
        time.sleep(0.1)
        before = lab.counters()
        assert all(lab.call(lambda: [p.halted for p in lab.hv.partitions.values()]))
        time.sleep(0.5)
        after = lab.counters()
        for name in ("root", "child1", "child2"):
            assert after[f"{name}.vp.slices"] == before[f"{name}.vp.slices"], name
    finally:
        lab.close()


def test_scheduler_stops_cleanly() -> None:
    hv = Hypervisor([PartitionConfig("root", "root")], tsc_khz=1_000_000)
    sched = Scheduler(hv, lambda name, data: None)
    sched.start()
    sched.stop()
    assert not sched._thread.is_alive()
