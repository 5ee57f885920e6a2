"""ShiViz logs: writing one or several runs, and splitting a log into events.

A ShiViz log starts with its own parser regex (line 1) and an optional
delimiter regex (line 2) that splits the file into several runs, which ShiViz
then shows side by side: that is how a notebook puts "before the fault" and
"after the fault" into one file. Parsing follows ShiViz: the regex is wrapped
in ``^...$`` in multi-line mode and every text it does not match is skipped,
which is why the parser also returns the skipped lines (the validator reports
them; ShiViz would drop those events silently).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from teachraft.tracing.events import EventTable
from teachraft.tracing.formats import DELIMITER_REGEX, SHIVIZ_REGEX, shiviz_event
from teachraft.tracing.sinks import Record

Runs = EventTable | Iterable[Record] | Mapping[str, EventTable | Iterable[Record]]


class ShivizFormatError(ValueError):
    """A ShiViz log whose header regexes cannot be used."""


@dataclass(slots=True)
class ParsedEvent:
    """One event as the regex matched it; ``line`` is the 1-based first line."""

    line: int
    host: str
    clock_text: str
    event_text: str


@dataclass(slots=True)
class ParsedRun:
    """The events of one run, and the non-blank lines the regex skipped."""

    name: str | None
    events: list[ParsedEvent] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


# --- writing -----------------------------------------------------------------


def _records(run: EventTable | Iterable[Record]) -> Iterable[Record]:
    if isinstance(run, EventTable):
        return (event.to_record() for event in run)
    return run


def _check_run_name(name: str, seen: set[str]) -> None:
    if not name or "\n" in name or "\r" in name:
        raise ValueError(f"run name {name!r} must be a non-empty single line")
    if name in seen:
        raise ValueError(f"run name {name!r} is used twice; ShiViz needs unique names")
    seen.add(name)


def shiviz_text(runs: Runs) -> str:
    """The ShiViz log text of one run, or of several named runs with a delimiter."""
    if not isinstance(runs, Mapping):
        parts = [SHIVIZ_REGEX, "\n\n"]
        parts.extend(shiviz_event(record) for record in _records(runs))
        return "".join(parts)
    parts = [SHIVIZ_REGEX, "\n", DELIMITER_REGEX, "\n"]
    seen: set[str] = set()
    for name, run in runs.items():
        _check_run_name(str(name), seen)
        parts.append(f"=== {name} ===\n")
        parts.extend(shiviz_event(record) for record in _records(run))
    return "".join(parts)


def export_shiviz(runs: Runs, path: str | Path) -> Path:
    """Write ``runs`` as a ShiViz log at ``path``; return the path.

    ``runs`` is one EventTable or iterable of Records (a single run), or a
    mapping from run name to those (several runs, with a delimiter line).
    """
    target = Path(path)
    target.write_text(shiviz_text(runs), encoding="utf-8", newline="\n")
    return target


# --- parsing -----------------------------------------------------------------

_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")


def compile_shiviz_regex(pattern: str) -> re.Pattern[str]:
    """Compile a ShiViz (JavaScript) regex the way ShiViz applies it: ``^...$``, multi-line."""
    try:
        return re.compile("^(?:" + _NAMED_GROUP.sub("(?P<", pattern) + ")$", re.MULTILINE)
    except re.error as exc:
        raise ShivizFormatError(f"the regex {pattern!r} is not valid: {exc}") from None


def parse_shiviz(text: str) -> list[ParsedRun]:
    """Split ShiViz log text into runs of matched events (see the module docstring)."""
    first, _, rest = text.partition("\n")
    second, _, _ = rest.partition("\n")
    regex = compile_shiviz_regex(first.rstrip("\r"))
    if "host" not in regex.groupindex or "clock" not in regex.groupindex:
        raise ShivizFormatError("the parser regex on line 1 needs (?<host>...) and (?<clock>...)")
    starts = _line_starts(text)
    body_start = min(len(first) + len(second) + 2, len(text))
    delimiter = second.rstrip("\r")
    segments = _segments(text, body_start, delimiter) if delimiter.strip() else None
    if segments is None:
        return [_parse_segment(text, body_start, len(text), None, regex, starts)]
    return [_parse_segment(text, a, b, name, regex, starts) for name, a, b in segments]


def _line_starts(text: str) -> list[int]:
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return starts


def _segments(text: str, start: int, delimiter: str) -> list[tuple[str | None, int, int]]:
    """(run name, start, end) per run; text before the first delimiter is run None."""
    regex = compile_shiviz_regex(delimiter)
    matches = list(regex.finditer(text, start))
    segments: list[tuple[str | None, int, int]] = []
    if not matches or text[start : matches[0].start()].strip():
        segments.append((None, start, matches[0].start() if matches else len(text)))
    for i, match in enumerate(matches):
        name = match.groupdict().get("trace") or match.group()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        segments.append((name, match.end(), end))
    return segments


def _parse_segment(
    text: str,
    start: int,
    end: int,
    name: str | None,
    regex: re.Pattern[str],
    starts: list[int],
) -> ParsedRun:
    run = ParsedRun(name)
    covered: set[int] = set()
    has_event = "event" in regex.groupindex
    for match in regex.finditer(text, start, end):
        line = bisect.bisect_right(starts, match.start())
        last = bisect.bisect_right(starts, max(match.end() - 1, match.start()))
        covered.update(range(line, last + 1))
        event_text = match.group("event") if has_event else ""
        run.events.append(
            ParsedEvent(line, match.group("host"), match.group("clock"), event_text or "")
        )
    first_line = bisect.bisect_right(starts, start)
    last_line = bisect.bisect_right(starts, max(end - 1, start))
    for number in range(first_line, last_line + 1):
        if number in covered:
            continue
        line_text = text[starts[number - 1] : starts[number] - 1 if number < len(starts) else None]
        if line_text.strip() and starts[number - 1] >= start:
            run.skipped.append((number, line_text.rstrip("\r")))
    return run


def split_event_text(event_text: str) -> tuple[int | None, str, str]:
    """Split ``TraceID Tag Body`` into (trace id or None, tag, body text)."""
    first, _, rest = event_text.partition(" ")
    tag, _, body = rest.partition(" ")
    if first.isdigit():
        return int(first), tag, body
    return None, event_text, ""
