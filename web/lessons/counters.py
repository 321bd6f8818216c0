"""The counter catalogue: which counter names and transition reasons exist (docs/telemetry.md is the one
source), so a lesson's check naming an unknown counter is refused when the lesson is read."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from hyperlab.web.lessons.model import PARTITIONS

# docs/telemetry.md travels with the package (package data of `hyperlab`): in the repo and in an
# installed wheel alike it sits at <package>/docs/telemetry.md, two folders above this file.
TELEMETRY_DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "telemetry.md"


# --- telemetry names (docs/telemetry.md is the single source) ----------------------------------------
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
            names = re.findall(r"`([^`]+)`", cells[0])
            base = None
            for name in names:
                if name.startswith(".") and base is not None:
                    name = base.rsplit(".", 1)[0] + name
                elif base is None:
                    base = name
                counters.append(_name_pattern(name))
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


