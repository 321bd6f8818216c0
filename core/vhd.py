"""Fixed VHD disks: the file format Hyper-V and Virtual PC use, so a student's disk opens anywhere.

A fixed VHD is the raw disk data followed by a 512-byte footer (Microsoft "Virtual Hard Disk
Image Format Specification", version 1.0). All footer fields are big-endian:

======  ====  =====================================================================
offset  size  field
======  ====  =====================================================================
0       8     cookie ``conectix``
8       4     features (bit 1 is reserved and always set: 0x00000002)
12      4     file format version 0x00010000
16      8     data offset: 0xFFFFFFFFFFFFFFFF for a fixed disk (no dynamic header)
24      4     time stamp: seconds since 2000-01-01 00:00:00 UTC
28      4     creator application (``hlab``)
32      4     creator version (major.minor in the high and low 16 bits)
36      4     creator host OS (``Wi2k`` is what Windows writes)
40      8     original size in bytes (at creation)
48      8     current size in bytes
56      4     disk geometry: cylinders (2 bytes), heads (1), sectors per track (1)
60      4     disk type: 2 fixed, 3 dynamic, 4 differencing
64      4     checksum: one's complement of the byte sum of the footer, this field zeroed
68      16    unique id
84      1     saved state
85      427   reserved, zero
======  ====  =====================================================================

A disk is never reformatted here: :meth:`VhdDisk.open` validates and refuses with a message
naming the file and the problem, and :meth:`VhdDisk.create` refuses to replace an existing file.
Reads and writes are one ``pread``/``pwrite`` each and go straight to the file, so what a guest
wrote survives a restart of its partition (and of the lab process).
"""

from __future__ import annotations

import datetime
import os
import struct
import uuid
from pathlib import Path
from typing import Self

SECTOR = 512
FOOTER_SIZE = 512
COOKIE = b"conectix"
FEATURES_RESERVED = 0x00000002
FORMAT_VERSION = 0x00010000
FIXED_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF
CREATOR_APP = b"hlab"
CREATOR_VERSION = 0x00010000  # hyperlab 1.0
CREATOR_HOST_OS = b"Wi2k"
DISK_TYPE_FIXED, DISK_TYPE_DYNAMIC, DISK_TYPE_DIFFERENCING = 2, 3, 4
VHD_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)

# Everything up to and including the saved-state byte; the rest of the 512 bytes is reserved (zero).
_FOOTER = struct.Struct(">8sIIQI4sI4sQQIII16sB")
_CHECKSUM_OFFSET = 64


class VhdError(Exception):
    """A VHD that cannot be used as it is; the message names the file and the problem."""


def chs_geometry(total_sectors: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) by the algorithm in the VHD specification's appendix.

    The footer must carry this geometry: Virtual PC sizes a disk by it, and tools that
    check a VHD compare it with the current size.
    """
    total = min(total_sectors, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cyl_x_heads = total // spt
    else:
        spt = 17
        cyl_x_heads = total // spt
        heads = max((cyl_x_heads + 1023) // 1024, 4)
        if cyl_x_heads >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cyl_x_heads = total // spt
        if cyl_x_heads >= heads * 1024:
            spt, heads = 63, 16
            cyl_x_heads = total // spt
    return cyl_x_heads // heads, heads, spt


def geometry_exact_size(min_bytes: int) -> int:
    """The smallest disk size of at least ``min_bytes`` that the footer's CHS geometry covers exactly.

    Hyper-V and Windows size a fixed VHD by the footer's current size, but Virtual PC, and QEMU for
    creator applications it does not know (such as ``hlab``), by cylinders x heads x sectors, which
    for most sizes is a little smaller: they would cut off the end of the last partition. A disk
    of a geometry-exact size reads the same in all of them. Past the largest geometry (about 127 GiB)
    every tool uses the current size.
    """
    sectors = -(-min_bytes // SECTOR)
    while sectors < 65535 * 16 * 255:
        cylinders, heads, spt = chs_geometry(sectors)
        if cylinders * heads * spt == sectors:
            break
        sectors += 1
    return sectors * SECTOR


def footer_checksum(footer: bytes) -> int:
    """One's complement of the sum of all footer bytes, the checksum field counted as zero."""
    total = sum(footer) - sum(footer[_CHECKSUM_OFFSET:_CHECKSUM_OFFSET + 4])
    return ~total & 0xFFFFFFFF


