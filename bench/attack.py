"""Attack: a student's console echo while an attacker holds 1,000 idle WebSockets and 300 connections
that never finish their request headers (issue 8: budget p99 ≤ 50 ms).

Starts the real server (``hyperlab serve``: gunicorn, one gevent worker) on 127.0.0.1. A student opens
their lab's child1 console over a WebSocket and types keystrokes (a letter, then a backspace, 50 ms
apart); each is timed from the send to the first byte of its echo (the guest's shell echoes it). Two
phases: quiet, then under attack — the attacker's own session opens 1,000 console WebSockets to its own
lab and leaves them idle, and 300 sockets send half a request head and then nothing. After the attack
phase the bench checks that the attacker's WebSockets are all still open (the server held them, it did
not shed them) and that a fresh HTTP request is answered. The server closes a connection whose request
head is not complete within its keep-alive time (5 s); the attacker then opens another at once, so 300
stay half-open throughout.

Bounded: loopback only, fixed counts, every wait has a timeout. Prints one JSON object.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
import websocket

from bench._common import cpu_ticks, emit, log, proc_status
from bench.classroom import Server, dist

IDLE_WEBSOCKETS = int(os.environ.get("ATTACK_WEBSOCKETS", "1000"))
SLOW_CLIENTS = int(os.environ.get("ATTACK_SLOW_CLIENTS", "300"))
KEYSTROKES = 500
GAP_S = 0.05
ECHO_TIMEOUT_S = 5.0
BUDGET_P99_MS = 50.0
TICKS = os.sysconf("SC_CLK_TCK")


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def _cookie(s: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in s.cookies)


def _read_until(ws: websocket.WebSocket, needle: bytes, limit_s: float = 90.0) -> None:
    seen, end = b"", time.monotonic() + limit_s
    while needle not in seen:
        if time.monotonic() > end:
            raise RuntimeError(f"no {needle!r} on the console: {seen[-200:]!r}")
        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
        seen += frame if isinstance(frame, bytes) else frame.encode()


def echo_times(ws: websocket.WebSocket) -> tuple[list[float], int]:
    """Milliseconds from each keystroke to the first byte back; and how many got no echo in time."""
    times, lost = [], 0
    for i in range(KEYSTROKES):
        key = "x" if i % 2 == 0 else "\x7f"
        t0 = time.perf_counter()
        ws.send(key)
        ws.settimeout(ECHO_TIMEOUT_S)
        try:
            ws.recv()
            times.append((time.perf_counter() - t0) * 1000)
        except websocket.WebSocketTimeoutException:
            lost += 1
        time.sleep(GAP_S)
        ws.settimeout(0.01)
        try:
            while True:
                ws.recv()  # the rest of a multi-frame echo (a backspace's "\b \b")
        except websocket.WebSocketTimeoutException:
            pass
    return times, lost


def _slow_client(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")  # and never the rest
    s.setblocking(False)
    return s


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class SlowClients:
    """Keeps SLOW_CLIENTS half-sent requests open: one the server closes (its header timeout) is opened
    again at once, so the server faces all of them for the whole phase."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.socks = [_slow_client(port) for _ in range(SLOW_CLIENTS)]
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        while not self._stop.wait(0.2):
            for i, s in enumerate(self.socks):
                if _closed(s):
                    s.close()
                    self.socks[i] = _slow_client(self.port)
                    self.reopened += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for s in self.socks:
            s.close()


