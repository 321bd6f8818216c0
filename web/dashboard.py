"""The instructor's live view of a class: one aggregate per class, pushed to every dashboard that watches it.

Why the shape: 100 students watched by one or two dashboards and a projector must cost the server one
computation per change, not one per viewer or per student. A single :class:`Classroom` thread per web
process builds each watched class's view — from the shared database (so every node's students show) and
from the labs this node runs — at most once per :data:`TICK_S`, or at once when this node writes progress
(:meth:`Classroom.poke`), and wakes the viewers only when the view changed. The same thread reads the
audit log for new notices (a message, a take-over, a reset) and wakes the students' pages that they concern.

A heat-map cell is one of :data:`CELL_STATES`, decided from the hypervisor-state checks the lesson engine
already stored (a step is ``done`` when its check passed on the live lab) and from the student's lab:
``working`` on the current step, ``stuck`` when that has lasted longer than the class's stuck limit,
``crashed`` when the student's lab process died under it, ``locked`` past the released step in lockstep.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import select

from hyperlab.web.access import HttpError
from hyperlab.web.classes import Class, ClassStore
from hyperlab.web.db import Database
from hyperlab.web.labs import LabManager
from hyperlab.web.schema import audit_log, class_members, identities, lesson_progress, step_progress

log = logging.getLogger(__name__)

#: The heat map's cell states, in the order the legend shows them.
CELL_STATES = ("none", "working", "stuck", "crashed", "done", "locked")
#: How often a watched class's view is rebuilt when nothing pokes it (other nodes' students, stuck timers).
TICK_S = 1.0
#: Audit actions a student is told about (their page shows them), and the one that ends a take-over banner.
NOTICE_ACTIONS = ("message", "take_over", "take_over_end", "reset")
#: Notices kept in memory for students' pages that connect late (a reload shows the last minutes' messages).
NOTICES_KEPT = 200
NOTICE_REPLAY_S = 600.0
#: A thumbnail: the last lines of the console that printed last.
THUMB_LINES = 3
THUMB_COLUMNS = 64

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[@-_]")


def thumbnail(data: bytes) -> list[str]:
    """The last :data:`THUMB_LINES` non-empty lines of console output, as plain text (escapes removed)."""
    text = _ANSI.sub(b"", data[-4096:]).decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip()[:THUMB_COLUMNS] for line in text.split("\n")]
    lines = ["".join(ch for ch in line if ch.isprintable()) for line in lines]
    return [line for line in lines if line.strip()][-THUMB_LINES:]


@dataclass
class _Member:
    owner: str
    lab_id: str
    display_name: str


class _ConsoleWatch:
    """Which partition of a lab printed visible text last: the one its thumbnail shows. A console whose
    bytes grew is looked at again (lengths per tick); one that only got escapes or bells keeps its place."""

    def __init__(self) -> None:
        # keyed by (lab id/process id, partition); entries of labs gone are few and small (a class's worth)
        self.lengths: dict[tuple[str, str], int] = {}
        self.thumbs: dict[tuple[str, str], list[str]] = {}
        self.active: dict[str, str] = {}

    def pick(self, lab: Any, partitions: list[str]) -> tuple[str | None, list[str]]:
        changed = []
        process = getattr(getattr(lab, "process", None), "pid", None)  # a restarted lab starts over
        for name in partitions:
            key = (f"{lab.id}/{process}", name)
            data = lab.console_text(name)
            if self.lengths.get(key) != len(data):
                self.lengths[key] = len(data)
                lines = thumbnail(data)
                if lines != self.thumbs.get(key):
                    self.thumbs[key] = lines
                    changed.append(name)
        if changed and self.active.get(lab.id) not in changed:
            self.active[lab.id] = changed[-1]
        name = self.active.get(lab.id) or next(iter(partitions), None)
        return name, self.thumbs.get((f"{lab.id}/{process}", name), []) if name else []


def build_view(db: Database, klass: Class, lockstep: dict[str, int], lessons: list[Any], labs: LabManager,
               stuck_s: float, watch: _ConsoleWatch | None = None, now: float | None = None) -> dict[str, Any]:
    """The dashboard's JSON for one class: lessons and steps, one row per student, the class aggregate."""
    now = time.time() if now is None else now
    lesson_ids = [lesson.id for lesson in lessons]
    with db.read() as conn:
        members = [_Member(r.id, r.lab_id, r.display_name or "") for r in conn.execute(
            select(identities.c.id, identities.c.lab_id, identities.c.display_name)
            .join(class_members, class_members.c.owner == identities.c.id)
            .where(class_members.c.class_id == klass.id).order_by(identities.c.display_name))]
        current = {(r.owner, r.lesson): int(r.current_step) for r in conn.execute(
            select(lesson_progress.c.owner, lesson_progress.c.lesson, lesson_progress.c.current_step)
            .join(class_members, class_members.c.owner == lesson_progress.c.owner)
            .where(class_members.c.class_id == klass.id, lesson_progress.c.lesson.in_(lesson_ids)))}
        steps = conn.execute(
            select(step_progress.c.owner, step_progress.c.lesson, step_progress.c.step, step_progress.c.began_at,
                   step_progress.c.completed_at, step_progress.c.prediction, step_progress.c.predicted_at,
                   step_progress.c.measured)
            .join(class_members, class_members.c.owner == step_progress.c.owner)
            .where(class_members.c.class_id == klass.id, step_progress.c.lesson.in_(lesson_ids))).all()
    by_step = {(r.owner, r.lesson, r.step): r for r in steps}
    aggregate = {lesson.id: [{"passed": 0, "working": 0, "stuck": 0, "predictions": [], "measured": []}
                             for _ in lesson.steps] for lesson in lessons}
    rows = []
    for m in members:
        lab_row, lab_alive = _lab_row(labs.get(m.lab_id), watch)
        cells: dict[str, list[str]] = {}
        for lesson in lessons:
            released = lockstep.get(lesson.id)
            at = current.get((m.owner, lesson.id))
            line = []
            for index, step in enumerate(lesson.steps):
                rec = by_step.get((m.owner, lesson.id, step.id))
                agg = aggregate[lesson.id][index]
                if rec is not None and rec.prediction is not None:
                    agg["predictions"].append(rec.prediction)
                if rec is not None and rec.completed_at:
                    state = "done"
                    agg["passed"] += 1
                    if rec.measured is not None:
                        agg["measured"].append(rec.measured)
                elif released is not None and index > released:
                    state = "locked"
                elif at == index:
                    began = rec.began_at if rec is not None else None
                    if lab_alive is False:
                        state = "crashed"
                    elif began is not None and now - began > stuck_s:
                        state = "stuck"
                    else:
                        state = "working"
                    agg["stuck" if state == "stuck" else "working"] += 1
                else:
                    state = "none"
                line.append(state)
            cells[lesson.id] = line
        predicted = [r for r in steps if r.owner == m.owner and r.prediction is not None]
        last = max(predicted, key=lambda r: r.predicted_at or 0, default=None)
        rows.append({
            "student": m.lab_id, "display_name": m.display_name, "lab": lab_row, "cells": cells,
            "current": {lid: current.get((m.owner, lid)) for lid in lesson_ids},
            "last_prediction": None if last is None else {
                "lesson": last.lesson, "step": last.step, "prediction": last.prediction,
                "measured": last.measured},
        })
    return {
        "class": {**klass.to_dict(), "lockstep": lockstep},
        "stuck_minutes": stuck_s / 60,
        "lessons": [{"id": lesson.id, "title": lesson.title,
                     "steps": [{"id": s.id, "title": s.title} for s in lesson.steps]} for lesson in lessons],
        "students": rows,
        "aggregate": aggregate,
    }


