"""`hyperlab run`: a fresh lab in its own process, driven from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

CLI = [sys.executable, "-m", "hyperlab.web.cli"]


def hyperlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_run_types_into_child1_and_reports_json() -> None:
    res = hyperlab("run", "--type", "ver", "--type", "syscalls 1000", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(data) == {"transcript", "boot_ms", "partitions", "reasons", "counters", "design", "components", "tcb"}
    assert "child1$ ver" in data["transcript"]
    assert 'vendor "Microsoft Hv"' in data["transcript"]
    assert "1000 system calls: " in data["transcript"]
    assert data["partitions"] == {"root": "running", "child1": "running", "child2": "running"}
    assert data["boot_ms"] > 0
    assert data["counters"]["child1.syscalls"] >= 1000
    assert data["counters"]["child1.exits.io_port"] > 0


def test_run_in_the_root_partition_as_text() -> None:
    res = hyperlab("run", "--partition", "root", "--type", "vm list")
    assert res.returncode == 0, res.stderr
    assert "root$ vm list" in res.stdout
    assert "child1" in res.stdout and "child2" in res.stdout


def test_run_stops_typing_when_the_partition_crashes() -> None:
    res = hyperlab("run", "--type", "crash kernel", "--type", "echo never typed", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert "*** STOP: 0x00000050" in data["transcript"]
    assert "never typed" not in data["transcript"]
    assert data["partitions"]["child1"] == "crashed"
    assert data["partitions"]["child2"] == "running"


def test_run_hosted_with_a_fault_reports_design_components_and_trusted_code() -> None:
    res = hyperlab("run", "--design", "hosted", "--partition", "child2", "--type", "ver", "--fault", "child2.vmm",
                   "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["design"] == "hosted"
    assert "hypervisor: none detected" in data["transcript"]
    assert data["partitions"] == {"root": "running", "child1": "running", "child2": "crashed"}
    assert "its VMM application died: child2.vmm" in data["reasons"]["child2"]
    components = {c["name"]: c for c in data["components"]}
    assert set(components["child2.vmm"]) == {"name", "domain", "lines", "bytes"}
    assert components["child2.vmm"]["domain"] == "root_user" and components["child2.ide"]["domain"] == "root_user"
    assert "hypervisor" not in components and "hypervisor" not in data["tcb"]
    assert data["tcb"]["root_kernel"]["lines"] > 0 and data["tcb"]["root_kernel"]["bytes"] > 0


def test_run_refuses_a_fault_the_design_does_not_have() -> None:
    res = hyperlab("run", "--fault", "child2.vmm")
    assert res.returncode == 1
    assert "micro-kernel design has no" in res.stderr


def test_run_rejects_an_unknown_partition_clearly() -> None:
    res = hyperlab("run", "--partition", "child9", "--type", "ver")
    assert res.returncode != 0
    assert "no partition named 'child9'" in res.stderr
