"""The guest's side of VMBus on the real core: child1 (Integration Services installed) boots onto
VMBus -- synthetic disk, synthetic console, heartbeat, time sync, shutdown -- while child2 keeps the
emulated UART and IDE; and a host that is silent or hostile never hangs or crashes the guest kernel.
"""

from __future__ import annotations

import re
import struct
import time
from datetime import UTC, datetime

import pytest
from guestlab import GuestLab

BOOT_VMBUS = "vmbus: connected (VMBus 4.0), 5 offers, 5 channels open"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = GuestLab({"data_dir": str(tmp_path_factory.mktemp("disks"))})
    yield lab
    lab.close()


def restart(lab: GuestLab, name: str, timeout: float = 30.0) -> str:
    mark = len(lab.output.get(name, b""))
    lab.call(lambda: lab.partition(name).reset())
    return lab.wait_for(name, lab.prompt(name), mark, timeout=timeout)


def channel_row(vmbus_output: str, device: str) -> list[str]:
    for line in vmbus_output.splitlines():
        fields = line.split()
        if len(fields) == 9 and fields[1] == device:
            return fields
    raise AssertionError(f"no row for {device} in:\n{vmbus_output}")


def test_child1_boots_onto_vmbus_and_child2_stays_emulated(lab: GuestLab) -> None:
    child1 = lab.wait_for("child1", b"$ ")
    assert BOOT_VMBUS in child1
    assert "vconsole: the console continues on VMBus channel 2" in child1
    assert 'disk: storvsc "Msft Virtual Disk"' in child1
    child2 = lab.wait_for("child2", b"$ ")
    assert "vmbus" not in child2
    assert 'disk: ide "hyperlab IDE disk"' in child2


def test_vmbus_command_lists_the_open_channels(lab: GuestLab) -> None:
    out = lab.type("child1", "vmbus")
    assert "VMBus 4.0 connected: SynIC SINT2 -> vector 0x30" in out
    for relid, device in enumerate(("storage", "console", "heartbeat", "shutdown", "timesync"), start=1):
        row = channel_row(out, device)
        assert row[0] == str(relid) and row[2] == "open"
    assert "VMBus not in use: Integration Services are not installed" in lab.type("child2", "vmbus")


def test_date_shows_the_host_time_after_time_sync(lab: GuestLab) -> None:
    out = lab.type("child1", "date")
    m = re.search(r"(\w{3}) (\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) UTC (\d{4})", out)
    assert m, out
    shown = datetime.strptime(" ".join(m.groups()), "%a %b %d %H %M %S %Y").replace(tzinfo=UTC)
    assert abs((shown - datetime.now(UTC)).total_seconds()) < 5
    assert "date: clock not synced" in lab.type("child2", "date")


def test_storvsc_moves_the_data_of_dd_and_files(lab: GuestLab) -> None:
    before = channel_row(lab.type("child1", "vmbus"), "storage")
    assert re.search(r"dd: wrote 1024 sectors \(524288 bytes\) in \d+ us", lab.type("child1", "dd write 1024"))
    # 8 requests of 64 KiB in flight at once: the first found the ring empty and signalled, the rest did not.
    assert int(channel_row(lab.type("child1", "vmbus"), "storage")[8]) - int(before[8]) >= 7
    assert re.search(r"dd: read 1024 sectors \(524288 bytes\) in \d+ us", lab.type("child1", "dd read 1024"))
    lab.type("child1", "write VMBUS.TXT written through storvsc")
    assert "written through storvsc" in lab.type("child1", "cat VMBUS.TXT")
    after = channel_row(lab.type("child1", "vmbus"), "storage")
    assert int(after[5]) - int(before[5]) >= 16  # 2 x 8 requests of 128 sectors, plus the file's
    counters = lab.counters()
    assert counters["child1.disk.sectors_written"] >= 1024 and counters["child1.disk.sectors_read"] >= 1024
    assert counters.get("child1.exits.io_port", 0) < 2000  # no IDE: the exits are the boot messages'


def test_output_written_while_the_host_is_busy_goes_without_a_signal(lab: GuestLab) -> None:
    before = lab.counters().get("child1.vmbus.signals_suppressed", 0)
    lab.type("child1", "help")  # more than one 1 KiB packet in one write()
    assert lab.counters()["child1.vmbus.signals_suppressed"] > before


def test_ctrl_c_and_a_long_paste_through_the_synthetic_console(lab: GuestLab) -> None:
    mark = lab.send("child1", b"spin 100000\r")
    lab.wait_for("child1", b"spin 100000", mark)
    time.sleep(0.3)
    lab.send("child1", b"\x03")
    assert "^C" in lab.wait_for("child1", b"child1$ ", mark)
    line = "echo " + "p" * 200
    mark = lab.send("child1", ((line + "\r") * 10).encode())
    end = time.monotonic() + 20
    while time.monotonic() < end and bytes(lab.output["child1"])[mark:].count(b"p" * 200 + b"\r\n") < 20:
        time.sleep(0.05)
    assert bytes(lab.output["child1"])[mark:].count(b"p" * 200 + b"\r\n") == 20  # 10 echoed, 10 printed


