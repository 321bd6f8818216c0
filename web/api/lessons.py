"""Lessons over REST: a lesson's steps unlock on the hypervisor's own state (docs/api.md, "Lessons")."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from hyperlab.web import access
from hyperlab.web.access import HttpError
from hyperlab.web.api.labs import describe
from hyperlab.web.labs import LabError, LabHandle
from hyperlab.web.progress import LessonRecord, ProgressStore

bp = Blueprint("lessons", __name__)



class LessonLibrary:
    """The lessons directory (``HYPERLAB_LESSONS_DIR``), parsed again whenever a ``.md`` file in it changes."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory else None
        self._lock = threading.Lock()
        self._signature: object = object()
        self._lessons: list[Any] = []
        self._errors: list[Any] = []

    def _folder(self) -> Path:
        if self.directory is not None:
            return self.directory
        import hyperlab.lessons

        return Path(hyperlab.lessons.__file__).resolve().parent

    def _current_signature(self) -> object:
        try:
            return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                                for p in self._folder().glob("*.md")))
        except OSError:
            return None

    def load(self) -> tuple[list[Any], list[Any]]:
        """(lessons, errors) — errors are ``LessonError`` ("file:line: message"); the others still load."""
        signature = self._current_signature()
        with self._lock:
            if signature != self._signature:
                from hyperlab.web.lessons import load_lessons

                self._lessons, self._errors = load_lessons(self.directory)
                self._signature = signature
            return list(self._lessons), list(self._errors)

    def get(self, lesson_id: str) -> Any:
        for lesson in self.load()[0]:
            if lesson.id == lesson_id:
                return lesson
        raise HttpError(404, f"no such lesson: {lesson_id}")


def lesson_library() -> LessonLibrary:
    return current_app.extensions["hyperlab.lesson_library"]


def progress_store() -> ProgressStore:
    """The app's progress store (in the database opened at start)."""
    return current_app.extensions["hyperlab.progress"]


_STORE_LOCK = threading.Lock()
_OWNER_LOCKS: dict[str, threading.Lock] = {}


def _owner_lock(owner: str) -> threading.Lock:
    """Serialises one owner's lab set-ups (two tabs opening lessons at once restart the lab once)."""
    with _STORE_LOCK:
        return _OWNER_LOCKS.setdefault(owner, threading.Lock())


def lab_instance(lab: LabHandle) -> str:
    """Which lab *process* this is: counters start at zero in a new one, so baselines of another are stale."""
    process = getattr(lab, "process", None)
    return f"{lab.id}/{getattr(process, 'pid', None)}"


def _setting_change(name: str, key: str, before: Any, after: Any) -> str:
    """``child2: Integration Services on → off``, ``child1: memory 32 → 16 MiB``."""
    if key == "integration_services":
        return f"{name}: Integration Services {'on' if before else 'off'} → {'on' if after else 'off'}"
    if key == "memory_mb":
        return f"{name}: memory {before} → {after} MiB"
    return f"{name}: {key} {before} → {after}"


def setup_changes(describe: dict, settings: dict) -> list[str]:
    """What setting the lab up as ``settings`` ask would change, one sentence each; [] when it runs so
    already (design, each partition's role and settings) with every partition booted (running or
    starting): a lab with a crashed or switched-off partition is set up again."""
    if not describe.get("alive", True):
        return ["the lab is stopped: it starts again"]
    changes = []
    design, wanted = describe.get("design", "microkernel"), settings.get("design", "microkernel")
    if design != wanted:
        changes.append(f"design: {design} → {wanted}")
    parts = {p.get("name"): p for p in describe.get("partitions", [])}
    specs = settings.get("partitions")
    if specs is not None:
        names = [spec.get("name") for spec in specs]
        if set(parts) != set(names):
            changes.append(f"partitions: {', '.join(sorted(map(str, parts)))} → {', '.join(map(str, names))}")
        for spec in specs:
            p = parts.get(spec.get("name"))
            if p is None:
                continue
            for key in ("role", "integration_services", "memory_mb"):
                if key in spec and p.get(key) != spec[key]:
                    changes.append(_setting_change(p["name"], key, p.get(key), spec[key]))
    for name, p in parts.items():
        if p.get("state") not in ("running", "starting"):
            changes.append(f"{name} is {p.get('state')}: it boots again")
    return changes


