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
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise

from teachraft.tracing.files import record_from_json
from teachraft.tracing.shiviz import ShivizFormatError, parse_shiviz


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


__all__ = [
    "ClockedEvent",
    "Report",
    "check_events",
    "check_shiviz",
    "check_trace_output",
    "validate_shiviz",
    "validate_text",
    "validate_trace_output",
]
