"""A lesson walked from start to finish in a real browser (Playwright + Debian's Chromium) on a real
server, on a laptop-sized window (1366x768): the home page's lesson list with progress, a step with no
check, a prediction committed then revealed, a hint, a console command that unlocks "Next" through the
hypervisor's own counters, a notebook cell run by Pyodide from our own origin (output, an SVG plot, and
a traceback that leaves the lab untouched), an action button, progress kept across a reload.

Uses the fixture lesson ``tests/lesson_fixtures/tiny.md`` (``HYPERLAB_LESSONS_DIR``); and walks every
shipped lesson keyboard-only, the way a student does, following the solutions in its file.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from liveserver import LiveServer
from playwright.sync_api import Locator, Page, WebSocket, expect

from hyperlab.web.lessons import Step, lessons_dir, load_lesson

FIXTURES = Path(__file__).resolve().parent / "lesson_fixtures"
BOOT_TIMEOUT_MS = 20_000
#: Pyodide's first boot: a few seconds on two cores; generous for a loaded CI machine.
PYODIDE_TIMEOUT_MS = 120_000


@contextmanager
def lessons_server(data_dir: Path, lessons: Path) -> Iterator[LiveServer]:
    """A live server serving the lesson files in ``lessons`` (``HYPERLAB_LESSONS_DIR``)."""
    old = os.environ.get("HYPERLAB_LESSONS_DIR")
    os.environ["HYPERLAB_LESSONS_DIR"] = str(lessons)  # LiveServer passes the environment on at start
    try:
        live = LiveServer(data_dir).__enter__()
    finally:
        if old is None:
            os.environ.pop("HYPERLAB_LESSONS_DIR", None)
        else:
            os.environ["HYPERLAB_LESSONS_DIR"] = old
    try:
        yield live
    finally:
        live.__exit__(None, None, None)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with lessons_server(tmp_path_factory.mktemp("browser-lessons"), FIXTURES) as live:
        yield live


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The lessons shipped with hyperlab."""
    with lessons_server(tmp_path_factory.mktemp("browser-shipped-lessons"), lessons_dir()) as live:
        yield live


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
    expect(cell.locator(".cell-status")).to_contain_text("Starting Python… (13 MB: downloaded once")
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


# --- a shipped lesson, walked by its own solutions ----------------------------------------------------
#: Every lesson shipped with hyperlab (lessons_dir()), walked keyboard-only.
SHIPPED_LESSONS = sorted(p.name for p in lessons_dir().glob("[0-9]*.md"))


def press(locator: Locator) -> None:
    """Keyboard only: focus the control and press Enter (what Tab then Enter does, without counting Tabs)."""
    locator.focus()
    locator.press("Enter")


