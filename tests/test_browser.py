"""The manager page in a real browser (Playwright driving Debian's Chromium) against a real server.

Each test gets a fresh browser context, i.e. a fresh session and so a lab of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import InProcessServer, LiveServer
from playwright.sync_api import Locator, Page, expect

from hyperlab.web.app import create_app

BOOT_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("browser-server")) as live:
        yield live


@pytest.fixture
def manager(page: Page, server: LiveServer) -> Iterator[Page]:
    """The manager page, loaded, with page errors collected (and asserted absent at the end)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    expect(page.locator("#partitions tbody tr")).to_have_count(3, timeout=BOOT_TIMEOUT_MS)
    yield page
    assert errors == [], errors


def row(page: Page, name: str) -> Locator:
    return page.locator(f'#partitions tbody tr[data-partition="{name}"]')


def console_text(page: Page, name: str) -> str:
    return page.evaluate("(name) => window.__hyperlab.consoleText(name)", name)


def wait_console(page: Page, name: str, needle: str, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
    page.wait_for_function(
        "([name, needle]) => window.__hyperlab.consoleText(name).includes(needle)",
        arg=[name, needle], timeout=timeout_ms,
    )


def connect(page: Page, name: str) -> None:
    row(page, name).get_by_role("button", name=f"Connect to the console of {name}").click()
    wait_console(page, name, f"{name}$ ")
    page.locator(f'.console-pane[data-partition="{name}"] .xterm').click()


def test_page_lists_the_partitions(manager: Page) -> None:
    for name, role in (("root", "root"), ("child1", "child"), ("child2", "child")):
        expect(row(manager, name).locator("td.name")).to_have_text(name)
        expect(row(manager, name).locator("td.role")).to_have_text(role)
        expect(row(manager, name).locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    expect(manager.locator("#link-state")).to_have_text("live")
    # buttons follow the partition's allowed actions
    expect(row(manager, "child1").get_by_role("button", name="Pause child1")).to_be_enabled()
    expect(row(manager, "child1").get_by_role("button", name="Start child1")).to_be_disabled()
    # the counters panel shows the selected partition's live counters
    expect(manager.locator("#counters tbody tr").first).to_be_visible()


def test_console_shows_prompt_and_help(manager: Page) -> None:
    connect(manager, "child1")
    # rendered by xterm.js, not only held in its buffer
    expect(manager.locator('.console-pane[data-partition="child1"] .xterm-rows')).to_contain_text("child1$")
    manager.keyboard.type("help")
    manager.keyboard.press("Enter")
    wait_console(manager, "child1", "crash", timeout_ms=10_000)
    text = console_text(manager, "child1")
    answer = text[text.rfind("$ help"):]
    for command in ("ver", "echo", "uptime", "syscalls", "spin", "crash"):
        assert command in answer, answer


def test_two_consoles_at_once(manager: Page) -> None:
    connect(manager, "child1")
    connect(manager, "child2")
    manager.keyboard.type("echo from-two")
    manager.keyboard.press("Enter")
    wait_console(manager, "child2", "from-two", timeout_ms=10_000)
    expect(manager.get_by_role("tab")).to_have_count(2)
    assert "from-two" not in console_text(manager, "child1")


def test_crash_kernel_marks_only_that_partition_crashed(manager: Page) -> None:
    connect(manager, "child1")
    manager.keyboard.type("crash kernel")
    manager.keyboard.press("Enter")
    expect(row(manager, "child1").locator(".state")).to_have_text("crashed", timeout=15_000)
    expect(row(manager, "child1").locator(".reason")).not_to_be_empty()
    expect(row(manager, "child2").locator(".state")).to_have_text("running")
    expect(row(manager, "root").locator(".state")).to_have_text("running")
    # Reset is offered for the crashed partition and brings it back to a prompt: a fresh boot banner,
    # then the prompt after it (typing into a kernel that is still booting would be lost, as on hardware).
    boots = console_text(manager, "child1").count("on partition child1")
    row(manager, "child1").get_by_role("button", name="Reset child1").click()
    expect(row(manager, "child1").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    manager.wait_for_function(
        """([boots]) => {
             const parts = window.__hyperlab.consoleText('child1').split('on partition child1');
             return parts.length > boots + 1 && parts[parts.length - 1].includes('child1$ ');
           }""", arg=[boots], timeout=BOOT_TIMEOUT_MS)


def test_large_paste_keeps_the_console_open(manager: Page) -> None:
    """A paste bigger than the server's 4 KiB message cap goes out in chunks, not as one refused frame."""
    connect(manager, "child1")
    manager.evaluate("() => window.__hyperlab.consoles.terminal('child1').paste('echo ' + 'a'.repeat(5000))")
    manager.keyboard.press("Enter")
    # Nothing is lost: what does not fit in the guest's buffer waits in its UART.
    manager.keyboard.type("echo after-paste")
    manager.keyboard.press("Enter")
    manager.wait_for_function(  # typed once, then printed by echo on its own line
        "() => window.__hyperlab.consoleText('child1').includes('\\nafter-paste')", timeout=10_000)
    assert "\nafter-paste" in console_text(manager, "child1"), console_text(manager, "child1")[-500:]
    status = manager.locator('.console-pane[data-partition="child1"] .console-status')
    expect(status).to_have_text(re.compile(r"^connected to child1"))


def test_dead_lab_shows_lab_stopped_and_restart_brings_it_back(page: Page, tmp_path: Path) -> None:
    app = create_app({"HYPERLAB_DATA_DIR": tmp_path, "HYPERLAB_SECRET_KEY": "test"})
    with InProcessServer(app) as server:
        page.goto(server.url + "/")
        expect(row(page, "child1").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
        connect(page, "child1")
        lab_id = page.evaluate("() => window.__hyperlab.labId")
        app.extensions["hyperlab.labs"].get(lab_id).process.kill()

        banner = page.locator("#stopped-banner")
        expect(banner).to_be_visible(timeout=10_000)
        expect(banner).to_contain_text("Lab stopped")
        for name in ("root", "child1", "child2"):
            expect(row(page, name).locator(".state")).to_have_text("lab stopped")
            expect(row(page, name).get_by_role("button", name=f"Reset {name}")).to_be_disabled()
        expect(page.locator('.console-pane[data-partition="child1"] .console-status')).to_contain_text(
            "lab stopped")

        banner.get_by_role("button", name="Restart lab").click()
        expect(banner).to_be_hidden(timeout=BOOT_TIMEOUT_MS)
        for name in ("root", "child1", "child2"):
            expect(row(page, name).locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
        # the open console reconnected to the fresh lab and answers
        status = page.locator('.console-pane[data-partition="child1"] .console-status')
        expect(status).to_have_text(re.compile(r"^connected to child1"), timeout=BOOT_TIMEOUT_MS)
        wait_console(page, "child1", "child1$ ")
        page.locator('.console-pane[data-partition="child1"] .xterm').click()
        page.keyboard.type("echo fresh-lab")
        page.keyboard.press("Enter")
        wait_console(page, "child1", "\nfresh-lab", timeout_ms=10_000)
