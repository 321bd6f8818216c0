"""Lesson progress: where each student is in each lesson, what they predicted and measured.

Rows live in the server's database (:mod:`hyperlab.web.db`: SQLite by default, PostgreSQL by URL; the
tables are defined in :mod:`hyperlab.web.schema`), keyed by the student's **identity** id and the lesson
id. Every row belongs to an identity (a foreign key): a request without a session writes nothing.

``lesson_progress``  one row per (owner, lesson): ``current_step``, ``started_at`` / ``updated_at``.
``step_progress``    one row per (owner, lesson, step id), created when the step first begins:
    ``baseline``     JSON object of counter values recorded when the step began (``delta()`` reads them),
    ``baseline_lab`` which lab instance (``<lab id>/<process id>``) they were read from — a baseline of
                     another lab instance is stale (counters restart at zero) and is recorded again,
    ``completed_at`` when the step's check was first met (``NULL`` while unmet; stays set once met),
    ``prediction`` / ``predicted_at`` the number the student committed (``NULL`` until then),
    ``measured``     the prediction's true value, measured when the check was first met,
    ``hints_shown``  how many hints the student has asked for.
``lab_setup``        one row per owner: which lesson the owner's current lab instance was set up for,
    so reopening the lesson (or reloading the page) does not set the lab up again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, case, delete, select, update

from hyperlab.web.db import Database
from hyperlab.web.schema import lab_setup, lesson_progress, step_progress


@dataclass
class StepRecord:
    """One step's stored progress (a step that has not begun has no record)."""

    step: str
    baseline: dict[str, float] | None = None
    baseline_lab: str | None = None
    began_at: float | None = None
    completed_at: float | None = None
    prediction: float | None = None
    predicted_at: float | None = None
    measured: float | None = None
    hints_shown: int = 0

    @property
    def completed(self) -> bool:
        return self.completed_at is not None


@dataclass
class LessonRecord:
    """One lesson's stored progress for one owner."""

    lesson: str
    current_step: int = 0
    started: bool = False
    steps: dict[str, StepRecord] = field(default_factory=dict)

    def step(self, step_id: str) -> StepRecord:
        return self.steps.get(step_id) or StepRecord(step_id)

    def completed_ids(self) -> list[str]:
        return [s.step for s in self.steps.values() if s.completed]


