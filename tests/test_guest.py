"""The guest kernel and shell on the real hypervisor core: system calls, faults, hypercalls, bugchecks."""

from __future__ import annotations

import re

import pytest
from guestlab import GuestLab


@pytest.fixture(scope="module")
def lab():
    lab = GuestLab()
    yield lab
    lab.close()


def test_each_partition_boots_to_its_shell(lab: GuestLab) -> None:
    for name in ("root", "child1", "child2"):
        assert f"hyperlab kernel 0.1 (x86-64) on partition {name}" in lab.wait_for(name, b"$ ")
        assert lab.state(name) == "running"


def test_help_lists_the_commands(lab: GuestLab) -> None:
    out = lab.type("child1", "help")
    for command in ("help", "ver", "ps", "echo", "uptime", "syscalls N", "spin N", "crash user", "crash kernel",
                    "vm list", "vm start NAME", "vm stop NAME"):
        assert command in out


def test_ver_detects_the_hypervisor_and_the_role_through_cpuid(lab: GuestLab) -> None:
    child = lab.type("child1", "ver")
    assert 'vendor "Microsoft Hv", interface "Hv#1"' in child
    assert "partition:  child1, id 2, role child" in child
    root = lab.type("root", "ver")
    assert "role root (has the CreatePartitions privilege)" in root


def test_echo_and_ps_run_in_user_processes(lab: GuestLab) -> None:
    assert "hello partitions" in lab.type("child1", "echo hello partitions")
    ps = lab.type("child1", "ps")
    assert re.search(r"\b1\s+waiting\s+\d+ ms\s+sh", ps)
    assert re.search(r"\b\d+\s+running\s+\d+ ms\s+ps", ps)


def test_system_calls_are_counted_exactly(lab: GuestLab) -> None:
    before = lab.counters()["child1.syscalls"]
    out = lab.type("child1", "syscalls 5000")
    assert re.search(r"5000 system calls: \d+ ns per call\b.*\r\n"
                     r"  median of 100 batches of 50; fastest \d+, slowest \d+ ns per call; \d+ us in all", out)
    after = lab.counters()["child1.syscalls"]
    # 5000 getpid calls, plus the shell's own: tsckhz, the read()s of the typed line, and writes.
    assert 5000 <= after - before <= 5000 + 40


def test_time_slices_of_another_partition_are_not_counted_as_the_guests(lab: GuestLab) -> None:
    """child2 spinning takes every other time slice. The TSC keeps counting meanwhile; the hypervisor
    tells child1's kernel how long its VP was kept from running (steal time, core/steal.py), and
    `syscalls` leaves that out and says so."""
    steal = lab.counters().get("child1.vp.steal_us", 0)
    lab.wait_for("child2", b"spin 100000\r\n", lab.send("child2", b"spin 100000\r"))
    try:
        out = lab.type("child1", "syscalls 300000", timeout=120)
    finally:
        lab.wait_for("child2", b"child2$ ", lab.send("child2", b"\x03"))
    m = re.search(r"300000 system calls: \d+ ns per call.*\r\n.*; (\d+) us in all\r\n"
                  r"  \((\d+) us more passed while child1's VP was not running", out)
    assert m, out
    stolen = lab.counters()["child1.vp.steal_us"] - steal
    assert 0 < int(m.group(2)) <= stolen + 1  # the guest's account is the hypervisor's, within the command


def test_user_page_fault_kills_only_that_process_with_exact_cr2_and_error_code(lab: GuestLab) -> None:
    faults = lab.counters().get("child1.faults.page", 0)
    out = lab.type("child1", "crash user")
    # The guest prints the frame the core pushed: CR2 0 and error code 4 (user-mode read, page not present).
    assert "killed by page fault (#PF)" in out
    assert "[cr2 0x0000000000000000, error code 4]" in out
    assert "read of 0x0000000000000000 (page not present, user mode)" in out
    assert lab.counters()["child1.faults.page"] == faults + 1
    assert "still here" in lab.type("child1", "echo still here")  # the shell survived
    assert lab.state("child1") == "running"


