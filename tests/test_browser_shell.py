"""The guest shell's line editor in the real terminal: xterm.js in Chromium, keys pressed as a student does.

The editor draws with relative moves only and relies on the terminal's reverse-wraparound mode to
step back over a row wrap; this is where that is proven on the terminal students use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import LiveServer
from playwright.sync_api import Page, expect

BOOT_TIMEOUT_MS = 20_000

# The terminal's logical lines: rows joined where xterm.js wrapped a long line.
LINES_JS = """(name) => {
  const buffer = window.__hyperlab.consoles.terminal(name).buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i += 1) {
    const row = buffer.getLine(i);
    if (row.isWrapped && lines.length) lines[lines.length - 1] += row.translateToString(true);
    else lines.push(row.translateToString(true));
  }
  return lines.filter((line) => line.trim() !== "");
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("browser-shell")) as live:
        yield live


@pytest.fixture
def console(page: Page, server: LiveServer) -> Iterator[Page]:
    """child2's console (the emulated UART), open and focused."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    row = page.locator('#partitions tbody tr[data-partition="child2"]')
    expect(row.locator(".state")).to_have_text("running", timeout=BOOT_TIMEOUT_MS)
    row.get_by_role("button", name="Connect to the console of child2").click()
    wait_text(page, "child2$ ")
    page.locator('.console-pane[data-partition="child2"] .xterm').click()
    yield page
    assert errors == [], errors


def wait_text(page: Page, needle: str, count: int = 1) -> None:
    page.wait_for_function(
        "([needle, count]) => window.__hyperlab.consoleText('child2').split(needle).length > count",
        arg=[needle, count], timeout=BOOT_TIMEOUT_MS)


def lines(page: Page) -> list[str]:
    return [line.rstrip() for line in page.evaluate(LINES_JS, "child2")]


def test_arrows_and_tab_in_xterm(console: Page) -> None:
    kb = console.keyboard
    kb.type("sysc")
    kb.press("Tab")
    kb.type("25")
    kb.press("Enter")
    wait_text(console, "25 system calls: ")
    kb.press("ArrowUp")
    kb.press("Enter")
    wait_text(console, "25 system calls: ", count=2)
    kb.type("echo wrd")
    for key in ("ArrowLeft", "ArrowLeft"):
        kb.press(key)
    kb.type("o")
    kb.press("ArrowRight")
    kb.type("l")
    kb.press("Home")
    kb.press("End")
    kb.type("!")
    kb.press("Enter")
    wait_text(console, "\nworld!\nchild2$")
    assert lines(console)[-3:-1] == ["child2$ echo world!", "world!"]


def test_editing_across_a_wrapped_row(console: Page) -> None:
    """Left-arrow back over the row wrap of a long line, insert there: the command and the screen agree."""
    cols = console.evaluate("() => window.__hyperlab.consoles.terminal('child2').cols")
    head, tail = "a" * cols, "b" * 20  # the prompt pushes the wrap into the a's
    kb = console.keyboard
    kb.type(f"echo {head}{tail}")
    back = len(tail) + 23  # past the b's and the 13 a's on the second row: onto the first row
    for _ in range(back):
        kb.press("ArrowLeft")
    kb.type("XY")
    kb.press("Backspace")
    kb.press("Enter")
    expected = head[:cols - 23] + "X" + head[cols - 23:] + tail
    wait_text(console, "\n" + expected[:20])
    wait_text(console, "b\nchild2$")  # the command's output, then the prompt
    shown = lines(console)
    assert shown[-3:] == [f"child2$ echo {expected}", expected, "child2$"], shown[-3:]


def test_clear_empties_the_terminal(console: Page, tmp_path: Path) -> None:
    kb = console.keyboard
    kb.type("echo before-clear")
    kb.press("Enter")
    wait_text(console, "\nbefore-clear")
    kb.type("clear")
    kb.press("Enter")
    console.wait_for_function("() => !window.__hyperlab.consoleText('child2').includes('before-clear')")
    assert lines(console) == ["child2$"]
