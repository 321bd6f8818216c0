"""An ATA disk on the primary IDE channel, driven by PIO: what an unenlightened guest's driver talks to.

Ports (the legacy primary channel of a PC):

======  ===========================================  =========================================
port    read                                         write
======  ===========================================  =========================================
0x1F0   data (16 bits; a 32-bit access moves 2 words) data
0x1F1   error                                        features (ignored)
0x1F2   sector count                                 sector count (0 means 256)
0x1F3   LBA bits 0-7 (CHS: sector)                   same
0x1F4   LBA bits 8-15 (CHS: cylinder low)            same
0x1F5   LBA bits 16-23 (CHS: cylinder high)          same
0x1F6   drive/head: bit 6 LBA, bit 4 device, 3-0     same
        LBA bits 24-27 (CHS: head)
0x1F7   status; clears the pending interrupt         command
0x3F6   alternate status (does not clear it)         device control: bit 1 nIEN, bit 2 SRST
======  ===========================================  =========================================

Commands (ATA/ATAPI-6 numbers): IDENTIFY DEVICE 0xEC, READ SECTORS 0x20, WRITE SECTORS 0x30,
FLUSH CACHE 0xE7; anything else is aborted (ERR, error ABRT), as a real device does.

The PIO protocol, which is the point of this device: each 512-byte sector moves as 256 port
accesses to 0x1F0 while the status has DRQ set. Reads (and IDENTIFY) raise the interrupt
each time a sector is ready; writes take the first sector without one (the driver polls for
DRQ), then interrupt after each sector is written; FLUSH and errors interrupt on completion.
With nIEN set no interrupt is raised and the driver polls the status instead.

There is one device, the master. Selecting the slave (bit 4 of 0x1F6) reads back status 0, which
is how drivers see that no device is there, and commands sent to it are ignored. Without a
disk the master is present but aborts every command.

The model counts what matters for telemetry (sectors and bytes moved, commands, errors, flushes,
interrupts) as attributes and through an optional ``count(name, n)`` callable, at the moment
each happens. It knows nothing of where it runs (hypervisor or root worker process).
"""

from __future__ import annotations

from collections.abc import Callable

from ..vhd import VhdDisk, VhdError

DATA, ERROR_FEATURES, SECTOR_COUNT, LBA_LOW, LBA_MID, LBA_HIGH, DEVICE, STATUS_COMMAND = range(0x1F0, 0x1F8)
ALT_STATUS_CONTROL = 0x3F6
IRQ = 14

# Status register bits.
BSY, DRDY, DF, DSC, DRQ, ERR = 0x80, 0x40, 0x20, 0x10, 0x08, 0x01
# Error register bits.
IDNF, ABRT = 0x10, 0x04
# Device register bits.
DEV_LBA, DEV_SLAVE = 0x40, 0x10
# Device control bits.
NIEN, SRST = 0x02, 0x04

CMD_READ_SECTORS = 0x20
CMD_WRITE_SECTORS = 0x30
CMD_FLUSH_CACHE = 0xE7
CMD_IDENTIFY = 0xEC

SECTOR = 512
WORDS_PER_SECTOR = SECTOR // 2
# The CHS translation IDENTIFY reports (ATA's default for LBA disks): 16 heads, 63 sectors per track.
HEADS, SECTORS_PER_TRACK = 16, 63
LBA28_MAX = (1 << 28) - 1
MODEL = "hyperlab IDE disk"
FIRMWARE = "1.0"

IDLE = DRDY | DSC  # ready, seek complete: what an idle ATA disk reads back (0x50)


def ata_string(text: str, length: int) -> bytes:
    """An IDENTIFY string: space-padded ASCII with the two bytes of each word swapped (ATA word order)."""
    raw = text.encode("ascii")[:length].ljust(length, b" ")
    return bytes(raw[i ^ 1] for i in range(length))


