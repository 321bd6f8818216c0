"""Fixed VHD files: the footer as the published VHD specification lays it out, and refusals of bad files.

The footer is decoded here field by field at the specification's offsets, independently of
core/vhd.py's own struct, so a layout mistake there cannot hide behind itself.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hyperlab.core.diskimage import DEFAULT_DISK_SIZE
from hyperlab.core.vhd import VhdDisk, VhdError, chs_geometry, geometry_exact_size

MIB = 1 << 20


def footer_of(path: Path) -> bytes:
    data = path.read_bytes()
    return data[-512:]


def spec_checksum(footer: bytes) -> int:
    zeroed = footer[:64] + b"\0\0\0\0" + footer[68:]
    return (~sum(zeroed)) & 0xFFFFFFFF


def rewrite_footer(path: Path, patch: dict[int, bytes], fix_checksum: bool = True) -> None:
    data = bytearray(path.read_bytes())
    footer = bytearray(data[-512:])
    for offset, value in patch.items():
        footer[offset:offset + len(value)] = value
    if fix_checksum:
        footer[64:68] = struct.pack(">I", spec_checksum(bytes(footer)))
    data[-512:] = footer
    path.write_bytes(bytes(data))


@pytest.fixture
def disk_path(tmp_path: Path) -> Path:
    path = tmp_path / "child.vhd"
    VhdDisk.create(path, 1 * MIB, b"hello" + bytes(507) + b"second sector").close()
    return path


def test_create_writes_data_then_a_spec_footer(tmp_path: Path) -> None:
    path = tmp_path / "d.vhd"
    before = datetime.datetime.now(datetime.UTC)
    disk = VhdDisk.create(path, 16 * MIB, b"\xAA" * 1000)
    disk.close()
    raw = path.read_bytes()
    assert len(raw) == 16 * MIB + 512
    assert raw[:1000] == b"\xAA" * 1000 and raw[1000:16 * MIB] == bytes(16 * MIB - 1000)
    f = raw[-512:]
    assert f[0:8] == b"conectix"
    assert struct.unpack(">I", f[8:12])[0] == 0x00000002                  # features: reserved bit
    assert struct.unpack(">I", f[12:16])[0] == 0x00010000                 # file format version
    assert struct.unpack(">Q", f[16:24])[0] == 0xFFFFFFFFFFFFFFFF         # data offset: fixed
    stamp = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        seconds=struct.unpack(">I", f[24:28])[0])
    assert abs((stamp - before).total_seconds()) < 60
    assert f[28:32] == b"hlab"
    assert f[36:40] == b"Wi2k"
    assert struct.unpack(">Q", f[40:48])[0] == 16 * MIB                   # original size
    assert struct.unpack(">Q", f[48:56])[0] == 16 * MIB                   # current size
    cylinders, heads, spt = struct.unpack(">HBB", f[56:60])
    assert (cylinders, heads, spt) == (481, 4, 17)                        # spec algorithm, by hand
    assert struct.unpack(">I", f[60:64])[0] == 2                          # fixed
    assert struct.unpack(">I", f[64:68])[0] == spec_checksum(f)
    assert f[68:84] != bytes(16)                                          # unique id
    assert f[84] == 0 and f[85:] == bytes(427)                            # saved state, reserved


def test_each_disk_gets_its_own_unique_id(tmp_path: Path) -> None:
    VhdDisk.create(tmp_path / "a.vhd", MIB).close()
    VhdDisk.create(tmp_path / "b.vhd", MIB).close()
    assert footer_of(tmp_path / "a.vhd")[68:84] != footer_of(tmp_path / "b.vhd")[68:84]


@pytest.mark.parametrize(("sectors", "chs"), [
    (32768, (481, 4, 17)),            # 16 MiB: 17 sectors per track, at least 4 heads
    (2097152, (2080, 16, 63)),        # 1 GiB: the 63-sector geometry
    (65535 * 16 * 255, (65535, 16, 255)),
    (65535 * 16 * 255 * 2, (65535, 16, 255)),  # capped at the largest CHS
])
def test_geometry_follows_the_spec_algorithm(sectors: int, chs: tuple[int, int, int]) -> None:
    assert chs_geometry(sectors) == chs


def test_round_trip_and_writes_survive_reopening(disk_path: Path) -> None:
    with VhdDisk.open(disk_path) as disk:
        assert disk.sector_count == 2048 and disk.size_bytes == MIB
        assert disk.read(0, 1).startswith(b"hello")
        assert disk.read(1, 1).startswith(b"second sector")
        disk.write(2046, b"\x5A" * 1024)
        disk.flush()
    footer_before = footer_of(disk_path)
    with VhdDisk.open(disk_path) as disk:
        assert disk.read(2046, 2) == b"\x5A" * 1024
        assert disk.read(0, 2048)[:5] == b"hello"
    assert footer_of(disk_path) == footer_before  # writes never touch the footer


def test_out_of_range_io_raises_and_leaves_the_footer(disk_path: Path) -> None:
    before = disk_path.read_bytes()
    with VhdDisk.open(disk_path) as disk:
        with pytest.raises(VhdError, match=r"cannot write sectors 2048\.\.2048.*0\.\.2047"):
            disk.write(2048, bytes(512))  # the footer's place
        with pytest.raises(VhdError, match="cannot write"):
            disk.write(2047, bytes(1024))  # straddles the end
        with pytest.raises(VhdError, match="cannot read"):
            disk.read(2040, 9)
        with pytest.raises(VhdError, match="whole number of sectors"):
            disk.write(0, b"abc")
    assert disk_path.read_bytes() == before


def test_closed_disk_refuses_io(disk_path: Path) -> None:
    disk = VhdDisk.open(disk_path)
    disk.close()
    disk.close()  # idempotent
    with pytest.raises(VhdError, match="closed"):
        disk.read(0, 1)


def test_create_never_replaces_a_file(disk_path: Path) -> None:
    before = disk_path.read_bytes()
    with pytest.raises(VhdError, match="already exists"):
        VhdDisk.create(disk_path, MIB)
    assert disk_path.read_bytes() == before
    assert sorted(p.name for p in disk_path.parent.iterdir()) == ["child.vhd"]  # no temporary left


@pytest.mark.parametrize(("size", "contents", "problem"), [
    (1000, None, "multiple of 512"),
    (0, None, "multiple of 512"),
    (512, bytes(513), "do not fit"),
])
def test_create_refuses_bad_sizes(tmp_path: Path, size: int, contents: bytes | None, problem: str) -> None:
    with pytest.raises(VhdError, match=problem):
        VhdDisk.create(tmp_path / "x.vhd", size, contents)
    assert not (tmp_path / "x.vhd").exists()


def _corrupt_cookie(p: Path) -> None:
    rewrite_footer(p, {0: b"conectiX"})


def _corrupt_checksum(p: Path) -> None:
    rewrite_footer(p, {48: struct.pack(">Q", 2 * MIB)}, fix_checksum=False)  # a field changed, sum not


def _truncate_footer(p: Path) -> None:
    os.truncate(p, p.stat().st_size - 512)


def _truncate_to_nothing(p: Path) -> None:
    os.truncate(p, 700)


def _size_mismatch(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[:-512 - 1024] + data[-512:])  # two sectors gone, footer intact


def _grown(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[:-512] + bytes(512) + data[-512:])


def _dynamic(p: Path) -> None:
    rewrite_footer(p, {60: struct.pack(">I", 3), 16: struct.pack(">Q", 512)})


def _differencing(p: Path) -> None:
    rewrite_footer(p, {60: struct.pack(">I", 4)})


def _unknown_type(p: Path) -> None:
    rewrite_footer(p, {60: struct.pack(">I", 7)})


def _bad_version(p: Path) -> None:
    rewrite_footer(p, {12: struct.pack(">I", 0x00020000)})


@pytest.mark.parametrize(("corrupt", "problem"), [
    (_corrupt_cookie, r"bad cookie b'conectiX'"),
    (_corrupt_checksum, "bad footer checksum"),
    (_truncate_footer, "bad cookie.*truncated"),
    (_truncate_to_nothing, "too short"),
    (_size_mismatch, r"size mismatch: the footer says the disk holds 1048576 bytes but the file has 1047552"),
    (_grown, "size mismatch"),
    (_dynamic, "dynamic VHDs are not supported yet"),
    (_differencing, "differencing VHDs are not supported yet"),
    (_unknown_type, "unknown VHD disk type 7"),
    (_bad_version, "unsupported VHD file format version"),
])
def test_open_refuses_a_bad_file_naming_it_and_leaves_it_alone(disk_path: Path, corrupt, problem: str) -> None:
    corrupt(disk_path)
    before = disk_path.read_bytes()
    with pytest.raises(VhdError, match=problem) as info:
        VhdDisk.open(disk_path)
    assert str(info.value).startswith(f"{disk_path}: ")
    assert disk_path.read_bytes() == before


def test_open_refuses_missing_files_and_directories(tmp_path: Path) -> None:
    with pytest.raises(VhdError, match="no such file") as info:
        VhdDisk.open(tmp_path / "nope.vhd")
    assert str(tmp_path / "nope.vhd") in str(info.value)
    with pytest.raises(VhdError, match="is a directory"):
        VhdDisk.open(tmp_path)


# --- a partition starting on its VHD ---------------------------------------------------------------------
def test_a_corrupt_vhd_fails_the_start_with_the_reason_and_is_left_alone(tmp_path: Path) -> None:
    from guestlab import GuestLab

    path = tmp_path / "child1.vhd"
    VhdDisk.create(path, MIB, b"student files").close()
    _corrupt_checksum(path)
    before = path.read_bytes()
    lab = GuestLab({"data_dir": str(tmp_path), "partitions": [{"name": "root", "role": "root"},
                                                               {"name": "child1", "role": "child"}]}, boot=False)
    try:
        lab.call(lambda: lab.partition("root").start())
        lab.call(lambda: lab.partition("child1").start())
        assert lab.state("child1") == "crashed"
        reason = lab.call(lambda: lab.partition("child1").reason)
        assert reason.startswith(f"cannot start: {path}: bad footer checksum")
        lab.wait_for("child1", b"bad footer checksum")  # the student sees it on the console too
        described = lab.call(lambda: lab.partition("child1").describe())
        assert described["state"] == "crashed" and described["reason"] == reason
        assert described["disk"] == {"path": str(path), "size_bytes": MIB}
        assert path.read_bytes() == before  # never "repaired", never reformatted
        assert lab.call(lambda: lab.partition("child1").disk) is None
        lab.wait_for("root", b"root$ ")  # the rest of the lab goes on
        assert "ok" in lab.type("root", "echo ok")

        path.unlink()  # the student deletes the bad disk: the next start makes a fresh one
        lab.call(lambda: lab.partition("child1").start())
        lab.wait_for("child1", b"child1$ ")
        assert lab.state("child1") == "running"
        with open(path, "rb") as f:
            assert f.read(512)[510:] == b"\x55\xAA"
    finally:
        lab.close()


def test_a_lab_without_data_dir_keeps_disks_in_a_directory_that_ends_with_it(tmp_path: Path) -> None:
    from hyperlab.core.lab import Lab

    settings = {"partitions": [{"name": "root", "role": "root"}, {"name": "child2", "role": "child"}],
                "tsc_khz": 1_000_000}
    lab = Lab(settings, lambda msg: None)
    lab.start()
    disk = Path(lab.scheduler.call(lambda: lab.hv.partitions["child2"].describe()["disk"]["path"]))
    tmp = disk.parent
    assert disk.name == "child2.vhd" and disk.is_file() and "data_dir" not in settings
    assert sorted(p.name for p in tmp.iterdir()) == ["child2.vhd"]  # the root has no disk
    lab.close()
    assert not tmp.exists()

    kept = tmp_path / "labs" / "abc"  # as LabManager passes it: not created yet
    lab = Lab({**settings, "data_dir": str(kept)}, lambda msg: None)
    lab.start()
    lab.close()
    with VhdDisk.open(kept / "child2.vhd") as d:  # kept after the lab, a valid disk
        assert d.size_bytes == DEFAULT_DISK_SIZE


def test_a_partition_name_that_is_no_file_name_is_refused(tmp_path: Path) -> None:
    from hyperlab.core.lab import partition_configs

    with pytest.raises(ValueError, match="cannot name a disk file"):
        partition_configs({"data_dir": str(tmp_path), "partitions": [{"name": "root", "role": "root"},
                                                                      {"name": "../evil", "role": "child"}]})


# --- what other tools make of our disks, and we of theirs (QEMU's vpc driver; .ci/run installs qemu-utils) --
def qemu_img(*args: str) -> str:
    exe = shutil.which("qemu-img")
    assert exe, "qemu-img is missing: apt-get install qemu-utils (.ci/run installs it)"
    proc = subprocess.run([exe, *args], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"qemu-img {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def test_geometry_exact_sizes() -> None:
    assert geometry_exact_size(16 * MIB) == 16 * MIB + 4096 == DEFAULT_DISK_SIZE
    for size in (MIB, 16 * MIB, 100 * MIB + 7, 1 << 30):
        exact = geometry_exact_size(size)
        cylinders, heads, spt = chs_geometry(exact // 512)
        assert exact >= size and cylinders * heads * spt * 512 == exact
        smaller = exact - 512
        while smaller >= size:  # and it is the smallest such size
            c, h, s = chs_geometry(smaller // 512)
            assert c * h * s * 512 != smaller
            smaller -= 512


def test_qemu_reads_our_disk_whole_and_checks_our_checksum(tmp_path: Path) -> None:
    path = tmp_path / "ours.vhd"
    data = bytes(range(256)) * 8 + b"end"
    with VhdDisk.create(path, DEFAULT_DISK_SIZE, data) as disk:
        disk.write(disk.sector_count - 1, b"\x42" * 512)
    info = json.loads(qemu_img("info", "-f", "vpc", "--output=json", str(path)))
    assert info["virtual-size"] == DEFAULT_DISK_SIZE  # by geometry or by current size: the same
    qemu_img("convert", "-f", "vpc", "-O", "raw", str(path), str(tmp_path / "ours.raw"))
    raw = (tmp_path / "ours.raw").read_bytes()
    assert raw[:len(data)] == data and raw[-512:] == b"\x42" * 512 and len(raw) == DEFAULT_DISK_SIZE
    _corrupt_checksum(path)
    proc = subprocess.run(["qemu-img", "info", "-f", "vpc", str(path)], check=False, capture_output=True, text=True)
    assert proc.returncode != 0 and "checksum" in proc.stderr


def test_we_open_qemus_fixed_vhd_and_refuse_its_dynamic_one(tmp_path: Path) -> None:
    fixed, dynamic = tmp_path / "fixed.vhd", tmp_path / "dynamic.vhd"
    qemu_img("create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size=on", str(fixed), "4M")
    with VhdDisk.open(fixed) as disk:
        assert disk.size_bytes == 4 * MIB and disk.read(0, 8) == bytes(4096)
        disk.write(8191, b"\x99" * 512)
    qemu_img("convert", "-f", "vpc", "-O", "raw", str(fixed), str(tmp_path / "fixed.raw"))
    assert (tmp_path / "fixed.raw").read_bytes()[-512:] == b"\x99" * 512
    qemu_img("create", "-q", "-f", "vpc", "-o", "subformat=dynamic", str(dynamic), "4M")
    before = dynamic.read_bytes()
    with pytest.raises(VhdError, match="dynamic VHDs are not supported yet"):
        VhdDisk.open(dynamic)
    assert dynamic.read_bytes() == before
