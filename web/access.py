"""Who may touch which lab: browser-session binding and same-origin checks.

A lab belongs to the browser session that created it. The session is Flask's signed cookie holding a
random owner id and the ids of the labs it created; a lab id that is not in the caller's session is
answered exactly like an unknown one (404), so lab ids leak nothing. WebSocket handshakes and unsafe
HTTP methods must come from our own origin: browsers send cookies with cross-site WebSocket handshakes,
so without this check any page a student visits could type into their consoles.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Request, current_app, session

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
    """This browser session's owner id, minted on first use (the cookie is signed, so it cannot be forged)."""
    owner = session.get("owner")
    if not isinstance(owner, str):
        owner = secrets.token_urlsafe(16)
        session["owner"] = owner
    return owner


def session_lab_ids() -> list[str]:
    """Ids of the labs this session created, in creation order."""
    labs = session.get("labs")
    return [lab for lab in labs if isinstance(lab, str)] if isinstance(labs, list) else []


def remember_lab(lab_id: str) -> None:
    """Bind ``lab_id`` to this session."""
    labs = session_lab_ids()
    if lab_id not in labs:
        session["labs"] = [*labs, lab_id]


def session_lab(lab_id: str) -> LabHandle:
    """The lab ``lab_id`` if it exists *and* belongs to this session; else 404 (same answer for both)."""
    lab = manager().get(lab_id) if lab_id in session_lab_ids() else None
    if lab is None:
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
