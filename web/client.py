"""The hyperlab Python client: read counters, run experiments and plot them, from a script or a notebook cell.

Pure Python, standard library only, and the **same file** runs in CPython and in the browser (Pyodide):
the lesson page writes this module into Pyodide's file system, so ``from hyperlab.web.client import Lab``
works unchanged in a notebook cell. It speaks only the documented REST API (``docs/api.md``); the guide
with examples is ``docs/client.md``.

Transport: ``urllib.request`` in CPython (with its own cookie handling, so a script has a session like a
browser's); in Pyodide (``sys.platform == "emscripten"``) a synchronous ``XMLHttpRequest`` to the page's
own origin, which carries the page's session cookie — so ``Lab.current()`` in a notebook cell is the
student's own lab.

    >>> from hyperlab.web.client import Lab, plot
    >>> lab = Lab.current("http://127.0.0.1:8000")      # in the browser: Lab.current()
    >>> lab.run("child1", "syscalls 1000")                 # types it, waits for the prompt
    >>> lab.counter("child1.syscalls")
    1000
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from typing import Any, Self
from urllib.parse import quote

__all__ = ["IN_BROWSER", "HyperlabError", "Lab", "Measurement", "Svg", "plot", "table", "wait_until"]

#: True inside Pyodide (the browser); the transport is then a same-origin XMLHttpRequest.
IN_BROWSER = sys.platform == "emscripten"

#: Where a CPython client looks for the server when none is given.
DEFAULT_URL = os.environ.get("HYPERLAB_URL", "http://127.0.0.1:8000")

ACTIONS = ("start", "turn_off", "shut_down", "reset", "pause", "resume")


class HyperlabError(Exception):
    """The server refused a request (``status`` is the HTTP status, 0 if it could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})" if status else message)
        self.status = status
        self.message = message


def _decode(status: int, raw: bytes | str) -> Any:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if not 200 <= status < 300:
        message = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None
        if status == 0:
            raise HyperlabError(0, message or "the server could not be reached")
        raise HyperlabError(status, message or f"HTTP {status}: {text[:200]}")
    return body


