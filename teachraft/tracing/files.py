"""Loading trace files into EventTables: trace_output.log and ShiViz logs.

Both of KVRaft's file kinds load, from the original's runs and from
teachraft's, so that every figure can be drawn from a file a student brings.
``load_trace`` sniffs the kind: trace_output.log lines start with ``{``, a
ShiViz log starts with its regex.
"""

from __future__ import annotations

import json
from pathlib import Path

from teachraft.tracing.events import EventTable
from teachraft.tracing.shiviz import ParsedRun, parse_shiviz, split_event_text
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


def load_trace_output(path: str | Path) -> EventTable:
    """Load a trace_output.log (JSON lines) into an EventTable."""
    source = Path(path)
    return EventTable(records_from_trace_output(source.read_text(encoding="utf-8"), str(source)))


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


def load_shiviz(path: str | Path) -> dict[str, EventTable]:
    """Load a ShiViz log: run name -> EventTable (one run named after the file)."""
    source = Path(path)
    runs = parse_shiviz(source.read_text(encoding="utf-8"))
    tables: dict[str, EventTable] = {}
    for run in runs:
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


def load_runs(path: str | Path) -> dict[str, EventTable]:
    """Load either kind of trace file as run name -> EventTable."""
    if is_trace_output(path):
        return {Path(path).stem: load_trace_output(path)}
    return load_shiviz(path)


def load_trace(path: str | Path) -> EventTable:
    """Load a trace_output.log or a single-run ShiViz log into one EventTable."""
    runs = load_runs(path)
    if len(runs) != 1:
        names = ", ".join(runs)
        raise TraceFileError(f"{path} holds {len(runs)} runs ({names}); use load_shiviz")
    return next(iter(runs.values()))