def test_a_paste_bigger_than_the_ring_arrives_whole_and_in_order(lab: GuestLab) -> None:
    """48 KiB of typing against a 32 KiB inbound ring: the console VSP holds the rest back until
    the guest has read some, so nothing is dropped, duplicated or reordered."""
    lines = [f"echo p{i:03d}" + "." * 100 for i in range(400)]
    mark = lab.send("child1", ("\r".join(lines) + "\recho paste-done\r").encode())
    out = lab.wait_for("child1", b"paste-done\r\nchild1$ ", since=mark, timeout=60)
    echoed = [line.split(".")[0] for line in out.split("\r\n") if re.match(r"p\d{3}\.", line)]
    assert echoed == [f"p{i:03d}" for i in range(400)]


def test_heartbeats_are_answered(lab: GuestLab) -> None:
    first = lab.counters().get("child1.ic.heartbeats", 0)
    end = time.monotonic() + 10
    while lab.counters().get("child1.ic.heartbeats", 0) < first + 1 and time.monotonic() < end:
        time.sleep(0.2)
    assert lab.counters()["child1.ic.heartbeats"] > first
    assert int(channel_row(lab.type("child1", "vmbus"), "heartbeat")[3]) >= 1


def test_a_ring_index_out_of_range_fails_that_channel_only(lab: GuestLab) -> None:
    def corrupt() -> None:
        p = lab.partition("child1")
        channel = p.vmbus.channels[3]  # heartbeat
        inbound_header = channel.gpadl.pfns[9] * 4096  # page 1 + N: the host -> guest ring
        p.vp.memory.write(inbound_header, struct.pack("<I", 0xFFFF_FFF0))  # write_index
        p.synic.signal_event(2, 3)

    mark = len(lab.output["child1"])
    lab.call(corrupt)
    out = lab.wait_for("child1", b"failed", mark)
    assert "vmbus: channel 3 (heartbeat) failed: host wrote a write_index outside the ring" in out
    assert lab.state("child1") == "running"
    out = lab.type("child1", "vmbus")
    assert channel_row(out, "heartbeat")[2] == "failed" and channel_row(out, "storage")[2] == "open"
    assert "written through storvsc" in lab.type("child1", "cat VMBUS.TXT")


def test_malformed_messages_are_counted_not_obeyed(lab: GuestLab) -> None:
    def post() -> None:
        synic = lab.partition("child1").synic
        synic.post(2, 1, struct.pack("<II", 1, 0) + bytes(20))  # an OFFERCHANNEL cut short
        synic.post(2, 1, struct.pack("<II", 99, 0))  # no such message type
        synic.post(2, 1, b"\x0a")  # shorter than a header

    lab.call(post)
    out = lab.type("child1", "vmbus")
    assert re.search(r"\b3 bad messages from the host", out), out
    assert lab.state("child1") == "running"


def test_shut_down_over_the_integration_services(lab: GuestLab) -> None:
    restart(lab, "child1")
    assert "shut_down" in lab.call(lambda: lab.partition("child1").allowed_actions())
    mark = len(lab.output["child1"])
    lab.call(lambda: lab.partition("child1").act("shut_down"))
    end = time.monotonic() + 10
    while lab.state("child1") != "off" and time.monotonic() < end:
        time.sleep(0.05)
    assert lab.state("child1") == "off"
    out = bytes(lab.output["child1"])[mark:].decode()
    assert "kernel: the host asks for a shutdown over VMBus" in out
    assert "kernel: unloading VMBus; this partition is halted" in out
    lab.call(lambda: lab.partition("child1").start())
    lab.wait_for("child1", b"child1$ ", mark)


def test_a_silent_host_makes_the_guest_fall_back_to_uart_and_ide(lab: GuestLab) -> None:
    server = lab.partition("child1").vmbus
    lab.call(lambda: setattr(server, "post_message", lambda payload: 0))  # accepts, never answers
    try:
        t0 = time.monotonic()
        out = restart(lab, "child1")
        assert time.monotonic() - t0 < 10
    finally:
        lab.call(lambda: delattr(server, "post_message"))
    assert "vmbus: no answer to INITIATE_CONTACT within 1 s; using the emulated UART and IDE" in out
    assert 'disk: ide "hyperlab IDE disk"' in out
    assert "VMBus not in use: no answer to INITIATE_CONTACT" in lab.type("child1", "vmbus")
    assert "written through storvsc" in lab.type("child1", "cat VMBUS.TXT")  # the same disk, by IDE


def test_a_host_that_stops_answering_after_contact(lab: GuestLab) -> None:
    server = lab.partition("child1").vmbus
    real = server.post_message

    def no_gpadls(payload: bytes) -> int:
        return 0 if struct.unpack_from("<I", payload)[0] == 8 else real(payload)  # GPADL_HEADER: silence

    lab.call(lambda: setattr(server, "post_message", no_gpadls))
    try:
        out = restart(lab, "child1")
    finally:
        lab.call(lambda: delattr(server, "post_message"))
    assert "vmbus: channel 1 (storage): no GPADL_CREATED" in out
    assert "vmbus: channel 2 (console): not opened: the host stopped answering" in out
    assert 'disk: ide "hyperlab IDE disk"' in out
    assert BOOT_VMBUS in restart(lab, "child1")  # and the next boot, with an answering host, is enlightened