class Consoles:
    """The consoles of the lesson page as a student uses them: opened with "Connect", typed into through
    xterm. To know that a prompt is *new* (after a command, a reset or a start) the test also keeps what
    each console's WebSocket delivered to the page (Playwright sees the frames): xterm's own screen
    cannot tell, a boot clears it. Like ``hyperlab lessons test``, a prompt is waited for after a mark."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.data: dict[str, bytearray] = {}
        self.sockets: dict[str, WebSocket] = {}
        self.since: dict[str, int] = {}
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws: WebSocket) -> None:
        m = re.search(r"/partitions/([a-z0-9]+)/console$", ws.url)
        if m is None:
            return
        name = m.group(1)
        buf = self.data[name] = bytearray()  # a new socket replays the scrollback: start afresh
        self.sockets[name] = ws
        self.since[name] = 0
        ws.on("framereceived", lambda payload: buf.extend(payload if isinstance(payload, bytes) else payload.encode()))

    def _wait(self, name: str, done: Callable[[], bool], what: str, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
        if done():
            return
        if name not in self.sockets:
            self.page.wait_for_event("websocket", predicate=lambda ws: name in self.sockets, timeout=timeout_ms)
        if not done():
            try:
                self.sockets[name].wait_for_event("framereceived", predicate=lambda _: done(), timeout=timeout_ms)
            except Exception as e:
                tail = bytes(self.data.get(name, b""))[-300:].decode(errors="replace")
                raise AssertionError(f"{name}: {what} within {timeout_ms} ms; its console ends with {tail!r}") from e

    def row(self, name: str) -> Locator:
        return self.page.locator(f'#partitions tbody tr[data-partition="{name}"]')

    def connect(self, name: str) -> None:
        """Press Connect beside the partition (once) and wait for its console's first output (its scrollback:
        every partition of the lesson's lab has booted, or is booting, so there is some)."""
        if name in self.sockets:
            return
        press(self.row(name).get_by_role("button", name=f"Connect to the console of {name}"))
        self._wait(name, lambda: bool(self.data.get(name)), "no console output after Connect")

    def wait_new_socket(self, name: str, old: WebSocket) -> None:
        """Wait until the console of ``name`` runs on a new WebSocket (the lab process was replaced)."""
        if self.sockets.get(name) is old:
            self.page.wait_for_event("websocket", predicate=lambda ws: self.sockets.get(name) is not old,
                                     timeout=BOOT_TIMEOUT_MS)

    def mark(self, only: str | None = None) -> None:
        """Output from now on is new, on every open console (a command in root can start child2), or only
        on ``only``'s (an action on one partition: another's prompt, from an earlier action, stays new)."""
        for name, buf in self.data.items():
            if only is None or name == only:
                self.since[name] = len(buf)

    def wait_new_prompt(self, name: str) -> None:
        prompt = f"{name}$ ".encode()
        self._wait(name, lambda: prompt in self.data[name][self.since[name]:], "no new prompt")
        self.see_prompt(name)

    def see_prompt(self, name: str) -> None:
        """The console, as xterm shows it, ends with the partition's prompt."""
        prompt = f"{name}$ "
        self._wait(name, lambda: self.data[name].endswith(prompt.encode()), "not at its prompt")
        self.page.wait_for_function("([name, prompt]) => window.__hyperlab.consoleText(name).endsWith(prompt)",
                                    arg=[name, prompt], timeout=BOOT_TIMEOUT_MS)

    def type(self, name: str, text: str) -> None:
        self.connect(name)
        press(self.page.locator(f'#console-tabs [data-partition="{name}"] .tab-label'))  # in front, focused
        self.see_prompt(name)
        self.page.wait_for_function(
            "(name) => document.activeElement.closest(`.console-pane[data-partition='${name}']`)", arg=name)
        self.mark()
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")
        # as `hyperlab lessons test` does: the prompt again, or the partition crashed or stopped
        prompt = f"{name}$ ".encode()
        deadline = time.monotonic() + BOOT_TIMEOUT_MS / 1000
        while prompt not in self.data[name][self.since[name]:]:
            if self.row(name).locator(".state").inner_text() in ("crashed", "off"):
                return
            if time.monotonic() > deadline:
                tail = bytes(self.data[name])[-300:].decode(errors="replace")
                raise AssertionError(f"{name}: no new prompt after {text!r}; its console ends with {tail!r}")
            self.page.wait_for_timeout(100)
        self.see_prompt(name)


def solution_partitions(step: Step) -> list[str]:
    names: list[str] = []
    for item in step.solution:
        name = (item["type"]["partition"] if "type" in item else item["action"]["partition"] if "action" in item
                else item.get("wait_prompt"))
        if name and name not in names:
            names.append(name)
    return names


def press_action(page: Page, step: Step, spec: dict) -> None:
    """A solution's action: the step's own button for it, else the button in the partition's row."""
    name = spec["partition"]
    for action in step.actions:
        if action.partition == name and action.action == spec.get("action") and action.settings == spec.get("settings"):
            button = page.locator("#step-actions").get_by_role("button", name=action.label, exact=True)
            break
    else:
        assert "action" in spec, f"step {step.id}: no button in the step for the settings {spec}"
        button = page.locator(f'#partitions tbody tr[data-partition="{name}"] button[data-action="{spec["action"]}"]')
    expect(button).to_be_enabled(timeout=BOOT_TIMEOUT_MS)
    press(button)
    if "settings" in spec:  # saved before anything that follows (a reset must boot with them)
        expect(page.locator("#status")).to_contain_text(f"{name}: settings saved", timeout=BOOT_TIMEOUT_MS)
    if "action" in spec:  # answered, and not refused: the status line says the partition's new state
        status = page.locator("#status")
        expect(status).to_have_text(re.compile(rf"^{name}: "), timeout=BOOT_TIMEOUT_MS)
        expect(status).not_to_have_class(re.compile(r"\berror\b"))


