"""`make setup` on a fresh machine: it installs the Debian packages the tools and tests need (only those
the machine lacks, once), or says in one message which ones to install when it cannot.

The real `make` runs the Makefile's own recipe; only apt-get is a stand-in (a script that records its
arguments and "installs" a package by creating its probe file), so no test touches the machine's packages.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def make(*args: str, user: bool = False) -> subprocess.CompletedProcess[str]:
    command = ["make", "-s", "-C", str(ROOT), *args]
    if user:  # an ordinary user without sudo rights
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MAKEFLAGS": "", "MAKELEVEL": ""})


@pytest.fixture
def fake_apt(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(apt-get stand-in, its log, the probe file the fake package provides)."""
    tmp_path.chmod(0o777)
    log, probe = tmp_path / "apt.log", tmp_path / "fake-package-installed"
    apt = tmp_path / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$*" >> {log}\ncase "$*" in *" install "*) touch {probe} ;; esac\n')
    apt.chmod(apt.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return apt, log, probe


def test_this_machine_has_every_system_package_after_setup() -> None:
    """`make test` runs the set-up first, so here nothing of SYSTEM_PACKAGES may be missing."""
    result = make("system-missing")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"missing Debian packages: {result.stdout.strip()}"


@pytest.mark.skipif(os.geteuid() != 0, reason="installs as root only (the stand-in apt-get is called as root)")
def test_setup_installs_only_what_is_missing_and_a_second_run_does_nothing(
        tmp_path: Path, fake_apt: tuple[Path, Path, Path]) -> None:
    apt, log, probe = fake_apt
    args = ("system", f"SYSTEM_PACKAGES=hyperlab-fake:{probe} make:make", f"APT_GET={apt}",
            f"SYSTEM_STAMP={tmp_path / 'stamp'}")
    first = make(*args)
    assert first.returncode == 0, first.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 2 and "update" in calls[0].split()
    assert calls[1].split()[-2:] == ["install", "hyperlab-fake"] and "-y" in calls[1].split()
    assert "installing hyperlab-fake" in first.stderr

    again = make(*args)
    assert again.returncode == 0, again.stderr
    assert log.read_text().splitlines() == calls  # stamped: apt-get not called again

    (tmp_path / "stamp").unlink()
    recheck = make(*args)  # no stamp, but nothing missing: still no apt-get
    assert recheck.returncode == 0, recheck.stderr
    assert log.read_text().splitlines() == calls


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to run make as an ordinary user (setpriv)")
def test_without_root_or_sudo_one_message_names_the_packages(
        tmp_path: Path, fake_apt: tuple[Path, Path, Path]) -> None:
    apt, log, probe = fake_apt
    result = make("system", f"SYSTEM_PACKAGES=hyperlab-fake:{probe} hyperlab-other:no-such-command-xyz",
                  f"APT_GET={apt}", f"SYSTEM_STAMP={tmp_path / 'stamp'}", user=True)
    assert result.returncode != 0
    assert "lacks the Debian packages: hyperlab-fake hyperlab-other" in result.stderr
    assert "apt-get install hyperlab-fake hyperlab-other" in result.stderr
    assert not log.exists() and not (tmp_path / "stamp").exists()