def build_footer(size_bytes: int, timestamp: int, unique_id: bytes) -> bytes:
    """The 512-byte footer of a fixed disk of ``size_bytes`` (original size = current size)."""
    cylinders, heads, spt = chs_geometry(size_bytes // SECTOR)
    geometry = (cylinders << 16) | (heads << 8) | spt
    fields = _FOOTER.pack(COOKIE, FEATURES_RESERVED, FORMAT_VERSION, FIXED_DATA_OFFSET, timestamp,
                          CREATOR_APP, CREATOR_VERSION, CREATOR_HOST_OS, size_bytes, size_bytes,
                          geometry, DISK_TYPE_FIXED, 0, unique_id, 0)
    footer = bytearray(fields.ljust(FOOTER_SIZE, b"\0"))
    struct.pack_into(">I", footer, _CHECKSUM_OFFSET, footer_checksum(footer))
    return bytes(footer)


def _vhd_now() -> int:
    return int((datetime.datetime.now(datetime.UTC) - VHD_EPOCH).total_seconds()) & 0xFFFFFFFF


class VhdDisk:
    """An open fixed VHD: sector reads and writes on its data part; the footer is never touched."""

    def __init__(self, path: Path, fd: int, size_bytes: int, unique_id: bytes) -> None:
        self.path = path
        self.size_bytes = size_bytes
        self.sector_count = size_bytes // SECTOR
        self.unique_id = unique_id
        self._fd: int | None = fd

    # --- creating and opening ---------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], size_bytes: int, contents: bytes | None = None) -> VhdDisk:
        """Write a new fixed VHD holding ``contents`` (zero-filled to ``size_bytes``) and open it.

        Refuses an existing file (a disk is never replaced). The file is built under a temporary
        name and linked into place only when complete, so a crash half-way never leaves a
        truncated disk that the next start would refuse.
        """
        path = Path(path)
        if size_bytes <= 0 or size_bytes % SECTOR:
            raise VhdError(f"{path}: cannot create a disk of {size_bytes} bytes: "
                           f"the size must be a positive multiple of {SECTOR}")
        contents = contents or b""
        if len(contents) > size_bytes:
            raise VhdError(f"{path}: cannot create the disk: {len(contents)} bytes of contents "
                           f"do not fit in {size_bytes} bytes")
        if path.exists():
            raise VhdError(f"{path}: cannot create the disk: the file already exists")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
        footer = build_footer(size_bytes, _vhd_now(), uuid.uuid4().bytes)
        try:
            with open(tmp, "wb") as f:
                f.write(contents)
                f.truncate(size_bytes)  # the zeros after the contents stay a hole in the file
                f.seek(size_bytes)
                f.write(footer)
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # fails if someone created the disk meanwhile: never replace a disk
        except FileExistsError:
            raise VhdError(f"{path}: cannot create the disk: the file already exists") from None
        except OSError as e:
            raise VhdError(f"{path}: cannot create the disk: {e.strerror or e}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> VhdDisk:
        """Open an existing fixed VHD after checking its footer; refuse anything else."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise VhdError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise VhdError(f"{path}: is a directory, not a VHD file") from None
        except OSError as e:
            raise VhdError(f"{path}: cannot open: {e.strerror or e}") from None
        try:
            size_bytes, unique_id = cls._check(path, fd)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, size_bytes, unique_id)

    @staticmethod
    def _check(path: Path, fd: int) -> tuple[int, bytes]:
        """Validate the footer; returns (current size, unique id)."""
        file_size = os.fstat(fd).st_size
        if file_size < FOOTER_SIZE + SECTOR:
            raise VhdError(f"{path}: too short to be a VHD ({file_size} bytes; a fixed VHD is its data, "
                           f"at least one {SECTOR}-byte sector, plus a {FOOTER_SIZE}-byte footer)")
        footer = os.pread(fd, FOOTER_SIZE, file_size - FOOTER_SIZE)
        (cookie, _features, version, _data_offset, _stamp, _app, _app_version, _host_os, _orig_size,
         current_size, _geometry, disk_type, checksum, unique_id, _saved) = _FOOTER.unpack_from(footer)
        if cookie != COOKIE:
            raise VhdError(f"{path}: bad cookie {cookie!r} where the footer should be (expected {COOKIE!r} "
                           f"in the last {FOOTER_SIZE} bytes): not a VHD, or a VHD truncated and missing its footer")
        if checksum != footer_checksum(footer):
            raise VhdError(f"{path}: bad footer checksum {checksum:#010x} "
                           f"(the footer's bytes sum to {footer_checksum(footer):#010x}): the footer is corrupt")
        if version >> 16 != 1:
            raise VhdError(f"{path}: unsupported VHD file format version {version:#010x} (expected 0x00010000)")
        if disk_type in (DISK_TYPE_DYNAMIC, DISK_TYPE_DIFFERENCING):
            kind = "dynamic" if disk_type == DISK_TYPE_DYNAMIC else "differencing"
            raise VhdError(f"{path}: {kind} VHDs are not supported yet (only fixed VHDs, disk type 2)")
        if disk_type != DISK_TYPE_FIXED:
            raise VhdError(f"{path}: unknown VHD disk type {disk_type} (expected 2, fixed)")
        if current_size % SECTOR or current_size == 0:
            raise VhdError(f"{path}: the footer's disk size {current_size} is not a positive multiple of {SECTOR}")
        if current_size != file_size - FOOTER_SIZE:
            raise VhdError(f"{path}: size mismatch: the footer says the disk holds {current_size} bytes but the "
                           f"file has {file_size - FOOTER_SIZE} bytes before the footer (truncated or grown?)")
        return current_size, unique_id

    # --- I/O --------------------------------------------------------------------------------------
    def _fd_or_raise(self) -> int:
        if self._fd is None:
            raise VhdError(f"{self.path}: the disk is closed")
        return self._fd

    def _check_range(self, lba: int, count: int, what: str) -> None:
        if lba < 0 or count < 0 or lba + count > self.sector_count:
            raise VhdError(f"{self.path}: cannot {what} sectors {lba}..{lba + count - 1}: "
                           f"the disk has sectors 0..{self.sector_count - 1}")

    def read(self, lba: int, count: int) -> bytes:
        """``count`` sectors from ``lba``: one ``pread``."""
        fd = self._fd_or_raise()
        self._check_range(lba, count, "read")
        try:
            data = os.pread(fd, count * SECTOR, lba * SECTOR)
        except OSError as e:
            raise VhdError(f"{self.path}: read failed at sector {lba}: {e.strerror or e}") from None
        if len(data) != count * SECTOR:
            raise VhdError(f"{self.path}: read of sector {lba} came back short: the file shrank")
        return data

    def write(self, lba: int, data: bytes) -> None:
        """Whole sectors at ``lba``: one ``pwrite``, straight to the file.

        Out of range (past the data, into the footer) or a host write error (a full host disk)
        raises :class:`VhdError`, which a device model turns into an error for the guest.
        """
        fd = self._fd_or_raise()
        if len(data) % SECTOR:
            raise VhdError(f"{self.path}: cannot write {len(data)} bytes: not a whole number of sectors")
        self._check_range(lba, len(data) // SECTOR, "write")
        try:
            written = os.pwrite(fd, data, lba * SECTOR)
        except OSError as e:
            raise VhdError(f"{self.path}: write failed at sector {lba}: {e.strerror or e}") from None
        if written != len(data):
            raise VhdError(f"{self.path}: write at sector {lba} was cut short: the host disk may be full")

    def flush(self) -> None:
        """Make written data durable (the guest's FLUSH CACHE)."""
        try:
            os.fdatasync(self._fd_or_raise())
        except OSError as e:
            raise VhdError(f"{self.path}: flush failed: {e.strerror or e}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VhdDisk({str(self.path)!r}, {self.size_bytes} bytes{', closed' if self.closed else ''})"