class ProgressStore:
    """``ProgressStore(database)``; every method takes the owner and lesson ids and commits before returning.

    The owner must be an identity in the database (else the write fails on the foreign key): callers pass
    the id of the request's session, never one made up for a cookie-less request.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        #: Called with the owner after each write (the instructor's dashboard rebuilds at once).
        self.listeners: list[Callable[[str], None]] = []

    def _changed(self, owner: str) -> None:
        for listener in self.listeners:
            listener(owner)

    # --- reading ---------------------------------------------------------------------------------
    def lesson(self, owner: str, lesson: str) -> LessonRecord:
        """Everything stored for (owner, lesson); an empty record if the student never opened it."""
        with self.db.read() as conn:
            return self._lesson(conn, owner, lesson)

    @staticmethod
    def _lesson(conn: Connection, owner: str, lesson: str) -> LessonRecord:
        lp, sp = lesson_progress.c, step_progress.c
        row = conn.execute(select(lp.current_step).where(lp.owner == owner, lp.lesson == lesson)).first()
        record = LessonRecord(lesson, current_step=int(row.current_step) if row else 0, started=row is not None)
        for s in conn.execute(select(step_progress).where(sp.owner == owner, sp.lesson == lesson)):
            record.steps[s.step] = StepRecord(
                step=s.step, baseline=json.loads(s.baseline) if s.baseline else None,
                baseline_lab=s.baseline_lab, began_at=s.began_at, completed_at=s.completed_at,
                prediction=s.prediction, predicted_at=s.predicted_at, measured=s.measured,
                hints_shown=int(s.hints_shown))
        return record

    def lessons(self, owner: str) -> dict[str, LessonRecord]:
        """All lessons this owner has opened, by lesson id."""
        with self.db.read() as conn:
            ids = conn.execute(select(lesson_progress.c.lesson).where(lesson_progress.c.owner == owner)).scalars()
            return {lesson: self._lesson(conn, owner, lesson) for lesson in list(ids)}

    def lab_setup(self, owner: str) -> tuple[str, str] | None:
        """(lab instance, lesson id) the owner's lab was last set up for, or None."""
        with self.db.read() as conn:
            row = conn.execute(select(lab_setup.c.lab, lab_setup.c.lesson).where(lab_setup.c.owner == owner)).first()
        return (row.lab, row.lesson) if row else None

    # --- writing ---------------------------------------------------------------------------------
    def _touch(self, conn: Connection, owner: str, lesson: str, now: float) -> None:
        insert = self.db.insert(lesson_progress).values(owner=owner, lesson=lesson, current_step=0,
                                                         started_at=now, updated_at=now)
        conn.execute(insert.on_conflict_do_update(index_elements=["owner", "lesson"],
                                                  set_={"updated_at": insert.excluded.updated_at}))

    def _ensure_step(self, conn: Connection, owner: str, lesson: str, step: str) -> None:
        conn.execute(self.db.insert(step_progress).values(owner=owner, lesson=lesson, step=step)
                     .on_conflict_do_nothing())

    @staticmethod
    def _step(owner: str, lesson: str, step: str) -> Any:
        sp = step_progress.c
        return update(step_progress).where(sp.owner == owner, sp.lesson == lesson, sp.step == step)

    def set_current(self, owner: str, lesson: str, index: int) -> None:
        now = time.time()
        with self.db.write() as conn:
            self._touch(conn, owner, lesson, now)
            lp = lesson_progress.c
            conn.execute(update(lesson_progress).where(lp.owner == owner, lp.lesson == lesson)
                         .values(current_step=int(index), updated_at=now))
        self._changed(owner)

    def begin_step(self, owner: str, lesson: str, step: str, baseline: dict[str, Any], lab: str) -> None:
        """Record the counters at the start of a step (again, if they came from another lab instance)."""
        now = time.time()
        with self.db.write() as conn:
            self._touch(conn, owner, lesson, now)
            self._ensure_step(conn, owner, lesson, step)
            conn.execute(self._step(owner, lesson, step).values(
                baseline=json.dumps(baseline, separators=(",", ":")), baseline_lab=lab, began_at=now))
        self._changed(owner)

    def complete_step(self, owner: str, lesson: str, step: str, measured: float | None) -> bool:
        """Mark the step's check met (the first time only); True if this call marked it."""
        now = time.time()
        with self.db.write() as conn:
            self._touch(conn, owner, lesson, now)
            self._ensure_step(conn, owner, lesson, step)
            done = conn.execute(self._step(owner, lesson, step).where(step_progress.c.completed_at.is_(None))
                                .values(completed_at=now, measured=measured))
        self._changed(owner)
        return done.rowcount == 1

    def predict(self, owner: str, lesson: str, step: str, value: float) -> bool:
        """Commit a prediction; False if one was already committed (a prediction cannot be changed)."""
        now = time.time()
        with self.db.write() as conn:
            self._touch(conn, owner, lesson, now)
            self._ensure_step(conn, owner, lesson, step)
            done = conn.execute(self._step(owner, lesson, step).where(step_progress.c.prediction.is_(None))
                                .values(prediction=float(value), predicted_at=now))
        self._changed(owner)
        return done.rowcount == 1

    def show_hint(self, owner: str, lesson: str, step: str, available: int) -> int:
        """One more hint (at most ``available``); answers how many are shown now."""
        now = time.time()
        shown = step_progress.c.hints_shown
        with self.db.write() as conn:
            self._touch(conn, owner, lesson, now)
            self._ensure_step(conn, owner, lesson, step)
            conn.execute(self._step(owner, lesson, step).values(
                hints_shown=case((shown < int(available), shown + 1), else_=int(available))))
            sp = step_progress.c
            return int(conn.execute(select(shown).where(and_(sp.owner == owner, sp.lesson == lesson,
                                                             sp.step == step))).scalar_one())

    def set_lab_setup(self, owner: str, lab: str, lesson: str) -> None:
        insert = self.db.insert(lab_setup).values(owner=owner, lab=lab, lesson=lesson, set_up_at=time.time())
        with self.db.write() as conn:
            conn.execute(insert.on_conflict_do_update(index_elements=["owner"], set_={
                "lab": insert.excluded.lab, "lesson": insert.excluded.lesson,
                "set_up_at": insert.excluded.set_up_at}))

    def reset(self, owner: str, lesson: str) -> None:
        """Forget the owner's progress in one lesson (start it over)."""
        with self.db.write() as conn:
            conn.execute(delete(step_progress).where(step_progress.c.owner == owner,
                                                     step_progress.c.lesson == lesson))
            conn.execute(delete(lesson_progress).where(lesson_progress.c.owner == owner,
                                                       lesson_progress.c.lesson == lesson))
        self._changed(owner)
