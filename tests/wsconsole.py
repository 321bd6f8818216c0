"""A partition's console over the WebSocket, as xterm.js uses it (raw bytes both ways), for tests that talk
to a whole server from outside: the Docker image, nodes behind a balancer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Self

import pytest
import requests
import websocket

PROMPT_TIMEOUT_S = 30.0


class Console:
    """``Console(base_ws_url, session, lab_id, "root")``: ``wait_prompt()``, then ``type("ver")`` → the answer."""

    def __init__(self, ws_url: str, s: requests.Session, lab_id: str, partition: str,
                 timeout: float = PROMPT_TIMEOUT_S) -> None:
        cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
        self.ws = websocket.create_connection(f"{ws_url}/ws/labs/{lab_id}/partitions/{partition}/console",
                                              cookie=cookie, timeout=10)
        self.prompt = f"{partition}$ ".encode()
        self.timeout = timeout
        self.seen = bytearray()

    def read_until(self, done: Callable[[bytes], bool], what: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        while not done(bytes(self.seen)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{what} not seen in {self.timeout:.0f} s; the console said: {bytes(self.seen)[-1500:]!r}")
            self.ws.settimeout(remaining)
            try:
                self.seen += self.ws.recv_data()[1]
            except websocket.WebSocketTimeoutException:
                continue
        return bytes(self.seen)

    def wait_prompt(self) -> None:
        """Press Enter and wait for the shell's prompt."""
        self.ws.send_binary(b"\r")
        self.read_until(lambda seen: self.prompt in seen, "the prompt")

    def type(self, line: str) -> str:
        """Type ``line`` + Enter; what the shell answered before its next prompt, as text."""
        echo = line.encode()
        self.seen.clear()
        self.ws.send_binary(echo + b"\r")

        def answered(seen: bytes) -> bool:
            at = seen.find(echo)
            return at >= 0 and seen.find(self.prompt, at) >= 0

        seen = self.read_until(answered, f"the answer to {line!r}")
        at = seen.find(echo) + len(echo)
        return seen[at:seen.find(self.prompt, at)].decode(errors="replace")

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
