"""Micro-kernel vs monolithic: where a child's emulated devices run, measured on real guest code."""

from __future__ import annotations

import time

from guestlab import GuestLab


def test_microkernel_serves_child_port_io_in_the_roots_worker() -> None:
    lab = GuestLab({"design": "microkernel"})
    try:
        before = lab.counters()
        out = lab.type("child2", "io 100")
        assert "100 port reads" in out
        after = lab.counters()
        served = after["child2.intercepts.served_by_root"] - before["child2.intercepts.served_by_root"]
        assert served >= 100  # every UART access of the command, plus its echo and output
        assert after["root.worker.requests"] - before["root.worker.requests"] >= served
        # The root's own console is its hardware: no worker in between.
        assert lab.counters().get("root.intercepts.served_by_root", 0) == 0
        hops = {(t["from"], t["to"], t["reason"]) for t in lab.call(lambda: lab.hv.snapshot(256))["transitions"]}
        assert ("hypervisor", "root/kernel", "intercept_message") in hops
        assert ("root/kernel", "root/user", "to_worker") in hops
        assert ("root/user", "root/kernel", "complete_intercept") in hops
    finally:
        lab.close()


def test_pausing_the_root_stalls_a_childs_emulated_io() -> None:
    lab = GuestLab({"design": "microkernel"})
    try:
        lab.call(lambda: lab.partition("root").act("pause"))
        mark = lab.send("child2", b"echo stalled\r")
        time.sleep(0.3)
        assert b"stalled" not in bytes(lab.output["child2"])[mark:]  # not even the echo of the keys
        assert lab.call(lambda: lab.partition("child2").waiting_io) is not None
        lab.call(lambda: lab.partition("root").act("resume"))
        lab.wait_for("child2", b"stalled\r\nchild2$ ", since=mark)
    finally:
        lab.close()


def test_monolithic_serves_port_io_inside_the_hypervisor() -> None:
    lab = GuestLab({"design": "monolithic"})
    try:
        lab.call(lambda: lab.partition("root").act("pause"))
        assert "unaffected" in lab.type("child2", "echo unaffected")  # no root in the path
        counters = lab.counters()
        assert counters.get("root.worker.requests", 0) == 0
        assert counters["child2.exits.io_port"] > 0
    finally:
        lab.close()
