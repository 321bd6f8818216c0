"""Who may touch which lab: browser-session binding, and what every request must pass first.

A lab belongs to one identity (:mod:`hyperlab.web.identity`: the signed session cookie names it, the
database says which lab is its); a lab id that is not the caller's is answered exactly like an unknown
one (404), so lab ids leak nothing. WebSocket handshakes and unsafe
HTTP methods must come from our own origin: browsers send cookies with cross-site WebSocket handshakes,
so without this check any page a student visits could type into their consoles.

Before any route: the ``Host`` must be a name of this server (a page of another site whose name was made
to resolve to us — DNS rebinding — is refused), and a body larger than ``HYPERLAB_MAX_BODY`` is refused
with 413 before it is read. ``X-Forwarded-*`` headers count only from ``HYPERLAB_TRUSTED_PROXIES``; what
they say (the scheme above all) decides whether cookies get ``Secure`` and which Origin is ours.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from hyperlab.web.labs import LabHandle, LabManager


class HttpError(Exception):
    """An error answered as ``{"error": message}`` with ``status`` — the web layer's own LabError twin."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def manager() -> LabManager:
    """The current app's lab registry."""
    return current_app.extensions["hyperlab.labs"]


def owner_id() -> str:
    """This request's identity id, for requests that write: 401 without a session (nothing is written)."""
    from hyperlab.web.identity import require_identity

    return require_identity().id


def viewer_id() -> str | None:
    """This request's identity id, or None: for requests that only read (a cookie-less one sees nothing)."""
    from hyperlab.web.identity import current_identity

    identity = current_identity()
    return identity.id if identity is not None else None


def own_lab(create: bool) -> LabHandle | None:
    """The caller's lab: created (with a session, if need be) when ``create``; else None if it has none.

    Its id is the identity's lab id, so after a server restart the same lab — with the same disks — is
    started again under the id the student's page already knows.
    """
    from hyperlab.web.identity import current_identity, start_session

    identity = start_session() if create else current_identity()
    if identity is None:
        return None
    if create:
        return manager().get_or_create(identity.id, lab_id=identity.lab_id)
    return manager().get(identity.lab_id)


def session_lab_ids() -> list[str]:
    """Ids of the caller's running labs (zero or one)."""
    lab = own_lab(create=False)
    return [lab.id] if lab is not None else []


def session_lab(lab_id: str) -> LabHandle:
    """The lab ``lab_id`` if it exists *and* belongs to this session; else 404 (same answer for both)."""
    lab = own_lab(create=False)
    if lab is None or lab.id != lab_id:
        raise HttpError(404, f"no such lab: {lab_id}")
    return lab


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(host: str) -> tuple[str, int | None]:
    """``"Example.org:8000"`` -> ``("example.org", 8000)``; ``"[::1]"`` -> ``("::1", None)``. A port that
    is not a number gives -1 (matches nothing)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port_text = host.partition(":")
    if not port_text:
        return name.rstrip("."), None
    return name.rstrip("."), int(port_text) if port_text.isdigit() else -1


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` (a Host header) names this server: an IP address and ``localhost`` always do
    (DNS rebinding needs a name the attacker controls), other names only if configured (``*``: any)."""
    name, port = split_host(host)
    if not name or port == -1:
        return False
    allowed = list(allowed)
    return "*" in allowed or name == "localhost" or _is_ip(name) or name in allowed


def _origin_key(scheme: str, host: str) -> tuple[str, str, int | None]:
    name, port = split_host(host)
    return scheme, name, port if port is not None else _DEFAULT_PORTS.get(scheme)


def origin_allowed(request: Request) -> bool:
    """True unless the request carries an ``Origin`` that is neither our own (same scheme, host and port)
    nor configured.

    A missing Origin is allowed: browsers always send it on WebSocket handshakes and cross-site POSTs,
    so its absence means a non-browser client (curl, the Python client, tests), which has no ambient
    cookies to abuse.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin.strip().rstrip("/").lower())
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return False
    key = _origin_key(parts.scheme, parts.netloc)
    configured = {_origin_key(*o.split("://", 1)) for o in current_app.config["HYPERLAB_ALLOWED_ORIGINS"]
                  if "://" in o}
    if key in configured:
        return True
    return key == _origin_key(request.scheme, request.host)


class TrustedProxies:
    """WSGI middleware: apply ``X-Forwarded-For/-Proto/-Host/-Port`` (one proxy hop) only when the
    connection comes from a configured proxy address or network; from anyone else they mean nothing."""

    def __init__(self, app: Callable[..., Any], proxies: Iterable[str]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1)
        self.networks = [ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip()]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        if self.networks and self._trusted(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def _kib(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} bytes"


def _check_request() -> None:
    """Before every route (pages, API, WebSocket handshakes): a name of ours, a body within the limit."""
    if not host_allowed(request.host, current_app.config["HYPERLAB_ALLOWED_HOSTS"]):
        raise HttpError(400, f"{split_host(request.host)[0] or 'this host'} is not a name of this server "
                             "(the trainer can add it to HYPERLAB_ALLOWED_HOSTS)")
    limit = current_app.config["HYPERLAB_MAX_BODY"]
    if request.content_length is not None and request.content_length > limit:
        raise HttpError(413, f"the request body is larger than {_kib(limit)}, the limit of this server")


class SecureCookies:
    """WSGI middleware: over HTTPS every cookie gets ``Secure``, so a browser never sends it over plain
    HTTP. At this level it covers every cookie, whoever sets it (Flask saves the session after the
    ``after_request`` hooks have run)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        if environ.get("wsgi.url_scheme") != "https":
            return self.app(environ, start_response)

        def secure_start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            headers = [(k, v + "; Secure" if k.lower() == "set-cookie" and "; secure" not in v.lower() else v)
                       for k, v in headers]
            return start_response(status, headers, *exc_info)

        return self.app(environ, secure_start)


def _close_after_413(response: Response) -> Response:
    if response.status_code == 413:
        response.headers["Connection"] = "close"  # the unread body must not be parsed as a next request
    return response


def init_app(app: Flask) -> None:
    """The checks every request passes, and the trusted-proxy view of the connection."""
    proxies = app.config["HYPERLAB_TRUSTED_PROXIES"]
    app.wsgi_app = TrustedProxies(SecureCookies(app.wsgi_app), proxies)  # type: ignore[method-assign]
    app.before_request(_check_request)
    app.after_request(_close_after_413)
