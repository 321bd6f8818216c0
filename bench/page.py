"""The student's page in a real browser: time to prompt, keystroke echo, Pyodide's first cell.

Starts ``hyperlab serve`` on 127.0.0.1 (a free port, a temporary data directory) and drives Debian's
Chromium (Playwright, headless, 1366x768) with a **persistent profile** in a temporary folder, as a
student's browser has: its HTTP cache is on disk, so the second page load shows what the browser keeps.

1. **Time to prompt**: from ``page.goto`` of a lesson page (a fresh lab for this browser) until the
   child1 console, opened by its Connect button, shows ``child1$ `` — the page, its scripts, the lab's
   boot, the WebSocket and xterm.js together. ``ROUNDS`` rounds, each with a new browser session.
2. **Echo**: a keystroke typed into xterm.js (``keyboard.press``) until its echo is in xterm's buffer,
   measured in the page (``performance.now()`` around ``term.onData`` → ``term.onWriteParsed``):
   what a student sees, over loopback. Letter + Backspace pairs, ``KEYSTROKES`` keys.
3. **Pyodide first cell**: the tiny fixture lesson's notebook cell run by its Run button, from the click
   until the cell's output: cold (empty profile: 13 MB downloaded and compiled) and after a reload
   (the same profile: what the HTTP cache and Chromium's compiled-code cache keep). Also how many bytes
   of ``pyodide.asm.wasm`` came over the network each time (``requestfinished`` sizes).

Bounded: loopback only, every wait has a timeout. Run: python -m bench.page  (about a minute).
Clock: the browser's ``performance.now()`` for echo; host wall (``time.perf_counter``) otherwise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench._common import emit, figure, log

ROUNDS = 5
KEYSTROKES = 40
TIMEOUT_MS = 60_000
PYODIDE_TIMEOUT_MS = 180_000
CHROMIUM = os.environ.get("HYPERLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic"]
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "lesson_fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``hyperlab serve`` with the fixture lessons (their tiny lesson has a notebook cell at step 2)."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "HYPERLAB_DATA_DIR": str(data_dir), "HYPERLAB_SECRET_KEY": "bench",
               "HYPERLAB_LESSONS_DIR": str(FIXTURES)}
        self.log = (data_dir / "server.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "hyperlab.web.cli", "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=data_dir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("the server did not start")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


ECHO_JS = """async (n) => {
  const term = window.__hyperlab.consoles.terminal('child1');
  const out = [];
  for (let i = 0; i < n; i += 1) {
    const key = i % 2 === 0 ? 'x' : '\\x7f';
    const done = new Promise((resolve) => {
      const sub = term.onWriteParsed(() => { sub.dispose(); resolve(performance.now()); });
    });
    const t0 = performance.now();
    term.input(key);
    const t1 = await Promise.race([done, new Promise((r) => setTimeout(() => r(null), 5000))]);
    if (t1 !== null) out.push(t1 - t0);
    await new Promise((r) => setTimeout(r, 120 + (i % 5) * 40));
  }
  return out;
}"""


def time_to_prompt_and_echo(pw: Any, server: Server) -> tuple[list[float], list[float]]:
    prompts: list[float] = []
    echoes: list[float] = []
    for n in range(ROUNDS):
        with tempfile.TemporaryDirectory() as profile:
            context = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                            args=ARGS, viewport={"width": 1366, "height": 768})
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(f"{server.url}/lessons/tiny")
            connect = page.locator('#partitions tbody tr[data-partition="child1"] button.connect')
            connect.click(timeout=TIMEOUT_MS)
            page.wait_for_function("() => window.__hyperlab.consoleText('child1').includes('child1$ ')",
                                   timeout=TIMEOUT_MS)
            prompts.append((time.perf_counter() - t0) * 1000)
            echoes.extend(page.evaluate(ECHO_JS, KEYSTROKES))
            log(f"round {n + 1}: prompt {prompts[-1]:.0f} ms")
            context.close()
    return prompts, echoes


def pyodide_first_cell(pw: Any, server: Server) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                        args=ARGS, viewport={"width": 1366, "height": 768})
        page = context.new_page()
        wasm: list[int] = []
        page.on("requestfinished",
                lambda r: wasm.append(r.sizes()["responseBodySize"]) if r.url.endswith("pyodide.asm.wasm") else None)
        page.goto(f"{server.url}/lessons/tiny")
        page.locator("#next-step:not([disabled])").click(timeout=TIMEOUT_MS)
        page.locator("#step-title", has_text="2.").wait_for(timeout=TIMEOUT_MS)
        for load in ("cold", "after_reload"):
            if load == "after_reload":
                page.reload()
                page.locator("#step-title", has_text="2.").wait_for(timeout=TIMEOUT_MS)
            wasm.clear()
            cell = page.locator(".cell").first
            t0 = time.perf_counter()
            cell.get_by_role("button", name="Run").click()
            page.locator('.cell[data-state="ok"]').first.wait_for(timeout=PYODIDE_TIMEOUT_MS)
            ms = (time.perf_counter() - t0) * 1000
            out[load] = {"ms": round(ms), "wasm_bytes_over_network": sum(wasm)}
            log(f"pyodide first cell, {load}: {ms:.0f} ms, wasm {sum(wasm)} bytes over the network")
        context.close()
    return out


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as data:
        server = Server(Path(data))
        try:
            with sync_playwright() as pw:
                prompts, echoes = time_to_prompt_and_echo(pw, server)
                cell = pyodide_first_cell(pw, server)
        finally:
            server.close()
    emit("page", {
        "time_to_prompt": figure(prompts, "ms", "host wall", digits=0,
                                 what="lesson page goto → Connect → child1$ in xterm (a fresh lab each round)"),
        "echo": figure(echoes, "ms", "browser performance.now",
                       what="keystroke into xterm.js → its echo parsed by xterm (child1, VMBus console)"),
        "pyodide_first_cell": cell,
    })


if __name__ == "__main__":
    main()
