"""Keys typed at a lab's consoles, on their way from the web side to the scheduler thread.

A WebSocket can type faster than a busy lab serves it. Queueing one scheduler request per message
let a single client grow a lab process by hundreds of MiB and put a Ctrl-C behind all of it. Here
each console holds at most ``LIMIT`` bytes, with one delivery queued for all of them; what does not
fit is dropped and counted (``<p>.console.input_dropped``); a Ctrl-C flushes what still waits, as a
terminal's INTR flushes typeahead, so it goes next.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

CTRL_C = b"\x03"
LIMIT = 64 * 1024


class Typeahead:
    def __init__(self, submit: Callable[[Callable[[], None]], None],
                 deliver: Callable[[str, bytes, int], None], limit: int = LIMIT) -> None:
        """``submit`` runs a function on the scheduler thread soon; ``deliver(name, data, dropped)``
        hands a console's bytes to its partition there (with how many were dropped since)."""
        self._submit = submit
        self._deliver = deliver
        self.limit = limit
        self._lock = threading.Lock()
        self._waiting: dict[str, bytearray] = {}
        self._dropped: collections.Counter[str] = collections.Counter()
        self._queued = False

    def put(self, name: str, data: bytes) -> None:
        """Keys typed at ``name``'s console (any thread)."""
        with self._lock:
            buf = self._waiting.setdefault(name, bytearray())
            if CTRL_C in data:
                buf.clear()
                data = data[data.rfind(CTRL_C):] if len(data) > self.limit else data
            room = self.limit - len(buf)
            if len(data) > room:
                self._dropped[name] += len(data) - room
                data = data[:room]
            buf += data
            if self._queued:
                return
            self._queued = True
        self._submit(self._drain)

    def waiting(self, name: str) -> int:
        with self._lock:
            return len(self._waiting.get(name, b""))

    def _drain(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, {}
            dropped, self._dropped = self._dropped, collections.Counter()
            self._queued = False
        for name, data in waiting.items():
            self._deliver(name, bytes(data), dropped.pop(name, 0))
        for name, n in dropped.items():
            self._deliver(name, b"", n)
