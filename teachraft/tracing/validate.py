"""Checking a trace before a student opens it: every ShiViz rule, plus two of ours.

ShiViz refuses a log, or silently drops events, for reasons a student cannot
see from the diagram. This module applies the same rules and says what is
wrong in ShiViz's own words, with the line number and the host:

* lines the parser regex does not match (ShiViz skips them silently);
* a clock that is not a JSON object of counts, or lacks its own host;
* per host, own values that do not run exactly 1, 2, ..., n;
* an entry for a host not in the run, or beyond that host's event count.

teachraft adds: no clock entry decreases along a host, every event's clock
is at least the clock of each event it claims to know (else ShiViz's
"impermissible vector clock"), and no causal cycle.

``validate_file`` reads a file of any size in bounded memory: a first pass
streams it, keeping per host only its last clock and a bounded cache of
recent clocks, and proves the log valid when every event comes after the
events it knows (as teachraft and KVRaft write them); a second pass checks
the few events that knew an event older than the cache. Lines that hold no
usable event, such as the last line of a log cut off by a crash, are
reported by the streaming pass too. Only when that pass
finds a problem, or a log it cannot decide that way, does the file get read
whole and checked by the rules above, so every message stays the same.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from teachraft.tracing.files import record_from_json
from teachraft.tracing.shiviz import (
    ParsedEvent,
    RunStart,
    ShivizFormatError,
    iter_file_lines,
    iter_shiviz,
    parse_shiviz,
)


@dataclass(slots=True)
class ClockedEvent:
    """What the checks need of an event: where it is, whose it is, its clock."""

    line: int
    host: str
    clock: dict[str, int]

    @property
    def time(self) -> int:
        return self.clock[self.host]


@dataclass(slots=True)
class Report:
    """Messages (empty when valid) and the size of what was checked."""

    messages: list[str] = field(default_factory=list)
    events: int = 0
    hosts: int = 0

    @property
    def ok(self) -> bool:
        return not self.messages


def validate_shiviz(text: str) -> list[str]:
    """Every problem of a ShiViz log text (an empty list when ShiViz will accept it)."""
    return check_shiviz(text).messages


def check_shiviz(text: str) -> Report:
    """Validate ShiViz log text; the report also counts events and hosts."""
    report = Report()
    try:
        runs = parse_shiviz(text)
    except ShivizFormatError as exc:
        report.messages.append(f"line 1: {exc}")
        return report
    named = len(runs) > 1 or runs[0].name is not None
    for run in runs:
        prefix = f'run "{run.name or ""}": ' if named else ""
        messages = [
            f"line {n}: does not match the parser regex; ShiViz skips it silently: {t[:80]!r}"
            for n, t in run.skipped
        ]
        events = _clocked(run.events, messages)
        messages += check_events(events)
        report.messages += [prefix + message for message in messages]
        report.events += len(events)
        report.hosts += len({event.host for event in events})
    return report


def validate_trace_output(text: str) -> list[str]:
    """Every problem of trace_output.log text, by the same rules as ShiViz logs."""
    return check_trace_output(text).messages


def check_trace_output(text: str) -> Report:
    """Validate trace_output.log text; the report also counts events and hosts."""
    report = Report()
    events: list[ClockedEvent] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = record_from_json(line)
        except ValueError as exc:
            report.messages.append(f"line {number}: not a trace record: {exc}")
            continue
        event = _clocked_one(number, record.identity, record.clock, report.messages)
        if event is not None:
            events.append(event)
    report.messages += check_events(events)
    report.events = len(events)
    report.hosts = len({event.host for event in events})
    return report


def _clocked(parsed: list, messages: list[str]) -> list[ClockedEvent]:
    events = []
    for item in parsed:
        try:
            clock = json.loads(item.clock_text)
        except ValueError as exc:
            messages.append(f'line {item.line}: host "{item.host}": invalid vector clock: {exc}')
            continue
        event = _clocked_one(item.line, item.host, clock, messages)
        if event is not None:
            events.append(event)
    return events


def _clocked_one(line: int, host: str, clock: object, messages: list[str]) -> ClockedEvent | None:
    if not isinstance(clock, dict) or not all(
        type(value) is int and value >= 0 for value in clock.values()
    ):
        messages.append(f'line {line}: host "{host}": the vector clock must map hosts to counts')
        return None
    if host not in clock:
        messages.append(f'line {line}: Local host "{host}" is missing from timestamp')
        return None
    return ClockedEvent(line, host, {k: v for k, v in clock.items() if v != 0})


def check_events(events: list[ClockedEvent]) -> list[str]:
    """ShiViz's per-host and cross-host rules, then teachraft's (see module docstring)."""
    if not events:
        return ["no events: ShiViz would show an empty diagram"]
    per_host = _per_host(events)
    messages = _check_own_times(per_host)
    messages += _check_entries(events, per_host)
    if messages:
        return messages
    messages = _check_monotone(per_host)
    messages += _check_consistent(events, per_host)
    return messages or _check_acyclic(events, per_host)


def _per_host(events: list[ClockedEvent]) -> dict[str, list[ClockedEvent]]:
    per_host: dict[str, list[ClockedEvent]] = {}
    for event in events:
        per_host.setdefault(event.host, []).append(event)
    for host_events in per_host.values():
        host_events.sort(key=lambda event: event.time)
    return per_host


def _check_own_times(per_host: dict[str, list[ClockedEvent]]) -> list[str]:
    messages = []
    for host, host_events in per_host.items():
        first = host_events[0]
        if first.time != 1:
            messages.append(
                f"line {first.line}: Logical clock values for each host must start at 1. "
                f'The clock value for the first event for host "{host}" is {first.time}.'
            )
            continue
        for i in range(1, len(host_events)):
            before, after = host_events[i - 1], host_events[i]
            if after.time != i + 1:
                messages.append(
                    f"line {after.line}: Clock values for a host must increase monotonically "
                    f'by 1. The clock for host "{host}" goes from {before.time} to {after.time} '
                    f"(lines {before.line} and {after.line})."
                )
                break
    return messages


def _check_entries(
    events: list[ClockedEvent], per_host: dict[str, list[ClockedEvent]]
) -> list[str]:
    messages = []
    for event in events:
        for other, value in event.clock.items():
            if other == event.host:
                continue
            if other not in per_host:
                messages.append(
                    f"line {event.line}: The following event's vector clock contains an entry "
                    f'for an unrecognized host "{other}". (event of host "{event.host}")'
                )
            elif value > len(per_host[other]):
                messages.append(
                    f"line {event.line}: The following event's vector clock contains an invalid "
                    f'clock value {value} for host "{other}". (event of host "{event.host}"; '
                    f'"{other}" has {len(per_host[other])} events)'
                )
    return messages


def _check_monotone(per_host: dict[str, list[ClockedEvent]]) -> list[str]:
    messages = []
    for host, host_events in per_host.items():
        for before, after in pairwise(host_events):
            for other, value in before.clock.items():
                if after.clock.get(other, 0) < value:
                    messages.append(
                        f'line {after.line}: host "{host}": the entry for "{other}" decreases '
                        f"from {value} to {after.clock.get(other, 0)} (a clock never goes back)"
                    )
    return messages


def _check_consistent(
    events: list[ClockedEvent], per_host: dict[str, list[ClockedEvent]]
) -> list[str]:
    messages = []
    for event in events:
        for other, value in event.clock.items():
            if other == event.host:
                continue
            known = per_host[other][value - 1].clock
            late = [k for k, v in known.items() if v > event.clock.get(k, 0)]
            if late:
                messages.append(
                    f'line {event.line}: host "{event.host}": The following event has an '
                    f'impermissible vector clock: it knows "{other}":{value} but not what that '
                    f'event knew of "{late[0]}" ({known[late[0]]} > {event.clock.get(late[0], 0)})'
                )
    return messages


def _check_acyclic(
    events: list[ClockedEvent], per_host: dict[str, list[ClockedEvent]]
) -> list[str]:
    """Kahn's algorithm over process order and the edges each clock claims."""
    successors: dict[tuple[str, int], list[tuple[str, int]]] = {}
    indegree: dict[tuple[str, int], int] = {}
    for event in events:
        node = (event.host, event.time)
        preds = [(event.host, event.time - 1)] if event.time > 1 else []
        preds += [(k, v) for k, v in event.clock.items() if k != event.host]
        indegree[node] = len(preds)
        for pred in preds:
            successors.setdefault(pred, []).append(node)
    ready = deque(node for node, degree in indegree.items() if degree == 0)
    done = 0
    while ready:
        node = ready.popleft()
        done += 1
        for succ in successors.get(node, ()):
            indegree[succ] -= 1
            if indegree[succ] == 0:
                ready.append(succ)
    if done == len(indegree):
        return []
    stuck = min(
        (per_host[host][time - 1] for (host, time), d in indegree.items() if d > 0),
        key=lambda event: event.line,
    )
    return [
        f'line {stuck.line}: host "{stuck.host}": the log is intransitive: its clocks form a '
        "causal cycle (x before y, y before z, z before x)"
    ]


