"""Lesson progress in SQLite: where each student is in each lesson, what they predicted and measured.

One small database file (stdlib ``sqlite3``) in the app's data directory, so progress survives a page
reload and a server restart. Keyed by the browser session's **owner** id (the signed session cookie;
it survives a server restart when ``HYPERLAB_SECRET_KEY`` is set) and the lesson id.

Schema (created with ``CREATE TABLE IF NOT EXISTS``; no migrations — add columns only with defaults):

``lesson_progress``  one row per (owner, lesson)
    ``current_step`` index of the step shown, ``started_at`` / ``updated_at`` (Unix time).
``step_progress``    one row per (owner, lesson, step id), created when the step first begins
    ``baseline``     JSON object of counter values recorded when the step began (``delta()`` reads them),
    ``baseline_lab`` which lab instance (``<lab id>/<process id>``) they were read from — a baseline of
                     another lab instance is stale (counters restart at zero) and is recorded again,
    ``completed_at`` when the step's check was first met (``NULL`` while unmet; stays set once met),
    ``prediction`` / ``predicted_at`` the number the student committed (``NULL`` until then),
    ``measured``     the prediction's true value, measured when the check was first met,
    ``hints_shown``  how many hints the student has asked for.
``lab_setup``        one row per owner: which lesson the owner's current lab instance was set up for,
    so reopening the lesson (or reloading the page) does not set the lab up again.

Thread-safe: one connection shared under a lock (requests are short; SQLite serialises writes anyway).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS lesson_progress (
    owner        TEXT NOT NULL,
    lesson       TEXT NOT NULL,
    current_step INTEGER NOT NULL DEFAULT 0,
    started_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (owner, lesson)
);
CREATE TABLE IF NOT EXISTS step_progress (
    owner        TEXT NOT NULL,
    lesson       TEXT NOT NULL,
    step         TEXT NOT NULL,
    baseline     TEXT,
    baseline_lab TEXT,
    began_at     REAL,
    completed_at REAL,
    prediction   REAL,
    predicted_at REAL,
    measured     REAL,
    hints_shown  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, lesson, step)
);
CREATE TABLE IF NOT EXISTS lab_setup (
    owner      TEXT PRIMARY KEY,
    lab        TEXT NOT NULL,
    lesson     TEXT NOT NULL,
    set_up_at  REAL NOT NULL
);
"""

