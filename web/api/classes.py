"""Classes and the instructor: sign-in, classes with join codes, roster, CSV export, audit log (docs/api.md).

Every instructor route asks :func:`~hyperlab.web.identity.require_role` first: a student gets 403 (401
without a session) before anything is looked up, so instructor routes say nothing about classes to
students. Students have two routes: join a class by code, and see the class they are in.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from hyperlab.web.access import HttpError, manager
from hyperlab.web.api.labs import describe
from hyperlab.web.classes import Class, ClassStore, clean_name, normal_code
from hyperlab.web.identity import Identity, require_identity, require_role, sign_in, sign_out

bp = Blueprint("classes", __name__)

INSTRUCTOR = "instructor"


def class_store() -> ClassStore:
    return current_app.extensions["hyperlab.classes"]


def _body() -> dict[str, Any]:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    return body


def _instructor() -> Identity:
    return require_role(INSTRUCTOR)


def _changed() -> None:
    """Tell this node's live dashboards at once (web/dashboard.py; they would see it within a tick anyway)."""
    classroom = current_app.extensions.get("hyperlab.classroom")
    if classroom is not None:
        classroom.poke()


# --- instructor sign-in -----------------------------------------------------------------------------------
@bp.post("/instructor/sign-in")
def instructor_sign_in() -> Response:
    """``{"secret": "..."}``: a new instructor session (the cookie is replaced)."""
    secret = _body().get("secret")
    if not isinstance(secret, str):
        raise HttpError(400, "secret must be text")
    identity = sign_in(INSTRUCTOR, secret)
    class_store().audit(identity.lab_id, "sign_in")
    return jsonify({"role": identity.role, "expires_at": identity.expires_at})


@bp.post("/instructor/sign-out")
def instructor_sign_out() -> Response:
    sign_out()
    return jsonify({"signed_out": True})


# --- classes (instructor) -----------------------------------------------------------------------------------
@bp.post("/classes")
def create_class() -> tuple[Response, int]:
    """``{"name": "...", "lessons": ["meet-the-partitions", ...]}``: a class with a fresh join code."""
    me = _instructor()
    body = _body()
    name = clean_name(body.get("name"), "name", limit=120)
    lessons = body.get("lessons", [])
    if not isinstance(lessons, list) or not all(isinstance(x, str) for x in lessons):
        raise HttpError(400, "lessons must be a list of lesson ids")
    from hyperlab.web.api.lessons import lesson_library

    for lesson_id in lessons:
        lesson_library().get(lesson_id)  # 404 for an unknown lesson
    klass = class_store().create(name, list(dict.fromkeys(lessons)))
    class_store().audit(me.lab_id, "class_created", klass.id, detail=name)
    return jsonify(_class_view(klass)), 201


@bp.get("/classes")
def list_classes() -> Response:
    _instructor()
    return jsonify({"classes": [_class_view(c) for c in class_store().all()]})


def _class_view(klass: Class) -> dict[str, Any]:
    return {**klass.to_dict(), "lockstep": class_store().lockstep(klass.id)}


@bp.get("/classes/<class_id>")
def get_class(class_id: str) -> Response:
    _instructor()
    return jsonify(_class_view(class_store().get(class_id)))


@bp.get("/classes/<class_id>/roster")
def roster(class_id: str) -> Response:
    """The students with their progress and their lab's state (running, stopped, none)."""
    _instructor()
    klass = class_store().get(class_id)
    students = class_store().roster(class_id)
    for student in students:
        lab = manager().get(student["student"])
        student["lab"] = "none" if lab is None else "running" if lab.alive else "stopped"
    return jsonify({"class": _class_view(klass), "students": students})


@bp.put("/classes/<class_id>/lockstep/<lesson_id>")
def set_lockstep(class_id: str, lesson_id: str) -> Response:
    """``{"released": n}``: the class may go up to step n (0-based) of the lesson; ``null`` ends lockstep."""
    me = _instructor()
    klass = class_store().get(class_id)
    if lesson_id not in klass.lessons:
        raise HttpError(404, f"lesson {lesson_id} is not one of this class's lessons")
    from hyperlab.web.api.lessons import lesson_library

    steps = len(lesson_library().get(lesson_id).steps)
    released = _body().get("released", "missing")
    if released is not None and (isinstance(released, bool) or not isinstance(released, int)
                                 or not 0 <= released < steps):
        raise HttpError(400, f"released must be a step number from 0 to {steps - 1}, or null to end lockstep")
    class_store().set_released(klass.id, lesson_id, released)
    _changed()
    class_store().audit(me.lab_id, "lockstep", klass.id,
                        detail=f"{lesson_id}: {'off' if released is None else f'step {released + 1} released'}")
    return jsonify(_class_view(klass))


@bp.post("/classes/<class_id>/students/<lab_id>/lab/restart")
def restart_student_lab(class_id: str, lab_id: str) -> Response:
    """Reset a student's lab to a fresh start (disks kept), e.g. for a stuck student (audited)."""
    me = _instructor()
    klass = class_store().get(class_id)
    class_store().member(klass.id, lab_id)  # 404 unless this student is in this class
    lab = manager().get(lab_id)
    if lab is None:
        raise HttpError(409, "this student has no lab running; it starts when they open a lesson")
    lab.restart()
    class_store().audit(me.lab_id, "reset", klass.id, target=lab_id)
    return jsonify({"student": lab_id, "lab": describe(lab)})


@bp.get("/classes/<class_id>/progress.csv")
def export_progress(class_id: str) -> Response:
    """The class's progress as CSV (audited)."""
    me = _instructor()
    klass = class_store().get(class_id)
    text = class_store().progress_csv(class_id)
    class_store().audit(me.lab_id, "export", klass.id, detail=f"{text.count(chr(10)) - 1} rows")
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="class-{klass.join_code}-progress.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/classes/<class_id>/audit")
def class_audit(class_id: str) -> Response:
    _instructor()
    class_store().get(class_id)
    return jsonify({"entries": class_store().audit_entries(class_id)})


@bp.get("/audit")
def audit() -> Response:
    _instructor()
    return jsonify({"entries": class_store().audit_entries()})


# --- students ---------------------------------------------------------------------------------------------
def _student_view(klass: Class | None, identity: Identity) -> dict[str, Any]:
    """What a student sees of their class: its name and lessons, not its id or roster."""
    if klass is None:
        return {"class": None, "display_name": identity.display_name}
    return {"class": {"name": klass.name, "lessons": klass.lessons}, "display_name": identity.display_name}


@bp.post("/classes/join")
def join_class() -> Response:
    """``{"code": "K7M2QX", "display_name": "Ada"}``: join a class (a session is needed: 401)."""
    me = require_identity()
    if me.role != "student":
        raise HttpError(409, "an instructor does not join classes; sign in as a student in another browser")
    body = _body()
    name = clean_name(body.get("display_name"), "display_name")
    klass = class_store().join(me.id, normal_code(body.get("code")), name)
    _changed()
    return jsonify({"class": {"name": klass.name, "lessons": klass.lessons}, "display_name": name})


@bp.get("/classes/mine")
def my_class() -> Response:
    me = require_identity()
    return jsonify(_student_view(class_store().class_of(me.id), me))

