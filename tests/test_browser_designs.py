"""The design panel in a real browser: the Design switch, the live architecture picture and the fault menu.

Playwright drives Debian's Chromium against a real server (gunicorn), each test with a fresh browser
context, i.e. a session and a lab of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from liveserver import LiveServer
from playwright.sync_api import Locator, Page, expect

BOOT_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("designs-server")) as live:
        yield live


@pytest.fixture
def manager(page: Page, server: LiveServer) -> Iterator[Page]:
    """The home page with its lab running and the design panel filled in; no page errors allowed."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    for name in ("root", "child1", "child2"):
        expect(row(page, name).locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    expect(page.locator("#design-current")).to_have_text("Micro-kernel (Hyper-V)", timeout=BOOT_TIMEOUT_MS)
    yield page
    assert errors == [], errors


def row(page: Page, name: str) -> Locator:
    return page.locator(f'#partitions tbody tr[data-partition="{name}"]')


def run(page: Page, name: str, command: str) -> None:
    """Type a command into the partition's console as a student would and wait for the next prompt."""
    page.evaluate("(name) => window.__hyperlab.openConsole(name)", name)
    page.wait_for_function("(name) => window.__hyperlab.consoleText(name).trimEnd().endsWith(name + '$')",
                           arg=name, timeout=BOOT_TIMEOUT_MS)
    before = page.evaluate("(name) => window.__hyperlab.consoleText(name).length", name)
    page.locator(f'.console-pane[data-partition="{name}"] .xterm').click()
    page.keyboard.type(command)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "([name, before]) => { const t = window.__hyperlab.consoleText(name).slice(before);"
        " return t.includes('\\n') && t.trimEnd().endsWith(name + '$'); }",
        arg=[name, before], timeout=BOOT_TIMEOUT_MS)


def edge(page: Page, source: str, target: str) -> Locator:
    return page.locator(f'#designs-panel [data-edge="{source}|{target}"]')


def per_port_access(page: Page, name: str) -> float:
    cell = page.locator(f'#mode-switches tr[data-partition="{name}"][data-op="exits.io_port"] .per-op')
    expect(cell).to_have_count(1)
    return float(cell.inner_text())


def wait_edge(page: Page, source: str, target: str, at_least: int) -> None:
    """Until the edge source -> target shows a count of at least ``at_least`` (the next snapshots bring it)."""
    page.wait_for_function(
        "([key, n]) => { const e = document.querySelector(`#designs-panel [data-edge=\"${key}\"]`);"
        " return e !== null && Number(e.dataset.count) >= n; }",
        arg=[f"{source}|{target}", at_least], timeout=10_000)


def test_the_picture_lights_up_the_hops_that_happened_with_counts(manager: Page) -> None:
    picture = manager.locator('#designs-panel svg[role="img"]')
    expect(picture).to_be_visible()
    # Where the micro-kernel design runs things, from the lab's components.
    expect(picture.locator(".arch-components")).to_contain_text(["child2: worker · ide · uart"])
    manager.click("#arch-reset")
    run(manager, "child2", "io 300")
    # Every port read went child2 -> hypervisor -> root kernel -> worker (root user) and back.
    for source, target in (("child2/kernel", "hypervisor"), ("hypervisor", "root/kernel"),
                           ("root/kernel", "root/user"), ("root/user", "root/kernel"),
                           ("hypervisor", "child2/kernel")):
        wait_edge(manager, source, target, 300)
    expect(edge(manager, "child2/kernel", "hypervisor")).to_have_class(re.compile(r"\blit\b"))
    # The same facts in words, for screen readers.
    words = manager.locator("#designs-panel .arch-words-body")
    expect(words).to_contain_text("child2/kernel → hypervisor", use_inner_text=False)
    description = picture.locator("desc")
    expect(description).to_contain_text("Root partition's user mode: root.shell")
    # Mode switches per port access: 6 on the micro-kernel's emulated path (the PIC's ports, served in
    # the hypervisor, cost 2: the typed line's interrupts pull the average a little under 6).
    assert 5.5 <= per_port_access(manager, "child2") <= 6.0


def test_a_refreshed_lab_description_keeps_the_design_the_student_chose(manager: Page) -> None:
    # The page refreshes the lab's description (telemetry reconnects, restarts); that must not put the
    # select back before the student presses Switch (a full run once asked "already runs" instead).
    manager.select_option("#design-select", "hosted")
    manager.evaluate("() => window.__hyperlab.designs.showLab(window.__hyperlab.designs.description)")
    expect(manager.locator("#design-select")).to_have_value("hosted")
    manager.click("#design-switch")
    expect(manager.locator("#designs-dialog")).to_be_visible()
    manager.click("#designs-dialog-cancel")
    expect(manager.locator("#design-select")).to_have_value("microkernel")


