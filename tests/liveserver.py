"""Real hyperlab servers for WebSocket and browser tests.

:class:`LiveServer` is ``hyperlab serve`` in a subprocess: the production configuration (gunicorn, one
gevent worker), with WebSocket upgrades going through gunicorn's socket handling.
:class:`InProcessServer` is the same app on Werkzeug's threaded server inside the test process, for the
tests that must reach into the lab registry — e.g. to kill a lab process and watch the site cope.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    """A localhost TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerBase:
    """What tests need from any server: its addresses and a browser-like session."""

    port: int

    def _set_port(self, port: int) -> None:
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"
        self.ws_url = f"ws://{self.host}"

    def session(self) -> tuple[requests.Session, dict]:
        """A new browser-like session with its lab created: (session, lab description)."""
        s = requests.Session()
        response = s.post(self.url + "/api/labs", timeout=30)
        response.raise_for_status()
        return s, response.json()

    def cookie_header(self, s: requests.Session) -> str:
        """The session's cookies as a ``Cookie`` header value, for WebSocket clients."""
        return "; ".join(f"{c.name}={c.value}" for c in s.cookies)


class InProcessServer(ServerBase):
    """``with InProcessServer(create_app(...)) as server: server.app.extensions["hyperlab.labs"]``."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self._set_port(self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-server", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self.app.extensions["hyperlab.labs"].shutdown()


class LiveServer(ServerBase):
    """``with LiveServer(data_dir) as server: requests.get(server.url + "/healthz")``."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        """``env``: extra environment for the server (an empty value unsets a setting, e.g. the key)."""
        self.data_dir = data_dir
        self._env = dict(env or {})
        self._set_port(free_port())
        self.log_path = data_dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        env = {**os.environ, "HYPERLAB_DATA_DIR": str(self.data_dir), "HYPERLAB_SECRET_KEY": "test-secret",
               **self._env}
        cmd = [sys.executable, "-m", "hyperlab.web.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # the worker is still loading the app
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"server did not answer /healthz in {STARTUP_TIMEOUT_S}s:\n{self.log()}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """The server's output so far (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""