def validate_text(text: str) -> Report:
    """Validate either kind of trace text (trace_output.log if it starts with ``{``)."""
    if text.lstrip().startswith("{"):
        return check_trace_output(text)
    return check_shiviz(text)


# --- streaming ----------------------------------------------------------------

RECENT_CLOCKS = 4096
"""Clocks kept per host for the "impermissible vector clock" rule; older ones are
checked by a second pass over the file."""

# str.splitlines() also splits on these; a trace_output.log line holding one
# would be numbered differently by the whole-text check.
_OTHER_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")

Flat = tuple  # a clock as (host, count, host, count, ...), a third of a dict's size


class _Undecided(Exception):
    """The streaming pass cannot prove the log valid; the whole-text check decides."""


class _StreamRun:
    """One run's state while streaming: O(hosts * RECENT_CLOCKS + deferred), not O(events).

    Events must come after every event they know, each host's in order
    1, 2, 3, ...: then the file order is a causal order (no cycle) and each
    rule can be checked when the event is read.
    """

    def __init__(self, recent: int, name: str | None = None) -> None:
        self.name = name
        self.skipped: list[str] = []  # lines ShiViz skips: reported first
        self.dropped: list[str] = []  # events without a usable clock, in line order
        self.size = recent
        self.last: dict[str, tuple[int, dict[str, int]]] = {}
        self.recent: dict[str, deque[Flat]] = {}
        self.names: dict[str, str] = {}
        self.deferred: dict[tuple[str, int], list[dict[str, int]]] = {}
        self.events = 0

    def add(self, line: int, host: str, clock: object) -> None:
        """Check one event against every rule, or raise _Undecided.

        An event without a usable clock is left out with its message, as the
        whole-text check does; if its host has later events, their own times
        skip one and the whole-text check words that.
        """
        event = _clocked_one(line, host, clock, self.dropped)
        if event is None:
            return
        clock = {self.names.setdefault(k, k): v for k, v in event.clock.items()}
        time = clock.get(host, 0)
        previous = self.last.get(host)
        before = previous[1] if previous else {}
        if time != (previous[0] + 1 if previous else 1):
            raise _Undecided  # out of order or a gap: the sorted rules decide
        if any(clock.get(other, 0) < value for other, value in before.items()):
            raise _Undecided  # a clock goes back
        for other, value in clock.items():
            if other != host and before.get(other) != value:
                self._check_known(other, value, clock)
        host = self.names.setdefault(host, host)
        self.last[host] = (time, clock)
        recent = self.recent.get(host)
        if recent is None:
            recent = self.recent[host] = deque(maxlen=self.size)
        recent.append(tuple(x for item in clock.items() for x in item))
        self.events += 1

    def _check_known(self, other: str, value: int, clock: dict[str, int]) -> None:
        """The event knows (other, value): that event came before, and its clock is <= ours.

        An entry unchanged since the host's previous event needs no check: that
        event passed it and this clock is no smaller.
        """
        seen = self.last.get(other)
        if seen is None or seen[0] < value:
            raise _Undecided  # unknown host, or it knows an event later in the file
        back = seen[0] - value
        recent = self.recent[other]
        if back >= len(recent):
            self.deferred.setdefault((other, value), []).append(clock)
            return
        _check_flat(recent[-1 - back], clock)

    def check_deferred(self, host: str, time: int, clock_of: object) -> None:
        """Second pass: check the clocks that knew this old event."""
        waiting = self.deferred.pop((host, time), None)
        if waiting is None:
            return
        known: Any = json.loads(clock_of) if isinstance(clock_of, str) else clock_of
        flat = tuple(x for k, v in known.items() if v != 0 for x in (k, v))
        for clock in waiting:
            _check_flat(flat, clock)