def test_ring3_port_io_raises_general_protection(lab: GuestLab) -> None:
    out = lab.type("child1", "crash user io")
    assert "killed by general protection fault (#GP)" in out
    assert "(error code 0)" in out


def test_ring3_privileged_instruction_and_divide_error(lab: GuestLab) -> None:
    assert "killed by general protection fault (#GP)" in lab.type("child1", "crash user priv")
    assert "killed by divide error (#DE)" in lab.type("child1", "crash user div")


def test_repeated_faults_stay_single_faults(lab: GuestLab) -> None:
    """Unicorn never clears QEMU's in-flight exception: without the core's fix the second fault
    would arrive as a double fault and the third as a triple fault (a dead partition)."""
    before = lab.counters()
    for _ in range(4):
        assert "killed by page fault (#PF)" in lab.type("child1", "crash user")
        assert "killed by general protection fault (#GP)" in lab.type("child1", "crash user priv")
    after = lab.counters()
    assert after["child1.faults.page"] - before.get("child1.faults.page", 0) == 4
    assert after.get("child1.faults.double", 0) == before.get("child1.faults.double", 0)
    assert lab.state("child1") == "running"


def test_a_child_is_refused_partition_management(lab: GuestLab) -> None:
    denied = lab.counters().get("child1.hypercalls.denied", 0)
    out = lab.type("child1", "vm list")
    assert "access denied (HV_STATUS_ACCESS_DENIED)" in out
    assert lab.counters()["child1.hypercalls.denied"] == denied + 1


def test_root_manages_children_with_hypercalls(lab: GuestLab) -> None:
    listing = lab.type("root", "vm list")
    assert re.search(r"2\s+child1\s+running", listing)
    assert re.search(r"3\s+child2\s+running", listing)
    assert "child2 turned off" in lab.type("root", "vm stop child2")
    assert lab.state("child2") == "off"
    assert re.search(r"3\s+child2\s+off", lab.type("root", "vm list"))
    mark = len(lab.output.get("child2", b""))
    assert "child2 starting" in lab.type("root", "vm start child2")
    lab.wait_for("child2", b"child2$ ", since=mark)
    assert lab.state("child2") == "running"


def test_runaway_loop_is_preempted_and_stopped_with_ctrl_c(lab: GuestLab) -> None:
    preempts = lab.counters().get("child1.exits.preempt", 0)
    lab.send("child1", b"spin 100000\r")  # 10^11 iterations: minutes of work
    # The other partitions still answer while child1 spins.
    assert "still responsive" in lab.type("child2", "echo still responsive")
    assert "root too" in lab.type("root", "echo root too")
    assert lab.counters()["child1.exits.preempt"] > preempts
    mark = lab.send("child1", b"\x03")
    assert "^C" in lab.wait_for("child1", b"child1$ ", since=mark)


def test_kernel_crash_bugchecks_only_that_partition(lab: GuestLab) -> None:
    out = lab.type("child2", "crash kernel", expect=b"Partition: child2")
    assert "PAGE_FAULT_IN_NONPAGED_AREA" in out
    assert "*** STOP: 0x00000050" in out
    assert lab.state("child2") == "crashed"
    reason = lab.call(lambda: lab.partition("child2").reason)
    assert reason.startswith("bugcheck") and "page fault in kernel mode" in reason
    assert "alive" in lab.type("child1", "echo alive")
    assert "alive" in lab.type("root", "echo alive")
    # A crashed partition can be started again.
    lab.call(lambda: lab.partition("child2").act("reset"))
    lab.wait_for("child2", b"child2$ ", since=len(out))
    assert lab.state("child2") == "running"


def test_a_long_pasted_line_loses_nothing_that_follows(lab: GuestLab) -> None:
    """Input beyond the kernel's buffer waits in the UART FIFO instead of being dropped."""
    long_line = "echo " + "y" * 600
    mark = lab.send("child1", (long_line + "\recho after the paste\r").encode())
    out = lab.wait_for("child1", b"after the paste\r\nchild1$ ", since=mark)
    assert "\n" + "y" * 600 + "\r\n" in out  # the whole line ran (the shell reads up to 1023 characters)
