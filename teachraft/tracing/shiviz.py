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
import importlib
import itertools
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


# --- streaming ---------------------------------------------------------------
#
# A multi-GB log cannot be held as one string. When neither regex can match
# more than a few newlines (the default parser regex matches exactly one, the
# delimiter none) and neither looks around, a match that starts on line L ends
# by line L + k, so trying both regexes on a window of k + 1 lines gives
# exactly what ``finditer`` gives on the whole text.

_MAX_WINDOW = 64


@dataclass(slots=True)
class RunStart:
    """The start of a run while streaming (``name`` None: the text before any delimiter)."""

    name: str | None


@dataclass(slots=True)
class SkippedLine:
    """A non-blank line the parser regex does not cover (ShiViz drops it silently)."""

    line: int
    text: str


StreamItem = RunStart | ParsedEvent | SkippedLine


def _max_newlines(items: object, dotall: bool) -> int | None:
    """The most newlines a parsed pattern can match; None if unbounded or unknown."""
    c: Any = importlib.import_module("re._constants")  # the stdlib's own regex parse tree

    total = 0
    count: int | None
    for op, arg in items:  # type: ignore[attr-defined]
        if op in (c.LITERAL, c.LITERAL_IGNORE, c.LITERAL_UNI_IGNORE, c.LITERAL_LOC_IGNORE):
            count = 1 if arg == 10 else 0
        elif op in (c.NOT_LITERAL, c.NOT_LITERAL_IGNORE, c.NOT_LITERAL_UNI_IGNORE):
            count = 0 if arg == 10 else 1
        elif op is c.ANY:
            count = 1 if dotall else 0
        elif op is c.IN:
            count = _set_has_newline(arg)
        elif op is c.AT:
            if arg in (c.AT_BEGINNING_STRING, c.AT_END_STRING):
                return None
            count = 0
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            _, high, sub = arg
            inner = _max_newlines(sub, dotall)
            if inner is None or (inner and high == c.MAXREPEAT):
                return None
            count = inner * high
        elif op is c.SUBPATTERN:
            _, add, remove, sub = arg
            flags = (dotall and not remove & re.DOTALL) or bool(add & re.DOTALL)
            count = _max_newlines(sub, flags)
        elif op is c.ATOMIC_GROUP:
            count = _max_newlines(arg, dotall)
        elif op is c.BRANCH:
            counts = [_max_newlines(sub, dotall) for sub in arg[1]]
            if any(n is None for n in counts):
                return None
            count = max(n for n in counts if n is not None)
        else:  # look-arounds, back-references, conditionals: not streamable
            return None
        if count is None:
            return None
        total += count
    return total


def _set_has_newline(items: list) -> int:
    c: Any = importlib.import_module("re._constants")

    for op, arg in items:
        if op is c.NEGATE:
            return 1
        if (op is c.LITERAL and arg == 10) or (op is c.RANGE and arg[0] <= 10 <= arg[1]):
            return 1
        if op is c.CATEGORY and arg not in (
            c.CATEGORY_DIGIT,
            c.CATEGORY_WORD,
            c.CATEGORY_NOT_SPACE,
            c.CATEGORY_NOT_LINEBREAK,
        ):
            return 1
    return 0


def window_size(regex: re.Pattern[str]) -> int | None:
    """Lines a match of ``regex`` can span (1 for single-line), or None if not streamable.

    It reads the stdlib's own parse tree (``re._parser``, Python 3.11 and
    newer). Where that is missing or changed, the log is not streamed: the
    whole-text parser reads it, with the same result.
    """
    try:
        _parser: Any = importlib.import_module("re._parser")

        parsed = _parser.parse(regex.pattern, regex.flags)
        count = _max_newlines(parsed, bool(parsed.state.flags & re.DOTALL))
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    if count is None or count >= _MAX_WINDOW:
        return None
    return count + 1


def _header(first: str, second: str) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    regex = compile_shiviz_regex(first.rstrip("\r"))
    if "host" not in regex.groupindex or "clock" not in regex.groupindex:
        raise ShivizFormatError("the parser regex on line 1 needs (?<host>...) and (?<clock>...)")
    delimiter = second.rstrip("\r")
    return regex, compile_shiviz_regex(delimiter) if delimiter.strip() else None


def streamable(first: str, second: str) -> bool:
    """True when a log with these two header lines can be parsed by ``iter_shiviz``."""
    regex, delimiter = _header(first, second)
    return window_size(regex) is not None and (
        delimiter is None or window_size(delimiter) is not None
    )


