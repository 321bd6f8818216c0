"""REST API under ``/api`` (contract in ``docs/api.md``).

Thin by design: every route resolves the caller's lab through the session binding and forwards to the
lab handle, whose :class:`~hyperlab.web.labs.LabError` already carries the HTTP status (404 unknown
partition, 409 action not allowed now, 400 bad action, 503 lab stopped). All answers are JSON, errors
included, so the front end and the Python client handle one shape.

One blueprint per resource — ``labs`` (labs and partitions), ``consoles``, ``lessons``, ``sessions``, ``classes``,
``designs`` (the lab's design and fault injection) — under the
``api`` blueprint, whose same-origin check covers them all; ``errors`` holds the one error shape.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify, request

from hyperlab.web import access
from hyperlab.web.api import classes, consoles, dashboard, designs, errors, labs, lessons, sessions
from hyperlab.web.api.errors import error_response

bp = Blueprint("api", __name__, url_prefix="/api")

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@bp.before_request
def _same_origin_for_writes() -> tuple[Response, int] | None:
    """Refuse state-changing requests from other sites (cookie-carrying cross-site form posts)."""
    if request.method in _UNSAFE_METHODS and not access.origin_allowed(request):
        return error_response(403, "cross-origin request refused")
    return None



bp.register_blueprint(labs.bp)
bp.register_blueprint(consoles.bp)
bp.register_blueprint(lessons.bp)
bp.register_blueprint(sessions.bp)
bp.register_blueprint(classes.bp)
bp.register_blueprint(designs.bp)
bp.register_blueprint(dashboard.bp)


def init_app(app: Flask) -> None:
    """Register the API blueprints, ``/healthz`` and the JSON error handlers."""
    app.register_blueprint(bp)
    dashboard.init_app(app)
    errors.init_app(app)

    @app.get("/healthz")
    def healthz() -> Response:
        """Liveness for load balancers and Docker: the web process answers."""
        return jsonify({"ok": True})