def _attacker(port: int, ws_url: str, url: str, ready: Any, stop: Any, out: Any) -> None:
    """The attacker, in a process of its own (its busy loops must not slow the student's client):
    its own session and lab, IDLE_WEBSOCKETS idle consoles on it, SLOW_CLIENTS half-sent requests.
    Niced: on loopback the attacker's own CPU (reconnecting 300 sockets every 5 s) is on the server's
    machine, which a real attacker's is not."""
    os.nice(19)
    _raise_open_files(IDLE_WEBSOCKETS + SLOW_CLIENTS + 512)
    attacker = requests.Session()
    lab = attacker.post(url + "/api/labs", timeout=60).json()
    for name in ("root", "child1", "child2"):  # its lab booted: the attack is the connections, not a boot
        attacker.post(f"{url}/api/labs/{lab['id']}/partitions/{name}/console", json={"wait": True}, timeout=120)
    console = f"{ws_url}/ws/labs/{lab['id']}/partitions/child2/console"
    t0 = time.monotonic()
    held = [websocket.create_connection(console, cookie=_cookie(attacker), timeout=30)
            for _ in range(IDLE_WEBSOCKETS)]
    opened_s = time.monotonic() - t0
    slow = SlowClients(port)
    ready.set()
    stop.wait(600)
    open_ws = 0
    for conn in held:
        if conn.sock is not None:
            conn.sock.setblocking(False)
            open_ws += not _closed(conn.sock)
    slow.close()
    out.put({"idle_websockets": IDLE_WEBSOCKETS, "slow_clients": SLOW_CLIENTS,
             "open_websockets_s": round(opened_s, 1), "websockets_still_open_at_the_end": open_ws,
             "slow_clients_reopened_after_the_servers_header_timeout": slow.reopened})
    for conn in held:
        conn.close()


def main() -> None:
    _raise_open_files(IDLE_WEBSOCKETS + SLOW_CLIENTS + 512)
    with tempfile.TemporaryDirectory(prefix="hyperlab-attack-") as tmp:
        server = Server(Path(tmp))
        attacker: Any = None
        try:
            student = requests.Session()
            lab = student.post(server.url + "/api/labs", timeout=60).json()
            ws = websocket.create_connection(f"{server.ws_url}/ws/labs/{lab['id']}/partitions/child1/console",
                                             cookie=_cookie(student), timeout=30)
            _read_until(ws, b"child1$ ")
            worker = server.worker_pid()
            assert worker is not None
            log("quiet phase")
            c0, t0 = cpu_ticks(worker), time.monotonic()
            quiet, quiet_lost = echo_times(ws)
            quiet_cores = (cpu_ticks(worker) - c0) / TICKS / (time.monotonic() - t0)
            log("opening the attack")
            ctx = multiprocessing.get_context("fork")
            ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
            attacker = ctx.Process(target=_attacker, args=(server.port, server.ws_url, server.url, ready, stop, out))
            attacker.start()
            if not ready.wait(300):
                raise RuntimeError("the attacker did not get its connections open")
            log("attack phase")
            c0, t0 = cpu_ticks(worker), time.monotonic()
            loud, loud_lost = echo_times(ws)
            loud_cores = (cpu_ticks(worker) - c0) / TICKS / (time.monotonic() - t0)
            t0 = time.perf_counter()
            healthz_ok = requests.get(server.url + "/healthz", timeout=30).ok
            healthz_ms = (time.perf_counter() - t0) * 1000
            rss = proc_status(worker).get("VmRSS")
            stop.set()
            how = out.get(timeout=120)
            attacker.join(timeout=30)
            ws.close()
        finally:
            if attacker is not None and attacker.is_alive():
                attacker.kill()
            server.stop()
    under = dist(loud, loud_lost, samples=False)
    emit("attack", {
        "echo_quiet_ms": dist(quiet, quiet_lost, samples=False),
        "echo_under_attack_ms": under,
        "budget_p99_ms": BUDGET_P99_MS,
        "met": under["p99"] <= BUDGET_P99_MS and loud_lost == 0,
        "attack": how,
        "web_worker_cores_quiet": round(quiet_cores, 3),
        "web_worker_cores_under_attack": round(loud_cores, 3),
        "healthz_under_attack_ms": round(healthz_ms, 1),
        "healthz_ok": healthz_ok,
        "worker_rss_kib_under_attack": rss,
    }, server="hyperlab serve (gunicorn, 1 gevent worker)", keystrokes=KEYSTROKES, gap_s=GAP_S)


if __name__ == "__main__":
    main()
