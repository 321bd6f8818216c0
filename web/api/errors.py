"""The API's one error shape, ``{"error": message}`` with the status, for refusals and bugs alike."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from hyperlab.web.access import HttpError
from hyperlab.web.labs import LabError


def error_response(status: int, message: str) -> tuple[Response, int]:
    """The one error shape of the API."""
    return jsonify({"error": message}), status


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/api" or request.path == "/healthz"


def _handle_lab_error(exc: LabError) -> tuple[Response, int]:
    status, message = int(getattr(exc, "status", 500)), str(getattr(exc, "message", exc))
    retry = getattr(exc, "retry_after_s", None)
    if retry is None:
        return error_response(status, message)
    response = jsonify({"error": message, "retry_after_s": retry})  # a full server says when to come back
    response.headers["Retry-After"] = str(retry)
    return response, status


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
    """JSON error handlers for API paths (HTML stays the default elsewhere)."""
    app.register_error_handler(LabError, _handle_lab_error)
    app.register_error_handler(HttpError, _handle_http_error)
    app.register_error_handler(HTTPException, _handle_werkzeug)
    app.register_error_handler(Exception, _handle_unexpected)