class IdeController:
    """The primary channel with one ATA disk (or none) on it."""

    kind = "ide"
    PORTS = (*range(DATA, STATUS_COMMAND + 1), ALT_STATUS_CONTROL)

    def __init__(self, disk: VhdDisk | None, raise_irq: Callable[[], None],
                 count: Callable[[str, int], None] | None = None) -> None:
        self.disk = disk
        self._raise_irq = raise_irq
        self._count = count
        # Task-file registers as the guest last wrote them (shared by both device positions).
        self.error = 0
        self.features = 0
        self.sector_count = 0
        self.lba_low = self.lba_mid = self.lba_high = 0
        self.device = 0xA0  # obsolete bits 7 and 5 set, master, CHS
        self.control = 0
        self.status = IDLE
        self.irq_pending = False
        # The PIO transfer in progress: a buffer the guest reads from or writes into.
        self._buffer = bytearray()
        self._pos = 0              # next byte of _buffer the data port moves
        self._sector_end = 0       # DRQ block boundary in _buffer
        self._writing = False
        self._lba = 0              # next sector to write
        self._remaining = 0        # sectors still to move after the current one
        # Telemetry.
        self.sectors_read = self.sectors_written = 0
        self.bytes_read = self.bytes_written = 0
        self.commands = self.errors = self.flushes = self.interrupts = 0

    @staticmethod
    def handles(port: int) -> bool:
        return DATA <= port <= STATUS_COMMAND or port == ALT_STATUS_CONTROL

    # --- the guest's port accesses ----------------------------------------------------------------
    def read(self, port: int, size: int) -> int:
        if port == DATA:
            return self._read_data(size)
        if port == STATUS_COMMAND:
            if self.device & DEV_SLAVE:
                return 0
            self.irq_pending = False
            return self.status
        if port == ALT_STATUS_CONTROL:
            return 0 if self.device & DEV_SLAVE else self.status
        if port == ERROR_FEATURES:
            return self.error
        if port == SECTOR_COUNT:
            return self.sector_count
        if port == LBA_LOW:
            return self.lba_low
        if port == LBA_MID:
            return self.lba_mid
        if port == LBA_HIGH:
            return self.lba_high
        if port == DEVICE:
            return self.device
        return (1 << (8 * size)) - 1

    def write(self, port: int, size: int, value: int) -> None:
        if port == DATA:
            self._write_data(size, value)
            return
        value &= 0xFF
        if port == STATUS_COMMAND:
            self._command(value)
        elif port == ALT_STATUS_CONTROL:
            self._device_control(value)
        elif port == ERROR_FEATURES:
            self.features = value
        elif port == SECTOR_COUNT:
            self.sector_count = value
        elif port == LBA_LOW:
            self.lba_low = value
        elif port == LBA_MID:
            self.lba_mid = value
        elif port == LBA_HIGH:
            self.lba_high = value
        elif port == DEVICE:
            self.device = value

    # --- data port: the hot path (256 accesses per sector) -----------------------------------------
    def _read_data(self, size: int) -> int:
        if self._writing or not self.status & DRQ:
            return (1 << (8 * size)) - 1  # no data phase: nothing drives the bus
        if size == 2:  # the common case (insw), kept short
            buf, pos = self._buffer, self._pos
            self._pos = pos + 2
            if self._pos == self._sector_end:
                self._sector_read()
            return buf[pos] | buf[pos + 1] << 8
        value = 0
        for shift in range(0, max(size, 2) * 8, 16):  # a byte access still moves a whole word
            buf, pos = self._buffer, self._pos
            value |= (buf[pos] | buf[pos + 1] << 8) << shift
            self._pos = pos + 2
            if self._pos == self._sector_end:
                self._sector_read()
                if not self.status & DRQ:
                    break
        return value & ((1 << (8 * size)) - 1)

    def _write_data(self, size: int, value: int) -> None:
        if not self._writing or not self.status & DRQ:
            return  # no data phase: the write goes nowhere
        if size == 2:  # the common case (outsw), kept short
            pos = self._pos
            self._buffer[pos:pos + 2] = value.to_bytes(2, "little")
            self._pos = pos + 2
            if self._pos == self._sector_end:
                self._sector_written()
            return
        for _ in range(max(size // 2, 1)):
            pos = self._pos
            self._buffer[pos] = value & 0xFF
            self._buffer[pos + 1] = (value >> 8) & 0xFF
            value >>= 16
            self._pos = pos + 2
            if self._pos == self._sector_end:
                self._sector_written()
                if not self.status & DRQ:
                    break

    def _sector_read(self) -> None:
        """The guest took a whole sector: offer the next one, or end the command."""
        if self._remaining:
            self._remaining -= 1
            self._sector_end += SECTOR
            self._interrupt()  # status keeps DRQ: the next sector is ready
        else:
            self._end_transfer()

    def _sector_written(self) -> None:
        """The guest filled a sector: write it to the disk, then ask for the next or complete."""
        disk = self.disk
        try:
            if disk is None:
                raise VhdError("no disk")
            disk.write(self._lba, bytes(self._buffer))
        except VhdError:
            self._fail(ABRT)  # e.g. the host disk is full: the guest gets an error, the lab goes on
            return
        self._bump("sectors_written", 1)
        self._bump("bytes_written", SECTOR)
        self._lba += 1
        if self._remaining:
            self._remaining -= 1
            self._pos = 0
        else:
            self._end_transfer()
        self._interrupt()

    def _end_transfer(self) -> None:
        self._buffer = bytearray()
        self._pos = self._sector_end = 0
        self._writing = False
        self._remaining = 0
        self.status = IDLE

    # --- commands -----------------------------------------------------------------------------------
    def _command(self, command: int) -> None:
        if self.device & DEV_SLAVE:
            return  # no slave on this channel: nobody executes it
        self._end_transfer()  # a new command ends any transfer the guest abandoned
        self.irq_pending = False
        self.error = 0
        self._bump("commands", 1)
        disk = self.disk
        if disk is None:
            self._fail(ABRT)
        elif command == CMD_READ_SECTORS:
            self._start_read(disk)
        elif command == CMD_WRITE_SECTORS:
            self._start_write(disk)
        elif command == CMD_IDENTIFY:
            self._buffer = bytearray(self.identify())
            self._sector_end = SECTOR
            self.status = IDLE | DRQ
            self._interrupt()
        elif command == CMD_FLUSH_CACHE:
            try:
                disk.flush()
            except VhdError:
                self._fail(ABRT)
                return
            self._bump("flushes", 1)
            self._interrupt()
        else:
            self._fail(ABRT)

    def _request(self, disk: VhdDisk) -> tuple[int, int] | None:
        """(first LBA, sector count) of a READ/WRITE from the task file, or None if out of range."""
        count = self.sector_count or 256
        if self.device & DEV_LBA:
            lba = (self.device & 0x0F) << 24 | self.lba_high << 16 | self.lba_mid << 8 | self.lba_low
        else:
            cylinder, head, sector = self.lba_high << 8 | self.lba_mid, self.device & 0x0F, self.lba_low
            if not 1 <= sector <= SECTORS_PER_TRACK or head >= HEADS:
                return None
            lba = (cylinder * HEADS + head) * SECTORS_PER_TRACK + sector - 1
        if lba + count > min(disk.sector_count, LBA28_MAX + 1):
            return None
        return lba, count

    def _start_read(self, disk: VhdDisk) -> None:
        request = self._request(disk)
        if request is None:
            self._fail(IDNF)
            return
        lba, count = request
        try:
            data = disk.read(lba, count)  # the whole request in one pread
        except VhdError:
            self._fail(ABRT)
            return
        self._bump("sectors_read", count)
        self._bump("bytes_read", count * SECTOR)
        self._buffer = bytearray(data)
        self._sector_end = SECTOR
        self._remaining = count - 1
        self.status = IDLE | DRQ
        self._interrupt()

    def _start_write(self, disk: VhdDisk) -> None:
        request = self._request(disk)
        if request is None:
            self._fail(IDNF)
            return
        self._lba, count = request
        self._buffer = bytearray(SECTOR)
        self._sector_end = SECTOR
        self._remaining = count - 1
        self._writing = True
        self.status = IDLE | DRQ  # no interrupt for the first sector: PIO data-out drivers poll

    def _fail(self, error: int) -> None:
        self._end_transfer()
        self.error = error
        self.status = IDLE | ERR
        self._bump("errors", 1)
        self._interrupt()

    def _device_control(self, value: int) -> None:
        was_reset, was_masked = self.control & SRST, self.control & NIEN
        self.control = value
        if value & SRST:
            self._end_transfer()
            self.status = BSY
            self.irq_pending = False
        elif was_reset:
            # Reset done: ready, "diagnostics passed" in the error register, the ATA signature.
            self.status = IDLE
            self.error = 0x01
            self.sector_count, self.lba_low, self.lba_mid, self.lba_high = 1, 1, 0, 0
            self.device = 0xA0
        if was_masked and not value & NIEN and self.irq_pending:
            self._raise_irq()  # INTRQ is driven again: the pending interrupt reaches the PIC

    def _interrupt(self) -> None:
        self.irq_pending = True
        if not self.control & NIEN:
            self._bump("interrupts", 1)
            self._raise_irq()

    def _bump(self, name: str, n: int) -> None:
        setattr(self, name, getattr(self, name) + n)
        if self._count is not None:
            self._count(name, n)

    # --- IDENTIFY DEVICE ------------------------------------------------------------------------------
    def identify(self) -> bytes:
        """The 256 words of IDENTIFY DEVICE (ATA/ATAPI-6 layout), little-endian, with integrity word."""
        disk = self.disk
        assert disk is not None
        sectors = min(disk.sector_count, LBA28_MAX)
        cylinders = min(sectors // (HEADS * SECTORS_PER_TRACK), 16383)
        chs_capacity = cylinders * HEADS * SECTORS_PER_TRACK
        words = [0] * 256
        words[0] = 0x0040                        # ATA device, fixed (not removable)
        words[1], words[3], words[6] = cylinders, HEADS, SECTORS_PER_TRACK
        words[47] = 0x8000                       # READ/WRITE MULTIPLE: not supported
        words[49] = 0x0200                       # LBA supported (no DMA)
        words[50] = 0x4000
        words[53] = 0x0001                       # words 54-58 are valid
        words[54], words[55], words[56] = cylinders, HEADS, SECTORS_PER_TRACK
        words[57], words[58] = chs_capacity & 0xFFFF, chs_capacity >> 16
        words[60], words[61] = sectors & 0xFFFF, sectors >> 16   # LBA28 addressable sectors
        words[80] = 0x007E                       # ATA-1 .. ATA-6
        words[82] = 0x0000
        words[83] = 0x4000 | 0x1000              # FLUSH CACHE supported
        words[84] = 0x4000
        words[85] = 0x0000
        words[86] = 0x1000                       # FLUSH CACHE enabled
        words[87] = 0x4000
        data = bytearray(b"".join(w.to_bytes(2, "little") for w in words))
        data[20:40] = ata_string(disk.unique_id.hex().upper(), 20)  # words 10-19: serial number
        data[46:54] = ata_string(FIRMWARE, 8)                        # words 23-26: firmware revision
        data[54:94] = ata_string(MODEL, 40)                          # words 27-46: model number
        data[510] = 0xA5                                             # word 255: integrity signature...
        data[511] = -sum(data[:511]) & 0xFF                          # ...and checksum: all bytes sum to 0
        return bytes(data)
