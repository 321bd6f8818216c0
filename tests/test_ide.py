"""The ATA PIO device model, driven port by port exactly as a guest driver drives it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperlab.core.devices.ide import IdeController
from hyperlab.core.diskimage import DEFAULT_DISK_SIZE
from hyperlab.core.vhd import VhdDisk, VhdError

MIB = 1 << 20
SECTORS = 2048  # 1 MiB disks

# The task file, by the numbers a driver writes (not imported from the model under test).
DATA, ERROR, COUNT, LBA0, LBA1, LBA2, DEVICE, STATUS = range(0x1F0, 0x1F8)
ALT = 0x3F6
BSY, DRDY, DRQ, ERR = 0x80, 0x40, 0x08, 0x01
IDNF, ABRT = 0x10, 0x04


class Driver:
    """A minimal ATA PIO driver in Python, with a log of the IRQs the device raised."""

    def __init__(self, disk: VhdDisk | None) -> None:
        self.irqs = 0
        self.counted: dict[str, int] = {}
        self.ide = IdeController(disk, self._irq, self._count)

    def _irq(self) -> None:
        self.irqs += 1

    def _count(self, name: str, n: int) -> None:
        self.counted[name] = self.counted.get(name, 0) + n

    def out(self, port: int, value: int, size: int = 1) -> None:
        assert self.ide.handles(port)
        self.ide.write(port, size, value)

    def inp(self, port: int, size: int = 1) -> int:
        assert self.ide.handles(port)
        return self.ide.read(port, size)

    def task(self, lba: int, count: int, command: int) -> None:
        self.out(DEVICE, 0xE0 | (lba >> 24) & 0x0F)  # master, LBA
        self.out(COUNT, count & 0xFF)
        self.out(LBA0, lba & 0xFF)
        self.out(LBA1, (lba >> 8) & 0xFF)
        self.out(LBA2, (lba >> 16) & 0xFF)
        self.out(STATUS, command)

    def read_block(self, words: int = 256, size: int = 2) -> bytes:
        assert self.inp(ALT) & DRQ
        return b"".join(self.inp(DATA, size).to_bytes(size, "little") for _ in range(words * 2 // size))

    def write_block(self, data: bytes, size: int = 2) -> None:
        assert self.inp(ALT) & DRQ
        for i in range(0, len(data), size):
            self.out(DATA, int.from_bytes(data[i:i + size], "little"), size)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[VhdDisk]:
    d = VhdDisk.create(tmp_path / "d.vhd", MIB, bytes(range(256)) * 2)
    yield d
    d.close()


def file_sectors(disk: VhdDisk, lba: int, count: int) -> bytes:
    """What is in the VHD file itself, read past the model and VhdDisk."""
    with open(disk.path, "rb") as f:
        f.seek(lba * 512)
        return f.read(count * 512)


def pattern(count: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed + i // 512) & 0xFF for i in range(count * 512))


def unswap(raw: bytes) -> str:
    return bytes(raw[i ^ 1] for i in range(len(raw))).decode().rstrip()


def test_identify_describes_the_disk(disk: VhdDisk) -> None:
    drv = Driver(disk)
    assert drv.inp(STATUS) == 0x50  # idle: DRDY and DSC
    drv.out(DEVICE, 0xA0)
    drv.out(STATUS, 0xEC)
    assert drv.irqs == 1 and drv.inp(ALT) & DRQ and not drv.inp(ALT) & BSY
    ident = drv.read_block()
    assert not drv.inp(STATUS) & DRQ and drv.irqs == 1  # no interrupt after the last word
    words = [int.from_bytes(ident[i:i + 2], "little") for i in range(0, 512, 2)]
    assert unswap(ident[54:94]) == "hyperlab IDE disk"
    assert unswap(ident[20:40]) == disk.unique_id.hex().upper()[:20]
    assert words[60] | words[61] << 16 == SECTORS
    assert words[49] & (1 << 9)                       # LBA supported
    assert words[0] & 0x8000 == 0                     # an ATA device
    assert (words[1], words[3], words[6]) == (2, 16, 63)
    assert words[255] & 0xFF == 0xA5 and sum(ident) % 256 == 0


def test_write_then_read_back_sectors(disk: VhdDisk) -> None:
    drv = Driver(disk)
    data = pattern(3)
    drv.task(100, 3, 0x30)
    assert drv.irqs == 0 and drv.inp(ALT) & DRQ  # the first sector is taken without an interrupt
    for i in range(3):
        drv.write_block(data[i * 512:(i + 1) * 512])
        assert drv.irqs == i + 1                 # one interrupt after each sector written
        status = drv.inp(STATUS)
        assert bool(status & DRQ) == (i < 2) and not status & ERR
    assert file_sectors(disk, 100, 3) == data    # on the file, not in some cache
    assert (drv.ide.sectors_written, drv.ide.bytes_written) == (3, 1536)

    drv.irqs = 0
    drv.task(99, 5, 0x20)
    got = b""
    for i in range(5):
        assert drv.irqs == i + 1                 # one interrupt per sector ready
        assert drv.inp(STATUS) & DRQ
        got += drv.read_block()
    assert drv.irqs == 5 and drv.inp(STATUS) == 0x50
    assert got == bytes(512) + data + bytes(512)
    assert (drv.ide.sectors_read, drv.ide.bytes_read) == (5, 2560)
    assert drv.counted == {"commands": 2, "sectors_written": 3, "bytes_written": 1536, "sectors_read": 5,
                           "bytes_read": 2560, "interrupts": 8}


def test_sector_count_zero_means_256(disk: VhdDisk) -> None:
    drv = Driver(disk)
    data = pattern(256, seed=5)
    drv.task(1, 0, 0x30)
    for i in range(256):
        drv.write_block(data[i * 512:(i + 1) * 512], size=4)  # 32-bit PIO (outsl) moves two words
    assert drv.inp(STATUS) == 0x50 and drv.ide.sectors_written == 256
    assert file_sectors(disk, 1, 256) == data
    drv.task(1, 0, 0x20)
    assert b"".join(drv.read_block(size=4) for _ in range(256)) == data
    assert drv.ide.sectors_read == 256 and not drv.inp(STATUS) & DRQ


def test_the_last_sector_works_and_one_past_it_is_an_error(disk: VhdDisk) -> None:
    before = disk.path.read_bytes()
    drv = Driver(disk)
    drv.task(SECTORS - 1, 1, 0x20)
    assert drv.read_block() == bytes(512)
    for lba, count, command in [(SECTORS - 1, 2, 0x20), (SECTORS, 1, 0x30), (SECTORS - 2, 0, 0x30),
                                ((1 << 28) - 1, 1, 0x20)]:
        irqs = drv.irqs
        drv.task(lba, count, command)
        status = drv.inp(STATUS)
        assert status & ERR and not status & DRQ and status & DRDY
        assert drv.inp(ERROR) == IDNF
        assert drv.irqs == irqs + 1              # the error completes the command with an interrupt
        drv.out(DATA, 0xFFFF, 2)                 # a confused driver writing anyway changes nothing
    assert disk.path.read_bytes() == before
    assert drv.ide.errors == 4


def test_chs_addressing(disk: VhdDisk) -> None:
    drv = Driver(disk)
    drv.out(DEVICE, 0xA0 | 1)   # CHS, master, head 1
    drv.out(COUNT, 1)
    drv.out(LBA0, 2)            # sector 2 (1-based)
    drv.out(LBA1, 0)
    drv.out(LBA2, 0)            # cylinder 0
    drv.out(STATUS, 0x30)
    drv.write_block(b"\x77" * 512)
    assert file_sectors(disk, 1 * 63 + 1, 1) == b"\x77" * 512
    drv.out(LBA0, 0)            # sector 0 does not exist in CHS
    drv.out(STATUS, 0x20)
    assert drv.inp(STATUS) & ERR and drv.inp(ERROR) == IDNF


def test_unknown_commands_and_a_missing_disk_abort() -> None:
    drv = Driver(None)
    for command in (0xEC, 0x20, 0x30, 0xE7):
        drv.out(DEVICE, 0xE0)
        drv.out(STATUS, command)
        assert drv.inp(STATUS) & ERR and drv.inp(ERROR) == ABRT
    assert drv.irqs == 4


def test_unknown_command_aborts(disk: VhdDisk) -> None:
    drv = Driver(disk)
    drv.out(STATUS, 0xC8)  # READ DMA: this disk has no DMA
    assert drv.inp(STATUS) & ERR and drv.inp(ERROR) == ABRT
    drv.out(STATUS, 0xE7)  # the next command clears the error
    assert drv.inp(STATUS) == 0x50 and drv.inp(ERROR) == 0 and drv.ide.flushes == 1


def test_a_host_write_failure_is_an_error_for_the_guest(disk: VhdDisk) -> None:
    class FullDisk(VhdDisk):
        def write(self, lba: int, data: bytes) -> None:
            raise VhdError(f"{self.path}: write failed at sector {lba}: No space left on device")

    full = FullDisk(disk.path, os.dup(os.open(disk.path, os.O_RDONLY)), disk.size_bytes, disk.unique_id)
    drv = Driver(full)
    drv.task(0, 2, 0x30)
    drv.write_block(pattern(1))
    status = drv.inp(STATUS)
    assert status & ERR and not status & DRQ and drv.inp(ERROR) == ABRT and drv.irqs == 1
    full.close()


def test_nien_suppresses_the_interrupt_and_polling_still_works(disk: VhdDisk) -> None:
    drv = Driver(disk)
    drv.out(ALT, 0x02)  # nIEN
    drv.task(0, 2, 0x20)
    assert drv.irqs == 0
    assert drv.read_block()[:4] == bytes((0, 1, 2, 3))
    assert drv.read_block()[:4] == bytes(4)
    drv.out(STATUS, 0xEC)
    assert drv.irqs == 0 and drv.inp(STATUS) & DRQ  # the poll read clears what is pending
    drv.out(ALT, 0x00)
    assert drv.irqs == 0                             # nothing left to deliver
    drv.read_block()
    drv.out(ALT, 0x02)
    drv.out(STATUS, 0xE7)                            # pending while masked...
    drv.out(ALT, 0x00)
    assert drv.irqs == 1                             # ...reaches the PIC once INTRQ is enabled again


def test_status_read_clears_the_pending_interrupt_alt_status_does_not(disk: VhdDisk) -> None:
    drv = Driver(disk)
    drv.out(STATUS, 0xE7)
    assert drv.ide.irq_pending
    assert drv.inp(ALT) == 0x50 and drv.ide.irq_pending
    assert drv.inp(STATUS) == 0x50 and not drv.ide.irq_pending
    drv.out(STATUS, 0xE7)
    assert drv.ide.irq_pending
    drv.out(STATUS, 0xE7)  # a new command also clears it, then raises its own
    assert drv.irqs == 3


def test_the_slave_is_absent(disk: VhdDisk) -> None:
    drv = Driver(disk)
    drv.out(DEVICE, 0xB0)  # select the slave
    assert drv.inp(STATUS) == 0 and drv.inp(ALT) == 0
    drv.out(STATUS, 0xEC)
    assert drv.irqs == 0 and drv.ide.commands == 0
    drv.out(DEVICE, 0xA0)
    assert drv.inp(STATUS) == 0x50


def test_software_reset_ends_a_transfer_and_leaves_the_ata_signature(disk: VhdDisk) -> None:
    drv = Driver(disk)
    drv.task(5, 4, 0x30)
    drv.write_block(pattern(1))
    drv.out(ALT, 0x04)  # SRST
    assert drv.inp(ALT) & BSY
    drv.out(ALT, 0x00)
    assert drv.inp(STATUS) == 0x50
    assert [drv.inp(p) for p in (ERROR, COUNT, LBA0, LBA1, LBA2)] == [0x01, 1, 1, 0, 0]
    drv.out(DATA, 0x1234, 2)  # no data phase any more
    assert file_sectors(disk, 5, 2) == pattern(1) + bytes(512)


def test_data_port_outside_a_transfer_floats(disk: VhdDisk) -> None:
    drv = Driver(disk)
    assert drv.inp(DATA, 2) == 0xFFFF
    assert not drv.ide.handles(0x1F8) and not drv.ide.handles(0x3F7) and drv.ide.handles(0x3F6)


# --- the device in a partition: port routing, IRQ 14 through the PIC cascade, telemetry -------------------
HLT_LOOP = b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp back: a guest that never runs anything


def program_pics(p, master_mask: int, slave_mask: int) -> None:
    """What a PC kernel does: remap to 0x20/0x28, slave on IR2, then set the masks."""
    for port, value in [(0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01),
                        (0xA0, 0x11), (0xA1, 0x28), (0xA1, 0x02), (0xA1, 0x01),
                        (0x21, master_mask), (0xA1, slave_mask)]:
        p.io_out(port, 1, value, 0)


@pytest.fixture
def hv(tmp_path: Path):
    from hyperlab.core.hypervisor import Hypervisor
    from hyperlab.core.lab import partition_configs

    settings = {"data_dir": str(tmp_path), "partitions": [{"name": "root", "role": "root", "image": HLT_LOOP},
                                                           {"name": "child2", "image": HLT_LOOP}]}
    # Monolithic: the device answers inside the hypervisor, so this thread can drive the ports directly.
    hv = Hypervisor(partition_configs(settings), design="monolithic", tsc_khz=1_000_000)
    yield hv
    for p in hv.partitions.values():
        p.turn_off()


def test_a_child_gets_its_disk_on_the_ide_ports_and_irq14_through_the_cascade(hv, tmp_path: Path) -> None:
    child = hv.partitions["child2"]
    child.start()
    assert (tmp_path / "child2.vhd").is_file()
    assert child.describe()["disk"] == {"path": str(tmp_path / "child2.vhd"), "size_bytes": DEFAULT_DISK_SIZE}
    program_pics(child, master_mask=0xFB, slave_mask=0xBF)  # only the cascade and IRQ 14 unmasked
    child.io_out(DEVICE, 1, 0xE0, 0)
    child.io_out(STATUS, 1, 0xEC, 0)  # IDENTIFY
    assert child.pending_interrupt()
    from hyperlab.core.devices.pic8259 import cascade_acknowledge, cascade_pending_vector
    assert cascade_pending_vector(child.pic1, child.pic2) == 0x28 + 6
    assert cascade_acknowledge(child.pic1, child.pic2) == 0x2E
    assert child.pic1.isr == 1 << 2 and child.pic2.isr == 1 << 6
    assert not child.pending_interrupt()
    ident = b"".join(child.io_in(DATA, 2, 0).to_bytes(2, "little") for _ in range(256))
    assert unswap(ident[54:94]) == "hyperlab IDE disk"
    assert child.io_in(STATUS, 1, 0) == 0x50
    child.io_out(0xA0, 1, 0x20, 0)  # EOI slave, then master
    child.io_out(0x20, 1, 0x20, 0)
    assert child.pic1.isr == 0 and child.pic2.isr == 0

    child.io_out(COUNT, 1, 1, 0)
    for port in (LBA0, LBA1, LBA2):
        child.io_out(port, 1, 0, 0)
    child.io_out(STATUS, 1, 0x20, 0)  # READ SECTORS: the MBR
    mbr = b"".join(child.io_in(DATA, 2, 0).to_bytes(2, "little") for _ in range(256))
    assert mbr[510:512] == b"\x55\xAA" and mbr[450] == 0x06
    counters = hv.telemetry.counters
    assert counters["child2.disk.sectors_read"] == 1 and counters["child2.disk.bytes_read"] == 512
    assert counters["child2.disk.interrupts"] == 2 and counters["child2.disk.commands"] == 2

    child.io_out(0xA1, 1, 0xFF, 0)  # the guest masks IRQ 14: the interrupt waits in the slave
    child.io_out(STATUS, 1, 0xE7, 0)
    assert not child.pending_interrupt()
    child.io_out(0xA1, 1, 0xBF, 0)
    assert child.pending_interrupt()

    child.turn_off()
    assert child.disk is None and child.ide is None
    with VhdDisk.open(tmp_path / "child2.vhd") as again:  # closed cleanly, still a valid VHD
        assert again.read(0, 1) == mbr
    assert child.describe()["disk"]["size_bytes"] == DEFAULT_DISK_SIZE


def test_the_root_has_no_disk(hv) -> None:
    root = hv.partitions["root"]
    root.start()
    assert root.describe()["disk"] is None and root.ide is None
    assert root.io_in(STATUS, 1, 0) == 0xFF  # nothing on the channel: the bus floats
