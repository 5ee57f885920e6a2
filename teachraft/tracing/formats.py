"""The two text formats of a trace: trace_output.log lines and ShiViz event pairs.

One function per format, both taking the Body's JSON text so that it is
encoded once and is byte-identical in the two files, as in KVRaft's files:

* trace_output.log: ``{"TracerIdentity":..,"TraceID":..,"Tag":..,"Body":..,
  "VectorClock":{..}}`` with the clock's keys sorted and no spaces;
* shiviz_output.log: ``host {"a":1, "b":2}`` then ``TraceID Tag Body``.

KVRaft's ShiViz clocks list hosts in Go's random map order; teachraft sorts
them (ShiViz does not care, and sorted output is reproducible).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter

from teachraft.tracing.gojson import go_json, go_string
from teachraft.tracing.sinks import Record

SHIVIZ_REGEX = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)"
"""Line 1 of every ShiViz log teachraft writes (ShiViz wraps it in ^...$)."""

DELIMITER_REGEX = r"=== (?<trace>.*) ==="
"""Line 2 of a multi-run ShiViz log; each run starts with ``=== name ===``."""

SHIVIZ_HEADER = SHIVIZ_REGEX + "\n\n"
"""The first two lines of a single-run ShiViz log."""


_CLOCK_FORMATS: dict[tuple[str, ...], tuple[Callable[[dict], tuple], str, str]] = {}


def _clock_formats(keys: tuple[str, ...]) -> tuple[Callable[[dict], tuple], str, str]:
    """(values getter, trace format, ShiViz format) for clocks with these keys."""
    ordered = sorted(keys)
    parts = [go_string(host).replace("%", "%%") + ":%d" for host in ordered]
    if len(ordered) == 1:
        only = ordered[0]

        def getter(clock: dict) -> tuple:
            return (clock[only],)
    else:
        getter = itemgetter(*ordered)  # type: ignore[assignment]  # returns the tuple
    if len(_CLOCK_FORMATS) > 10_000:
        _CLOCK_FORMATS.clear()
    entry = (getter, "{" + ",".join(parts) + "}", "{" + ", ".join(parts) + "}")
    _CLOCK_FORMATS[keys] = entry
    return entry


def clock_texts(clock: dict[str, int]) -> tuple[str, str]:
    """(trace_output.log form, ShiViz form) of a clock, keys sorted.

    The formats are cached per key set, because a tracer's clock keeps its keys
    from one event to the next: formatting is then one %-substitution.
    """
    keys = tuple(clock)
    entry = _CLOCK_FORMATS.get(keys)
    if entry is None:
        entry = _clock_formats(keys)
    getter, trace_format, shiviz_format = entry
    values = getter(clock)
    return trace_format % values, shiviz_format % values


def shiviz_clock(clock: dict[str, int]) -> str:
    """``{"a":1, "b":2}``: a ShiViz clock, keys sorted, joined by ``", "``."""
    return clock_texts(clock)[1]


def body_json(body: dict) -> str:
    """The Body's JSON text; a body JSON cannot hold becomes an Error object."""
    if not body:
        return "{}"
    try:
        return go_json(body)
    except (TypeError, ValueError, RecursionError) as exc:
        return go_json({"Error": f"unencodable body: {exc}"})


_TRACE_LINE = '{"TracerIdentity":%s,"TraceID":%d,"Tag":%s,"Body":%s,"VectorClock":%s}\n'
_SHIVIZ_PAIR = "%s %s\n%d %s %s\n"


def record_lines(record: Record) -> tuple[str, str]:
    """(trace_output.log line, ShiViz line pair) for one record, Body encoded once."""
    body = body_json(record.body)
    trace_clock, shiviz_clock_text = clock_texts(record.clock)
    identity, trace_id, tag = record.identity, record.trace_id, record.tag
    return (
        _TRACE_LINE % (go_string(identity), trace_id, go_string(tag), body, trace_clock),
        _SHIVIZ_PAIR % (identity, shiviz_clock_text, trace_id, tag, body),
    )


def trace_line(record: Record, body: str | None = None) -> str:
    """One trace_output.log line (with its newline) for ``record``."""
    if body is None:
        body = body_json(record.body)
    trace_clock = clock_texts(record.clock)[0]
    quoted = go_string(record.identity), go_string(record.tag)
    return _TRACE_LINE % (quoted[0], record.trace_id, quoted[1], body, trace_clock)


def shiviz_event(record: Record, body: str | None = None) -> str:
    """The two ShiViz lines (with newlines) for ``record``."""
    if body is None:
        body = body_json(record.body)
    shiviz = clock_texts(record.clock)[1]
    return _SHIVIZ_PAIR % (record.identity, shiviz, record.trace_id, record.tag, body)
