"""Micro-kernel, monolithic, hosted: where a child's devices run, what a fault stops, measured on real guest code."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestlab import GuestLab

from hyperlab.core.placement import ComponentError
from hyperlab.core.tcb import describe_components


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


# --- the hosted design (Virtual PC): no hypervisor, no VMBus, a VMM application per child ----------------
@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[GuestLab]:
    lab = GuestLab({"design": "hosted", "data_dir": str(tmp_path)})
    yield lab
    lab.close()


def test_hosted_shows_no_hypervisor_and_a_child_with_integration_services_finds_no_vmbus(hosted: GuestLab) -> None:
    boot = bytes(hosted.output["child1"]).decode()
    assert "no hypervisor detected" in boot
    assert "vmbus: Integration Services installed, but no Hyper-V interface; using the emulated UART and IDE" in boot
    assert 'disk: ide "hyperlab IDE disk"' in boot  # its emulated disk instead of storvsc
    assert "none detected (CPUID.1:ECX[31] is clear)" in hosted.type("root", "ver")  # not even the host sees one
    assert "none detected" in hosted.type("child1", "ver")
    assert "no hypervisor to ask" in hosted.type("root", "vm list")
    describe = hosted.call(lambda: hosted.partition("child1").describe())
    assert "vmbus" not in describe and describe["actions"].count("shut_down") == 0


def test_hosted_child_io_goes_through_the_host_kernel_to_its_vmm_application(hosted: GuestLab) -> None:
    hosted.call(lambda: setattr(hosted.hv.telemetry, "transitions", collections.deque(maxlen=200_000)))
    before = hosted.counters()
    hosted.type("child2", "dd write 4")
    after = hosted.counters()
    hops = [(t["from"], t["to"], t["reason"]) for t in hosted.call(lambda: hosted.hv.snapshot(200_000))["transitions"]
            if t["partition"] == "child2"]
    # One port access, in order: world switch into the host's kernel (the VMM driver), up to the VMM
    # application, the device model, an ioctl back down, the world switch back into the VM.
    path = [("child2/kernel", "root/kernel", "world_switch"), ("root/kernel", "root/user", "to_vmm"),
            ("root/user", "root/user", "device_model"), ("root/user", "root/kernel", "run_vm"),
            ("root/kernel", "child2/kernel", "world_switch")]
    assert any(hops[i:i + 5] == path for i in range(len(hops)))
    # A sector written: the VMM application's write to the disk file is a host system call.
    assert ("root/user", "root/kernel", "host_syscall:write") in hops
    assert ("root/kernel", "root/user", "syscall_return") in hops
    assert not any("hypervisor" in (a, b) for a, b, _ in hops)  # there is none
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert delta["child2.disk.sectors_written"] == 4
    assert delta["child2.disk.host_syscalls"] >= 4
    assert delta["child2.mode_switches.world"] == 2 * delta["child2.exits.io_port"]
    assert delta["root.vmm.requests"] == delta["child2.exits.io_port"]


def _per_access(lab: GuestLab, name: str) -> float:
    before = lab.counters()
    lab.type(name, "io 2000")
    after = lab.counters()
    return ((after[f"{name}.mode_switches"] - before.get(f"{name}.mode_switches", 0))
            / (after[f"{name}.exits.io_port"] - before[f"{name}.exits.io_port"]))


@pytest.mark.parametrize(("design", "switches"), [("monolithic", 2), ("microkernel", 6), ("hosted", 4)])
def test_mode_switches_per_port_access_follow_from_the_placement(design: str, switches: int) -> None:
    lab = GuestLab({"design": design})
    try:
        # exit + resume in the hypervisor; or + intercept to the root's kernel, up to the worker and back
        # down, hypercall, resume; or world switch, up to the VMM application, back down, world switch.
        assert _per_access(lab, "child2") == pytest.approx(switches, abs=0.05)
    finally:
        lab.close()


# --- faults: contained where the component runs, never the lab's scheduler ------------------------------
def _break_disk(lab: GuestLab, name: str) -> None:
    """A host-side bug under the IDE model: its disk's geometry becomes None, so the next access raises
    TypeError inside the device model (a real exception from the real code path)."""
    lab.call(lambda: setattr(lab.partition(name).disk, "sector_count", None))


def _states(lab: GuestLab) -> dict[str, str]:
    return lab.call(lambda: {n: p.state.value for n, p in lab.hv.partitions.items()})


def _wait_state(lab: GuestLab, name: str, state: str) -> None:
    end = time.monotonic() + 20
    while lab.state(name) != state:
        assert time.monotonic() < end, f"{name} is {lab.state(name)}, not {state}"
        time.sleep(0.01)


@pytest.mark.parametrize("design", ["microkernel", "monolithic", "hosted"])
def test_a_raising_device_model_never_stops_the_scheduler(tmp_path: Path, design: str) -> None:
    lab = GuestLab({"design": design, "data_dir": str(tmp_path)})
    try:
        _break_disk(lab, "child2")
        lab.send("child2", b"dd read 1\r")
        _wait_state(lab, "child2", "crashed")
        reason = lab.call(lambda: lab.partition("child2").reason)
        assert "child2.ide" in reason and "TypeError" in reason
        states = _states(lab)
        if design == "monolithic":  # the device model ran in the hypervisor: a panic stops everyone
            assert "hypervisor panic (purple screen)" in reason
            assert states == {"root": "crashed", "child1": "crashed", "child2": "crashed"}
            lab.call(lambda: lab.partition("root").act("start"))  # the lab itself goes on
            lab.wait_for("root", b"root$ ")
        else:  # in the child's worker process / VMM application: that child alone
            assert ("its worker process died" if design == "microkernel" else "its VMM application died") in reason
            assert states == {"root": "running", "child1": "running", "child2": "crashed"}
            assert "alive" in lab.type("child1", "echo alive")
    finally:
        lab.close()


BLAST = {  # (design, component) -> the partitions that stop
    ("microkernel", "child2.ide"): {"child2"},
    ("microkernel", "child2.worker"): {"child2"},
    ("microkernel", "child1.storvsp"): {"root", "child1", "child2"},  # a VSP fault is a root bugcheck
    ("microkernel", "root.kernel"): {"root", "child1", "child2"},     # the root is the host
    ("microkernel", "hypervisor"): {"root", "child1", "child2"},
    ("monolithic", "child2.ide"): {"root", "child1", "child2"},       # purple screen
    ("monolithic", "child1.storvsp"): {"root", "child1", "child2"},
    ("monolithic", "root.kernel"): {"root"},                          # the hypervisor owns the devices
    ("hosted", "child2.vmm"): {"child2"},
    ("hosted", "child2.ide"): {"child2"},
    ("hosted", "root.vmm_driver"): {"root", "child1", "child2"},
    ("hosted", "root.kernel"): {"root", "child1", "child2"},
}


@pytest.mark.parametrize(("design", "component"), sorted(BLAST))
def test_an_injected_fault_stops_what_the_design_says(tmp_path: Path, design: str, component: str) -> None:
    lab = GuestLab({"design": design, "data_dir": str(tmp_path)})
    try:
        lab.call(lambda: lab.hv.placement.inject(component))
        states = _states(lab)
        assert {n for n, s in states.items() if s == "crashed"} == BLAST[(design, component)]
        assert {s for s in states.values()} <= {"crashed", "running"}
        reason = lab.call(lambda: lab.partition(component.split(".")[0] if "." in component else "root").reason)
        assert component in reason and "InjectedFault" in reason
        if "child1" not in BLAST[(design, component)]:
            assert "alive" in lab.type("child1", "echo alive")
    finally:
        lab.close()


@pytest.mark.parametrize(("design", "component", "status"), [
    ("microkernel", "child2.vmm", 409), ("monolithic", "child2.worker", 409), ("hosted", "hypervisor", 409),
    ("hosted", "child1.storvsp", 409), ("microkernel", "root.shell", 409), ("microkernel", "child9.ide", 400),
    ("microkernel", "child2.gpu", 400), ("microkernel", "", 400)])
def test_a_fault_into_a_component_the_design_lacks_is_refused(design: str, component: str, status: int) -> None:
    lab = GuestLab({"design": design}, boot=False)
    try:
        with pytest.raises(ComponentError) as e:
            lab.call(lambda: lab.hv.placement.inject(component))
        assert e.value.status == status
    finally:
        lab.close()


def test_a_fault_into_code_that_is_not_running_is_refused() -> None:
    lab = GuestLab({"design": "microkernel"}, boot=False)  # every partition is off
    try:
        for name in ("child2.worker", "child1.storvsp", "root.kernel"):
            with pytest.raises(ComponentError, match="is not running") as e:
                lab.call(lambda name=name: lab.hv.placement.inject(name))
            assert e.value.status == 409
        assert _states(lab) == {"root": "off", "child1": "off", "child2": "off"}
    finally:
        lab.close()


def test_a_root_bugcheck_stops_every_partition_on_hyper_v_but_not_on_esx() -> None:
    for design, children in (("microkernel", "crashed"), ("monolithic", "running")):
        lab = GuestLab({"design": design})
        try:
            lab.send("root", b"crash kernel\r")
            _wait_state(lab, "root", "crashed")
            assert _states(lab) == {"root": "crashed", "child1": children, "child2": children}
            if children == "crashed":
                reason = lab.call(lambda lab=lab: lab.partition("child1").reason)
                assert "stopped with the root partition" in reason
        finally:
            lab.close()


# --- trusted code, measured from what the placement puts where --------------------------------------------
def test_trusted_code_follows_the_placement(tmp_path: Path) -> None:
    figures = {}
    for design in ("microkernel", "monolithic", "hosted"):
        lab = GuestLab({"design": design, "data_dir": str(tmp_path / design)}, boot=False)
        try:
            figures[design] = describe_components(lab.hv.placement)
        finally:
            lab.close()
    micro, mono, hosted = figures["microkernel"], figures["monolithic"], figures["hosted"]
    names = {d: {c["name"]: c["domain"] for c in f["components"]} for d, f in figures.items()}
    assert names["microkernel"]["child2.ide"] == "root_user" and names["monolithic"]["child2.ide"] == "hypervisor"
    assert names["hosted"]["child2.ide"] == "root_user" and names["hosted"]["child2.vmm"] == "root_user"
    assert names["microkernel"]["child1.storvsp"] == "root_kernel"
    assert "child2.worker" not in names["monolithic"] and "hypervisor" not in names["hosted"]
    assert "child1.storvsp" not in names["hosted"]  # no VMBus
    # The monolithic hypervisor carries the device models and VSPs the micro-kernel keeps in the root.
    assert mono["tcb"]["hypervisor"]["lines"] > 2 * micro["tcb"]["hypervisor"]["lines"] > 0
    assert micro["tcb"]["root_kernel"]["lines"] > mono["tcb"]["root_kernel"]["lines"]
    assert "hypervisor" not in hosted["tcb"]
    for f in figures.values():
        for c in f["components"]:
            assert c["lines"] > 0 and c["bytes"] > c["lines"], c
    surface = {s["name"]: s["domain"] for s in micro["attack_surface"]}
    assert surface["child1.storvsp"] == "root_kernel" and surface["child2.ide"] == "root_user"
    assert "root.uart" not in surface  # the root's own devices are no child's surface
    hosted_surface = {s["name"]: s["domain"] for s in hosted["attack_surface"]}
    assert hosted_surface["root.vmm_driver"] == "root_kernel"  # it takes every exit of every VM
    assert all(r["source"] for r in micro["tcb_reference"])


@pytest.mark.parametrize(("design", "typed_into"), [("microkernel", "child1"), ("hosted", "child2")])
def test_a_bug_under_the_vps_exits_is_the_hypervisors_fault_not_the_schedulers(design: str, typed_into: str) -> None:
    lab = GuestLab({"design": design})
    try:
        # A host-side bug on the exit path (a real TypeError when called): micro-kernel, the hypercall
        # dispatch child1's console signal goes through; hosted, the VMM driver's accounting of child2's exit.
        target, name = (lab.hv, "hypercall") if design == "microkernel" else (lab.partition("child2"), "count_exit")
        lab.call(lambda: setattr(target, name, None))
        lab.send(typed_into, b"x")
        _wait_state(lab, typed_into, "crashed")
        assert _states(lab) == {"root": "crashed", "child1": "crashed", "child2": "crashed"}
        reason = lab.call(lambda: lab.partition(typed_into).reason)
        where = "hypervisor panic: hypervisor" if design == "microkernel" else "host crashed: root.vmm_driver"
        assert where in reason and "TypeError" in reason, reason
        lab.call(lambda: lab.partition("root").act("start"))  # the scheduler still runs the lab
        lab.wait_for("root", b"root$ ")
    finally:
        lab.close()
