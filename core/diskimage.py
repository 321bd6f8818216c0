"""The base disk every child partition starts with: an MBR, one FAT16 partition, a README.

Standard formats so that a student's downloaded disk opens in any tool (Windows Disk
Management, ``mtools``, ``fsck.fat``, a loop mount) with their files in it:

- MBR: partition table at byte 446, one primary partition of type 0x06 (FAT16) from LBA 2048
  to the end of the disk, signature 0x55AA at byte 510. LBA 1..2047 belong to no partition:
  the guest's ``dd`` benchmark uses them as scratch space, so it can never damage files.
- FAT16 per Microsoft's FAT specification: 512-byte sectors, 1 reserved sector (the boot
  sector with the BPB), 2 FATs, 512 root directory entries, media 0xF8, extended boot
  signature 0x29 with volume id and label, the smallest power-of-two cluster size whose
  cluster count fits FAT16 (4085..65524 clusters: the count alone decides the FAT type).
- One file, ``README.TXT``, telling the student what the disk is.

Everything is deterministic (fixed dates and ids): the same size always gives the same bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .vhd import VhdDisk, geometry_exact_size

SECTOR = 512
# 16 MiB, rounded up to what the VHD footer's geometry describes exactly (16 MiB + 4 KiB), so that
# tools which size a VHD by its geometry see the whole partition (see vhd.geometry_exact_size).
DEFAULT_DISK_SIZE = geometry_exact_size(16 << 20)
PARTITION_START = 2048            # LBA; 1 MiB alignment, as current partitioning tools do
PARTITION_TYPE_FAT16 = 0x06
RESERVED_SECTORS = 1
NUM_FATS = 2
ROOT_ENTRIES = 512
MEDIA_FIXED = 0xF8
VOLUME_ID = 0x484C4142            # fixed, so the image is reproducible ("HLAB")
VOLUME_LABEL = b"HYPERLAB   "
DISK_SIGNATURE = 0x484C4142
# The geometry the MBR's CHS fields and the BPB use: the ATA default translation (16 heads,
# 63 sectors per track) that the IDE model's IDENTIFY reports as well.
HEADS, SECTORS_PER_TRACK = 16, 63
FILE_DATE = (2025, 1, 1, 0, 0, 0)
MIN_FAT16_CLUSTERS, MAX_FAT16_CLUSTERS = 4085, 65524

README_NAME = b"README  TXT"
README_TEXT = (
    "HYPERLAB DISK\r\n"
    "=============\r\n"
    "\r\n"
    "This is your partition's own disk: a FAT16 filesystem in the first partition\r\n"
    "of an MBR-partitioned fixed VHD file kept in the lab's data folder as\r\n"
    "<partition>.vhd. Your guest kernel reaches it through the emulated IDE\r\n"
    "controller, or through VMBus synthetic storage when Integration Services are\r\n"
    "installed: the same sectors either way.\r\n"
    "\r\n"
    "Files you create with `write NAME TEXT` land here, next to this one; `ls`,\r\n"
    "`cat NAME` and `rm NAME` work on this filesystem. They survive a restart of\r\n"
    "the partition, and a downloaded .vhd opens in standard disk tools (and on\r\n"
    "Windows) with your files in it.\r\n"
    "\r\n"
    "`dd write N` and `dd read N` measure the disk path with raw sectors. They use\r\n"
    "the gap between the MBR (sector 0) and the partition (which starts at sector\r\n"
    "2048): sectors 1..2047 are a scratch area that no file lives in, so `dd`\r\n"
    "never damages your files.\r\n"
).encode("ascii")


def _chs(lba: int) -> bytes:
    """The 3-byte CHS address of an MBR entry; addresses past cylinder 1023 saturate, as tools write."""
    cylinder, rest = divmod(lba, HEADS * SECTORS_PER_TRACK)
    head, sector = divmod(rest, SECTORS_PER_TRACK)
    if cylinder > 1023:
        return b"\xFE\xFF\xFF"
    return bytes((head, ((cylinder >> 2) & 0xC0) | (sector + 1), cylinder & 0xFF))


def _fat_date_time() -> tuple[int, int]:
    year, month, day, hour, minute, second = FILE_DATE
    return ((year - 1980) << 9) | (month << 5) | day, (hour << 11) | (minute << 5) | (second // 2)


def fat16_layout(total_sectors: int) -> tuple[int, int]:
    """(sectors per cluster, sectors per FAT) for a FAT16 volume of ``total_sectors``.

    Smallest clusters first (least space lost to small files); each FAT is sized to hold an
    entry for every cluster plus the two reserved entries.
    """
    root_sectors = ROOT_ENTRIES * 32 // SECTOR
    for spc in (1, 2, 4, 8, 16, 32, 64):
        fat_sectors = 1
        while True:
            data_sectors = total_sectors - RESERVED_SECTORS - NUM_FATS * fat_sectors - root_sectors
            clusters = data_sectors // spc
            needed = -(-(clusters + 2) * 2 // SECTOR)
            if needed <= fat_sectors:
                break
            fat_sectors = needed
        if clusters <= MAX_FAT16_CLUSTERS:
            if clusters < MIN_FAT16_CLUSTERS:
                raise ValueError(f"a partition of {total_sectors} sectors is too small for FAT16 "
                                 f"({clusters} clusters; FAT16 needs at least {MIN_FAT16_CLUSTERS})")
            return spc, fat_sectors
    raise ValueError(f"a partition of {total_sectors} sectors is too large for FAT16 with 64-sector clusters")


def _mbr(size_sectors: int) -> bytes:
    mbr = bytearray(SECTOR)
    mbr[0:3] = b"\xF4\xEB\xFD"  # hlt; jmp back: this disk is not bootable
    struct.pack_into("<I", mbr, 440, DISK_SIGNATURE)
    part_sectors = size_sectors - PARTITION_START
    last = size_sectors - 1
    mbr[446:462] = (b"\x00" + _chs(PARTITION_START) + bytes((PARTITION_TYPE_FAT16,)) + _chs(last)
                    + struct.pack("<II", PARTITION_START, part_sectors))
    mbr[510:512] = b"\x55\xAA"
    return bytes(mbr)


def _boot_sector(total_sectors: int, spc: int, fat_sectors: int) -> bytes:
    bs = bytearray(SECTOR)
    bs[0:3] = b"\xEB\x3C\x90"  # jmp over the BPB to offset 0x3E, nop
    bs[3:11] = b"MSWIN4.1"      # the OEM name Microsoft's FAT specification recommends for compatibility
    struct.pack_into("<HBHBHHBHHHII", bs, 11, SECTOR, spc, RESERVED_SECTORS, NUM_FATS, ROOT_ENTRIES,
                     total_sectors if total_sectors < 0x10000 else 0, MEDIA_FIXED, fat_sectors,
                     SECTORS_PER_TRACK, HEADS, PARTITION_START,
                     total_sectors if total_sectors >= 0x10000 else 0)
    struct.pack_into("<BBBI11s8s", bs, 36, 0x80, 0, 0x29, VOLUME_ID, VOLUME_LABEL, b"FAT16   ")
    bs[62:65] = b"\xF4\xEB\xFD"  # boot code: hlt; jmp back
    bs[510:512] = b"\x55\xAA"
    return bytes(bs)


def _dir_entry(name: bytes, attr: int, cluster: int, size: int) -> bytes:
    date, time = _fat_date_time()
    # name, attr, NT reserved, create tenths, create time, create date, access date,
    # cluster high (0 on FAT16), write time, write date, cluster low, size
    return struct.pack("<11sBBBHHHHHHHI", name, attr, 0, 0, time, date, date, 0, time, date, cluster, size)


def base_disk_head(size_bytes: int = DEFAULT_DISK_SIZE) -> bytes:
    """The base disk up to its last non-zero byte: :func:`build_base_disk` without the trailing zeros.

    Creating a disk from this (the rest a hole in the file) avoids holding the whole image in memory.
    """
    if size_bytes % SECTOR:
        raise ValueError(f"a disk size must be a multiple of {SECTOR} bytes, not {size_bytes}")
    size_sectors = size_bytes // SECTOR
    total = size_sectors - PARTITION_START
    if total <= 0:
        raise ValueError(f"a disk of {size_bytes} bytes leaves no room for a partition at LBA {PARTITION_START}")
    spc, fat_sectors = fat16_layout(total)
    root_sectors = ROOT_ENTRIES * 32 // SECTOR
    cluster_bytes = spc * SECTOR
    readme_clusters = -(-len(README_TEXT) // cluster_bytes)

    fat = bytearray(fat_sectors * SECTOR)
    struct.pack_into("<HH", fat, 0, 0xFF00 | MEDIA_FIXED, 0xFFFF)  # entry 1: end of chain, volume clean
    for i in range(readme_clusters):
        cluster = 2 + i
        struct.pack_into("<H", fat, cluster * 2, cluster + 1 if i + 1 < readme_clusters else 0xFFFF)

    root = bytearray(root_sectors * SECTOR)
    root[0:32] = _dir_entry(VOLUME_LABEL, 0x08, 0, 0)
    root[32:64] = _dir_entry(README_NAME, 0x20, 2, len(README_TEXT))

    volume = bytearray(_boot_sector(total, spc, fat_sectors))
    volume += fat * NUM_FATS
    volume += root
    volume += README_TEXT
    return _mbr(size_sectors) + bytes((PARTITION_START - 1) * SECTOR) + bytes(volume)


def build_base_disk(size_bytes: int = DEFAULT_DISK_SIZE) -> bytes:
    """A raw disk of ``size_bytes``: MBR, one FAT16 partition at LBA 2048, README.TXT in it."""
    head = base_disk_head(size_bytes)
    return head + bytes(size_bytes - len(head))


def open_or_create_disk(path: str | Path, size_bytes: int = DEFAULT_DISK_SIZE) -> VhdDisk:
    """A child partition's disk: the existing VHD at ``path`` (validated, never reformatted),
    or a new one made from the base disk when there is none. Raises ``VhdError``."""
    path = Path(path)
    if path.exists():
        return VhdDisk.open(path)
    return VhdDisk.create(path, size_bytes, base_disk_head(size_bytes))
