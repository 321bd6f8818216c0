"""The counter catalogue: which counter names and transition reasons exist, what each counter means and
in which unit it counts (docs/telemetry.md is the one source). A lesson's check naming an unknown counter
is refused when the lesson is read; the page shows each counter's meaning and unit from here."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from hyperlab.web.lessons.model import PARTITIONS

# docs/telemetry.md travels with the package (package data of `hyperlab`): in the repo and in an
# installed wheel alike it sits at <package>/docs/telemetry.md, two folders above this file.
TELEMETRY_DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "telemetry.md"


@dataclass(frozen=True)
class CounterDoc:
    """One documented counter name (``<p>.exits.io_port``), what it means and its unit ("" = a count)."""

    name: str
    meaning: str
    unit: str
    pattern: re.Pattern[str]

    @property
    def short(self) -> str:
        """The meaning's first sentence, cut to its main clause when long: a line beside a number."""
        return _shorten(self.meaning.split(". ", 1)[0])

    def to_dict(self) -> dict:
        return {"name": self.name, "meaning": self.meaning, "short": self.short, "unit": self.unit}


def _shorten(text: str, limit: int = 70) -> str:
    head, sep, tail = text.partition(": ")
    if sep and (len(head) < 15 or head.endswith("design")):  # "micro-kernel design: port accesses …"
        return _shorten(tail, limit)
    if len(text) <= limit:
        return text
    for mark in (": ", " (", ", "):
        if 20 <= text.find(mark):
            return text[:text.index(mark)]
    return text


def _unit(name: str) -> str:
    """The unit a counter counts in, from its name's last part: the naming rule docs/telemetry.md keeps."""
    last = name.rsplit(".", 1)[-1]
    if last.endswith("_us"):
        return "µs"
    for unit in ("bytes", "sectors"):
        if last.startswith(unit) or last.endswith(unit):
            return unit
    return ""


def _plain(markdown: str) -> str:
    return re.sub(r"\*\*|`", "", markdown).strip()


# --- telemetry names (docs/telemetry.md is the single source) ----------------------------------------
@functools.cache
def catalogue() -> tuple[CounterDoc, ...]:
    """Every documented counter with its meaning (the table's last column) and unit, in the doc's order."""
    docs: list[CounterDoc] = []
    section = ""
    for line in TELEMETRY_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
        elif section == "counters" and line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] == "name" or len(cells) < 2:
                continue
            for name in _row_names(cells[0]):
                docs.append(CounterDoc(name, _plain(cells[-1]), _unit(name), _name_pattern(name)))
    return tuple(docs)


def describe(name: str) -> CounterDoc | None:
    """The catalogue entry of a concrete counter name (``child1.exits.io_port``), or None."""
    return next((d for d in catalogue() if d.pattern.fullmatch(name)), None)


def _row_names(cell: str) -> list[str]:
    """The counter names of a table row's first cell: a name starting with a dot (``/ .bytes_in``)
    replaces the last part of the row's first name."""
    names: list[str] = []
    base = None
    for name in re.findall(r"`([^`]+)`", cell):
        if name.startswith(".") and base is not None:
            name = base.rsplit(".", 1)[0] + name
        elif base is None:
            base = name
        names.append(name)
    return names


@functools.cache
def _telemetry_names() -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
    """Counter and transition-reason patterns, read from the tables of docs/telemetry.md.

    The first cell of each row of the tables under "## Counters" names counters: backticked names,
    where ``<p>`` is a partition, another ``<word>`` any name part (``<p>.faults.<kind>``), and a name
    that starts with a dot (``/ .bytes_in``) replaces the last part of the row's first name.
    """
    text = TELEMETRY_DOC.read_text(encoding="utf-8")
    counters: list[re.Pattern[str]] = []
    reasons: list[re.Pattern[str]] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
            continue
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if section == "counters":
            counters.extend(_name_pattern(name) for name in _row_names(cells[0]))
        elif section == "transitions" and cells[0] == "`reason`" and len(cells) > 1:
            reasons.extend(_name_pattern(n) for n in re.findall(r"`([^`]+)`", cells[1]))
    if not counters:
        raise RuntimeError(f"{TELEMETRY_DOC} lists no counters: the lesson checks cannot be validated")
    return tuple(counters), tuple(reasons)


def _name_pattern(name: str) -> re.Pattern[str]:
    parts = re.split(r"(<[^>]+>)", name)
    regex = "".join(("(?:" + "|".join(PARTITIONS) + ")" if p == "<p>" else "[a-z0-9_]+") if p.startswith("<")
                    else re.escape(p) for p in parts if p)
    return re.compile(regex)


def known_counter(name: str) -> bool:
    """Whether ``name`` is a counter documented in docs/telemetry.md (``<p>`` = root/child1/child2)."""
    return any(p.fullmatch(name) for p in _telemetry_names()[0])


def known_reason(reason: str) -> bool:
    """Whether ``reason`` is a transition reason documented in docs/telemetry.md."""
    return any(p.fullmatch(reason) for p in _telemetry_names()[1])


