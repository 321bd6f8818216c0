"""The instructor's live side (docs/api.md, "Dashboard"): the class's live view, messages, a partition's
reset; and the students' side of it, their notices. (Spectate and take-over are console WebSockets:
:mod:`hyperlab.web.streams`.)

Every route asks for the instructor role first (a student gets 403, a cookie-less client 401, before a
class is looked up), then that the student is a member of *that* class (else 404, as for an unknown
student), so an instructor's URL names nothing a student could reach. Reset and message are written to
the audit log; they and a take-over (audited by the console stream) also reach the student's page
(:mod:`hyperlab.web.dashboard` turns those audit rows into notices, from any node).

Live streams are Server-Sent Events: one-way, reconnecting by themselves, plain HTTP through any proxy.
A dashboard holds one stream and gets the whole view only when it changed (at most once per tick).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from hyperlab.web.access import HttpError, manager
from hyperlab.web.api.classes import INSTRUCTOR, class_store
from hyperlab.web.classes import clean_name
from hyperlab.web.dashboard import Classroom
from hyperlab.web.identity import require_identity, require_role
from hyperlab.web.labs import LabError, LabHandle

bp = Blueprint("dashboard", __name__)

#: A stream with nothing to say sends a comment this often, so proxies keep it and a gone client is noticed.
KEEPALIVE_S = 15.0
#: How long a message may be.
MESSAGE_MAX = 500
#: Notices older than this are not replayed to a page that (re)connects without a Last-Event-ID.
REPLAY_S = 300.0


def classroom() -> Classroom:
    return current_app.extensions["hyperlab.classroom"]


def _member_lab(class_id: str, lab_id: str) -> LabHandle:
    """The lab of a member of this class, on this node: 404 not a member, 409 no lab running here."""
    klass = class_store().get(class_id)
    class_store().member(klass.id, lab_id)
    lab = manager().get(lab_id)
    if lab is None:
        raise HttpError(409, "this student has no lab on this server: it starts when they open a lesson "
                             "(with several nodes, the lab runs on the node the student was sent to)")
    return lab


def _sse(events: Iterator[str]) -> Response:
    response = Response(events, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    return response


# --- the dashboard ---------------------------------------------------------------------------------------
@bp.get("/classes/<class_id>/dashboard")
def dashboard(class_id: str) -> Response:
    """The class's view now: lessons and steps, a row per student (heat-map cells, lab, thumbnail, last
    prediction), and the aggregate the projector shows."""
    require_role(INSTRUCTOR)
    class_store().get(class_id)
    return jsonify(classroom().view(class_id))


@bp.get("/classes/<class_id>/dashboard/events")
def dashboard_events(class_id: str) -> Response:
    """SSE: ``event: view`` with the whole view each time it changes (and once at the start)."""
    require_role(INSTRUCTOR)
    class_store().get(class_id)
    hub = classroom()
    unwatch = hub.watch(class_id)

    def events() -> Iterator[str]:
        seen = 0
        try:
            yield "retry: 2000\n\n"
            while True:
                frame = hub.next_frame(class_id, seen, KEEPALIVE_S)
                if frame is None:
                    yield ": keepalive\n\n"
                    continue
                seen, data = frame
                yield f"id: {seen}\nevent: view\ndata: {data}\n\n"
        finally:
            unwatch()

    return _sse(events())


# --- actions on a student ----------------------------------------------------------------------------------
def _body() -> dict[str, Any]:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    return body


@bp.post("/classes/<class_id>/messages")
def send_message(class_id: str) -> tuple[Response, int]:
    """``{"text": "...", "student": "<lab id>"}`` (no student: the whole class) — shown on their pages."""
    me = require_role(INSTRUCTOR)
    klass = class_store().get(class_id)
    body = _body()
    text = clean_name(body.get("text"), "text", limit=MESSAGE_MAX)
    student = body.get("student")
    if student is not None:
        if not isinstance(student, str):
            raise HttpError(400, "student must be a student's id (their lab id) or null for the whole class")
        class_store().member(klass.id, student)
    class_store().audit(me.lab_id, "message", klass.id, target=student, detail=text)
    classroom().notice_now()
    return jsonify({"sent": True, "student": student, "text": text}), 201


@bp.post("/classes/<class_id>/students/<lab_id>/partitions/<name>/reset")
def reset_partition(class_id: str, lab_id: str, name: str) -> Response:
    """Reset one partition of a student's lab (as its Reset button; the student is told; audited)."""
    me = require_role(INSTRUCTOR)
    lab = _member_lab(class_id, lab_id)
    try:
        partition = lab.action(name, "reset")
    except LabError as exc:
        raise HttpError(exc.status, exc.message) from None
    class_store().audit(me.lab_id, "reset", class_id, target=lab_id, detail=f"partition {name}")
    classroom().notice_now()
    return jsonify({"student": lab_id, "partition": partition})


# --- the student's side ---------------------------------------------------------------------------------------
@bp.get("/classes/mine/events")
def my_notices() -> Response:
    """SSE for a student's page: ``event: notice`` ``{"id", "at", "kind", "text"}`` — a message, a take-over
    beginning or ending, a reset. 204 (the browser stops asking) without a class."""
    me = require_identity()
    klass = class_store().class_of(me.id)
    if klass is None:
        return Response(status=204)
    hub = classroom()
    hub.follow_notices()
    last = request.headers.get("Last-Event-ID", "")
    after = int(last) if last.isdigit() else 0
    since = time.time() - REPLAY_S if not last.isdigit() else 0.0
    class_id, lab_id = klass.id, me.lab_id

    def events() -> Iterator[str]:
        nonlocal after
        yield "retry: 3000\n\n"
        while True:
            notices = hub.notices_for(class_id, lab_id, after, KEEPALIVE_S)
            if not notices:
                yield ": keepalive\n\n"
                continue
            for n in notices:
                after = max(after, n["id"])
                if n["at"] < since:
                    continue
                data = json.dumps({"id": n["id"], "at": n["at"], "kind": n["kind"], "text": n["text"],
                                   "to_class": n["target"] is None})
                yield f"id: {n['id']}\nevent: notice\ndata: {data}\n\n"

    return _sse(events())


def init_app(app: Flask) -> None:
    """The classroom (the routes ride on the ``api`` blueprint)."""
    from hyperlab.web import dashboard

    dashboard.init_app(app)