def _check_flat(known: Flat, clock: dict[str, int]) -> None:
    for i in range(0, len(known), 2):
        if known[i + 1] > clock.get(known[i], 0):
            raise _Undecided  # impermissible: the whole-text check words it


# What the passes read: ("run", name, None), ("event", line, (host, clock)),
# ("problem", message, None) for a line that holds no event.
Item = tuple[str, Any, Any]


def _shiviz_items(lines: Iterable[str]) -> Iterator[Item]:
    for item in iter_shiviz(lines):
        if isinstance(item, RunStart):
            yield "run", item.name, None
        elif isinstance(item, ParsedEvent):
            yield "event", item.line, (item.host, item.clock_text)
        else:
            text = item.text[:80]
            message = f"line {item.line}: does not match the parser regex; "
            yield "problem", f"{message}ShiViz skips it silently: {text!r}", None


def _trace_output_items(lines: Iterable[str]) -> Iterator[Item]:
    yield "run", None, None
    for number, line in enumerate(lines, 1):
        if _OTHER_LINE_BREAKS.search(line):
            raise _Undecided  # numbered differently by str.splitlines
        if not line.strip():
            continue
        try:
            record = record_from_json(line)
        except ValueError as exc:
            yield "problem", f"line {number}: not a trace record: {exc}", None
            continue
        yield "event", number, (record.identity, record.clock)


