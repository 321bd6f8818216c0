"""The committed guest image is exactly what the sources in guests/ build to."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_guest_image_rebuilds_byte_identical(tmp_path: Path) -> None:
    work = tmp_path / "tree"
    shutil.copytree(ROOT / "guests", work / "guests", ignore=shutil.ignore_patterns("build"))
    (work / "core" / "images").mkdir(parents=True)
    subprocess.run(["make", "-s", "-C", str(work / "guests")], check=True, capture_output=True, timeout=300)
    rebuilt = (work / "core" / "images" / "kernel.bin").read_bytes()
    committed = (ROOT / "core" / "images" / "kernel.bin").read_bytes()
    assert rebuilt == committed, "core/images/kernel.bin is stale: run `make guests` and commit the image"
