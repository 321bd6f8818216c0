"""The student's page at a laptop's size (1366x768), in a real browser (Playwright + Debian's Chromium)
on a real server with the shipped lessons: readable terminals, the console in view where it opens,
keyboard focus kept while the page updates itself, and no critical or serious axe-core violation.

axe-core comes from npm (pinned in package.json, devDependencies) and is injected by the tests only;
the site never serves it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from liveserver import LiveServer
from playwright.sync_api import Locator, Page, expect
from test_browser_lessons import FIXTURES, PYODIDE_TIMEOUT_MS, lessons_server

from hyperlab.web.lessons import lessons_dir

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BOOT_TIMEOUT_MS = 20_000
WIDTH, HEIGHT = 1366, 768
LESSON = "meet-the-partitions"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with lessons_server(tmp_path_factory.mktemp("browser-page"), lessons_dir()) as live:
        yield live


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    # bypass_csp: the tests inject axe-core as a script; the site's own CSP allows only its own files
    return {**browser_context_args, "viewport": {"width": WIDTH, "height": HEIGHT}, "bypass_csp": True}


@pytest.fixture
def home(page: Page, server: LiveServer) -> Iterator[Page]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    expect(row(page, "child1").locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    yield page
    assert errors == [], errors


def row(page: Page, name: str) -> Locator:
    return page.locator(f'#partitions tbody tr[data-partition="{name}"]')


def pane(page: Page, name: str) -> Locator:
    return page.locator(f'.console-pane[data-partition="{name}"]')


def wait_console(page: Page, name: str, needle: str, timeout_ms: int = BOOT_TIMEOUT_MS) -> None:
    page.wait_for_function("([name, needle]) => window.__hyperlab.consoleText(name).includes(needle)",
                           arg=[name, needle], timeout=timeout_ms)


def connect(page: Page, name: str) -> None:
    row(page, name).get_by_role("button", name=f"Connect to the console of {name}").click()
    wait_console(page, name, f"{name}$ ")


def in_view(box: dict | None) -> bool:
    return (box is not None and box["y"] >= 0 and box["x"] >= 0
            and box["y"] + box["height"] <= HEIGHT and box["x"] + box["width"] <= WIDTH)


def terminal_focused(page: Page, name: str) -> bool:
    return page.evaluate(
        """(name) => {
             const el = document.activeElement;
             return !!el && el.classList.contains('xterm-helper-textarea')
               && !!el.closest(`.console-pane[data-partition="${name}"]`);
           }""", name)


def bright_pixels(page: Page, clip: dict) -> int:
    """Pixels brighter than the terminal's dark background in ``clip`` of a real screenshot (decoded by
    the browser itself: no image library needed)."""
    png = page.screenshot(clip=clip)
    return page.evaluate(
        """async (b64) => {
             const img = new Image();
             img.src = 'data:image/png;base64,' + b64;
             await img.decode();
             const canvas = document.createElement('canvas');
             canvas.width = img.naturalWidth;
             canvas.height = img.naturalHeight;
             const ctx = canvas.getContext('2d');
             ctx.drawImage(img, 0, 0);
             const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
             let n = 0;
             for (let i = 0; i < data.length; i += 4) {
               if (data[i] + data[i + 1] + data[i + 2] > 3 * 128) n += 1;
             }
             return n;
           }""", base64.b64encode(png).decode())


# --- 1. underscores ---------------------------------------------------------------------------------------
def test_a_line_of_underscores_paints_pixels_in_its_cell_row(home: Page) -> None:
    connect(home, "child1")
    pane(home, "child1").locator(".xterm").click()
    home.keyboard.type("echo " + "_" * 40)
    home.keyboard.press("Enter")
    wait_console(home, "child1", "\n" + "_" * 40)
    rows = pane(home, "child1").locator(".xterm-rows > div")
    echoed = rows.filter(has_text=re.compile(r"^_{40}\s*$"))
    expect(echoed).to_have_count(1)
    echoed.scroll_into_view_if_needed()
    box = echoed.bounding_box()
    assert box is not None
    width = home.evaluate(
        "() => window.__hyperlab.consoles.terminal('child1')._core._renderService.dimensions.css.cell.width")
    # the row of 40 underscores, exactly the height of its cell: the underscore must be drawn inside it
    clip = {"x": box["x"], "y": box["y"], "width": width * 40, "height": box["height"]}
    assert bright_pixels(home, clip) >= 40, "the underscores paint nothing in their own cell row"
    # the terminal draws with the monospace web font shipped from our own origin
    font = home.evaluate("() => window.__hyperlab.consoles.terminal('child1').options.fontFamily")
    assert font.startswith('"JetBrains Mono"'), font
    assert home.evaluate("() => document.fonts.check('14px \"JetBrains Mono\"')")


# --- 2. Connect shows the console -------------------------------------------------------------------------
def test_connect_brings_the_console_into_view_with_focus(home: Page) -> None:
    connect(home, "child1")
    expect(pane(home, "child1").locator(".xterm-rows")).to_contain_text("child1$")
    home.wait_for_function(
        """() => { const r = document.querySelector('.console-pane[data-partition="child1"] .xterm-screen')
                      .getBoundingClientRect();
                   return r.top >= 0 && r.top + 60 <= innerHeight; }""", timeout=5_000)
    assert terminal_focused(home, "child1")
    # Hyper-V Manager's view: the partitions with their actions, the console and the selected partition's
    # details together on one laptop screen
    for selector in ("#partitions", '.console-pane[data-partition="child1"]', "#counters-title", "#io-title"):
        assert in_view(home.locator(selector).bounding_box()), (selector, home.locator(selector).bounding_box())
    home.keyboard.type("echo typed-blind")
    home.keyboard.press("Enter")
    wait_console(home, "child1", "\ntyped-blind", timeout_ms=10_000)


def do_step_1(page: Page) -> None:
    """Step 1 of the lesson, as its text says: `ver` in root's console, by the command's own Run button
    in the text (Killercoda-style); then "Next" is open."""
    page.locator("#step-text").get_by_role("button", name="Run ver in root").click()
    wait_console(page, "root", "root$ ver")
    expect(page.get_by_role("tab", name="root")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#next-step")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)


# --- 3. focus on the lesson page --------------------------------------------------------------------------
def test_lesson_page_keeps_keyboard_focus_across_polls(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/lessons/{LESSON}")
    do_step_1(page)
    step_button = page.locator("#step-list button").nth(1)  # step 2: reachable once step 1 is done
    step_button.focus()
    expect(step_button).to_be_focused()
    # the page polls the lesson state every second: after three polls, focus has not moved
    page.wait_for_timeout(3_500)
    assert page.evaluate("() => document.activeElement !== document.body"), "focus fell to <body>"
    expect(step_button).to_be_focused()


# --- 13. accessibility --------------------------------------------------------------------------------------
#: Reported whatever axe's impact: content outside landmarks hides it from landmark navigation.
ALSO_REPORTED = ("region",)


def axe_violations(page: Page, context: str = "document") -> list[dict]:
    """axe-core's critical and serious violations on the page (every default rule), and ALSO_REPORTED."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate(
        f"""async () => {{
              const r = await axe.run({context}, {{ resultTypes: ['violations'] }});
              const also = {json.dumps(list(ALSO_REPORTED))};
              return r.violations.filter((v) => v.impact === 'critical' || v.impact === 'serious' || also.includes(v.id))
                .map((v) => ({{ id: v.id, impact: v.impact,
                               nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ': ' + n.failureSummary) }}));
            }}""")
    return results


