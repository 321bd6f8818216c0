"""The guest's disk, end to end: shell commands -> system calls -> fat.c -> ide.c -> the IDE model -> the VHD.

What a student does in child2's shell (ls, cat, write, rm, dd) on the real core, then the same
disk checked from outside with the standard tools (fsck.fat, mtools), and disks damaged or
filled on purpose: each gives the guest a clear error, never a crash.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path

import pytest
from guestlab import GuestLab

from hyperlab.core.diskimage import PARTITION_START, open_or_create_disk
from hyperlab.core.vhd import FOOTER_SIZE

PART_OFFSET = PARTITION_START * 512
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
DD_LINE = r"dd: {} {} sectors \({} bytes\) in \d+ us: \d+\.\d\d MB/s"


def mtools(tool: str, vhd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run an mtools command on the FAT16 partition inside a VHD (the footer lies beyond it)."""
    return subprocess.run([tool, "-i", f"{vhd}@@{PART_OFFSET}", *args], env=MTOOLS_ENV, capture_output=True,
                          text=True, check=check, timeout=60)


def fsck(vhd: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """fsck.fat -n on the partition: the VHD's data without the MBR gap and the 512-byte footer."""
    data = vhd.read_bytes()[:-FOOTER_SIZE]
    part = work / f"{vhd.stem}.part"
    part.write_bytes(data[PART_OFFSET:])
    return subprocess.run(["fsck.fat", "-n", str(part)], check=False, capture_output=True, text=True, timeout=60)


def restart(lab: GuestLab, name: str) -> str:
    mark = len(lab.output.get(name, b""))
    lab.call(lambda: lab.partition(name).reset())
    return lab.wait_for(name, lab.prompt(name), mark)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = GuestLab({"data_dir": str(tmp_path_factory.mktemp("disks"))})
    yield lab
    lab.close()


def child2_disk(lab: GuestLab) -> Path:
    return Path(lab.partition("child2").config.disk_path)


def test_boot_finds_the_ide_disk_and_help_lists_the_disk_commands(lab: GuestLab) -> None:
    assert re.search(r'disk: ide "hyperlab IDE disk", \d+ sectors \(\d+ MiB\)', lab.wait_for("child2", b"$ "))
    out = lab.type("child2", "help")
    for command in ("ls", "cat NAME", "write NAME TEXT", "rm NAME", "dd write N", "dd read N"):
        assert command in out


def test_ls_shows_the_readme_of_the_base_disk_and_cat_prints_it(lab: GuestLab) -> None:
    assert re.search(r"README\.TXT\s+\d+  2025-01-01 00:00", lab.type("child2", "ls"))
    out = lab.type("child2", "cat README.TXT")
    assert "HYPERLAB DISK" in out and "dd write N" in out
    assert "HYPERLAB DISK" in lab.type("child2", "cat readme.txt")  # 8.3 names ignore case


def test_write_then_cat_round_trip_and_write_replaces(lab: GuestLab) -> None:
    assert lab.type("child2", "write notes.txt first version") == "write notes.txt first version\r\nchild2$ "
    assert "first version" in lab.type("child2", "cat NOTES.TXT")
    lab.type("child2", "write Notes.Txt the second, longer version of the file")
    out = lab.type("child2", "cat notes.txt")
    assert "the second, longer version of the file" in out and "first version" not in out
    listing = lab.type("child2", "ls")
    assert listing.count("NOTES.TXT") == 1
    assert re.search(r"NOTES\.TXT\s+39\s", listing)  # the text and the newline `write` adds


def test_rm_deletes_the_file(lab: GuestLab) -> None:
    lab.type("child2", "write gone.txt soon deleted")
    assert "GONE.TXT" in lab.type("child2", "ls")
    assert lab.type("child2", "rm gone.txt") == "rm gone.txt\r\nchild2$ "
    assert "GONE.TXT" not in lab.type("child2", "ls")
    assert "cat: gone.txt: no such file" in lab.type("child2", "cat gone.txt")


def test_errors_are_clear_messages(lab: GuestLab) -> None:
    assert "cat: missing.txt: no such file" in lab.type("child2", "cat missing.txt")
    assert "rm: missing.txt: no such file" in lab.type("child2", "rm missing.txt")
    for bad in ("toolongname.txt", "a.b.c", "bad/name", "name.text", ".txt"):
        assert f"write: {bad}: not an 8.3 file name" in lab.type("child2", f"write {bad} x")
    assert "usage: write NAME TEXT" in lab.type("child2", "write lonely.txt")
    assert "usage: cat NAME" in lab.type("child2", "cat")
    assert lab.state("child2") == "running"


def test_root_partition_has_no_disk(lab: GuestLab) -> None:
    assert "disk: none" in lab.wait_for("root", b"$ ")
    assert "ls: no disk" in lab.type("root", "ls")
    assert "dd: no disk" in lab.type("root", "dd read 1")


def test_files_survive_a_restart_of_the_partition(lab: GuestLab) -> None:
    lab.type("child2", "write keep.txt written before the restart")
    boot = restart(lab, "child2")
    assert "disk: ide" in boot
    assert "written before the restart" in lab.type("child2", "cat keep.txt")


def test_dd_moves_raw_sectors_through_one_port_exit_per_word(lab: GuestLab) -> None:
    before = lab.counters()
    out = lab.type("child2", "dd write 64", timeout=60)
    assert re.search(DD_LINE.format("wrote", 64, 64 * 512), out)
    out = lab.type("child2", "dd read 64", timeout=60)
    assert re.search(DD_LINE.format("read", 64, 64 * 512), out)
    after = lab.counters()
    # PIO: every 16-bit word of every sector is its own intercept.
    assert after["child2.exits.io_port"] - before.get("child2.exits.io_port", 0) >= 2 * 64 * 256
    assert after["child2.disk.sectors_written"] - before.get("child2.disk.sectors_written", 0) == 64
    assert after["child2.disk.sectors_read"] - before.get("child2.disk.sectors_read", 0) >= 64


def test_dd_stays_in_the_scratch_area(lab: GuestLab) -> None:
    for n in ("0", "2048", "99999999"):
        assert "dd: N must be 1..2047" in lab.type("child2", f"dd write {n}")
    assert "usage: dd write N | dd read N" in lab.type("child2", "dd copy 5")
    assert "NOTES.TXT" in lab.type("child2", "ls")  # dd never reaches the partition


def test_the_disk_stays_a_valid_fat16_volume_that_standard_tools_read(lab: GuestLab, tmp_path: Path) -> None:
    lab.type("child2", "write student.txt Hello from the guest")
    lab.call(lambda: lab.partition("child2").turn_off())
    try:
        vhd = child2_disk(lab)
        result = fsck(vhd, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert mtools("mtype", vhd, "::STUDENT.TXT").stdout == "Hello from the guest\n"
        assert "HYPERLAB DISK" in mtools("mtype", vhd, "::README.TXT").stdout
        assert "GONE" not in mtools("mdir", vhd, "::").stdout
    finally:
        lab.call(lambda: lab.partition("child2").start())
        lab.wait_for("child2", lab.prompt("child2"))


# --- disks filled or damaged on purpose ------------------------------------------------------------


def fat_layout(vhd: Path) -> dict[str, int]:
    """The BPB fields needed to find the FATs and the root directory (absolute byte offsets)."""
    with open(vhd, "rb") as f:
        f.seek(PART_OFFSET)
        bs = f.read(512)
    bps, _spc, reserved, nfats, root_entries = struct.unpack_from("<HBHBH", bs, 11)
    fat_sectors = struct.unpack_from("<H", bs, 22)[0]
    fat = PART_OFFSET + reserved * bps
    return {"fat": fat, "fat_bytes": fat_sectors * bps, "nfats": nfats,
            "root": fat + nfats * fat_sectors * bps, "root_entries": root_entries}


def free_bytes(vhd: Path) -> int:
    last = mtools("mdir", vhd, "::").stdout.strip().splitlines()[-1]
    return int(re.sub(r"\D", "", last.split("bytes free")[0]))


def fill_disk(vhd: Path, tmp: Path) -> None:
    """Leave exactly one free cluster (the base disk has 512-byte clusters at its default size)."""
    filler = tmp / "FILLER.BIN"
    filler.write_bytes(b"z" * (free_bytes(vhd) - 512))
    mtools("mcopy", vhd, str(filler), "::FILLER.BIN")
    assert free_bytes(vhd) == 512


def fill_root_directory(vhd: Path, tmp: Path) -> None:
    files = []
    for i in range(fat_layout(vhd)["root_entries"]):
        f = tmp / f"E{i:04d}.TXT"
        f.write_bytes(b"")
        files.append(str(f))
    mtools("mcopy", vhd, *files, "::", check=False)  # stops when the directory is full


def make_chain_loop(vhd: Path, tmp: Path) -> None:
    """LOOP.TXT's second cluster points back at its first, in both FATs."""
    src = tmp / "LOOP.TXT"
    src.write_bytes(b"q" * 5000)
    mtools("mcopy", vhd, str(src), "::LOOP.TXT")
    layout = fat_layout(vhd)
    data = bytearray(vhd.read_bytes())
    for slot in range(layout["root_entries"]):
        entry = data[layout["root"] + 32 * slot:layout["root"] + 32 * slot + 32]
        if entry[:11] == b"LOOP    TXT":
            first = struct.unpack_from("<H", entry, 26)[0]
            break
    for k in range(layout["nfats"]):
        fat = layout["fat"] + k * layout["fat_bytes"]
        second = struct.unpack_from("<H", data, fat + 2 * first)[0]
        struct.pack_into("<H", data, fat + 2 * second, first)
    vhd.write_bytes(bytes(data))


def damage_bpb(vhd: Path, tmp: Path) -> None:
    with open(vhd, "r+b") as f:
        f.seek(PART_OFFSET + 11)
        f.write(struct.pack("<H", 1024))  # bytes per sector


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("hostile")
    prepare = {"full": fill_disk, "dirfull": fill_root_directory, "loop": make_chain_loop, "broken": damage_bpb}
    for name, damage in prepare.items():
        open_or_create_disk(data / f"{name}.vhd").close()
        damage(data / f"{name}.vhd", tmp_path_factory.mktemp(name))
    partitions = [{"name": "root", "role": "root"}]
    partitions += [{"name": name, "integration_services": False} for name in prepare]
    # The monolithic design (device models in the hypervisor): the same guest path, a faster host side.
    lab = GuestLab({"data_dir": str(data), "partitions": partitions, "design": "monolithic"})
    yield lab
    lab.close()


def test_a_full_disk_gives_a_clear_error_and_dd_leaves_the_volume_valid(hostile: GuestLab, tmp_path: Path) -> None:
    hostile.type("full", "write one.txt fits in the last cluster")
    assert "write: two.txt: disk full" in hostile.type("full", "write two.txt does not fit")
    assert "fits in the last cluster" in hostile.type("full", "cat one.txt")
    assert "cat: two.txt: no such file" in hostile.type("full", "cat two.txt")
    hostile.type("full", "write one.txt a replacement may reuse the file's own cluster")
    hostile.type("full", "rm one.txt")
    hostile.type("full", "write two.txt fits now")
    assert "fits now" in hostile.type("full", "cat two.txt")
    # All of the scratch area, up to the sector before the partition.
    assert re.search(DD_LINE.format("wrote", 2047, 2047 * 512), hostile.type("full", "dd write 2047", timeout=120))
    hostile.call(lambda: hostile.partition("full").turn_off())
    result = fsck(Path(hostile.partition("full").config.disk_path), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_full_root_directory_gives_a_clear_error(hostile: GuestLab) -> None:
    assert "write: new.txt: root directory full" in hostile.type("dirfull", "write new.txt x")
    hostile.type("dirfull", "rm e0003.txt")
    hostile.type("dirfull", "write new.txt takes the freed slot")
    assert "takes the freed slot" in hostile.type("dirfull", "cat new.txt")


def test_a_looping_cluster_chain_is_an_error_not_a_hang(hostile: GuestLab) -> None:
    out = hostile.type("loop", "cat loop.txt")
    assert "cat: loop.txt: the file system on the disk is damaged" in out
    assert "qqqq" not in out
    hostile.type("loop", "rm loop.txt")
    assert "LOOP.TXT" not in hostile.type("loop", "ls")
    assert hostile.state("loop") == "running"


def test_a_damaged_boot_sector_is_refused_and_raw_io_still_works(hostile: GuestLab) -> None:
    out = hostile.type("broken", "ls")
    assert "fat: bytes per sector is not 512 (1024)" in out
    assert "ls: the file system on the disk is damaged" in out
    assert "the file system on the disk is damaged" in hostile.type("broken", "write x.txt y")
    assert re.search(DD_LINE.format("read", 8, 4096), hostile.type("broken", "dd read 8"))
    assert hostile.state("broken") == "running"
