"""The base disk, checked by the standard Linux tools a student would use on a downloaded disk.

``fsck.fat`` (dosfstools) and ``mtools`` are required (``.ci/run`` installs them): these tests
skip nothing, because an image only our own code can read proves nothing.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hyperlab.core.diskimage import (
    DEFAULT_DISK_SIZE,
    README_TEXT,
    base_disk_head,
    build_base_disk,
    open_or_create_disk,
)
from hyperlab.core.vhd import VhdDisk

MIB = 1 << 20
PART_OFFSET = 2048 * 512


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    assert found, f"{name} is missing: apt-get install dosfstools mtools (.ci/run installs them)"
    return found


def run(*args: str, env: dict[str, str] | None = None) -> str:
    """Run a tool and return its output, line endings untouched (README.TXT has DOS ones)."""
    proc = subprocess.run([tool(args[0]), *args[1:]], check=False, capture_output=True, timeout=60,
                          env={**os.environ, "MTOOLS_SKIP_CHECK": "1", **(env or {})})
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{out}"
    return out


def write_sparse(path: Path, size: int) -> Path:
    """The image as a sparse file: what a disk made from base_disk_head looks like."""
    with open(path, "wb") as f:
        f.write(base_disk_head(size))
        f.truncate(size)
    return path


def fsck_partition(image: Path, tmp_path: Path) -> str:
    part = tmp_path / "partition.img"
    run("dd", f"if={image}", f"of={part}", "bs=1M", "skip=1", "conv=sparse", "status=none")  # LBA 2048 on
    return run("fsck.fat", "-n", "-v", str(part))


def test_base_disk_is_deterministic_and_the_size_asked() -> None:
    a, b = build_base_disk(), build_base_disk()
    assert a == b and len(a) == DEFAULT_DISK_SIZE == 16 * MIB + 4096  # 16 MiB, geometry-exact (test_vhd)
    assert a.startswith(base_disk_head()) and not a[len(base_disk_head()):].strip(b"\0")


def test_mbr_has_one_fat16_partition_from_lba_2048(tmp_path: Path) -> None:
    disk = build_base_disk()
    mbr = disk[:512]
    assert mbr[510:512] == b"\x55\xAA"
    status, ptype = mbr[446], mbr[450]
    start, count = struct.unpack("<II", mbr[454:462])
    assert (status, ptype, start, count) == (0x00, 0x06, 2048, DEFAULT_DISK_SIZE // 512 - 2048)
    assert mbr[462:510] == bytes(48)  # the other three entries are empty
    assert not disk[512:PART_OFFSET].strip(b"\0")  # the dd scratch area starts out zero
    # mtools reads the partition table itself (not an offset we give it):
    image = tmp_path / "disk.img"
    image.write_bytes(disk)
    rc = tmp_path / "mtoolsrc"
    rc.write_text(f'drive x: file="{image}" partition=1\n')
    assert "-b 2048 -l 30728" in run("mpartition", "-p", "x:", env={"MTOOLSRC": str(rc)})


def test_fsck_accepts_the_fat16_filesystem(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(build_base_disk())
    report = fsck_partition(image, tmp_path)
    assert "16 bit entries" in report                      # FAT16
    assert "512 root directory entries" in report
    assert "2048 hidden sectors" in report
    assert "Media byte 0xf8" in report
    assert "30728 sectors total" in report
    boot = image.read_bytes()[PART_OFFSET:PART_OFFSET + 512]
    assert boot[38] == 0x29 and boot[43:54] == b"HYPERLAB   " and boot[54:62] == b"FAT16   "
    assert boot[510:512] == b"\x55\xAA"


def test_mtools_reads_the_readme_and_the_label(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(build_base_disk())
    text = run("mtype", "-i", f"{image}@@1048576", "::README.TXT")
    assert text.encode() == README_TEXT
    assert "sectors 1..2047" in text and "write NAME TEXT" in text
    listing = run("mdir", "-i", f"{image}@@1M", "::")
    assert "HYPERLAB" in listing and "README   TXT" in listing and "2025-01-01" in listing


def test_the_filesystem_takes_new_files(tmp_path: Path) -> None:
    """What the guest's `write` will do, done by mtools: the result must still check clean."""
    image = tmp_path / "disk.img"
    image.write_bytes(build_base_disk())
    src = tmp_path / "notes.txt"
    src.write_bytes(b"x" * 5000)  # several clusters
    run("mcopy", "-i", f"{image}@@1M", str(src), "::NOTES.TXT")
    assert run("mtype", "-i", f"{image}@@1M", "::NOTES.TXT") == "x" * 5000
    fsck_partition(image, tmp_path)


@pytest.mark.parametrize("size", [4 * MIB, 16 * MIB, 100 * MIB, 512 * MIB])
def test_cluster_count_is_valid_fat16_for_every_size(tmp_path: Path, size: int) -> None:
    image = write_sparse(tmp_path / "disk.img", size)
    report = fsck_partition(image, tmp_path)
    clusters = int(report.split(" data clusters")[0].rsplit("\n", 1)[1])
    assert 4085 <= clusters <= 65524
    assert "16 bit entries" in report
    assert run("mtype", "-i", f"{image}@@1M", "::README.TXT").encode() == README_TEXT


@pytest.mark.parametrize(("size", "problem"), [
    (2 * MIB, "too small for FAT16"),
    (1 * MIB, "no room for a partition"),
    (16 * MIB + 100, "multiple of 512"),
])
def test_impossible_sizes_are_refused(size: int, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build_base_disk(size)


def test_a_child_disk_is_a_vhd_that_standard_tools_open(tmp_path: Path) -> None:
    path = tmp_path / "child2.vhd"
    disk = open_or_create_disk(path)
    assert disk.size_bytes == DEFAULT_DISK_SIZE and path.stat().st_size == DEFAULT_DISK_SIZE + 512
    disk.write(1, b"\xEE" * 512)  # the dd scratch area
    disk.close()
    # A fixed VHD's data starts at byte 0, so tools read the partition inside the .vhd directly.
    assert run("mtype", "-i", f"{path}@@1M", "::README.TXT").encode() == README_TEXT
    before = path.read_bytes()
    with open_or_create_disk(path) as again:  # an existing disk is opened, never rebuilt
        assert again.read(1, 1) == b"\xEE" * 512
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child2.vhd"]


def test_a_disk_made_by_the_base_image_matches_it(tmp_path: Path) -> None:
    with VhdDisk.create(tmp_path / "d.vhd", DEFAULT_DISK_SIZE, base_disk_head()) as disk:
        assert disk.read(0, disk.sector_count) == build_base_disk()
