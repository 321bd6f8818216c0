"""``/api/session``: start a session on purpose, or ask about the one the cookie names (docs/api.md).

Scripts and the Python client start a session here (a page load does it for browsers); it is the one
request that may create an identity without also creating a lab, and it is rate-limited per client
address like the others (429).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from hyperlab.web.identity import Identity, current_identity, require_identity, start_session

bp = Blueprint("sessions", __name__)


def _describe(identity: Identity, created: bool) -> dict:
    """What the client may know: not the identity id (the cookie's secret), but its lab and expiry."""
    return {"created": created, "role": identity.role, "display_name": identity.display_name,
            "lab_id": identity.lab_id, "expires_at": identity.expires_at}


@bp.get("/session")
def get_session() -> Response:
    return jsonify(_describe(require_identity(), created=False))


@bp.post("/session")
def post_session() -> tuple[Response, int]:
    """Start a session (201), or answer the one the cookie already names (200)."""
    created = current_identity() is None
    return jsonify(_describe(start_session(), created)), 201 if created else 200