def test_switching_the_design_asks_first_then_restarts_the_lab_in_it(manager: Page) -> None:
    manager.select_option("#design-select", "monolithic")
    manager.click("#design-switch")
    dialog = manager.locator("#designs-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("disks are kept")
    manager.click("#designs-dialog-cancel")
    expect(dialog).to_be_hidden()
    expect(manager.locator("#design-current")).to_have_text("Micro-kernel (Hyper-V)")
    expect(manager.locator("#design-select")).to_have_value("microkernel")

    manager.select_option("#design-select", "monolithic")
    manager.click("#design-switch")
    manager.click("#designs-dialog-ok")
    expect(manager.locator("#design-current")).to_have_text("Monolithic (ESX)", timeout=BOOT_TIMEOUT_MS)
    expect(manager.locator("#lab-design")).to_have_text("monolithic")
    # The picture moved child2's device models into the hypervisor; the trusted code followed.
    expect(manager.locator("#designs-panel .arch-components")).to_contain_text(
        [re.compile(r"child2: .*ide")], timeout=BOOT_TIMEOUT_MS)
    expect(manager.locator('#tcb tr[data-domain="hypervisor"] .tcb-components')).to_contain_text("child2.ide")
    # The lab runs: the console works in the new design, and a port access is exit + resume only.
    manager.click("#arch-reset")
    run(manager, "child2", "io 200")
    wait_edge(manager, "hypervisor", "child2/kernel", 200)
    assert per_port_access(manager, "child2") == 2.0
    expect(edge(manager, "root/kernel", "root/user")).to_have_count(0)


def test_the_fault_menu_says_who_should_go_down_then_shows_who_did(manager: Page) -> None:
    manager.select_option("#fault-component", "child2.ide")
    manager.click("#fault-inject")
    dialog = manager.locator("#designs-dialog")
    expect(dialog).to_be_visible()
    expect(manager.locator("#fault-expected")).to_have_text("Expected to go down: child2")
    manager.click("#designs-dialog-ok")
    expect(manager.locator("#fault-result")).to_contain_text("Down: child2.", timeout=BOOT_TIMEOUT_MS)
    expect(manager.locator("#fault-result")).to_contain_text("worker process died")
    expect(row(manager, "child2").locator(".state")).to_have_text("crashed")
    expect(row(manager, "root").locator(".state")).to_have_text("running")
    expect(row(manager, "child1").locator(".state")).to_have_text("running")

    # The root's kernel hosts every child's I/O on Hyper-V: its fault takes every partition.
    manager.select_option("#fault-component", "child1.storvsp")
    manager.click("#fault-inject")
    expect(manager.locator("#fault-expected")).to_have_text(
        "Expected to go down: every partition (root, child1, child2)")
    manager.click("#designs-dialog-ok")
    expect(manager.locator("#fault-result")).to_contain_text("Down: root, child1.", timeout=BOOT_TIMEOUT_MS)
    for name in ("root", "child1"):
        expect(row(manager, name).locator(".state")).to_have_text("crashed")


def test_a_lesson_that_fixes_the_design_disables_the_switch(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/lessons/emulated-vs-vmbus")
    expect(page.locator("#design-current")).to_have_text("Micro-kernel (Hyper-V)", timeout=BOOT_TIMEOUT_MS)
    expect(page.locator("#design-switch")).to_be_disabled()
    expect(page.locator("#design-note")).to_contain_text("Emulated vs VMBus I/O")
    page.goto(server.url + "/lessons/designs")
    expect(page.locator("#design-current")).to_have_text("Micro-kernel (Hyper-V)", timeout=BOOT_TIMEOUT_MS)
    expect(page.locator("#design-switch")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)


def test_lesson_5_switches_the_design_with_its_own_button(page: Page, server: LiveServer) -> None:
    """Lesson 5's first two steps as a student does them: the design button goes through the panel's
    confirmation, and the step's check sees the new design."""
    page.goto(server.url + "/lessons/designs")
    expect(page.locator("#step-title")).to_have_text("1. The micro-kernel path (Hyper-V)", timeout=BOOT_TIMEOUT_MS)
    page.fill("#prediction-value", "2000")
    page.click("#prediction-commit")
    run(page, "child2", "dd write 8")
    expect(page.locator("#next-step")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    page.click("#next-step")
    expect(page.locator("#step-title")).to_have_text("2. Switch to the monolithic design (ESX)")
    page.locator("#step-actions").get_by_role("button", name="Switch to monolithic").click()
    expect(page.locator("#designs-dialog")).to_be_visible()
    page.click("#designs-dialog-ok")
    expect(page.locator("#design-current")).to_have_text("Monolithic (ESX)", timeout=BOOT_TIMEOUT_MS)
    expect(page.locator("#next-step")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
