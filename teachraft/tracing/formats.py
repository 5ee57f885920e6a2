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

from teachraft.tracing.gojson import go_json, go_string
from teachraft.tracing.sinks import Record

SHIVIZ_REGEX = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)"
"""Line 1 of every ShiViz log teachraft writes (ShiViz wraps it in ^...$)."""

DELIMITER_REGEX = r"=== (?<trace>.*) ==="
"""Line 2 of a multi-run ShiViz log; each run starts with ``=== name ===``."""

SHIVIZ_HEADER = SHIVIZ_REGEX + "\n\n"
"""The first two lines of a single-run ShiViz log."""


def clock_json(clock: dict[str, int]) -> str:
    """``{"a":1,"b":2}``: trace_output.log's VectorClock, keys sorted."""
    parts = [f"{go_string(host)}:{value}" for host, value in sorted(clock.items())]
    return "{" + ",".join(parts) + "}"


def shiviz_clock(clock: dict[str, int]) -> str:
    """``{"a":1, "b":2}``: a ShiViz clock, keys sorted, joined by ``", "``."""
    parts = [f"{go_string(host)}:{value}" for host, value in sorted(clock.items())]
    return "{" + ", ".join(parts) + "}"


def body_json(body: dict) -> str:
    """The Body's JSON text; a body JSON cannot hold becomes an Error object."""
    try:
        return go_json(body)
    except (TypeError, ValueError) as exc:
        return go_json({"Error": f"unencodable body: {exc}"})


def trace_line(record: Record, body: str | None = None) -> str:
    """One trace_output.log line (with its newline) for ``record``."""
    if body is None:
        body = body_json(record.body)
    return (
        f'{{"TracerIdentity":{go_string(record.identity)},"TraceID":{record.trace_id},'
        f'"Tag":{go_string(record.tag)},"Body":{body},"VectorClock":{clock_json(record.clock)}}}\n'
    )


def shiviz_event(record: Record, body: str | None = None) -> str:
    """The two ShiViz lines (with newlines) for ``record``."""
    if body is None:
        body = body_json(record.body)
    return (
        f"{record.identity} {shiviz_clock(record.clock)}\n{record.trace_id} {record.tag} {body}\n"
    )
