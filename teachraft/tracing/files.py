"""Loading trace files into EventTables: trace_output.log and ShiViz logs.

Both of KVRaft's file kinds load, from the original's runs and from
teachraft's, so that every figure can be drawn from a file a student brings.
``load_trace`` sniffs the kind: trace_output.log lines start with ``{``, a
ShiViz log starts with its regex.

Every loader streams the file and takes a window of events, so that a figure
of a multi-GB log needs memory for its window only: ``start``/``stop`` keep the
events with those indexes (per run, as in ``list[start:stop]`` with
non-negative bounds), ``last`` keeps the last N.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TypeVar

from teachraft.tracing.events import EventTable
from teachraft.tracing.shiviz import (
    ParsedEvent,
    ParsedRun,
    RunStart,
    ShivizFormatError,
    iter_file_lines,
    iter_shiviz,
    parse_shiviz,
    split_event_text,
)
from teachraft.tracing.sinks import Record

_KEYS = ("TracerIdentity", "TraceID", "Tag", "Body", "VectorClock")


class TraceFileError(ValueError):
    """A trace file that cannot be read as either format."""


def record_from_json(line: str) -> Record:
    """Parse one trace_output.log line into a Record (ValueError if malformed)."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or any(key not in obj for key in _KEYS):
        raise ValueError(f"a trace line needs the keys {', '.join(_KEYS)}")
    identity, trace_id, tag, body, clock = (obj[key] for key in _KEYS)
    if not isinstance(identity, str) or not isinstance(tag, str):
        raise ValueError("TracerIdentity and Tag must be strings")
    if type(trace_id) is not int or not isinstance(body, dict) or not isinstance(clock, dict):
        raise ValueError("TraceID must be an integer, Body and VectorClock objects")
    return Record(identity, trace_id, tag, body, clock)


def records_from_trace_output(text: str, source: str = "trace") -> list[Record]:
    """Every record of trace_output.log text; TraceFileError names the bad line."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(record_from_json(line))
        except ValueError as exc:
            raise TraceFileError(f"{source}:{number}: {exc}") from None
    return records


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """Which events of a run to keep: indexes ``start <= i < stop``, then the ``last`` N."""

    start: int = 0
    stop: int | None = None
    last: int | None = None

    def __post_init__(self) -> None:
        for name in ("start", "stop", "last"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")

    def apply(self, items: Iterable[T]) -> list[T]:
        """The items of the window, reading ``items`` once and holding only the window."""
        picked = islice(items, self.start, self.stop)
        if self.last is None:
            return list(picked)
        return list(deque(picked, maxlen=self.last))


# str.splitlines() also splits on these; lines are numbered as it numbers them.
_OTHER_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _split_lines(path: Path) -> Iterator[str]:
    """The file's lines as ``str.splitlines`` gives them, read lazily."""
    for line in iter_file_lines(path):
        if _OTHER_LINE_BREAKS.search(line):
            yield from (line + "\n").splitlines()
        else:
            yield line


def _iter_trace_output(path: Path) -> Iterator[Record]:
    for number, line in enumerate(_split_lines(path), 1):
        if not line.strip():
            continue
        try:
            yield record_from_json(line)
        except ValueError as exc:
            raise TraceFileError(f"{path}:{number}: {exc}") from None


def load_trace_output(
    path: str | Path, *, start: int = 0, stop: int | None = None, last: int | None = None
) -> EventTable:
    """Load a trace_output.log (JSON lines) into an EventTable, streaming the file.

    The whole file is checked line by line; only the window's records are kept.
    """
    window = Window(start, stop, last)
    source = Path(path)
    records = _iter_trace_output(source)
    kept = window.apply(records)
    for _ in records:  # a malformed line after the window is still reported
        pass
    return EventTable(kept)


def table_from_run(run: ParsedRun, source: str = "shiviz") -> EventTable:
    """An EventTable from one parsed ShiViz run (lines ShiViz skips are skipped)."""
    table = EventTable()
    for event in run.events:
        try:
            clock = json.loads(event.clock_text)
        except ValueError as exc:
            raise TraceFileError(f"{source}:{event.line}: invalid vector clock: {exc}") from None
        if not isinstance(clock, dict):
            raise TraceFileError(f"{source}:{event.line}: the vector clock is not an object")
        trace_id, tag, body_text = split_event_text(event.event_text)
        body = _body(body_text)
        table.append(Record(event.host, trace_id or 0, tag, body, clock))
    return table


def _body(text: str) -> dict:
    if not text:
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        return {"Text": text}
    return body if isinstance(body, dict) else {"Value": body}


def _streamed_runs(source: Path, window: Window) -> Iterator[ParsedRun]:
    """Each run with only its window's events; the whole text if the regexes need it."""
    try:
        items = iter_shiviz(iter_file_lines(source))
        first = next(items)
    except ShivizFormatError:
        for run in parse_shiviz(source.read_text(encoding="utf-8")):
            yield ParsedRun(run.name, window.apply(run.events))
        return
    pending: RunStart | None = first if isinstance(first, RunStart) else None
    while pending is not None:
        name, pending = pending.name, None

        def events() -> Iterator[ParsedEvent]:
            nonlocal pending
            for item in items:
                if isinstance(item, RunStart):
                    pending = item
                    return
                if isinstance(item, ParsedEvent):
                    yield item

        run_events = events()
        kept = window.apply(run_events)
        for _ in run_events:  # read to the next run
            pass
        yield ParsedRun(name, kept)


def load_shiviz(
    path: str | Path, *, start: int = 0, stop: int | None = None, last: int | None = None
) -> dict[str, EventTable]:
    """Load a ShiViz log: run name -> EventTable (one run named after the file).

    The file is streamed; each run keeps only the window's events.
    """
    source = Path(path)
    tables: dict[str, EventTable] = {}
    for run in _streamed_runs(source, Window(start, stop, last)):
        name = run.name if run.name is not None else source.stem
        while name in tables:
            name += "'"
        tables[name] = table_from_run(run, str(source))
    return tables


def is_trace_output(path: str | Path) -> bool:
    """True when the file looks like trace_output.log (first non-blank char ``{``)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def load_runs(
    path: str | Path, *, start: int = 0, stop: int | None = None, last: int | None = None
) -> dict[str, EventTable]:
    """Load either kind of trace file as run name -> EventTable (windowed per run)."""
    if is_trace_output(path):
        return {Path(path).stem: load_trace_output(path, start=start, stop=stop, last=last)}
    return load_shiviz(path, start=start, stop=stop, last=last)


def load_trace(
    path: str | Path, *, start: int = 0, stop: int | None = None, last: int | None = None
) -> EventTable:
    """Load a trace_output.log or a single-run ShiViz log into one EventTable.

    ``start``/``stop``/``last`` pick a window of events (see the module
    docstring), e.g. ``last=5000`` for a figure of the end of a long run.
    """
    runs = load_runs(path, start=start, stop=stop, last=last)
    if len(runs) != 1:
        names = ", ".join(runs)
        raise TraceFileError(f"{path} holds {len(runs)} runs ({names}); use load_shiviz")
    return next(iter(runs.values()))