# --- transports --------------------------------------------------------------------------------------
class _UrllibTransport:
    """CPython: ``urllib.request``, keeping the server's cookies like a browser (one origin only)."""

    def __init__(self, base_url: str, session: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies: dict[str, str] = {}
        if session:
            # A browser's session: the whole Cookie header ("a=b; c=d") or the hyperlab_session value.
            for part in session.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep:
                    self.cookies[name] = value
                elif name:
                    self.cookies["hyperlab_session"] = name

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        import urllib.error
        import urllib.request
        from http.cookies import CookieError, SimpleCookie

        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Accept": "application/json"})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw, headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, raw, headers = exc.code, exc.read(), exc.headers
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HyperlabError(0, f"the server {self.base_url} could not be reached: {reason}") from None
        for header in headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except CookieError:  # a cookie we cannot parse is one we do not need
                continue
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value
        return _decode(status, raw)


class _XhrTransport:
    """Pyodide: a synchronous XMLHttpRequest to the page's origin (allowed on the main thread)."""

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        from js import XMLHttpRequest  # type: ignore[import-not-found]  # Pyodide only

        xhr = XMLHttpRequest.new()
        xhr.open(method, self.base_url + path, False)  # synchronous: a cell reads like a script
        xhr.setRequestHeader("Accept", "application/json")
        try:
            if body is None:
                xhr.send()
            else:
                xhr.setRequestHeader("Content-Type", "application/json")
                xhr.send(json.dumps(body))
        except Exception as exc:  # noqa: BLE001 - a JsException: network error
            raise HyperlabError(0, f"the server could not be reached: {exc}") from None
        return _decode(int(xhr.status), str(xhr.responseText or ""))


def _transport(base_url: str | None, session: str | None) -> Any:
    if IN_BROWSER:
        return _XhrTransport(base_url or "")
    return _UrllibTransport(base_url or DEFAULT_URL, session)


def _q(part: str) -> str:
    return quote(str(part), safe="")


# --- the lab -------------------------------------------------------------------------------------------
class Lab:
    """One lab (a hypervisor with ``root``, ``child1``, ``child2``) of one browser session.

    ``Lab.current()`` is the session's lab, created if it has none. ``Lab(base_url, lab_id, session=...)``
    names a lab explicitly; ``session`` is a browser's ``hyperlab_session`` cookie (to reach the lab of
    that browser session from a script); without it a script is a new session of its own.
    """

    def __init__(self, base_url: str | None = None, lab_id: str | None = None, session: str | None = None,
                 *, transport: Any = None) -> None:
        self._t = transport or _transport(base_url, session)
        if lab_id is None:
            lab_id = self._t.request("POST", "/api/labs")["id"]
        self.id: str = lab_id

    @classmethod
    def current(cls, base_url: str | None = None, session: str | None = None) -> Lab:
        """This session's lab (``POST /api/labs``: get or create, so it is safe to call in every cell)."""
        return cls(base_url, None, session)

    def __repr__(self) -> str:
        return f"<Lab {self.id}>"

    # --- low level -----------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        """A request to ``/api/labs/<id><path>``; answers the decoded JSON, raises :class:`HyperlabError`."""
        return self._t.request(method, f"/api/labs/{_q(self.id)}{path}", body, timeout)

    def _partition_path(self, name: str) -> str:
        return f"/partitions/{_q(name)}"

    # --- reading -------------------------------------------------------------------------------------
    def describe(self) -> dict:
        """The lab: ``{"id", "design", "alive", "components", "tcb", "partitions": [...]}``."""
        return self.request("GET", "")

    def design(self) -> str:
        """``microkernel``, ``monolithic`` or ``hosted``."""
        return self.describe()["design"]

    def components(self) -> list[dict]:
        """Each host-side component of this design: name, domain, lines, bytes (docs/architecture.md)."""
        return self.describe()["components"]

    def tcb(self) -> dict[str, dict]:
        """Trusted code per privilege domain (``hypervisor``, ``root_kernel``, ``root_user``): lines, bytes."""
        return self.describe()["tcb"]

    def partitions(self) -> list[dict]:
        """Every partition's description (name, role, state, settings, actions allowed now, ...)."""
        return self.request("GET", "/partitions")["partitions"]

    def partition(self, name: str) -> dict:
        return self.request("GET", self._partition_path(name))

    def state(self, name: str) -> str:
        """``off``, ``starting``, ``running``, ``paused``, ``stopping`` or ``crashed``."""
        return self.partition(name)["state"]

    def counters(self, prefix: str | None = None) -> dict[str, float]:
        """All counters (names in docs/telemetry.md), or those starting with ``prefix`` (e.g. ``"child2."``)."""
        counters = self.request("GET", "/counters")["counters"]
        if prefix:
            counters = {k: v for k, v in counters.items() if k.startswith(prefix)}
        return dict(sorted(counters.items()))

    def counter(self, name: str) -> float:
        """One counter's value now; a counter that has not counted anything yet is 0."""
        value = self.counters().get(name, 0)
        return int(value) if isinstance(value, float) and value.is_integer() else value

    def measure(self) -> Measurement:
        """``with lab.measure() as m: ...`` then ``m.delta("child2.exits.io_port")``."""
        return Measurement(self)

    # --- changing ------------------------------------------------------------------------------------
    def action(self, partition: str, action: str) -> dict:
        """``start``, ``turn_off``, ``shut_down``, ``reset``, ``pause`` or ``resume``; answers the partition."""
        return self.request("POST", f"{self._partition_path(partition)}/actions/{_q(action)}")

    def start(self, partition: str) -> dict:
        return self.action(partition, "start")

    def turn_off(self, partition: str) -> dict:
        return self.action(partition, "turn_off")

    def shut_down(self, partition: str) -> dict:
        return self.action(partition, "shut_down")

    def reset(self, partition: str) -> dict:
        return self.action(partition, "reset")

    def pause(self, partition: str) -> dict:
        return self.action(partition, "pause")

    def resume(self, partition: str) -> dict:
        return self.action(partition, "resume")

    def settings(self, partition: str, **changes: Any) -> dict:
        """Change ``memory_mb`` / ``integration_services`` (effective at the partition's next start)."""
        return self.request("PUT", f"{self._partition_path(partition)}/settings", changes)

    def restart(self) -> dict:
        """A fresh lab process (fresh partitions) under the same id."""
        return self.request("POST", "/restart")

    def switch_design(self, design: str) -> dict:
        """Restart the lab in ``microkernel``, ``monolithic`` or ``hosted`` (disks kept); answers the lab."""
        return self.request("PUT", "/design", {"design": design})

    def fault(self, component: str) -> dict:
        """Fail a component as if its code raised (e.g. ``child2.ide``); answers the partitions after."""
        return self.request("POST", "/faults", {"component": component})

    # --- consoles ------------------------------------------------------------------------------------
    def type(self, partition: str, text: str, enter: bool = True) -> None:
        """Type ``text`` (and Enter) into the partition's console, as a student would; does not wait."""
        self.request("POST", f"{self._partition_path(partition)}/console",
                     {"text": text, "enter": enter, "wait": False})

    def run(self, partition: str, command: str, timeout: float = 30.0) -> str:
        """Type ``command`` + Enter, wait for the shell's prompt (or a crash, or the partition stopping),
        and answer what the command printed."""
        answer = self.request("POST", f"{self._partition_path(partition)}/console",
                              {"text": command, "enter": True, "wait": True, "timeout": timeout},
                              timeout=timeout + 30)
        if answer.get("timed_out"):
            raise HyperlabError(408, f"{partition} showed no prompt within {timeout:g} s after {command!r} "
                                     f"(it is {answer.get('state')}); output so far: {answer['output'][-300:]!r}")
        return answer["output"]

    def wait_prompt(self, partition: str, timeout: float = 30.0) -> bool:
        """Wait until the partition's shell shows its prompt (e.g. after a start); False on timeout."""
        answer = self.request("POST", f"{self._partition_path(partition)}/console",
                              {"text": "", "enter": False, "wait": True, "timeout": timeout},
                              timeout=timeout + 30)
        return bool(answer["prompt"])

    def console(self, partition: str) -> str:
        """The console's recent output (the last 64 KiB), as text."""
        return self.request("GET", f"{self._partition_path(partition)}/console")["text"]

    def wait_state(self, partition: str, *states: str, timeout: float = 30.0) -> str:
        """Wait until the partition is in one of ``states`` (e.g. ``"running"``); answers the state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(partition)
            if state in states:
                return state
            if time.monotonic() >= deadline:
                raise HyperlabError(408, f"{partition} is still {state} after {timeout:g} s "
                                         f"(waited for {' or '.join(states)})")
            _sleep(0.2)


def _sleep(seconds: float) -> None:
    """``time.sleep``; in the browser the request itself paces the loop if sleeping is not possible."""
    try:
        time.sleep(seconds)
    except Exception:  # noqa: S110, BLE001 - some Pyodide builds refuse to block the main thread
        pass


class Measurement:
    """Counters before and after a block: ``with lab.measure() as m: lab.run(...)``; ``m.delta(name)``."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.before: dict[str, float] = {}
        self.after: dict[str, float] | None = None

    def __enter__(self) -> Self:
        self.before = self.lab.counters()
        self.after = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = self.lab.counters()

    def delta(self, name: str) -> float:
        """How much ``name`` grew over the block (up to now, inside the block)."""
        after = self.after if self.after is not None else self.lab.counters()
        value = after.get(name, 0) - self.before.get(name, 0)
        return int(value) if isinstance(value, float) and value.is_integer() else value

    def deltas(self, prefix: str = "") -> dict[str, float]:
        """Every counter (starting with ``prefix``) that grew, with how much."""
        after = self.after if self.after is not None else self.lab.counters()
        return {k: self.delta(k) for k in sorted(after) if k.startswith(prefix) and self.delta(k) != 0}


# --- plotting without matplotlib ---------------------------------------------------------------------
#: Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
_MARKERS = ("circle", "square", "diamond", "triangle")


class Svg(str):
    """SVG markup. A notebook cell shows it as a chart (as its last value, or when printed);
    in CPython, ``.save("plot.svg")`` writes it for a browser to open."""

    def _repr_svg_(self) -> str:
        return str(self)

    def save(self, path: str) -> str:
        with open(path, "w", encoding="utf-8") as f:
            f.write(str(self))
        return path


def _nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten;
    whole numbers only if ``integer``)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi == lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1, math.ceil(step))
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            value = int(value)
        else:
            return f"{value:,.3g}" if abs(value) < 1e6 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _log_ticks(hi: float) -> list[float]:
    """0, 1, 10, 100, … up to the first power of ten at or above ``hi``."""
    ticks = [0.0, 1.0]
    while ticks[-1] < hi:
        ticks.append(ticks[-1] * 10)
    return ticks