def play_solution(page: Page, consoles: Consoles, step: Step) -> None:
    """What the step's solution says, done through the page: its ``type``, ``action``, ``wait_prompt``
    and ``wait`` items (the only kinds a student can do by hand)."""
    for name in solution_partitions(step):
        consoles.connect(name)  # open before anything happens, so that what follows is seen as new
    for item in step.solution:
        if "type" in item:
            consoles.type(item["type"]["partition"], item["type"]["text"])
        elif "action" in item:
            consoles.mark(item["action"]["partition"])
            press_action(page, step, item["action"])
        elif "wait_prompt" in item:
            consoles.wait_new_prompt(item["wait_prompt"])
        elif "design" in item or "fault" in item:  # the step's own button for it (a lab-wide change)
            kind = "design" if "design" in item else "fault"
            buttons = [a for a in step.actions if getattr(a, kind) == item[kind]]
            assert buttons, f"step {step.id}: no button in the step for {item}"
            consoles.mark()
            before = dict(consoles.sockets)
            press(page.locator("#step-actions").get_by_role("button", name=buttons[0].label, exact=True))
            press(page.locator("#designs-dialog-ok"))  # the design panel asks first, saying what happens
            if kind == "design":  # a new lab process: every open console reconnects to it, once it has booted
                for name, ws in before.items():
                    consoles.wait_new_socket(name, ws)
                for state in page.locator("#partitions tbody .state").all():
                    expect(state).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
        elif "wait_until" in item and item is step.solution[-1]:
            pass  # the student waits: the step's check, awaited next, says when
        elif "wait" in item:
            page.wait_for_timeout(item["wait"] * 1000)
        else:
            pytest.fail(f"step {step.id}, solution line {item['line']}: no way to do {item} in the page")


@pytest.mark.parametrize("lesson_file", SHIPPED_LESSONS)
def test_walk_a_shipped_lesson_by_its_solutions(page: Page, shipped_server: LiveServer,
                                                 page_errors: list[str], lesson_file: str) -> None:
    lesson = load_lesson(lessons_dir() / lesson_file)  # the test follows the lesson as it is written
    total = len(lesson.steps)
    server = shipped_server
    consoles = Consoles(page)

    page.goto(server.url + "/")
    card = page.locator(f'.lesson-card[data-lesson="{lesson.id}"]')
    expect(card.locator(".progress-text")).to_have_text(f"0/{total} steps")
    press(card.get_by_role("link", name=f"Start {lesson.title} (0/{total} steps)"))
    expect(page).to_have_url(f"{server.url}/lessons/{lesson.id}")

    check = page.locator("#check")
    for index, step in enumerate(lesson.steps):
        last = index == total - 1
        expect(page.locator("#step-title")).to_have_text(f"{index + 1}. {step.title}", timeout=BOOT_TIMEOUT_MS)
        next_button = page.get_by_role("button", name="Finish ✓" if last else "Next →")
        if step.check is not None:  # locked until the lab confirms the step
            expect(page.locator("#lesson-progress-text")).to_have_text(
                f"Step {index + 1} of {total} · {index}/{total} done")
            expect(next_button).to_be_disabled()

        if step.predict is not None:
            expect(check).to_contain_text("Commit your prediction first", timeout=BOOT_TIMEOUT_MS)
            page.locator("#prediction-value").focus()
            page.keyboard.type("3")
            page.keyboard.press("Enter")  # submits the prediction form
            expect(page.locator("#prediction-result")).to_contain_text(f"Your prediction: 3 {step.predict.unit}")

        for n, source in enumerate(step.cells):
            cell = page.locator(".cell").nth(n)
            press(cell.get_by_role("button", name="Run", exact=True))
            expect(cell).to_have_attribute("data-state", "ok", timeout=PYODIDE_TIMEOUT_MS)
            if "plot(" in source:
                expect(cell.locator("img.cell-svg").first).to_be_visible()
                assert cell.evaluate("(el) => [...el.querySelectorAll('img.cell-svg')].every((i) => i.naturalWidth > 0)")

        play_solution(page, consoles, step)

        expect(check).to_contain_text("✓ Done" if step.check is not None else "✓ No check", timeout=BOOT_TIMEOUT_MS)
        if step.predict is not None:
            expect(page.locator("#prediction-result")).to_contain_text(
                re.compile(rf"Measured: [\d,.]+ {re.escape(step.predict.unit)} — you predicted 3 "))
        expect(page.locator("#lesson-progress-text")).to_have_text(
            f"Step {index + 1} of {total} · {index + 1}/{total} done")
        expect(next_button).to_be_enabled()
        if not last:
            press(next_button)

    # --- finished: every step done, and the home page says so ---
    expect(page.locator("body")).to_have_class(re.compile(r"\blesson-finished\b"))
    expect(page.locator("#lesson-complete")).to_be_visible()
    expect(page.locator("#step-list button")).to_have_count(total)
    for index, step in enumerate(lesson.steps):
        expect(page.locator("#step-list button").nth(index)).to_have_attribute(
            "aria-label", f"Step {index + 1}: {step.title} (done)")
    press(page.get_by_role("button", name="Finish ✓"))
    expect(page).to_have_url(server.url + "/")
    expect(page.locator(f'.lesson-card[data-lesson="{lesson.id}"] .progress-text')).to_have_text(
        f"{total}/{total} steps · done")