def test_axe_home_page_and_consoles(home: Page) -> None:
    expect(home.locator(".lesson-card").first).to_be_visible()
    found = axe_violations(home)
    assert found == [], json.dumps(found, indent=1)
    connect(home, "child1")
    connect(home, "child2")
    found = axe_violations(home)
    assert found == [], json.dumps(found, indent=1)


def test_axe_settings_dialog(home: Page) -> None:
    row(home, "child2").get_by_role("button", name="Settings of child2").click()
    expect(home.get_by_role("dialog", name="Settings of child2")).to_be_visible()
    found = axe_violations(home, "document.getElementById('settings-dialog')")
    assert found == [], json.dumps(found, indent=1)


def test_axe_lesson_page(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/lessons/{LESSON}")
    expect(page.locator("#check")).not_to_be_empty(timeout=BOOT_TIMEOUT_MS)
    row(page, "child1").get_by_role("button", name="Connect to the console of child1").click()
    wait_console(page, "child1", "child1$ ")
    found = axe_violations(page)
    assert found == [], json.dumps(found, indent=1)


def test_shift_escape_leaves_the_terminal_and_tab_goes_on(home: Page) -> None:
    connect(home, "child1")
    assert terminal_focused(home, "child1")
    home.keyboard.press("Shift+Escape")
    expect(home.get_by_role("tab", name="child1")).to_be_focused()
    for _ in range(4):  # forward from the console tab: never back into the terminal
        home.keyboard.press("Tab")
        assert not terminal_focused(home, "child1")
    outside = home.evaluate("() => !document.activeElement.closest('.consoles')")
    assert outside, "Tab stays inside the consoles panel"
    # and the terminal is one keystroke away again: Enter on its tab
    home.get_by_role("tab", name="child1").focus()
    home.keyboard.press("Enter")
    assert terminal_focused(home, "child1")


# --- 9. transitions ---------------------------------------------------------------------------------------
def transition_rows(page: Page) -> list[list[str]]:
    return page.evaluate("""() => [...document.querySelectorAll('#transitions tbody tr')]
                              .map((tr) => [...tr.cells].map((td) => td.textContent))""")


def test_transitions_filter_by_partition_and_kind_pause_and_separate_columns(home: Page) -> None:
    table = home.locator("#transitions")
    headers = table.locator("thead th")
    expect(headers.filter(has_text="Measured here (µs)")).to_have_count(1)
    expect(headers.filter(has_text=re.compile("Modelled"))).to_have_count(1)
    partition = home.get_by_label("Partition", exact=True)
    kind = home.get_by_label("Kind", exact=True)
    # following the selected partition of the table (child1 by default), until one is picked here
    expect(partition).to_have_value("child1")
    row(home, "child2").click()
    expect(partition).to_have_value("child2")

    connect(home, "child2")
    home.keyboard.type("io 50")
    home.keyboard.press("Enter")
    wait_console(home, "child2", "child2$ io 50")
    expect(kind.locator("option", has_text="io_port")).to_have_count(1, timeout=10_000)
    kind.select_option("io_port")
    expect(table.locator("tbody tr").first).to_be_visible(timeout=10_000)
    rows = transition_rows(home)
    assert rows and all(r[1] == "child2" and r[3] == "io_port" for r in rows), rows[:5]
    # measured (µs, this emulator) and modelled (cycles, real hardware) are separate columns
    assert all(re.fullmatch(r"[\d.]+|—", r[4]) and re.fullmatch(r"[\d,]+|—", r[5]) for r in rows), rows[:5]

    home.get_by_role("button", name="Pause list").click()
    expect(home.get_by_role("button", name="Resume list")).to_have_attribute("aria-pressed", "true")
    frozen = transition_rows(home)
    pane(home, "child2").locator(".xterm").click()
    home.keyboard.type("io 50")
    home.keyboard.press("Enter")
    home.wait_for_function("() => window.__hyperlab.consoleText('child2').split('io 50').length > 2")
    home.wait_for_timeout(1_000)  # several snapshots arrive meanwhile
    assert transition_rows(home) == frozen
    home.get_by_role("button", name="Resume list").click()
    home.keyboard.type("io 50")
    home.keyboard.press("Enter")
    home.wait_for_function("(frozen) => JSON.stringify([...document.querySelectorAll('#transitions tbody tr')]"
                           ".map((tr) => [...tr.cells].map((td) => td.textContent))) !== frozen",
                           arg=json.dumps(frozen), timeout=10_000)
    partition.select_option("")
    partition.select_option("child1")
    row(home, "child2").click()  # picked here: the table's selection no longer moves it
    expect(partition).to_have_value("child1")


# --- 11. layout at 1024 px, crash reason, status line ---------------------------------------------------------
def test_at_1024_px_every_action_is_in_view(home: Page) -> None:
    home.set_viewport_size({"width": 1024, "height": 768})
    scroller = home.locator("#partitions").locator("xpath=..")
    assert scroller.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1"), "the partitions table scrolls sideways"
    limit = scroller.bounding_box()
    assert limit is not None and limit["x"] + limit["width"] <= 1024
    for name in ("root", "child1", "child2"):
        for button in row(home, name).get_by_role("button").all():
            if not button.is_visible():
                continue
            box = button.bounding_box()
            assert box is not None and box["x"] + box["width"] <= limit["x"] + limit["width"] + 1, \
                f"{button.get_attribute('aria-label')} is clipped at {box}"


def test_a_crash_reason_keeps_its_row_short_and_the_status_follows_the_state(home: Page) -> None:
    heights = {name: row(home, name).bounding_box()["height"] for name in ("child1", "child2")}  # type: ignore[index]
    connect(home, "child1")
    home.keyboard.type("crash kernel")
    home.keyboard.press("Enter")
    state = row(home, "child1").locator(".state")
    expect(state).to_have_text("crashed", timeout=15_000)
    reason = row(home, "child1").locator(".reason")
    expect(reason).not_to_be_empty()
    box = row(home, "child1").bounding_box()
    assert box is not None and box["height"] <= heights["child1"] + 24, (box, heights)
    # the whole reason stays available: tooltip and the partition's accessible description
    full = reason.get_attribute("title") or ""
    assert len(full) >= len(reason.inner_text().rstrip("…")) > 0
    # the status line follows the partition's state after an action, not only its first answer
    row(home, "child1").get_by_role("button", name="Reset child1").click()
    expect(home.locator("#status")).to_have_text("child1: running", timeout=BOOT_TIMEOUT_MS)
    row(home, "child1").get_by_role("button", name="Shut down child1").click(timeout=BOOT_TIMEOUT_MS)
    expect(state).to_have_text("off", timeout=BOOT_TIMEOUT_MS)
    expect(home.locator("#status")).to_have_text("child1: off", timeout=5_000)


# --- 4, 7, 12: what a step is about, in view beside it; prediction feedback; counters described -------------------
def test_a_step_shows_its_panel_and_counters_and_explains_the_prediction(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/lessons/{LESSON}")
    do_step_1(page)
    next_button = page.locator("#next-step")
    next_button.click()
    expect(page.locator("#step-title")).to_have_text("2. How a kernel finds the hypervisor")

    # the step's own Watch box: its counters, live, with what they mean (from docs/telemetry.md)
    watch = page.locator("#step-watch")
    expect(watch).to_be_visible()
    cpuid = watch.locator("tr", has=page.locator("code", has_text="child1.exits.cpuid"))
    expect(cpuid.locator(".counter-meaning")).to_have_text(re.compile("CPUID intercepts"))
    expect(cpuid.locator("td")).to_have_text(re.compile(r"^[\d,]+$"), timeout=5_000)
    # ... and the panel it names, beside the consoles, in view on a laptop screen
    expect(page.get_by_role("tab", name=re.compile("^Counters"))).to_have_attribute("aria-selected", "true")
    counters = page.locator("#panel-counters")
    expect(counters).to_be_visible()
    assert in_view(counters.bounding_box()), counters.bounding_box()
    expect(page.locator("#counters-of")).to_contain_text("child1")
    expect(page.locator("#panel-counters .counters-how")).to_contain_text("Partitions table")
    row_cpuid = page.locator("#counters tbody tr", has=page.locator("code", has_text=re.compile(r"^exits\.cpuid$")))
    expect(row_cpuid.locator(".counter-meaning")).to_have_text(re.compile("CPUID intercepts"))
    run_us = page.locator("#counters tbody tr", has=page.locator("code", has_text=re.compile(r"^vp\.run_us$")))
    expect(run_us.locator("td").first).to_have_text(re.compile(r"µs$"))
    # the lesson page has the I/O side-by-side panel too
    page.get_by_role("tab", name="I/O side by side").click()
    expect(page.locator("#io")).to_be_visible()
    page.get_by_role("button", name="the Counters panel").click()
    expect(page.get_by_role("tab", name=re.compile("^Counters"))).to_be_focused()

    # a prediction: after the reveal, how far off it was and the author's explanation
    page.locator("#prediction-value").fill("1")
    page.get_by_role("button", name="Commit prediction").click()
    page.locator("#step-actions").get_by_role("button", name="Reset child1").click()
    expect(page.locator("#check")).to_contain_text("✓ Done", timeout=BOOT_TIMEOUT_MS)
    result = page.locator("#prediction-result")
    expect(result).to_contain_text(re.compile(r"Measured: [\d,]+ CPUID exits — you predicted 1 CPUID exits\. (Off by|Spot on)"))
    expect(page.locator("#prediction-explain")).to_contain_text("0x40000000")


# --- 8. opening a lesson asks first ------------------------------------------------------------------------------
def test_opening_a_lesson_asks_before_it_changes_the_lab(home: Page, server: LiveServer) -> None:
    row(home, "child2").get_by_role("button", name="Turn off child2").click()
    expect(row(home, "child2").locator(".state")).to_have_text("off", timeout=BOOT_TIMEOUT_MS)
    home.evaluate("""async () => {
        const r = await fetch(`/api/labs/${window.__hyperlab.labId}/partitions/child2/settings`, {
          method: 'PUT', headers: {'Content-Type': 'application/json'},
          body: JSON.stringify({integration_services: true})});
        if (!r.ok) throw new Error(await r.text());
      }""")
    home.goto(f"{server.url}/lessons/{LESSON}")
    dialog = home.get_by_role("dialog", name="Set up your lab for this lesson?")
    expect(dialog).to_be_visible(timeout=BOOT_TIMEOUT_MS)
    expect(dialog.locator("li")).to_contain_text(["child2: Integration Services on → off", "child2 is off: it boots again"])
    expect(dialog.get_by_role("button", name="Set up the lab and open the lesson")).to_be_focused()
    found = axe_violations(home, "document.getElementById('setup-dialog')")
    assert found == [], json.dumps(found, indent=1)
    # No: back home, the lab as it was
    dialog.get_by_role("button", name="Back to the home page").click()
    expect(home).to_have_url(server.url + "/")
    expect(row(home, "child2").locator(".state")).to_have_text("off", timeout=BOOT_TIMEOUT_MS)

    home.goto(f"{server.url}/lessons/{LESSON}")
    dialog.get_by_role("button", name="Set up the lab and open the lesson").click()
    expect(home.locator("#status")).to_contain_text("set up", timeout=BOOT_TIMEOUT_MS)
    expect(row(home, "child2").locator(".state")).to_have_text(re.compile("starting|running"), timeout=BOOT_TIMEOUT_MS)
    # set up now: a reload asks nothing
    home.reload()
    expect(home.locator("#check")).not_to_be_empty(timeout=BOOT_TIMEOUT_MS)
    expect(dialog).to_be_hidden()


# --- 14. a reload keeps notebook outputs and open consoles ---------------------------------------------------
@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with lessons_server(tmp_path_factory.mktemp("browser-page-tiny"), FIXTURES) as live:
        yield live


def test_a_reload_keeps_notebook_outputs_and_open_consoles(page: Page, tiny_server: LiveServer) -> None:
    page.goto(f"{tiny_server.url}/lessons/tiny")
    expect(page.locator("#next-step")).to_be_enabled(timeout=BOOT_TIMEOUT_MS)  # step 1 has no check
    page.locator("#next-step").click()
    expect(page.locator("#step-title")).to_have_text("2. Count system calls")
    cell = page.locator(".cell").first
    cell.get_by_role("button", name="Run").click()
    expect(cell.locator(".cell-status")).to_contain_text("downloaded once, then from the browser's cache")
    expect(cell).to_have_attribute("data-state", "ok", timeout=PYODIDE_TIMEOUT_MS)
    printed = cell.locator(".cell-stdout").inner_text()
    assert printed.startswith("syscalls:")
    connect(page, "child1")
    connect(page, "child2")

    page.reload()
    expect(page.locator("#step-title")).to_have_text("2. Count system calls", timeout=BOOT_TIMEOUT_MS)
    expect(cell).to_have_attribute("data-state", "restored")
    expect(cell.locator(".cell-stdout")).to_have_text(printed)
    expect(cell.locator("img.cell-svg")).to_be_visible()
    expect(cell.locator(".cell-status")).to_contain_text("kept in this browser")
    expect(page.get_by_role("tab")).to_have_text([re.compile("child1"), re.compile("child2"), re.compile("Counters"),
                                                   "Transitions", "I/O side by side"])
    expect(page.get_by_role("tab", name="child2")).to_have_attribute("aria-selected", "true")
    wait_console(page, "child1", "child1$ ")
    wait_console(page, "child2", "child2$ ")
    # (what the browser caches of Pyodide is measured by bench/page.py with a persistent profile:
    # a test's browser context keeps its HTTP cache in memory, too small for the 9.6 MB module)


# --- beyond: terminal text size and themes; 200 % zoom ------------------------------------------------------
def test_terminal_text_size_and_high_contrast_theme_are_kept(home: Page) -> None:
    connect(home, "child1")
    cell_height = "() => window.__hyperlab.consoles.terminal('child1')._core._renderService.dimensions.css.cell.height"
    before = home.evaluate(cell_height)
    home.get_by_label("Text size").select_option("20")
    home.wait_for_function(f"(before) => ({cell_height})() > before", arg=before)
    home.get_by_label("Theme").select_option("contrast")
    screen = pane(home, "child1").locator(".xterm-screen")
    box = screen.bounding_box()
    assert box is not None
    # high contrast: the terminal is black, its text white (a real screenshot, not the options)
    clip = {"x": box["x"], "y": box["y"], "width": min(box["width"], 400), "height": min(box["height"], 200)}
    assert bright_pixels(home, clip) > 0
    black = home.evaluate("""async (b64) => {
        const img = new Image(); img.src = 'data:image/png;base64,' + b64; await img.decode();
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] === 0) n += 1;
        return n / (d.length / 4); }""", base64.b64encode(home.screenshot(clip=clip)).decode())
    assert black > 0.6, black
    home.reload()
    expect(home.get_by_label("Text size")).to_have_value("20")
    expect(home.get_by_label("Theme")).to_have_value("contrast")


def test_the_pages_reflow_at_200_percent_zoom(home: Page, server: LiveServer) -> None:
    home.set_viewport_size({"width": WIDTH // 2, "height": HEIGHT // 2})  # 1366x768 at 200 %
    no_sideways = "() => document.documentElement.scrollWidth <= window.innerWidth + 1"
    assert home.evaluate(no_sideways), "the home page scrolls sideways at 200 %"
    connect(home, "child1")
    expect(pane(home, "child1").locator(".xterm-rows")).to_contain_text("child1$")
    assert terminal_focused(home, "child1")
    home.goto(f"{server.url}/lessons/{LESSON}")
    expect(home.locator("#check")).not_to_be_empty(timeout=BOOT_TIMEOUT_MS)
    assert home.evaluate(no_sideways), "the lesson page scrolls sideways at 200 %"
    home.locator("#next-step").scroll_into_view_if_needed()
    expect(home.locator("#next-step")).to_be_visible()