class _Lookahead:
    """Numbered lines (without their newline) with a small look-ahead buffer."""

    def __init__(self, lines: Iterable[str], first: int) -> None:
        self._lines = iter(lines)
        self._buffer: deque[str] = deque()
        self.first = first  # number of buffer[0]

    def peek(self, count: int) -> list[str]:
        while len(self._buffer) < count:
            line = next(self._lines, None)
            if line is None:
                break
            self._buffer.append(line)
        return list(itertools.islice(self._buffer, count))

    def drop(self, count: int) -> None:
        for _ in range(count):
            self._buffer.popleft()
        self.first += count


def iter_shiviz(lines: Iterable[str]) -> Iterator[StreamItem]:
    """Stream a ShiViz log given as lines split on ``\\n`` (the last one may be empty).

    Yields what ``parse_shiviz`` returns, in file order: a RunStart before
    each run's items, then its ParsedEvents and SkippedLines. Raises
    ShivizFormatError if the header is unusable or the regexes can span an
    unbounded number of lines (use ``parse_shiviz`` on the text then).
    """
    source = iter(lines)
    first = next(source, "")
    second = next(source, "")
    regex, delimiter = _header(first, second)
    size = window_size(regex)
    delimiter_size = window_size(delimiter) if delimiter is not None else 0
    if size is None or delimiter_size is None:
        raise ShivizFormatError("the regexes can match across many lines; parse the whole text")
    ahead = _Lookahead(source, 3)
    if delimiter is None:
        yield RunStart(None)
        for item, _ in _stream_segment(ahead, regex, size, None, 0):
            yield item
        return
    # Text before the first delimiter is a run only if it is not blank.
    pending: list[StreamItem] | None = []
    for item, text in _stream_segment(ahead, regex, size, delimiter, delimiter_size):
        if pending is not None and (text or isinstance(item, RunStart)):
            if text:
                yield RunStart(None)
                yield from pending
            pending = None
        if pending is None:
            yield item
        else:
            pending.append(item)
    if pending is not None:
        yield RunStart(None)
        yield from pending


def _stream_segment(
    ahead: _Lookahead,
    regex: re.Pattern[str],
    size: int,
    delimiter: re.Pattern[str] | None,
    delimiter_size: int,
) -> Iterator[tuple[StreamItem, bool]]:
    """Items of every line from ``ahead`` (RunStart where a delimiter matches), each
    with whether the lines it covers hold any text."""
    has_event = "event" in regex.groupindex
    while True:
        window = ahead.peek(max(size, delimiter_size))
        if not window:
            return
        line = ahead.first
        span = _delimiter_span(window, delimiter, delimiter_size)
        if span is not None:
            name, covered = span
            yield RunStart(name), False
            ahead.drop(covered)
            continue
        cut = _cut(ahead, size, delimiter, delimiter_size)
        text = "\n".join(window[:cut]) + ("\n" if cut < len(window[:size]) else "")
        match = regex.match(text)
        if match is None:
            if window[0].strip():
                yield SkippedLine(line, window[0].rstrip("\r")), True
            ahead.drop(1)
            continue
        event_text = match.group("event") if has_event else ""
        covered = text.count("\n", 0, max(match.end() - 1, 0)) + 1
        event = ParsedEvent(line, match.group("host"), match.group("clock"), event_text or "")
        yield event, any(part.strip() for part in window[:covered])
        ahead.drop(covered)


def _delimiter_span(
    window: list[str], delimiter: re.Pattern[str] | None, size: int
) -> tuple[str, int] | None:
    """(run name, lines covered) when a delimiter match starts on the window's first line."""
    if delimiter is None:
        return None
    match = delimiter.match("\n".join(window[:size]))
    if match is None:
        return None
    name = match.groupdict().get("trace") or match.group()
    return name, match.string.count("\n", 0, max(match.end() - 1, 0)) + 1


def _cut(
    ahead: _Lookahead, size: int, delimiter: re.Pattern[str] | None, delimiter_size: int
) -> int:
    """How many of the next ``size`` lines an event match may use (a delimiter ends a run)."""
    if delimiter is None or size == 1:
        return size
    window = ahead.peek(size + delimiter_size)
    for offset in range(1, min(size, len(window))):
        if _delimiter_span(window[offset:], delimiter, delimiter_size) is not None:
            return offset
    return size


def iter_file_lines(path: str | Path) -> Iterator[str]:
    """The lines of a text file split on ``\\n`` like ``str.split``, read lazily.

    Newlines are translated as ``Path.read_text`` does, so line numbers match.
    """
    with open(path, encoding="utf-8") as handle:
        last = "\n"
        for last in handle:
            yield last[:-1] if last.endswith("\n") else last
        if last.endswith("\n"):
            yield ""
