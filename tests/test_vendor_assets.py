"""The vendored front-end assets (static/vendor/, copied by tools/vendor.py) work in Debian's Chromium.

Served by a plain static file server, not the Flask app, so a failure here points at the vendor set
(missing file, wrong file, wrong version) rather than at the site.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

STATIC = Path(__file__).resolve().parent.parent / "static"


class _Handler(SimpleHTTPRequestHandler):
    # loadPyodide() hangs silently unless the .wasm is served as application/wasm.
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(STATIC)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def failed_requests(page) -> list[str]:
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    page.on("response", lambda r: failed.append(f"{r.url} {r.status}") if r.status >= 400 else None)
    return failed


def test_xterm_and_addons_load_and_render(page, static_url: str, failed_requests: list[str]) -> None:
    page.goto(f"{static_url}/vendor/")  # any same-origin HTML page (a directory listing)
    page.set_content('<link rel="stylesheet" href="/vendor/xterm/xterm.css"><div id="t"></div>')
    result = page.evaluate(
        """async () => {
            const {Terminal} = await import('/vendor/xterm/xterm.mjs');
            const {FitAddon} = await import('/vendor/xterm/addon-fit.mjs');
            const {AttachAddon} = await import('/vendor/xterm/addon-attach.mjs');
            const el = document.getElementById('t');
            el.style.width = '640px'; el.style.height = '240px';
            const term = new Terminal();
            const fit = new FitAddon();
            term.loadAddon(fit);
            term.open(el);
            fit.fit();
            await new Promise(resolve => term.write('hello from hyperlab\\r\\nline two', resolve));
            const line = i => term.buffer.active.getLine(i).translateToString(true);
            return {lines: [line(0), line(1)], rows: term.rows, attach: typeof AttachAddon,
                    rendered: el.querySelector('.xterm') !== null};
        }"""
    )
    assert result["lines"] == ["hello from hyperlab", "line two"]
    assert result["attach"] == "function"
    assert result["rendered"]
    assert result["rows"] != 24, "FitAddon did not resize the terminal to its 240px box"
    assert failed_requests == []


def test_pyodide_boots_offline_from_the_vendored_files(page, static_url: str, failed_requests: list[str]) -> None:
    page.goto(f"{static_url}/vendor/")  # any same-origin HTML page (a directory listing)
    answer = page.evaluate(
        """async () => {
            const {loadPyodide} = await import('/vendor/pyodide/pyodide.mjs');
            const pyodide = await loadPyodide({indexURL: '/vendor/pyodide/'});
            return pyodide.runPython('import sys; f"{sys.version_info[0]}:{sum(range(10))}"');
        }""",
    )
    assert answer == "3:45"
    assert failed_requests == []