def lab_matches(describe: dict, settings: dict) -> bool:
    """True if the lab runs as ``settings`` ask (see ``setup_changes``)."""
    return not setup_changes(describe, settings)


def _pending_setup(owner: str, lab: LabHandle | None, lesson: Any) -> list[str]:
    """What opening ``lesson`` would change in the lab (what ``_set_up_lab`` would do), in words."""
    if lab is None:
        return []  # no lab yet: one is made for the lesson, nothing of the student's is lost
    if progress_store().lab_setup(owner) == (lab_instance(lab), lesson.id) and lab.alive:
        return []
    return setup_changes(describe(lab), lesson.lab_settings())


def _lesson_json(lesson: Any) -> dict:
    """The lesson for the page: no solutions (``to_dict``), and hints only counted — they come one at a
    time from the state endpoint."""
    data = lesson.to_dict()
    for step in data.get("steps", []):
        hints = step.get("hints")
        step["hints"] = len(hints) if isinstance(hints, list) else int(hints or 0)
    return data


def _lesson_summary(lesson: Any, record: LessonRecord | None) -> dict:
    total = len(lesson.steps)
    ids = {s.id for s in lesson.steps}
    done = len([sid for sid in record.completed_ids() if sid in ids]) if record else 0
    return {
        "id": lesson.id, "title": lesson.title, "summary": lesson.summary, "objectives": list(lesson.objectives),
        "steps": total, "url": f"/lessons/{lesson.id}",
        "progress": {"started": bool(record and record.started), "completed": done, "total": total,
                     "current_step": min(record.current_step, total - 1) if record else 0},
    }


def _session_lab_for_owner(create: bool) -> LabHandle | None:
    return access.own_lab(create)


def _set_up_lab(owner: str, lab: LabHandle, lesson: Any, force: bool = False) -> bool:
    """Give ``lab`` the lesson's settings unless it already has them; True if the lab was started afresh."""
    store = progress_store()
    with _owner_lock(owner):
        if not force:
            setup = store.lab_setup(owner)
            if setup == (lab_instance(lab), lesson.id) and lab.alive:
                return False  # set up for this lesson already; the student may have changed it since
            settings = lesson.lab_settings()
            if lab_matches(describe(lab), settings):
                store.set_lab_setup(owner, lab_instance(lab), lesson.id)
                return False
        else:
            settings = lesson.lab_settings()
        access.manager().reconfigure(owner, settings, lab_id=lab.id)
        lab.wait_ready()
        store.set_lab_setup(owner, lab_instance(lab), lesson.id)
        return True


def _begin(owner: str, lesson: Any, step: Any, lab: LabHandle, snapshot: dict) -> None:
    progress_store().begin_step(owner, lesson.id, step.id, dict(snapshot.get("counters") or {}), lab_instance(lab))


def follow_new_process(owner: str, lesson_id: str, lab: LabHandle) -> None:
    """The lab process was replaced on purpose while a lesson follows it (a design switch): measure the
    current step from now, before the student can type into the new process (the page's next poll may
    come after a fast command, whose counters would then sit in the baseline)."""
    try:
        lesson = lesson_library().get(lesson_id)
        snapshot = lab.snapshot()
    except (HttpError, LabError):
        return
    record = _record(owner, lesson.id)
    step = lesson.steps[min(max(record.current_step, 0), len(lesson.steps) - 1)]
    if not record.step(step.id).completed:
        _begin(owner, lesson, step, lab, snapshot)


