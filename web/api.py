"""REST API under ``/api`` (contract in ``docs/api.md``).

Thin by design: every route resolves the caller's lab through the session binding and forwards to the
lab handle, whose :class:`~hyperlab.web.labs.LabError` already carries the HTTP status (404 unknown
partition, 409 action not allowed now, 400 bad action, 503 lab stopped). All answers are JSON, errors
included, so the front end and the Python client handle one shape.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from hyperlab.web import access
from hyperlab.web.access import HttpError
from hyperlab.web.labs import LabError, LabHandle

bp = Blueprint("api", __name__, url_prefix="/api")

#: Partition actions the API forwards; anything else is a 400 before it reaches the lab process.
ACTIONS = ("start", "turn_off", "shut_down", "reset", "pause", "resume")

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_response(status: int, message: str) -> tuple[Response, int]:
    """The one error shape of the API."""
    return jsonify({"error": message}), status


@bp.before_request
def _same_origin_for_writes() -> tuple[Response, int] | None:
    """Refuse state-changing requests from other sites (cookie-carrying cross-site form posts)."""
    if request.method in _UNSAFE_METHODS and not access.origin_allowed(request):
        return error_response(403, "cross-origin request refused")
    return None


def _describe(lab: LabHandle) -> dict:
    """The lab's description; a lab whose process dies during the call is described as stopped."""
    try:
        return lab.describe()
    except LabError as exc:
        if exc.status == 503 and not lab.alive:
            return lab.describe()
        raise


@bp.get("/labs")
def list_labs() -> Response:
    """Labs of this browser session (usually zero or one)."""
    labs = [access.manager().get(lab_id) for lab_id in access.session_lab_ids()]
    return jsonify({"labs": [_describe(lab) for lab in labs if lab is not None]})


@bp.post("/labs")
def create_lab() -> tuple[Response, int]:
    """Get or create this session's lab: idempotent, so a page reload never starts a second lab."""
    lab = access.manager().get_or_create(access.owner_id())
    created = lab.id not in access.session_lab_ids()
    access.remember_lab(lab.id)
    return jsonify(_describe(lab)), 201 if created else 200


@bp.get("/labs/<lab_id>")
def get_lab(lab_id: str) -> Response:
    return jsonify(_describe(access.session_lab(lab_id)))


@bp.get("/labs/<lab_id>/partitions")
def list_partitions(lab_id: str) -> Response:
    return jsonify({"partitions": access.session_lab(lab_id).partitions()})


@bp.get("/labs/<lab_id>/partitions/<name>")
def get_partition(lab_id: str, name: str) -> Response:
    return jsonify(access.session_lab(lab_id).partition(name))


@bp.post("/labs/<lab_id>/partitions/<name>/actions/<action>")
def partition_action(lab_id: str, name: str, action: str) -> Response:
    """Run ``action`` on partition ``name``; answers the partition as it is after the action."""
    lab = access.session_lab(lab_id)
    if action not in ACTIONS:
        lab.partition(name)  # an unknown partition is a 404 even with a bad action
        raise HttpError(400, f"unknown action {action!r}; expected one of: {', '.join(ACTIONS)}")
    return jsonify(lab.action(name, action))


@bp.get("/labs/<lab_id>/counters")
def get_counters(lab_id: str) -> Response:
    """All telemetry counters of the lab (dotted names, see docs/telemetry.md)."""
    return jsonify({"counters": access.session_lab(lab_id).counters()})


@bp.post("/labs/<lab_id>/restart")
def restart_lab(lab_id: str) -> Response:
    """Start a fresh lab process (fresh partitions) under the same id, e.g. after the lab stopped."""
    lab = access.session_lab(lab_id)
    lab.restart()
    return jsonify(_describe(lab))


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/api" or request.path == "/healthz"


def _handle_lab_error(exc: LabError) -> tuple[Response, int]:
    return error_response(int(getattr(exc, "status", 500)), str(getattr(exc, "message", exc)))


def _handle_http_error(exc: HttpError) -> tuple[Response, int]:
    return error_response(exc.status, exc.message)


def _handle_werkzeug(exc: HTTPException) -> Any:
    """JSON for API paths (404 route, 405 method, 400 bad body); the HTML default elsewhere."""
    if _wants_json():
        return error_response(exc.code or 500, exc.description or exc.name)
    return exc


def _handle_unexpected(exc: Exception) -> Any:
    """Keep the API's JSON promise on bugs too; the traceback goes to the server log."""
    if _wants_json():
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error")
    raise exc


def init_app(app: Flask) -> None:
    """Register the API blueprint, ``/healthz`` and the JSON error handlers."""
    app.register_blueprint(bp)
    app.register_error_handler(LabError, _handle_lab_error)
    app.register_error_handler(HttpError, _handle_http_error)
    app.register_error_handler(HTTPException, _handle_werkzeug)
    app.register_error_handler(Exception, _handle_unexpected)

    @app.get("/healthz")
    def healthz() -> Response:
        """Liveness for load balancers and Docker: the web process answers."""
        return jsonify({"ok": True})
