"""A lesson walked from start to finish in a real browser (Playwright + Debian's Chromium) on a real
server, on a laptop-sized window (1366x768): the home page's lesson list with progress, a step with no
check, a prediction committed then revealed, a hint, a console command that unlocks "Next" through the
hypervisor's own counters, a notebook cell run by Pyodide from our own origin (output, an SVG plot, and
a traceback that leaves the lab untouched), an action button, progress kept across a reload.

Uses the fixture lesson ``tests/lesson_fixtures/tiny.md`` (``HYPERLAB_LESSONS_DIR``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from liveserver import LiveServer
from playwright.sync_api import Page, expect

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"
BOOT_TIMEOUT_MS = 20_000
#: Pyodide's first boot: a few seconds on two cores; generous for a loaded CI machine.
PYODIDE_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    old = os.environ.get("HYPERLAB_LESSONS_DIR")
    os.environ["HYPERLAB_LESSONS_DIR"] = str(FIXTURES)  # LiveServer passes the environment on
    try:
        with LiveServer(tmp_path_factory.mktemp("browser-lessons")) as live:
            yield live
    finally:
        if old is None:
            os.environ.pop("HYPERLAB_LESSONS_DIR", None)
        else:
            os.environ["HYPERLAB_LESSONS_DIR"] = old


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1366, "height": 768}}


@pytest.fixture
def page_errors(page: Page) -> Iterator[list[str]]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield errors
    assert errors == [], errors


def in_viewport(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 768 and box["x"] + box["width"] <= 1366


def wait_console(page: Page, name: str, needle: str, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
    page.wait_for_function(
        "([name, needle]) => window.__hyperlab.consoleText(name).includes(needle)",
        arg=[name, needle], timeout=timeout_ms)


def test_walk_a_lesson_from_start_to_finish(page: Page, server: LiveServer, page_errors: list[str]) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    # --- home: the lesson with its objectives and progress, and the free lab below ---
    page.goto(server.url + "/")
    card = page.locator('.lesson-card[data-lesson="tiny"]')
    expect(card.get_by_role("heading", name="A tiny lesson")).to_be_visible()
    expect(card.locator(".objectives li")).to_have_text(["Read a partition's state.", "Count system calls."])
    expect(card.locator(".progress-text")).to_have_text("0/3 steps")
    expect(page.get_by_role("heading", name=re.compile("^Free lab"))).to_be_visible()
    expect(page.locator("#partitions tbody tr")).to_have_count(3, timeout=BOOT_TIMEOUT_MS)
    card.get_by_role("link", name=re.compile("^Start A tiny lesson")).click()

    # --- step 1: no check, Next open at once; everything that matters fits a 1366x768 screen ---
    expect(page).to_have_url(server.url + "/lessons/tiny")
    check = page.locator("#check")
    expect(check).to_have_attribute("aria-live", "polite")
    expect(check).to_contain_text("No check for this step", timeout=BOOT_TIMEOUT_MS)
    expect(page.locator("#lesson-progress-text")).to_have_text("Step 1 of 3 · 1/3 done")
    next_button = page.get_by_role("button", name="Next →")
    expect(next_button).to_be_enabled()
    assert in_viewport(page, "#next-step") and in_viewport(page, "#prev-step")
    expect(page.locator("#partitions tbody tr")).to_have_count(3, timeout=BOOT_TIMEOUT_MS)
    assert not any("/static/vendor/pyodide/" in url for url in requests), "Pyodide loads only when a cell runs"
    page.locator("#next-step").focus()
    page.keyboard.press("Enter")  # keyboard: the buttons are real buttons

    # --- step 2: locked until the guest really makes the system calls ---
    expect(page.locator("#step-title")).to_have_text("2. Count system calls")
    expect(page.locator("#step-title")).to_be_focused()  # focus follows the step for keyboard users
    expect(next_button).to_be_disabled()
    expect(check).to_contain_text("Commit your prediction first")
    page.get_by_role("button", name="Show a hint (1 of 2)").click()
    expect(page.locator("#hint-list li")).to_have_count(1)
    expect(page.locator("#hint-list li")).to_contain_text("Connect to child1")

    page.get_by_label("How many system calls will syscalls 100 make?").fill("100")
    page.get_by_role("button", name="Commit prediction").click()
    expect(page.locator("#prediction-result")).to_contain_text("Your prediction: 100 calls")
    expect(page.locator("#prediction-value")).to_be_disabled()
    expect(check).to_contain_text("Waiting for: Type syscalls 100 in child1's console.")

    page.locator('#partitions tbody tr[data-partition="child1"]').get_by_role(
        "button", name="Connect to the console of child1").click()
    wait_console(page, "child1", "child1$ ")
    page.get_by_label("Screen reader mode").check()  # xterm's screen-reader mode, for every console
    assert page.evaluate("() => window.__hyperlab.consoles.terminal('child1').options.screenReaderMode") is True
    page.locator('.console-pane[data-partition="child1"] .xterm').click()
    page.keyboard.type("syscalls 100")
    page.keyboard.press("Enter")
    expect(check).to_contain_text("✓ Done", timeout=BOOT_TIMEOUT_MS)
    expect(page.locator("#prediction-result")).to_contain_text(re.compile(r"Measured: [\d,]+ calls — you predicted 100 calls"))
    expect(next_button).to_be_enabled()
    expect(page.locator("#lesson-progress-text")).to_have_text("Step 2 of 3 · 2/3 done")

    # --- the notebook cell: Pyodide from our origin, the hyperlab client, a plot ---
    cell = page.locator(".cell").first
    cell.get_by_role("button", name="Run").click()
    expect(cell.locator(".cell-status")).to_contain_text("Loading Python… (13 MB, first time only)")
    expect(cell).to_have_attribute("data-state", "ok", timeout=PYODIDE_TIMEOUT_MS)
    expect(cell.locator(".cell-stdout")).to_have_text(re.compile(r"^syscalls: \d+$"))
    syscalls = int(cell.locator(".cell-stdout").inner_text().split()[-1])
    assert syscalls >= 100  # the cell read the guest's own counter through the client
    expect(cell.locator("img.cell-svg")).to_have_attribute("alt", re.compile("^squares"))
    assert page.evaluate("() => document.querySelector('img.cell-svg').naturalWidth") > 0
    assert any(url.endswith("/static/vendor/pyodide/pyodide.asm.wasm") for url in requests)
    assert all(url.startswith((server.url, "data:")) for url in requests), \
        [url for url in requests if not url.startswith(server.url)]

    # a cell that raises: the traceback in the cell, the lab untouched
    before = page.evaluate("() => JSON.stringify(window.__hyperlab.lesson.state.completed)")
    code = cell.locator("textarea")
    code.fill("from hyperlab.core.vmbus.ring import packet_size  # the real VMBus ring module\n"
              "print('packet', packet_size(10))\n"
              "from hyperlab.web.client import Lab\nlab = Lab.current()\nn = lab.counter('child1.syscalls')\n"
              "raise ValueError(f'boom after {n}')\n")
    code.press("Control+Enter")
    expect(cell).to_have_attribute("data-state", "error", timeout=PYODIDE_TIMEOUT_MS)
    expect(cell.locator(".cell-stdout")).to_have_text(re.compile(r"^packet \d+$"))
    stderr = cell.locator(".cell-stderr")
    expect(stderr).to_contain_text("Traceback (most recent call last)")
    expect(stderr).to_contain_text(re.compile(r"ValueError: boom after \d+"))
    expect(stderr).to_contain_text("raise ValueError")  # the cell's own line, shown in the traceback
    expect(cell.locator(".cell-status")).to_contain_text("raised an exception")
    expect(page.locator('#partitions tbody tr[data-partition="child1"] .state')).to_have_text("running")
    assert page.evaluate("() => JSON.stringify(window.__hyperlab.lesson.state.completed)") == before
    cell.get_by_role("button", name="Restore code").click()
    expect(code).to_have_value(re.compile("^from hyperlab.web.client import Lab, plot"))

    # --- step 3: an action button calls the partition API; the lab's state unlocks Finish ---
    next_button.click()
    expect(page.locator("#step-title")).to_have_text("3. Pause a partition")
    finish = page.get_by_role("button", name="Finish ✓")
    expect(finish).to_be_disabled()
    page.locator("#step-actions").get_by_role("button", name="Pause child2").click()
    expect(check).to_contain_text("✓ Done: Pause child2.", timeout=BOOT_TIMEOUT_MS)
    expect(page.locator('#partitions tbody tr[data-partition="child2"] .state')).to_have_text("paused")
    expect(finish).to_be_enabled()
    expect(page.locator("#lesson-progress-text")).to_have_text("Step 3 of 3 · 3/3 done")
    expect(page.locator("#lesson-progress")).to_have_attribute("value", "3")

    # --- progress survives a reload; earlier steps keep their prediction and measurement ---
    page.reload()
    expect(page.locator("#step-title")).to_have_text("3. Pause a partition", timeout=BOOT_TIMEOUT_MS)
    expect(check).to_contain_text("✓ Done")
    page.get_by_role("button", name=re.compile(r"^Step 2: Count system calls \(done\)")).click()
    expect(page.locator("#prediction-result")).to_contain_text("you predicted 100 calls")
    page.get_by_role("button", name=re.compile(r"^Step 3: Pause a partition")).click()
    page.get_by_role("button", name="Finish ✓").click()
    expect(page).to_have_url(server.url + "/")
    expect(page.locator('.lesson-card[data-lesson="tiny"] .progress-text')).to_have_text("3/3 steps · done")


def test_unknown_lesson_page(page: Page, server: LiveServer) -> None:
    response = page.goto(server.url + "/lessons/no-such-lesson")
    assert response is not None and response.status == 404
    expect(page.get_by_role("link", name="Back to the lessons")).to_be_visible()
