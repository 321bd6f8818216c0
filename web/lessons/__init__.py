"""The lesson engine: load lesson files, check them, evaluate their checks, replay their solutions.

A lesson is a Markdown file with YAML front matter (the format is ``docs/lessons.md``). This package is
the only code that reads that format, so the web API, the ``hyperlab lessons`` commands and CI agree
on what a lesson means. It imports no Flask: the CLI replays lessons headless.

One job per module: ``model`` (the lesson and its errors), ``counters`` (the counter catalogue from
docs/telemetry.md), ``expressions`` (the check language), ``reader`` (the YAML reader), ``replay``
(the solution player).
"""

from hyperlab.web.lessons.counters import TELEMETRY_DOC, known_counter, known_reason
from hyperlab.web.lessons.expressions import Evaluator, validate_expression
from hyperlab.web.lessons.model import (
    Action,
    Check,
    ExpressionError,
    Lesson,
    LessonError,
    LessonErrors,
    Prediction,
    Step,
)
from hyperlab.web.lessons.reader import (
    check_paths,
    lesson_files,
    lessons_dir,
    load_lesson,
    load_lessons,
    load_paths,
)
from hyperlab.web.lessons.replay import LabLike, ReplayResult, StepResult, replay

__all__ = [
    "TELEMETRY_DOC", "Action", "Check", "Evaluator", "ExpressionError", "LabLike", "Lesson", "LessonError",
    "LessonErrors", "Prediction", "ReplayResult", "Step", "StepResult", "check_paths", "known_counter",
    "known_reason", "lesson_files", "lessons_dir", "load_lesson", "load_lessons", "load_paths", "replay",
    "validate_expression",
]