#: File name of the database inside the data directory.
DB_NAME = "progress.sqlite3"


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
    """``ProgressStore(path)``; every method takes the owner and lesson ids and commits before returning."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10.0)
        self._db.row_factory = sqlite3.Row
        with self._lock, self._db:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError:
                pass  # e.g. a file system without shared memory: the default journal works too
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- reading ---------------------------------------------------------------------------------
    def lesson(self, owner: str, lesson: str) -> LessonRecord:
        """Everything stored for (owner, lesson); an empty record if the student never opened it."""
        with self._lock:
            row = self._db.execute("SELECT current_step FROM lesson_progress WHERE owner=? AND lesson=?",
                                   (owner, lesson)).fetchone()
            steps = self._db.execute("SELECT * FROM step_progress WHERE owner=? AND lesson=?",
                                     (owner, lesson)).fetchall()
        record = LessonRecord(lesson, current_step=int(row["current_step"]) if row else 0, started=row is not None)
        for s in steps:
            record.steps[s["step"]] = StepRecord(
                step=s["step"],
                baseline=json.loads(s["baseline"]) if s["baseline"] else None,
                baseline_lab=s["baseline_lab"], began_at=s["began_at"], completed_at=s["completed_at"],
                prediction=s["prediction"], predicted_at=s["predicted_at"], measured=s["measured"],
                hints_shown=int(s["hints_shown"]))
        return record

    def lessons(self, owner: str) -> dict[str, LessonRecord]:
        """All lessons this owner has opened, by lesson id."""
        with self._lock:
            ids = [r["lesson"] for r in self._db.execute(
                "SELECT lesson FROM lesson_progress WHERE owner=?", (owner,)).fetchall()]
        return {lesson: self.lesson(owner, lesson) for lesson in ids}

    def lab_setup(self, owner: str) -> tuple[str, str] | None:
        """(lab instance, lesson id) the owner's lab was last set up for, or None."""
        with self._lock:
            row = self._db.execute("SELECT lab, lesson FROM lab_setup WHERE owner=?", (owner,)).fetchone()
        return (row["lab"], row["lesson"]) if row else None

    # --- writing ---------------------------------------------------------------------------------
    def _touch(self, owner: str, lesson: str, now: float) -> None:
        self._db.execute(
            "INSERT INTO lesson_progress (owner, lesson, current_step, started_at, updated_at) VALUES (?,?,0,?,?) "
            "ON CONFLICT (owner, lesson) DO UPDATE SET updated_at=excluded.updated_at",
            (owner, lesson, now, now))

    def _ensure_step(self, owner: str, lesson: str, step: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO step_progress (owner, lesson, step) VALUES (?,?,?)",
                         (owner, lesson, step))

    def set_current(self, owner: str, lesson: str, index: int) -> None:
        now = time.time()
        with self._lock, self._db:
            self._touch(owner, lesson, now)
            self._db.execute("UPDATE lesson_progress SET current_step=?, updated_at=? WHERE owner=? AND lesson=?",
                             (int(index), now, owner, lesson))

    def begin_step(self, owner: str, lesson: str, step: str, baseline: dict[str, Any], lab: str) -> None:
        """Record the counters at the start of a step (again, if they came from another lab instance)."""
        now = time.time()
        with self._lock, self._db:
            self._touch(owner, lesson, now)
            self._ensure_step(owner, lesson, step)
            self._db.execute(
                "UPDATE step_progress SET baseline=?, baseline_lab=?, began_at=? WHERE owner=? AND lesson=? AND step=?",
                (json.dumps(baseline, separators=(",", ":")), lab, now, owner, lesson, step))

    def complete_step(self, owner: str, lesson: str, step: str, measured: float | None) -> bool:
        """Mark the step's check met (the first time only); True if this call marked it."""
        now = time.time()
        with self._lock, self._db:
            self._touch(owner, lesson, now)
            self._ensure_step(owner, lesson, step)
            cur = self._db.execute(
                "UPDATE step_progress SET completed_at=?, measured=? "
                "WHERE owner=? AND lesson=? AND step=? AND completed_at IS NULL",
                (now, measured, owner, lesson, step))
            return cur.rowcount == 1

    def predict(self, owner: str, lesson: str, step: str, value: float) -> bool:
        """Commit a prediction; False if one was already committed (a prediction cannot be changed)."""
        now = time.time()
        with self._lock, self._db:
            self._touch(owner, lesson, now)
            self._ensure_step(owner, lesson, step)
            cur = self._db.execute(
                "UPDATE step_progress SET prediction=?, predicted_at=? "
                "WHERE owner=? AND lesson=? AND step=? AND prediction IS NULL",
                (float(value), now, owner, lesson, step))
            return cur.rowcount == 1

    def show_hint(self, owner: str, lesson: str, step: str, available: int) -> int:
        """One more hint (at most ``available``); answers how many are shown now."""
        now = time.time()
        with self._lock, self._db:
            self._touch(owner, lesson, now)
            self._ensure_step(owner, lesson, step)
            self._db.execute(
                "UPDATE step_progress SET hints_shown=MIN(hints_shown + 1, ?) WHERE owner=? AND lesson=? AND step=?",
                (int(available), owner, lesson, step))
            row = self._db.execute("SELECT hints_shown FROM step_progress WHERE owner=? AND lesson=? AND step=?",
                                   (owner, lesson, step)).fetchone()
            return int(row["hints_shown"])

    def set_lab_setup(self, owner: str, lab: str, lesson: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO lab_setup (owner, lab, lesson, set_up_at) VALUES (?,?,?,?) "
                "ON CONFLICT (owner) DO UPDATE SET lab=excluded.lab, lesson=excluded.lesson, "
                "set_up_at=excluded.set_up_at", (owner, lab, lesson, time.time()))

    def reset(self, owner: str, lesson: str) -> None:
        """Forget the owner's progress in one lesson (start it over)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM step_progress WHERE owner=? AND lesson=?", (owner, lesson))
            self._db.execute("DELETE FROM lesson_progress WHERE owner=? AND lesson=?", (owner, lesson))


def default_path(data_dir: Path | None) -> Path:
    """``<data dir>/progress.sqlite3``; without a data dir, ``$XDG_DATA_HOME/hyperlab`` (or ``~/.local/share``)."""
    if data_dir is not None:
        return Path(data_dir) / DB_NAME
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hyperlab" / DB_NAME
