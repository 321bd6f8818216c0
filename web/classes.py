"""Classes, their members and the audit log, in the database (tables in :mod:`hyperlab.web.schema`).

A class has a name, the lessons it covers and a short **join code** a student types with a display name
(no e-mail, no password: the student's lasting identity is who they are). Students are named to the
instructor by their **lab id** — the identity's public handle — never by the identity id, which is the
secret their cookie carries. Every instructor action worth answering for goes to the audit log.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from hyperlab.web.access import HttpError
from hyperlab.web.db import Database
from hyperlab.web.schema import (
    audit_log,
    class_lockstep,
    class_members,
    classes,
    identities,
    lesson_progress,
    step_progress,
)

#: Join codes: 6 characters without look-alikes (0/O, 1/I/L), about 2^29 codes.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
NAME_MAX = 40


@dataclass(frozen=True)
class Class:
    id: str
    name: str
    join_code: str
    lessons: list[str]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "join_code": self.join_code, "lessons": list(self.lessons),
                "created_at": self.created_at}


def clean_name(value: Any, what: str, limit: int = NAME_MAX) -> str:
    """A display or class name: text of 1..limit printable characters, spaces collapsed."""
    if not isinstance(value, str):
        raise HttpError(400, f"{what} must be text")
    name = " ".join(unicodedata.normalize("NFC", value).split())
    if not name or len(name) > limit:
        raise HttpError(400, f"{what} must be 1 to {limit} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise HttpError(400, f"{what} may hold only printable characters")
    return name


def normal_code(code: Any) -> str:
    """A join code as typed (any case, spaces or dashes) in its stored form."""
    if not isinstance(code, str):
        raise HttpError(400, "code must be text")
    return "".join(ch for ch in code.upper() if ch.isalnum())[:16]


class ClassStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- classes -----------------------------------------------------------------------------------------
    def create(self, name: str, lessons: list[str]) -> Class:
        for _ in range(20):  # a clash of random codes is rare; try again if it happens
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            klass = Class(secrets.token_urlsafe(8), name, code, list(lessons), time.time())
            with self.db.write() as conn:
                if conn.execute(select(classes.c.id).where(classes.c.join_code == code)).first():
                    continue
                conn.execute(classes.insert().values(id=klass.id, name=name, join_code=code,
                                                     lessons=json.dumps(lessons), created_at=klass.created_at))
            return klass
        raise HttpError(503, "could not find a free join code; try again")

    @staticmethod
    def _class(row: Any) -> Class:
        return Class(row.id, row.name, row.join_code, json.loads(row.lessons), row.created_at)

    def get(self, class_id: str) -> Class:
        with self.db.read() as conn:
            row = conn.execute(select(classes).where(classes.c.id == class_id)).first()
        if row is None:
            raise HttpError(404, f"no such class: {class_id}")
        return self._class(row)

    def all(self) -> list[Class]:
        with self.db.read() as conn:
            return [self._class(r) for r in conn.execute(select(classes).order_by(classes.c.created_at))]

    # --- members -----------------------------------------------------------------------------------------
    def join(self, owner: str, code: str, display_name: str) -> Class:
        """Put ``owner`` in the class of ``code`` under ``display_name`` (leaving any class it was in)."""
        with self.db.write() as conn:
            row = conn.execute(select(classes).where(classes.c.join_code == code)).first()
            if row is None:
                raise HttpError(404, "no class has that join code: check it with your instructor")
            taken = conn.execute(
                select(identities.c.id).join(class_members, class_members.c.owner == identities.c.id)
                .where(class_members.c.class_id == row.id, identities.c.display_name == display_name,
                       identities.c.id != owner)).first()
            if taken:
                raise HttpError(409, f"someone in this class is called {display_name!r} already; choose another name")
            conn.execute(delete(class_members).where(class_members.c.owner == owner))
            conn.execute(class_members.insert().values(owner=owner, class_id=row.id, joined_at=time.time()))
            conn.execute(update(identities).where(identities.c.id == owner).values(display_name=display_name))
        return self._class(row)

    def class_of(self, owner: str) -> Class | None:
        with self.db.read() as conn:
            row = conn.execute(select(classes).join(class_members, class_members.c.class_id == classes.c.id)
                               .where(class_members.c.owner == owner)).first()
        return self._class(row) if row else None

    def member(self, class_id: str, lab_id: str) -> str:
        """The identity id of the class member whose lab id is ``lab_id``; 404 if no member has it."""
        with self.db.read() as conn:
            owner = conn.execute(select(identities.c.id).join(class_members, class_members.c.owner == identities.c.id)
                                 .where(class_members.c.class_id == class_id, identities.c.lab_id == lab_id)).scalar()
        if owner is None:
            raise HttpError(404, f"no student {lab_id} in this class")
        return str(owner)

    # --- lockstep ----------------------------------------------------------------------------------------
    def set_released(self, class_id: str, lesson: str, released: int | None) -> None:
        """Release steps up to ``released`` (an index) of a class's lesson; None ends the lockstep."""
        with self.db.write() as conn:
            conn.execute(delete(class_lockstep).where(class_lockstep.c.class_id == class_id,
                                                      class_lockstep.c.lesson == lesson))
            if released is not None:
                conn.execute(class_lockstep.insert().values(class_id=class_id, lesson=lesson, released=released,
                                                            updated_at=time.time()))

    def lockstep(self, class_id: str) -> dict[str, int]:
        """The released step of each lesson of the class in lockstep."""
        with self.db.read() as conn:
            rows = conn.execute(select(class_lockstep.c.lesson, class_lockstep.c.released)
                                .where(class_lockstep.c.class_id == class_id)).all()
        return {r.lesson: int(r.released) for r in rows}

    def released_for(self, owner: str, lesson: str) -> int | None:
        """The last step ``owner`` may reach in ``lesson``: its class's released step, or None (no limit)."""
        with self.db.read() as conn:
            return conn.execute(
                select(class_lockstep.c.released)
                .join(class_members, class_members.c.class_id == class_lockstep.c.class_id)
                .where(class_members.c.owner == owner, class_lockstep.c.lesson == lesson)).scalar()

    def roster(self, class_id: str) -> list[dict[str, Any]]:
        """The class's students: their public handle (lab id), name, when they joined, steps done per lesson."""
        klass = self.get(class_id)
        with self.db.read() as conn:
            members = conn.execute(
                select(identities.c.id, identities.c.lab_id, identities.c.display_name, class_members.c.joined_at)
                .join(class_members, class_members.c.owner == identities.c.id)
                .where(class_members.c.class_id == class_id).order_by(identities.c.display_name)).all()
            done = conn.execute(
                select(step_progress.c.owner, step_progress.c.lesson, step_progress.c.step)
                .join(class_members, class_members.c.owner == step_progress.c.owner)
                .where(class_members.c.class_id == class_id, step_progress.c.completed_at.is_not(None))).all()
            current = conn.execute(
                select(lesson_progress.c.owner, lesson_progress.c.lesson, lesson_progress.c.current_step)
                .join(class_members, class_members.c.owner == lesson_progress.c.owner)
                .where(class_members.c.class_id == class_id)).all()
        students = []
        for m in members:
            lessons = {lesson: {"completed": sorted(r.step for r in done if r.owner == m.id and r.lesson == lesson),
                                "current_step": next((r.current_step for r in current
                                                      if r.owner == m.id and r.lesson == lesson), None)}
                       for lesson in klass.lessons}
            students.append({"student": m.lab_id, "display_name": m.display_name, "joined_at": m.joined_at,
                             "lessons": lessons})
        return students

    def progress_csv(self, class_id: str) -> str:
        """One line per student and step begun: the export a trainer opens in a spreadsheet."""
        klass = self.get(class_id)
        with self.db.read() as conn:
            rows = conn.execute(
                select(identities.c.lab_id, identities.c.display_name, step_progress)
                .join(class_members, class_members.c.owner == identities.c.id)
                .join(step_progress, step_progress.c.owner == identities.c.id)
                .where(class_members.c.class_id == class_id, step_progress.c.lesson.in_(klass.lessons))
                .order_by(identities.c.display_name, step_progress.c.lesson, step_progress.c.began_at)).all()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["student", "display_name", "lesson", "step", "began_at", "completed_at", "seconds",
                         "hints_shown", "prediction", "measured"])
        for r in rows:
            seconds = (r.completed_at - r.began_at) if r.completed_at and r.began_at else None
            writer.writerow([r.lab_id, _cell(r.display_name), r.lesson, r.step, _iso(r.began_at),
                             _iso(r.completed_at), _num(seconds), r.hints_shown, _num(r.prediction),
                             _num(r.measured)])
        return out.getvalue()

    # --- audit ---------------------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, class_id: str | None = None, target: str | None = None,
              detail: str | None = None) -> None:
        with self.db.write() as conn:
            conn.execute(audit_log.insert().values(at=time.time(), actor=actor, action=action, class_id=class_id,
                                                   target=target, detail=detail))

    def audit_entries(self, class_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if class_id is not None:
            query = query.where(audit_log.c.class_id == class_id)
        with self.db.read() as conn:
            return [{"at": r.at, "actor": r.actor, "action": r.action, "class_id": r.class_id, "target": r.target,
                     "detail": r.detail} for r in conn.execute(query)]


def _cell(text: str | None) -> str:
    """A spreadsheet must not run a student's name as a formula (=, +, -, @ start one)."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _iso(t: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else ""


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