def _evaluator(snapshot: dict, baseline: dict) -> Any:
    from hyperlab.web.lessons import Evaluator

    return Evaluator(snapshot, baseline)


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def _record(owner: str | None, lesson_id: str) -> LessonRecord:
    """The owner's progress in a lesson; nothing for a request without a session."""
    return progress_store().lesson(owner, lesson_id) if owner else LessonRecord(lesson_id)


def lesson_state(owner: str | None, lesson: Any, lab: LabHandle | None) -> dict:
    """Where the student is: the current step, its check evaluated now on the lab's own state (recording
    the step as completed, and measuring its prediction, the first time the check is met). Without an
    owner (no session) there is no lab and nothing is recorded."""
    store = progress_store()
    record = _record(owner, lesson.id)
    steps = lesson.steps
    index = min(max(record.current_step, 0), len(steps) - 1)
    step = steps[index]
    srec = record.step(step.id)
    instance = lab_instance(lab) if lab is not None else None
    setup = store.lab_setup(owner) if owner else None
    alive = owner is not None and lab is not None and lab.alive
    check: dict[str, Any]
    snapshot: dict | None = None
    if alive:
        assert lab is not None
        try:
            snapshot = lab.snapshot()
        except LabError:
            snapshot = None
        if snapshot is not None and snapshot.get("alive") is False:
            snapshot = None
    message = getattr(step.check, "message", None) if step.check is not None else None
    if srec.completed:
        check = {"met": True, "message": message}
    elif snapshot is None:
        check = {"met": False, "message": "The lab is not running: restart it to go on." if lab is not None
                 else "Open the lesson to set up its lab."}
    else:
        assert lab is not None
        if srec.baseline is None or srec.baseline_lab != instance:
            _begin(owner, lesson, step, lab, snapshot)  # new step, or a new lab process: counters restarted
            srec = store.lesson(owner, lesson.id).step(step.id)
        if step.predict is not None and srec.prediction is None:
            check = {"met": False, "message": "Commit your prediction first, then do the experiment."}
        else:
            met, error = True, None
            if step.check is not None:
                try:
                    met = bool(_evaluator(snapshot, srec.baseline or {}).check(step.check))
                except Exception as exc:  # a lesson bug must not break the page
                    current_app.logger.warning("lesson %s step %s: check failed", lesson.id, step.id, exc_info=True)
                    met, error = False, f"this check could not be evaluated: {exc}"
            check = {"met": met, "message": message}
            if error:
                check["error"] = error
            if met:
                measured = None
                if step.predict is not None:
                    try:
                        measured = _number(_evaluator(snapshot, srec.baseline or {}).measure(step.predict))
                    except Exception:
                        current_app.logger.warning("lesson %s step %s: measure failed", lesson.id, step.id,
                                                   exc_info=True)
                store.complete_step(owner, lesson.id, step.id, measured)
        record = store.lesson(owner, lesson.id)
        srec = record.step(step.id)
    completed = [s.id for s in steps if record.step(s.id).completed]
    prediction = None
    if step.predict is not None:
        prediction = {
            "question": getattr(step.predict, "question", ""), "unit": getattr(step.predict, "unit", ""),
            "value": _number(srec.prediction), "committed": srec.prediction is not None,
            "measured": _number(srec.measured) if srec.completed else None, "revealed": srec.completed,
        }
    hints = list(step.hints or [])
    released = _released(owner, lesson.id)
    return {
        "lesson_id": lesson.id,
        "current": index,
        "total": len(steps),
        # Lockstep: the last step the student's instructor has released (null: the student's own pace).
        "released": released,
        "completed": completed,
        "finished": len(completed) == len(steps),
        "lab": {"id": lab.id if lab is not None else None, "alive": alive,
                "set_up": setup is not None and setup[0] == instance and instance is not None,
                "lesson": setup[1] if setup else None},
        "step": {
            "id": step.id, "index": index, "title": step.title, "completed": srec.completed,
            "check": check,
            "has_check": step.check is not None,
            "can_next": srec.completed and index < len(steps) - 1 and (released is None or index < released),
            "prediction": prediction,
            "hints": {"shown": hints[: srec.hints_shown], "total": len(hints)},
            "began_at": srec.began_at,
        },
    }


