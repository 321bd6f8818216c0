"""WebSocket streams: a partition's console (raw bytes both ways) and lab telemetry (JSON at ~10 Hz).

Why the shape: flask-sock gives each connection a handler thread (ours) plus a reader thread (the
library's). Output must never be written from a shared loop, or one slow browser stalls everyone, so
each connection gets exactly **one writer thread** fed by a **bounded** buffer: console output keeps the
newest bytes when a client falls behind, telemetry always samples the latest snapshot. The handler
thread reads the client with ``receive(timeout=...)`` so it notices closed sockets, a stopped lab and a
writer stuck on a client that stopped reading (which it then disconnects).

Handshakes are checked *before* the upgrade (``before_request``): a foreign ``Origin`` gets 403 and an
unknown lab or partition gets 404, as plain HTTP answers. After the upgrade, errors are close codes
(see ``docs/api.md``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from hyperlab.web import access
from hyperlab.web.access import HttpError
from hyperlab.web.labs import LabError, LabHandle

log = logging.getLogger(__name__)

bp = Blueprint("streams", __name__)
sock = Sock()

#: Close codes sent after the upgrade (4000–4999 are ours by RFC 6455).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_LAB_STOPPED = 4503
CLOSE_PARTITION_GONE = 4404

#: Console output buffered per connection before the oldest bytes are dropped.
CONSOLE_BUFFER_BYTES = 256 * 1024
#: Largest binary frame the console writer sends (bigger backlogs go out in several frames).
CONSOLE_FRAME_BYTES = 64 * 1024
#: Telemetry period: ~10 Hz, as DESIGN.md promises.
TELEMETRY_PERIOD_S = 0.1
#: How often the handler wakes to check the lab and the writer (lab stopped or restarted, a stuck
#: writer): a restarted lab's consoles follow it within a second.
TICK_S = 1.0
#: A writer blocked this long in one send means the client stopped reading: disconnect it.
SLOW_CLIENT_S = 30.0

_DROPPED_NOTE = b"\r\n\x1b[33m[... console output dropped: client too slow ...]\x1b[0m\r\n"


class _Connection:
    """One WebSocket's single writer: serialises sends and closes, and tracks a stuck send.

    ``ws.send`` in simple-websocket has no lock, so every frame this side sends goes through here.
    """

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._send_started: float | None = None

    @property
    def open(self) -> bool:
        return bool(self.ws.connected) and not self.stopped.is_set()

    def send(self, data: bytes | str) -> bool:
        """Send one frame; False once the connection is gone."""
        with self._lock:
            if not self.open:
                return False
            self._send_started = time.monotonic()
            try:
                self.ws.send(data)
            except Exception:  # noqa: BLE001 - any socket failure ends this connection only
                self.stopped.set()
                return False
            finally:
                self._send_started = None
        return True

    def close(self, code: int, message: str) -> None:
        """Close with ``code`` once; later calls are no-ops."""
        self.stopped.set()
        with self._lock, contextlib.suppress(Exception):  # already closed by the peer
            if self.ws.connected:
                self.ws.close(reason=code, message=message)

    def stalled(self) -> bool:
        """True if a send has been blocked longer than :data:`SLOW_CLIENT_S`."""
        started = self._send_started
        return started is not None and time.monotonic() - started > SLOW_CLIENT_S

    def abort(self) -> None:
        """Cut a client that stopped reading: shutting the socket down unblocks the stuck send."""
        self.stopped.set()
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ConsoleOutbox:
    """Bounded byte buffer between the lab's console reader thread and this connection's writer.

    ``put`` never blocks (it runs on the lab's reader thread, shared by every subscriber): past
    :data:`CONSOLE_BUFFER_BYTES` the oldest bytes go, and the client sees a note saying so.
    """

    def __init__(self, limit: int = CONSOLE_BUFFER_BYTES) -> None:
        self._limit = limit
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, data: bytes) -> None:
        with self._cond:
            if self._closed or not data:
                return
            self._buf += data
            excess = len(self._buf) - self._limit
            if excess > 0:
                self.dropped += excess
                del self._buf[: excess + len(_DROPPED_NOTE)]
                self._buf[:0] = _DROPPED_NOTE
            self._cond.notify()

    def take(self, max_bytes: int, timeout: float | None) -> bytes | None:
        """Up to ``max_bytes`` pending bytes; b"" on timeout, None once closed."""
        with self._cond:
            if not self._buf and not self._closed:
                self._cond.wait(timeout)
            if self._closed:
                return None
            chunk = bytes(self._buf[:max_bytes])
            del self._buf[:max_bytes]
            return chunk

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _console_writer(conn: _Connection, outbox: ConsoleOutbox) -> None:
    """Sends what the outbox holds; sleeps until there is some (the handler closes the outbox when the
    connection ends), so an idle console costs no wake-ups here."""
    while conn.open:
        chunk = outbox.take(CONSOLE_FRAME_BYTES, timeout=None)
        if chunk is None:
            return
        if chunk and not conn.send(chunk):
            return


def _telemetry_frame(lab: LabHandle) -> str:
    """One snapshot as JSON; a lab that cannot answer is reported as stopped, never as an exception."""
    try:
        snap: dict[str, Any] = lab.snapshot()
    except LabError as exc:
        snap = {"t": None, "alive": False, "error": getattr(exc, "message", str(exc)),
                "partitions": {}, "counters": {}, "transitions": []}
    return json.dumps(snap, separators=(",", ":"), default=str)


def _telemetry_writer(conn: _Connection, lab: LabHandle) -> None:
    """Sample and send at ~10 Hz; a slow client just gets fewer (always the latest) snapshots."""
    next_at = time.monotonic()
    while conn.open:
        try:
            frame = _telemetry_frame(lab)
        except Exception:
            log.exception("telemetry snapshot failed")
            frame = json.dumps({"t": None, "alive": lab.alive, "error": "snapshot failed"})
        if not conn.send(frame):
            return
        next_at = max(next_at + TELEMETRY_PERIOD_S, time.monotonic())
        if conn.stopped.wait(max(0.0, next_at - time.monotonic())):
            return


def _serve(ws: Any, conn: _Connection, writer: threading.Thread,
           on_message: Callable[[bytes], None], on_tick: Callable[[], None]) -> None:
    """The handler thread's loop: read client frames, wake every tick for housekeeping."""
    writer.start()
    # Ticks of many connections opened together would fall together: start each at a random phase.
    next_tick = time.monotonic() + random.uniform(0.1, TICK_S)
    try:
        while conn.open:
            message = ws.receive(timeout=max(0.05, next_tick - time.monotonic()))
            if not writer.is_alive() and not conn.stopped.is_set():
                conn.stopped.set()
            if conn.stalled():
                log.info("disconnecting a WebSocket client that stopped reading")
                conn.abort()
                break
            if time.monotonic() >= next_tick:  # housekeeping even while the client keeps typing
                next_tick = time.monotonic() + TICK_S
                on_tick()
            if message is not None and conn.open:
                on_message(message.encode("utf-8") if isinstance(message, str) else bytes(message))
    except ConnectionClosed:
        pass  # the client left, or simple-websocket closed it (1009 on an oversized message)
    finally:
        conn.stopped.set()


@sock.route("/ws/labs/<lab_id>/partitions/<name>/console", bp=bp)
def console(ws: Any, lab_id: str, name: str) -> None:
    """Console bytes both ways: binary frames out; text or binary frames in (keyboard input)."""
    _console(ws, g.hyperlab_lab, name, writable=True)


@sock.route("/ws/classes/<class_id>/students/<student>/partitions/<name>/console", bp=bp)
def student_console(ws: Any, class_id: str, student: str, name: str) -> None:
    """An instructor's view of a student's console: read-only (spectate), or with ``?take_over=1`` typing
    into it — the student sees what is typed, as on a shared screen. The handshake audited which; the end
    of a take-over is audited too (the student's page shows a banner between the two)."""
    try:
        _console(ws, g.hyperlab_lab, name, writable=g.hyperlab_take_over)
    finally:
        if g.hyperlab_take_over:
            from hyperlab.web.api.classes import class_store

            class_store().audit(g.hyperlab_actor, "take_over_end", class_id, target=student, detail=name)


def _console(ws: Any, lab: LabHandle, name: str, writable: bool) -> None:
    request.environ[_WS_KEY] = ws
    lab_id = lab.id
    conn = _Connection(ws)
    if not lab.alive:
        conn.close(CLOSE_LAB_STOPPED, "lab stopped")
        return
    outbox = ConsoleOutbox()
    # The lab handle replaces its process on restart and forgets its subscribers: follow the process.
    subscription: dict[str, Any] = {"process": getattr(lab, "process", None)}
    try:
        subscription["unsubscribe"] = lab.subscribe_console(name, outbox.put)
    except LabError as exc:
        conn.close(CLOSE_LAB_STOPPED if exc.status == 503 else CLOSE_PARTITION_GONE, exc.message[:120])
        return

    def on_message(data: bytes) -> None:
        if not writable:
            return  # a spectator's keys go nowhere
        try:
            lab.send_console(name, data)
        except LabError as exc:
            if exc.status == 503:
                conn.close(CLOSE_LAB_STOPPED, "lab stopped")
            # other refusals (e.g. partition off) drop the keystrokes; the console shows the state

    def on_tick() -> None:
        if not lab.alive:
            outbox.put(b"\r\n\x1b[31m[lab stopped]\x1b[0m\r\n")
            time.sleep(0.2)  # let the writer flush the note before the close frame
            conn.close(CLOSE_LAB_STOPPED, "lab stopped")
        elif getattr(lab, "process", None) is not subscription["process"]:
            _quietly(subscription["unsubscribe"])
            subscription["process"] = getattr(lab, "process", None)
            outbox.put(b"\r\n\x1b[33m[lab restarted]\x1b[0m\r\n")
            try:
                subscription["unsubscribe"] = lab.subscribe_console(name, outbox.put)
            except LabError as exc:
                subscription["unsubscribe"] = lambda: None
                conn.close(CLOSE_LAB_STOPPED if exc.status in (503, 504) else CLOSE_PARTITION_GONE,
                           exc.message[:120])

    writer = threading.Thread(target=_console_writer, args=(conn, outbox), daemon=True,
                              name=f"ws-console-{lab_id}-{name}")
    detach = lab.attach_viewer()  # an open console keeps the lab from being culled as idle
    try:
        _serve(ws, conn, writer, on_message, on_tick)
    except Exception:
        log.exception("console stream failed")
        conn.close(1011, "internal error")
    finally:
        detach()
        _quietly(subscription["unsubscribe"])
        outbox.close()
        writer.join(timeout=2)


@sock.route("/ws/labs/<lab_id>/telemetry", bp=bp)
def telemetry(ws: Any, lab_id: str) -> None:
    """JSON snapshots at ~10 Hz; ``alive: false`` when the lab process died. Client frames are ignored."""
    request.environ[_WS_KEY] = ws
    lab: LabHandle = g.hyperlab_lab
    conn = _Connection(ws)
    writer = threading.Thread(target=_telemetry_writer, args=(conn, lab), daemon=True,
                              name=f"ws-telemetry-{lab_id}")
    detach = lab.attach_viewer()  # an open page keeps the lab from being culled as idle
    try:
        _serve(ws, conn, writer, on_message=lambda _data: None, on_tick=lambda: None)
    except Exception:
        log.exception("telemetry stream failed")
        conn.close(1011, "internal error")
    finally:
        detach()
        writer.join(timeout=2)


def _quietly(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:
        log.debug("cleanup failed", exc_info=True)


@bp.before_request
def _check_handshake() -> tuple[Response, int] | None:
    """Origin and ownership before the upgrade, so refusals are plain HTTP 403/404 answers."""
    if not access.origin_allowed(request):
        return jsonify({"error": "WebSocket origin refused"}), 403
    args = request.view_args or {}
    if "class_id" in args:
        lab = _student_lab(args["class_id"], args.get("student", ""))
    else:
        lab = access.session_lab(args.get("lab_id", ""))
    if "name" in args:
        try:
            lab.partition(args["name"])  # LabError 404 for an unknown partition
        except LabError as exc:
            if exc.status != 503:
                raise
            # a stopped lab is accepted and then closed with 4503, which a browser can read
    g.hyperlab_lab = lab
    return None


def _student_lab(class_id: str, student: str) -> LabHandle:
    """A class member's lab, for an instructor only (401/403 before anything is looked up; 404 for a
    student not in that class or without a running lab); the spectate or take-over goes to the audit log."""
    from hyperlab.web.api.classes import INSTRUCTOR, class_store
    from hyperlab.web.identity import require_role

    me = require_role(INSTRUCTOR)
    klass = class_store().get(class_id)
    class_store().member(klass.id, student)
    lab = access.manager().get(student)
    if lab is None:
        raise HttpError(404, "this student has no lab running")
    g.hyperlab_take_over = request.args.get("take_over") == "1"
    g.hyperlab_actor = me.lab_id
    name = (request.view_args or {}).get("name")
    class_store().audit(me.lab_id, "take_over" if g.hyperlab_take_over else "spectate", klass.id, target=student,
                        detail=name)
    return lab


class _WerkzeugSocketEnd:
    """WSGI middleware: after a WebSocket session on Werkzeug's server (``hyperlab serve --debug``),
    write nothing more.

    flask-sock hands Werkzeug an ordinary (empty) response once the socket is done, and Werkzeug writes
    ``HTTP/1.1 200 OK`` onto the finished WebSocket — right after our close frame, so browsers report
    1006 instead of our close code (e.g. 4503 "lab stopped"). Werkzeug treats a ConnectionError from the
    application as a dropped connection and writes nothing; gunicorn needs none of this.
    """

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        result = self.wsgi_app(environ, start_response)
        ws = environ.get(_WS_KEY)
        if ws is None or "werkzeug.socket" not in environ:
            return result
        if hasattr(result, "close"):
            result.close()
        # Let the client's close reply reach simple-websocket's reader, which then closes the socket;
        # otherwise Werkzeug would wait on the socket for a next HTTP request.
        ws.thread.join(timeout=2)
        with contextlib.suppress(OSError):
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError("WebSocket session finished")


_WS_KEY = "hyperlab.websocket"


def init_app(app: Flask) -> None:
    """Register the WebSocket routes (``SOCK_SERVER_OPTIONS`` sets pings and the message size cap)."""
    app.register_blueprint(bp)
    sock.init_app(app)
    app.wsgi_app = _WerkzeugSocketEnd(app.wsgi_app)  # type: ignore[method-assign]