def _lab_row(lab: Any, watch: _ConsoleWatch | None) -> tuple[dict[str, Any], bool | None]:
    """(the lab column, whether the lab process is alive — None when this node runs no lab for them)."""
    if lab is None:
        # No lab here: not started yet, or it runs on another node (the database says nothing of labs).
        return {"state": "none", "partitions": {}, "thumbnail": None}, None
    if not lab.alive:
        return {"state": "stopped", "partitions": {}, "thumbnail": None, "reason": lab.fatal}, False
    try:
        partitions = {name: p.get("state") for name, p in lab.snapshot().get("partitions", {}).items()}
    except Exception:  # noqa: BLE001 - a lab that cannot answer is shown as such, the others still are
        return {"state": "busy", "partitions": {}, "thumbnail": None}, True
    thumb = None
    if watch is not None:
        name, lines = watch.pick(lab, list(partitions))
        thumb = {"partition": name, "lines": lines} if name else None
    return {"state": "running", "partitions": partitions, "thumbnail": thumb}, True


class _Watched:
    """A class some dashboard watches: its latest view and its version."""

    def __init__(self) -> None:
        self.viewers = 0
        self.version = 0
        self.frame = ""
        self.built_at = 0.0


class Classroom:
    """One per web process: builds watched classes' views and collects notices for students' pages."""

    def __init__(self, app: Flask, tick_s: float = TICK_S) -> None:
        self.app = app
        self.tick_s = tick_s
        self._cond = threading.Condition()
        self._watched: dict[str, _Watched] = {}
        self._poked = False
        self._notices: deque[dict[str, Any]] = deque(maxlen=NOTICES_KEPT)
        self._last_audit_id = self._audit_high_water()
        self._notice_version = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._watch = _ConsoleWatch()
        self.builds = 0  # views built (bench: CPU per update)

    # --- the thread -----------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="classroom", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def poke(self, *_args: Any) -> None:
        """Something changed on this node (progress, a notice): rebuild now rather than at the next tick."""
        with self._cond:
            self._poked = True
            self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._poked:
                    self._cond.wait(self.tick_s)
                self._poked = False
            try:
                self._collect_notices()
                with self.app.app_context():
                    for class_id in self._watched_ids():
                        self._rebuild(class_id)
            except Exception:
                log.exception("classroom update failed")
                self._stop.wait(self.tick_s)

    def _watched_ids(self) -> list[str]:
        with self._cond:
            return [cid for cid, w in self._watched.items() if w.viewers > 0]

    def _rebuild(self, class_id: str) -> None:
        frame = json.dumps(self.view(class_id), separators=(",", ":"))
        self.builds += 1
        with self._cond:
            watched = self._watched.get(class_id)
            if watched is not None and frame != watched.frame:
                watched.frame = frame
                watched.version += 1
                watched.built_at = time.time()
                self._cond.notify_all()

    def view(self, class_id: str) -> dict[str, Any]:
        """The class's view now (in an app context): :func:`build_view` with this app's stores."""
        from hyperlab.web.api.lessons import lesson_library

        store: ClassStore = self.app.extensions["hyperlab.classes"]
        klass = store.get(class_id)
        library = lesson_library()
        lessons = []
        for lesson_id in klass.lessons:
            try:
                lessons.append(library.get(lesson_id))
            except HttpError:  # a lesson file removed since: the class shows the others
                log.info("class %s: lesson %s is gone", class_id, lesson_id)
        stuck_s = float(self.app.config.get("HYPERLAB_STUCK_MINUTES", 5)) * 60
        return build_view(store.db, klass, store.lockstep(class_id), lessons, self.app.extensions["hyperlab.labs"],
                          stuck_s, self._watch)

    # --- dashboards -----------------------------------------------------------------------------------
    def watch(self, class_id: str) -> Callable[[], None]:
        """Count a viewer of the class (its view is built from now on); call the answer to stop."""
        with self._cond:
            self._watched.setdefault(class_id, _Watched()).viewers += 1
            self._poked = True
            self._cond.notify_all()
        self._ensure_thread()

        def unwatch() -> None:
            with self._cond:
                watched = self._watched.get(class_id)
                if watched is not None:
                    watched.viewers -= 1
                    if watched.viewers <= 0:
                        del self._watched[class_id]

        return unwatch

    def next_frame(self, class_id: str, seen: int, timeout: float) -> tuple[int, str] | None:
        """The class's view once its version passes ``seen`` (None on timeout, or if nobody watches it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                watched = self._watched.get(class_id)
                if watched is None:
                    return None
                if watched.version > seen and watched.frame:
                    return watched.version, watched.frame
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(left)

    # --- notices for students -------------------------------------------------------------------------
    def _audit_high_water(self) -> int:
        db: Database = self.app.extensions["hyperlab.db"]
        from sqlalchemy import func

        with db.read() as conn:
            high = int(conn.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one())
            since = time.time() - NOTICE_REPLAY_S
            rows = conn.execute(select(audit_log).where(audit_log.c.action.in_(NOTICE_ACTIONS),
                                                        audit_log.c.at > since).order_by(audit_log.c.id)).all()
        for r in rows:
            self._notices.append(_notice(r))
        return high

    def _collect_notices(self) -> None:
        """New audit rows a student must see, written by any node (one query per tick for the whole node)."""
        db: Database = self.app.extensions["hyperlab.db"]
        with db.read() as conn:
            rows = conn.execute(select(audit_log).where(audit_log.c.id > self._last_audit_id,
                                                        audit_log.c.action.in_(NOTICE_ACTIONS))
                                .order_by(audit_log.c.id)).all()
        if not rows:
            return
        with self._cond:
            for r in rows:
                self._notices.append(_notice(r))
                self._last_audit_id = max(self._last_audit_id, int(r.id))
            self._notice_version += 1
            self._cond.notify_all()

    def follow_notices(self) -> Callable[[], None]:
        """A student's page listens for notices: make sure the collecting thread runs."""
        self._ensure_thread()
        return lambda: None

    def notices_for(self, class_id: str, lab_id: str, after: int, timeout: float) -> list[dict[str, Any]]:
        """Notices for this student (to them, or to their whole class) with an id above ``after``; waits
        up to ``timeout`` for one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [n for n in self._notices if n["id"] > after and n["class_id"] == class_id
                         and n["target"] in (None, lab_id)]
                left = deadline - time.monotonic()
                if found or left <= 0 or self._stop.is_set():
                    return found
                self._cond.wait(left)

    def notice_now(self) -> None:
        """A notice was written on this node: collect it now."""
        self.poke()


def _notice(row: Any) -> dict[str, Any]:
    return {"id": int(row.id), "at": row.at, "kind": row.action, "class_id": row.class_id, "target": row.target,
            "text": row.detail or ""}


def init_app(app: Flask) -> Classroom:
    """The app's classroom; progress written on this node pokes it (other nodes' writes show within a tick)."""
    classroom = Classroom(app, float(app.config.get("HYPERLAB_DASHBOARD_TICK_S", TICK_S)))
    app.extensions["hyperlab.classroom"] = classroom
    app.extensions["hyperlab.progress"].listeners.append(classroom.poke)
    return classroom