def plot(xs: Sequence[Any], ys_by_name: Mapping[str, Sequence[float]] | Sequence[float], *, title: str = "",
         xlabel: str = "", ylabel: str = "", kind: str = "line", yscale: str = "linear", width: int = 640,
         height: int = 360) -> Svg:
    """A line (``kind="line"``) or grouped bar (``kind="bar"``) chart as SVG, for a notebook cell.

    ``xs`` are the x values (numbers for a line chart; anything for bars, shown as categories) and
    ``ys_by_name`` maps each series' name to its values, one per x (a plain list is one series).
    ``yscale="log"`` spaces 0, 1, 10, 100, … evenly (a count of 3 and one of 3,000 both stay readable;
    zero stays on the axis): for counts of zero or more.

        plot([1, 2, 4, 8], {"child1": [40, 80, 160, 320], "child2": [2, 2, 3, 4]},
             title="Exits per write", xlabel="sectors written", ylabel="exits")
    """
    if kind not in ("line", "bar"):
        raise ValueError('kind must be "line" or "bar"')
    if yscale not in ("linear", "log"):
        raise ValueError('yscale must be "linear" or "log"')
    if not isinstance(ys_by_name, Mapping):
        ys_by_name = {ylabel or "y": list(ys_by_name)}
    xs = list(xs)
    series = {str(name): [float(v) for v in values] for name, values in ys_by_name.items()}
    for name, values in series.items():
        if len(values) != len(xs):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(xs)} x values")
    if not xs or not series:
        raise ValueError("nothing to plot: give at least one x value and one series")

    left, right, top, bottom = 72, 16, 40 if title else 16, 52
    legend_w = max((len(n) for n in series), default=0) * 7 + 34
    right += legend_w
    pw, ph = width - left - right, height - top - bottom

    all_y = [v for values in series.values() for v in values if math.isfinite(v)]
    y_lo = min([0.0, *all_y]) if kind == "bar" else min(all_y, default=0.0)
    y_hi = max(all_y, default=1.0)
    if kind == "line" and y_lo > 0 and y_lo < y_hi * 0.5:
        y_lo = 0.0  # counts read best from zero unless the data sit far above it
    log = yscale == "log"
    if log:
        if any(v < 0 for v in all_y):
            raise ValueError('yscale="log" is for values of zero or more')
        yt = _log_ticks(y_hi)
        y_lo, y_hi = 0.0, yt[-1]
    else:
        yt = _nice_ticks(y_lo, y_hi)
        y_lo, y_hi = yt[0], yt[-1]

    def sy(v: float) -> float:
        if log:  # log10(1 + v): 0 at the bottom, then one decade per step
            return top + ph - math.log10(1 + v) / math.log10(1 + y_hi) * ph
        return top + ph - (v - y_lo) / (y_hi - y_lo) * ph

    numeric_x = kind == "line" and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    if numeric_x:
        xt = _nice_ticks(min(xs), max(xs), integer=all(isinstance(x, int) for x in xs))
        x_lo, x_hi = (xt[0], xt[-1]) if len(set(xs)) > 1 else (xs[0] - 1, xs[0] + 1)
        if len(set(xs)) <= 1:
            xt = [xs[0]]

        def sx(i: int) -> float:
            return left + (float(xs[i]) - x_lo) / (x_hi - x_lo) * pw

        x_ticks = [(left + (t - x_lo) / (x_hi - x_lo) * pw, _fmt(t)) for t in xt]
    else:
        band = pw / len(xs)

        def sx(i: int) -> float:
            return left + band * (i + 0.5)

        x_ticks = [(sx(i), _fmt(x)) for i, x in enumerate(xs)]

    label = title or ", ".join(series)
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(label)}" font-family="sans-serif" font-size="12">'),
           f"<title>{escape(label)}</title>",
           f"<desc>{escape(_describe_data(xs, series, xlabel, ylabel))}</desc>",
           f'<rect width="{width}" height="{height}" fill="#fff"/>']
    if title:
        out.append(f'<text x="{left + pw / 2:.1f}" y="24" text-anchor="middle" font-size="15" '
                   f'font-weight="bold">{escape(title)}</text>')
    for t in yt:  # grid and y ticks
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(t))}</text>')
    for x, text in x_ticks:
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#333"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 17}" text-anchor="middle">{escape(text)}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="#333"/>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#333"/>')
    if xlabel:
        out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 10}" text-anchor="middle">{escape(xlabel)}</text>')
    if ylabel or log:
        out.append(f'<text transform="translate(16 {top + ph / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle">{escape(ylabel)}{" (log scale)" if log else ""}</text>')

    names = list(series)
    for k, name in enumerate(names):
        color = PALETTE[k % len(PALETTE)]
        values = series[name]
        if kind == "bar":
            band = pw / len(xs)
            bw = band * 0.8 / len(names)
            for i, v in enumerate(values):
                if not math.isfinite(v):
                    continue
                x0 = left + band * i + band * 0.1 + bw * k
                y0, y1 = sorted((sy(v), sy(max(y_lo, 0.0))))
                out.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{bw:.1f}" height="{max(y1 - y0, 0.5):.1f}" '
                           f'fill="{color}"><title>{escape(name)}: {escape(_fmt(xs[i]))} → '
                           f'{escape(_fmt(v))}</title></rect>')
        else:
            points = [(sx(i), sy(v)) for i, v in enumerate(values) if math.isfinite(v)]
            if len(points) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            for i, v in enumerate(values):
                if math.isfinite(v):
                    out.append(_marker(_MARKERS[k % len(_MARKERS)], sx(i), sy(v), color,
                                       f"{name}: {_fmt(xs[i])} → {_fmt(v)}"))
    lx = width - legend_w + 8
    for k, name in enumerate(names):  # legend
        color = PALETTE[k % len(PALETTE)]
        y = top + 8 + k * 20
        if kind == "bar":
            out.append(f'<rect x="{lx}" y="{y - 6}" width="12" height="12" fill="{color}"/>')
        else:
            out.append(f'<line x1="{lx - 4}" x2="{lx + 16}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="2"/>')
            out.append(_marker(_MARKERS[k % len(_MARKERS)], lx + 6, y, color, None))
        out.append(f'<text x="{lx + 22}" y="{y + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return Svg("\n".join(out))


def _marker(shape: str, x: float, y: float, color: str, tip: str | None) -> str:
    tip_el = f"<title>{escape(tip)}</title>" if tip else ""
    if shape == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{color}">{tip_el}</rect>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{color}">{tip_el}</polygon>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}"
        return f'<polygon points="{pts}" fill="{color}">{tip_el}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}">{tip_el}</circle>'


def _describe_data(xs: Sequence[Any], series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str) -> str:
    """The chart's data in words, for screen readers (the SVG's <desc>)."""
    parts = []
    for name, values in series.items():
        pairs = ", ".join(f"{_fmt(x)}: {_fmt(v)}" for x, v in zip(xs, values, strict=False))
        parts.append(f"{name} — {pairs}")
    head = f"{ylabel or 'value'} by {xlabel or 'x'}. "
    return head + "; ".join(parts)


def table(rows: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> str:
    """Plain-text table of counters or rows, for ``print``: ``print(table(lab.counters("child2.")))``."""
    if isinstance(rows, Mapping):
        rows = [{"name": k, "value": v} for k, v in rows.items()]
    rows = list(rows)
    if not rows:
        return "(nothing)"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    numeric = [all(re.fullmatch(r"-?[\d,.]+", row[i] or "0") for row in cells) for i in range(len(cols))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))

    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)]).rstrip()


# ``wait`` helpers take a callable so a cell can wait on anything the API shows.
def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Call ``predicate`` until it answers something true (answered), or raise after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HyperlabError(408, f"still not true after {timeout:g} s")
        _sleep(interval)