def _first_pass(items: Iterator[Item], recent: int, shiviz: bool) -> list[_StreamRun]:
    runs: list[_StreamRun] = []
    for kind, first, second in items:
        if kind == "run":
            runs.append(_StreamRun(recent, first))
            continue
        run = runs[-1]
        if kind == "problem":
            (run.skipped if shiviz else run.dropped).append(first)
            continue
        host, clock = second
        if isinstance(clock, str):
            try:
                clock = json.loads(clock)
            except ValueError as exc:
                run.dropped.append(f'line {first}: host "{host}": invalid vector clock: {exc}')
                continue
        run.add(first, host, clock)
    if any(not run.events or (run.deferred and run.dropped) for run in runs):
        raise _Undecided  # "no events", or own times the second pass cannot count
    return runs


def _second_pass(runs: list[_StreamRun], items: Iterator[Item]) -> None:
    """Check the clocks that knew events too old for the cache, counting own times."""
    index = -1
    times: dict[str, int] = {}
    for kind, _, second in items:
        if kind == "run":
            index, times = index + 1, {}
        if kind != "event" or not runs[index].deferred:
            continue
        host, clock = second
        time = times[host] = times.get(host, 0) + 1
        runs[index].check_deferred(host, time, clock)


def _report(runs: list[_StreamRun]) -> Report:
    """The whole-text check's report when the only problems are lines without events."""
    report = Report()
    named = len(runs) > 1 or runs[0].name is not None
    for run in runs:
        prefix = f'run "{run.name or ""}": ' if named else ""
        report.messages += [prefix + message for message in run.skipped + run.dropped]
        report.events += run.events
        report.hosts += len(run.last)
    return report


def _is_trace_output(lines: Iterator[str]) -> tuple[bool, list[str]]:
    """Sniff like ``validate_text``; return the lines read so far too."""
    head = []
    for line in lines:
        head.append(line)
        if line.strip():
            return line.lstrip().startswith("{"), head
    return False, head


def stream_check(path: str | Path, recent: int = RECENT_CLOCKS) -> Report | None:
    """The report of a file, read in bounded memory; None if the pass cannot tell.

    The pass words the problems of lines that hold no usable event (a log cut
    off by a crash ends with one). None means another problem, or an event
    that knows an event later in the file or out of its host's order:
    ``validate_text`` decides then.
    ``recent`` is how many clocks per host the first pass keeps; events that
    know older ones are checked by a second pass.
    Raises OSError or UnicodeDecodeError if the file cannot be read.
    """
    lines = iter_file_lines(path)
    try:
        trace_output, head = _is_trace_output(lines)
        items = _trace_output_items if trace_output else _shiviz_items
        runs = _first_pass(items(_chain(head, lines)), recent, not trace_output)
        if any(run.deferred for run in runs):
            _second_pass(runs, items(iter_file_lines(path)))
    except (_Undecided, ShivizFormatError):
        return None
    finally:
        lines.close()  # type: ignore[attr-defined]
    return _report(runs)


def validate_file(path: str | Path) -> Report:
    """Validate a trace file of any size (see the module docstring).

    The report is exactly ``validate_text`` of the file's text. Raises OSError
    or UnicodeDecodeError if the file cannot be read.
    """
    report = stream_check(path)
    if report is not None:
        return report
    return validate_text(Path(path).read_text(encoding="utf-8"))


def _chain(head: list[str], rest: Iterator[str]) -> Iterator[str]:
    yield from head
    yield from rest


__all__ = [
    "ClockedEvent",
    "Report",
    "check_events",
    "check_shiviz",
    "check_trace_output",
    "stream_check",
    "validate_file",
    "validate_shiviz",
    "validate_text",
    "validate_trace_output",
]
