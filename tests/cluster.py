"""Several hyperlab nodes behind a real HAProxy, on loopback: what tests/test_cluster.py and bench/cluster.py run.

:class:`Node` is ``hyperlab serve`` — the production command — in its own process group, so ``kill()`` takes
the node down the way a crashed machine goes: the server and every lab process at once, no goodbye.
:class:`Balancer` is Debian's ``haproxy`` running ``deploy/haproxy.cfg`` (the file trainers use), with its
addresses from the environment.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import requests
from liveserver import free_port

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
#: The cookie deploy/haproxy.cfg names the node in.
NODE_COOKIE = "hyperlab_node"
STARTUP_TIMEOUT_S = 60.0


class Node:
    """``with Node("node1", data_dir, database_url) as node: node.url``; the name is its HAProxy cookie value."""

    def __init__(self, name: str, data_dir: Path, database_url: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.data_dir = data_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.log_path = data_dir / "server.log"
        self.env = {
            "HYPERLAB_DATA_DIR": str(data_dir), "HYPERLAB_DATABASE_URL": database_url,
            "HYPERLAB_SECRET_KEY": "",  # shared through the database, as the nodes of a class would
            "HYPERLAB_TRUSTED_PROXIES": "127.0.0.1",  # the balancer
            "HYPERLAB_SESSIONS_PER_MINUTE": "1000",  # every test student comes from 127.0.0.1
            **(env or {}),
        }
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        hyperlab = Path(sys.executable).with_name("hyperlab")
        env = {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen([str(hyperlab), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                          env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=self.data_dir, start_new_session=True)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited early:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"node {self.name} did not answer /healthz in {STARTUP_TIMEOUT_S:.0f} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL to the node's whole process group: the server and its lab processes vanish at once."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        # Return once every process of the group is gone: until then one may still hold the listening
        # socket, and a connection accepted in that moment is reset instead of refused.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.01)
        raise RuntimeError(f"node {self.name}: processes of group {proc.pid} outlived SIGKILL")

    def stop(self) -> None:
        """A clean stop (SIGTERM to the server), then whatever is left of the group is killed."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


class Balancer:
    """``with Balancer(workdir, [node1, node2]) as lb: lb.url`` — haproxy -f deploy/haproxy.cfg, in the foreground."""

    def __init__(self, workdir: Path, nodes: list[Node]) -> None:
        if len(nodes) != 2:
            raise ValueError("deploy/haproxy.cfg names two nodes")
        self.haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not os.access(self.haproxy, os.X_OK):
            raise RuntimeError("haproxy is missing: install Debian's haproxy (make setup does)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log_path = workdir / "haproxy.log"
        self.env = {"HYPERLAB_LB_BIND": f"127.0.0.1:{self.port}",
                    **{f"HYPERLAB_NODE{i}": node.address for i, node in enumerate(nodes, 1)}}
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with open(self.log_path, "ab") as log:
            # -db: foreground, no daemon; -W: master-worker, so one SIGTERM ends it.
            self._proc = subprocess.Popen([self.haproxy, "-db", "-W", "-f", str(HAPROXY_CFG)],
                                          env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"haproxy did not serve /healthz in {STARTUP_TIMEOUT_S:.0f} s:\n{self.log()}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""
