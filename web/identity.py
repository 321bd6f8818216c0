"""Who is asking: a student's lasting identity, carried by a signed cookie and kept in the database.

The session cookie (Flask's, signed with the app's secret key) holds one thing: the identity id. The row
in ``identities`` says until when it is valid (``expires_at``, pushed forward while the student keeps
coming back) and names the identity's lab (``lab_id``), whose disks live in ``<data dir>/<lab id>/`` —
so a student who closes the browser, or whose server restarts, comes back to their progress, their lab
and their disks. An expired identity is forgotten with its progress and its disks.

A session is only ever created on purpose — a page load, ``POST /api/session`` or ``POST /api/labs`` call
:func:`start_session` — and at most ``HYPERLAB_SESSIONS_PER_MINUTE`` per client address (IPv6: per /64)
per minute; every other request without a session gets :func:`current_identity` ``None`` and writes
nothing. Other parts of the web layer use :func:`current_identity` / :func:`require_identity`.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, current_app, g, jsonify, make_response, request, session
from markupsafe import escape
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import OperationalError

from hyperlab.web.access import HttpError
from hyperlab.web.db import Database
from hyperlab.web.schema import identities

#: The cookie's one key.
COOKIE_KEY = "identity"
#: A session's expiry is pushed forward at most this often (one write per student per hour, not per request).
RENEW_EVERY_S = 3600.0
#: Expired identities are looked for at start and then at most this often.
PURGE_EVERY_S = 3600.0
#: The rate limiter forgets quiet addresses once it tracks more than this many.
_LIMITER_KEYS = 10_000


@dataclass(frozen=True)
class Identity:
    """One lasting session; ``lab_id`` is its lab's id and the name of its disks' folder."""

    id: str
    lab_id: str
    role: str
    display_name: str | None
    expires_at: float
    renewed_at: float


class IdentityStore:
    """The ``identities`` table. ``lifetime_s``: how long a session lasts after its last renewal."""

    def __init__(self, db: Database, lifetime_s: float) -> None:
        self.db = db
        self.lifetime_s = lifetime_s

    def create(self, client: str | None, role: str = "student") -> Identity:
        now = time.time()
        identity = Identity(id=secrets.token_urlsafe(24), lab_id=secrets.token_urlsafe(8), role=role,
                            display_name=None, expires_at=now + self.lifetime_s, renewed_at=now)
        with self.db.write() as conn:
            conn.execute(identities.insert().values(
                id=identity.id, lab_id=identity.lab_id, role=role, client=client, created_at=now,
                renewed_at=now, expires_at=identity.expires_at))
        return identity

    def get(self, identity_id: str, now: float | None = None) -> Identity | None:
        """The identity, or None if there is none by that id or it has expired."""
        now = time.time() if now is None else now
        c = identities.c
        with self.db.read() as conn:
            row = conn.execute(select(c.id, c.lab_id, c.role, c.display_name, c.expires_at, c.renewed_at)
                               .where(c.id == identity_id, c.expires_at > now)).first()
        return Identity(*row) if row else None

    def renew(self, identity: Identity, now: float | None = None) -> Identity:
        """Push the expiry forward if the last renewal is older than an hour (or half the lifetime)."""
        now = time.time() if now is None else now
        if now - identity.renewed_at < min(RENEW_EVERY_S, self.lifetime_s / 2):
            return identity
        expires = now + self.lifetime_s
        with self.db.write() as conn:
            conn.execute(update(identities).where(identities.c.id == identity.id)
                         .values(renewed_at=now, expires_at=expires))
        return Identity(identity.id, identity.lab_id, identity.role, identity.display_name, expires, now)

    def expire(self, identity_id: str) -> None:
        """End a session now (sign-out; tests)."""
        with self.db.write() as conn:
            conn.execute(update(identities).where(identities.c.id == identity_id).values(expires_at=0.0))

    def purge_expired(self, now: float | None = None) -> list[str]:
        """Delete expired identities (their progress goes with them); answers their lab ids."""
        now = time.time() if now is None else now
        c = identities.c
        with self.db.write() as conn:
            labs = list(conn.execute(select(c.lab_id).where(c.expires_at <= now)).scalars())
            conn.execute(delete(identities).where(c.expires_at <= now))
        return labs

    def lab_ids(self) -> set[str]:
        """Every lab id an identity holds (expired or not: until purged, its disks are kept)."""
        with self.db.read() as conn:
            return set(conn.execute(select(identities.c.lab_id)).scalars())

    def count(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(identities)).scalar_one())


class SessionLimiter:
    """At most ``per_minute`` new sessions per client key in any 60 s (a sliding window, in memory)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> float:
        """0.0 and the session counted if allowed; else the seconds until the next one would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._recent) > _LIMITER_KEYS:
                self._recent = {k: q for k, q in self._recent.items() if q and q[-1] > now - 60}
            times = self._recent.setdefault(key, deque())
            while times and times[0] <= now - 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return max(0.1, times[0] + 60 - now)
            times.append(now)
            return 0.0


def client_key(address: str | None) -> str:
    """The address a limit counts against: IPv4 as is, IPv6 by its /64 (one host holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class SessionLimitError(HttpError):
    """429: too many new sessions from one address; ``retry_after`` in whole seconds."""

    def __init__(self, retry_after: float, per_minute: int) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(429, f"too many new sessions from your address (at most {per_minute} a minute); "
                              f"try again in {self.retry_after} s")


# --- request level -----------------------------------------------------------------------------------
def store() -> IdentityStore:
    return current_app.extensions["hyperlab.identities"]


def current_identity() -> Identity | None:
    """This request's identity from the signed cookie, or None (no cookie, unknown or expired id)."""
    if "hyperlab_identity" in g:
        return g.hyperlab_identity
    identity = None
    # "owner" is the key cookies had before identities: the migration made each such owner an identity.
    identity_id = session.get(COOKIE_KEY) or session.get("owner")
    if isinstance(identity_id, str):
        identity = store().get(identity_id)
        if identity is None:
            session.clear()  # expired or forgotten: the browser drops the cookie
        else:
            identity = store().renew(identity)
            if COOKIE_KEY not in session:
                session.pop("owner", None)
                session.pop("labs", None)
                session[COOKIE_KEY] = identity.id
            session.permanent = True
    g.hyperlab_identity = identity
    return identity


def require_identity() -> Identity:
    """The request's identity; 401 without one (the page, ``POST /api/session`` or ``/api/labs`` make one)."""
    identity = current_identity()
    if identity is None:
        raise HttpError(401, "no session: open the site's page first (or POST /api/session), then try again")
    return identity


def require_role(role: str) -> Identity:
    """The request's identity if it has ``role``: 401 without a session, 403 with another role."""
    identity = require_identity()
    if identity.role != role:
        raise HttpError(403, f"only an {role} may do this" if role[0] in "aeiou" else f"only a {role} may do this")
    return identity


def sign_in(role: str, secret: str) -> Identity:
    """A new identity with ``role`` if ``secret`` is that role's secret (a fresh id on every sign-in, so a
    cookie seen before it gains nothing); failed tries count against the client address like new sessions."""
    expected = current_app.config.get(f"HYPERLAB_{role.upper()}_SECRET")
    if not expected:
        raise HttpError(403, f"{role} sign-in is off on this server: the trainer sets HYPERLAB_{role.upper()}_SECRET")
    limiter: SessionLimiter = current_app.extensions["hyperlab.session_limiter"]
    if not hmac.compare_digest(secret.encode(), str(expected).encode()):
        wait = limiter.allow(client_key(request.remote_addr))
        if wait:
            raise SessionLimitError(wait, limiter.per_minute)
        raise HttpError(403, f"wrong {role} secret")
    identity = store().create(request.remote_addr, role=role)
    session.clear()
    session[COOKIE_KEY] = identity.id
    session.permanent = True
    g.hyperlab_identity = identity
    return identity


def sign_out() -> None:
    """End the request's session now: the identity is expired, so the next purge forgets it."""
    identity = current_identity()
    if identity is not None:
        store().expire(identity.id)
    session.clear()
    g.hyperlab_identity = None


def start_session() -> Identity:
    """The request's identity, created now if it has none — at most N per client address per minute (429)."""
    identity = current_identity()
    if identity is not None:
        return identity
    limiter: SessionLimiter = current_app.extensions["hyperlab.session_limiter"]
    wait = limiter.allow(client_key(request.remote_addr))
    if wait:
        raise SessionLimitError(wait, limiter.per_minute)
    _purge_now_and_then()
    identity = store().create(request.remote_addr)
    session.clear()
    session[COOKIE_KEY] = identity.id
    session.permanent = True
    g.hyperlab_identity = identity
    return identity


_purge_lock = threading.Lock()


def _purge_now_and_then() -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with _purge_lock:
        if time.monotonic() - app.extensions.get("hyperlab.purged_at", -PURGE_EVERY_S) < PURGE_EVERY_S:
            return
        app.extensions["hyperlab.purged_at"] = time.monotonic()
    purge_expired(app)


def purge_expired(app: Flask) -> list[str]:
    """Forget expired identities, their progress and their disks; answers the lab folders removed.

    The folders go by what the database still names, not by what this call purged: with several nodes
    sharing one database, another node may have purged the rows of disks that live here. A folder is
    removed only if it holds nothing but VHDs, no identity names it and no lab here runs in it.
    """
    store: IdentityStore = app.extensions["hyperlab.identities"]
    store.purge_expired()
    manager = app.extensions["hyperlab.labs"]
    data_dir: Path | None = manager.data_dir
    if data_dir is None or not data_dir.is_dir():
        return []
    named = store.lab_ids()
    removed = []
    for folder in data_dir.iterdir():
        if (folder.is_dir() and not folder.is_symlink() and folder.name not in named
                and manager.get(folder.name) is None and _only_disks(folder)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def _only_disks(folder: Path) -> bool:
    """True if ``folder`` holds only VHD files (a lab's disks), so nothing else is ever deleted."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    return all(e.is_file() and not e.is_symlink() and e.suffix == ".vhd" for e in entries)


def _limit_response(exc: SessionLimitError) -> Response:
    if request.path.startswith("/api/") or request.path.startswith("/ws/"):
        response = jsonify({"error": exc.message})
    else:
        response = make_response(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Too many new sessions</title>'
            '<link rel="stylesheet" href="/static/css/hyperlab.css"></head><body><main class="notfound">'
            f'<h1>Too many new sessions</h1><p>{escape(exc.message)}.</p></main></body></html>')
        response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.status_code = 429
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _database_down(exc: OperationalError) -> Response:
    """The database stopped answering (PostgreSQL restarting, a network cut): 503, said plainly; the
    connection pool checks connections before use, so the next request after it is back just works."""
    current_app.logger.warning("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
    message = "the database is not answering; try again in a moment"
    if request.path.startswith("/api/") or request.path.startswith("/ws/"):
        response = jsonify({"error": message})
    else:
        response = make_response(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Try again in a moment</title>'
            '<link rel="stylesheet" href="/static/css/hyperlab.css"></head><body><main class="notfound">'
            f'<h1>Try again in a moment</h1><p>{escape(message)}.</p></main></body></html>')
        response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.status_code = 503
    response.headers["Retry-After"] = "5"
    return response


def init_app(app: Flask, db: Database) -> None:
    """Keep the identity store and the session limiter on the app; forget identities expired meanwhile."""
    lifetime_s = float(app.config["HYPERLAB_SESSION_DAYS"]) * 86400
    app.permanent_session_lifetime = lifetime_s  # the cookie's own Expires, refreshed on every answer
    app.extensions["hyperlab.identities"] = IdentityStore(db, lifetime_s)
    app.extensions["hyperlab.session_limiter"] = SessionLimiter(int(app.config["HYPERLAB_SESSIONS_PER_MINUTE"]))
    app.register_error_handler(SessionLimitError, _limit_response)
    app.register_error_handler(OperationalError, _database_down)
    app.extensions["hyperlab.purged_at"] = time.monotonic()
    purge_expired(app)
