"""Who may touch which lab: browser-session binding and same-origin checks.

A lab belongs to one identity (:mod:`hyperlab.web.identity`: the signed session cookie names it, the
database says which lab is its); a lab id that is not the caller's is answered exactly like an unknown
one (404), so lab ids leak nothing. WebSocket handshakes and unsafe
HTTP methods must come from our own origin: browsers send cookies with cross-site WebSocket handshakes,
so without this check any page a student visits could type into their consoles.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Request, current_app

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


def origin_allowed(request: Request) -> bool:
    """True unless the request carries an ``Origin`` that is neither our own host nor configured.

    A missing Origin is allowed: browsers always send it on WebSocket handshakes and cross-site POSTs,
    so its absence means a non-browser client (curl, the Python client, tests), which has no ambient
    cookies to abuse.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if origin in current_app.config["HYPERLAB_ALLOWED_ORIGINS"]:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return parts.netloc == request.host.lower()