def _released(owner: str | None, lesson_id: str) -> int | None:
    """The last step of the lesson the owner's class has released, if the class runs it in lockstep."""
    return current_app.extensions["hyperlab.classes"].released_for(owner, lesson_id) if owner else None


def _step_of(lesson: Any, step_id: str) -> tuple[int, Any]:
    for i, step in enumerate(lesson.steps):
        if step.id == step_id:
            return i, step
    raise HttpError(404, f"no step {step_id!r} in lesson {lesson.id}")


def _json_body() -> dict:
    body = request.get_json(force=True, silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    return body


@bp.get("/lessons")
def list_lessons() -> Response:
    """Every lesson with this student's progress; lessons that failed to load are listed as errors."""
    lessons, errors = lesson_library().load()
    owner = access.viewer_id()
    records = progress_store().lessons(owner) if lessons and owner else {}
    return jsonify({"lessons": [_lesson_summary(lesson, records.get(lesson.id)) for lesson in lessons],
                    "errors": [str(e) for e in errors]})


@bp.get("/lessons/<lesson_id>")
def get_lesson(lesson_id: str) -> Response:
    lesson = lesson_library().get(lesson_id)
    record = _record(access.viewer_id(), lesson.id)
    return jsonify({"lesson": _lesson_json(lesson), "progress": _lesson_summary(lesson, record)["progress"]})


@bp.post("/lessons/<lesson_id>/open")
def open_lesson(lesson_id: str) -> Response:
    """Open a lesson: set up the session's lab for it (only if it does not match already), then the state.

    ``{"reset_lab": true}`` sets the lab up afresh even if it matches.
    """
    lesson = lesson_library().get(lesson_id)
    body = _json_body()
    owner = access.owner_id()
    lab = _session_lab_for_owner(create=True)
    assert lab is not None
    set_up = _set_up_lab(owner, lab, lesson, force=body.get("reset_lab") is True)
    store = progress_store()
    if not store.lesson(owner, lesson.id).started:
        store.set_current(owner, lesson.id, 0)
    state = lesson_state(owner, lesson, lab)
    return jsonify({"lesson": _lesson_json(lesson), "lab_set_up": set_up, "lab_description": describe(lab),
                    **state})


@bp.get("/lessons/<lesson_id>/setup")
def lesson_setup(lesson_id: str) -> Response:
    """What opening the lesson would change in the session's lab, asked before ``…/open`` so the page can
    say so first: ``{"needed": bool, "changes": [sentence, …]}``. Changes nothing."""
    lesson = lesson_library().get(lesson_id)
    owner = access.viewer_id()
    lab = _session_lab_for_owner(create=False) if owner else None
    changes = _pending_setup(owner, lab, lesson) if owner else []
    return jsonify({"needed": bool(changes), "changes": changes})


@bp.get("/lessons/<lesson_id>/state")
def get_lesson_state(lesson_id: str) -> Response:
    """The current step with its check evaluated now (poll it about once a second)."""
    lesson = lesson_library().get(lesson_id)
    return jsonify(lesson_state(access.viewer_id(), lesson, _session_lab_for_owner(create=False)))


@bp.post("/lessons/<lesson_id>/goto")
def goto_step(lesson_id: str) -> Response:
    """``{"index": n}``: show step n. Going forward needs every earlier step completed (its check met)."""
    lesson = lesson_library().get(lesson_id)
    index = _json_body().get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(lesson.steps):
        raise HttpError(400, f"index must be a step number from 0 to {len(lesson.steps) - 1}")
    owner = access.owner_id()
    released = _released(owner, lesson.id)
    if released is not None and index > released:
        raise HttpError(409, f"step {index + 1} is not released yet: your class goes step by step with the "
                             f"instructor (released so far: step {released + 1})")
    record = progress_store().lesson(owner, lesson.id)
    for i, step in enumerate(lesson.steps[:index]):
        if not record.step(step.id).completed:
            raise HttpError(409, f"step {index + 1} is locked: step {i + 1} ({step.title}) is not done yet")
    progress_store().set_current(owner, lesson.id, index)
    return jsonify(lesson_state(owner, lesson, _session_lab_for_owner(create=False)))


def _current_step(lesson: Any, step_id: str, owner: str) -> Any:
    index, step = _step_of(lesson, step_id)
    current = progress_store().lesson(owner, lesson.id).current_step
    if index != current:
        raise HttpError(409, f"step {step_id!r} is not the current step of this lesson")
    return step


@bp.post("/lessons/<lesson_id>/steps/<step_id>/prediction")
def commit_prediction(lesson_id: str, step_id: str) -> Response:
    """``{"value": 12}``: commit the student's prediction (once). The step's counters start again from
    here, so the experiment that follows is what gets measured."""
    lesson = lesson_library().get(lesson_id)
    owner = access.owner_id()
    step = _current_step(lesson, step_id, owner)
    if step.predict is None:
        raise HttpError(400, f"step {step_id!r} asks for no prediction")
    value = _json_body().get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HttpError(400, "value must be a number")
    store = progress_store()
    srec = store.lesson(owner, lesson.id).step(step.id)
    if srec.completed:
        raise HttpError(409, "this step is done already: its measurement is known")
    if not store.predict(owner, lesson.id, step.id, float(value)):
        raise HttpError(409, "a prediction was committed already; it cannot be changed")
    lab = _session_lab_for_owner(create=False)
    if lab is not None and lab.alive:
        try:
            _begin(owner, lesson, step, lab, lab.snapshot())
        except LabError:
            pass  # the next state poll records the baseline
    return jsonify(lesson_state(owner, lesson, lab))


@bp.post("/lessons/<lesson_id>/steps/<step_id>/hint")
def next_hint(lesson_id: str, step_id: str) -> Response:
    """Show one more hint of the current step."""
    lesson = lesson_library().get(lesson_id)
    owner = access.owner_id()
    step = _current_step(lesson, step_id, owner)
    hints = list(step.hints or [])
    if not hints:
        raise HttpError(409, "this step has no hints")
    progress_store().show_hint(owner, lesson.id, step.id, len(hints))
    return jsonify(lesson_state(owner, lesson, _session_lab_for_owner(create=False)))


@bp.post("/lessons/<lesson_id>/steps/<step_id>/restart")
def restart_step(lesson_id: str, step_id: str) -> Response:
    """Record the step's starting counters again (e.g. after experimenting before reading the step)."""
    lesson = lesson_library().get(lesson_id)
    owner = access.owner_id()
    step = _current_step(lesson, step_id, owner)
    lab = _session_lab_for_owner(create=False)
    if lab is None or not lab.alive:
        raise HttpError(409, "the lab is not running")
    _begin(owner, lesson, step, lab, lab.snapshot())
    return jsonify(lesson_state(owner, lesson, lab))


@bp.post("/lessons/<lesson_id>/reset")
def reset_lesson(lesson_id: str) -> Response:
    """Start the lesson over: forget this student's progress in it and set its lab up afresh."""
    lesson = lesson_library().get(lesson_id)
    owner = access.owner_id()
    progress_store().reset(owner, lesson.id)
    lab = _session_lab_for_owner(create=True)
    assert lab is not None
    _set_up_lab(owner, lab, lesson, force=True)
    progress_store().set_current(owner, lesson.id, 0)
    return jsonify({"lab_set_up": True, **lesson_state(owner, lesson, lab)})


