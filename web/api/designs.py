"""The lab's hypervisor design and fault injection: switch micro-kernel / monolithic / hosted, fail a component.

``GET /api/labs/<id>`` already carries ``design``, ``components`` and ``tcb`` (the lab describes them);
these two routes change them. Component names and what a fault stops are the core's
(``core/placement.py``, docs/architecture.md); this module only checks the request and forwards it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from hyperlab.core.placement import DESIGN_NAMES, parse_design
from hyperlab.web import access
from hyperlab.web.access import HttpError
from hyperlab.web.api.labs import describe
from hyperlab.web.api.lessons import (
    _owner_lock,
    follow_new_process,
    lab_instance,
    lesson_library,
    progress_store,
)
from hyperlab.web.labs import LabHandle

bp = Blueprint("designs", __name__)


def _body_field(name: str, example: str) -> Any:
    body = request.get_json(force=True, silent=True)  # any content type; malformed JSON is None
    if not isinstance(body, dict) or name not in body:
        raise HttpError(400, f'the body must be a JSON object with "{name}", e.g. {{"{name}": "{example}"}}')
    return body[name]


def _lesson_fixing_design(owner: str, lab: LabHandle) -> Any:
    """The lesson this lab process was set up for, if that lesson fixes the design (else None)."""
    setup = progress_store().lab_setup(owner)
    if setup is None or setup[0] != lab_instance(lab):
        return None
    for lesson in lesson_library().load()[0]:
        if lesson.id == setup[1]:
            return None if lesson.design_switch else lesson
    return None


@bp.put("/labs/<lab_id>/design")
def put_design(lab_id: str) -> Response:
    """Restart the lab in that design (the same one too: a fresh lab), its disks and settings kept; the lab
    as it is then."""
    lab = access.session_lab(lab_id)
    value = _body_field("design", "hosted")
    try:
        design = parse_design(value)
    except ValueError:
        raise HttpError(400, f"unknown design {value!r}; valid designs: {', '.join(DESIGN_NAMES)}") from None
    owner = access.owner_id()
    with _owner_lock(owner):
        lesson = _lesson_fixing_design(owner, lab)
        current = describe(lab)
        if lesson is not None and current.get("design") != design.value:
            raise HttpError(409, f"the lesson {lesson.title!r} fixes this lab's design ({lesson.design}); "
                                 "the lab is unchanged. Open the lab outside the lesson to switch designs.")
        setup = progress_store().lab_setup(owner)
        followed = setup is not None and setup[0] == lab_instance(lab)
        lab.switch_design(design.value)
        lab.wait_ready()
        if followed:  # a lesson that lets the student switch keeps its lab through the switch
            progress_store().set_lab_setup(owner, lab_instance(lab), setup[1])
            follow_new_process(owner, setup[1], lab)
    return jsonify(describe(lab))


@bp.post("/labs/<lab_id>/faults")
def post_fault(lab_id: str) -> Response:
    """Fail one component as if its code raised: 400 unknown name, 409 not in this design; the
    partitions after, each with its state and reason."""
    lab = access.session_lab(lab_id)
    component = _body_field("component", "child2.ide")
    if not isinstance(component, str):
        raise HttpError(400, 'component must be a string such as "child2.ide"')
    return jsonify(lab.fault(component))
