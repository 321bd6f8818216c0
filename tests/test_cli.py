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
    assert set(data) == {"transcript", "boot_ms", "partitions", "counters"}
    assert "child1$ ver" in data["transcript"]
    assert 'vendor "Microsoft Hv"' in data["transcript"]
    assert "1000 system calls in" in data["transcript"]
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


def test_run_rejects_an_unknown_partition_clearly() -> None:
    res = hyperlab("run", "--partition", "child9", "--type", "ver")
    assert res.returncode != 0
    assert "no partition named 'child9'" in res.stderr
