"""Shared pytest fixtures.

Sections are owned by different parts of the project; keep each one self-contained.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

# --------------------------------------------------------------------------------------------------
# Browser tests (build/setup infrastructure)
#
# pytest-playwright provides `page`, `context`, `browser` fixtures; we only tell it which browser to
# launch: Debian's Chromium (apt-get install chromium), never a Playwright-downloaded one
# (`playwright install` needs the internet, which this lab's machines and CI don't have).
# Use it as:   def test_x(page): page.goto(url); ...
# Override the binary with HYPERLAB_CHROMIUM=/path/to/chromium.
# --------------------------------------------------------------------------------------------------

CHROMIUM = os.environ.get("HYPERLAB_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in CI/containers
    "--disable-gpu",
    "--no-first-run",
    # The machine's network is closed: without these, Chromium keeps opening connections to
    # Google's hosts that are refused, many at a time.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"browser tests need Chromium at {CHROMIUM}: `apt-get install -y chromium` "
            "(or set HYPERLAB_CHROMIUM); `playwright install` is not used in this project"
        )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,  # no display on CI or the lab machines
        "args": CHROMIUM_ARGS,
    }


# --------------------------------------------------------------------------------------------------
# Databases (identity-db): the progress and identity tests run against SQLite and a real PostgreSQL
# server started here once per run (tests/pgserver.py; Debian's `postgresql`, installed by `make test`).
# Use `database_url` (parametrized: one fresh database per test and backend) or `postgres` directly.
# --------------------------------------------------------------------------------------------------

DATABASES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Any:
    from pgserver import PostgresMissing, PostgresServer

    try:
        server = PostgresServer()
    except PostgresMissing as exc:
        pytest.fail(str(exc))
    with server:
        yield server


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh, empty database: an SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hyperlab.sqlite3'}"
    return request.getfixturevalue("postgres").new_database()
