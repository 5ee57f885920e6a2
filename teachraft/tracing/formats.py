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

from binascii import b2a_base64
from collections.abc import Callable, Iterable
from operator import itemgetter

from teachraft.tracing.gojson import QUOTED, go_json, go_string
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


class ClockTextCache:
    """``clock_texts`` for a stream of records, a step at a time.

    A local event's clock is its host's previous clock with the own entry +1
    (``Record.step``), so its two texts are the previous ones with one number
    changed: the text around the own entry is kept per host and reused after
    checking (one dict comparison) that the clock is exactly one step on.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, tuple[dict[str, int], str, str, str, str]] = {}

    def texts(self, identity: str, clock: dict[str, int], step: bool) -> tuple[str, str]:
        """(trace_output.log form, ShiViz form) of ``clock``, a record of ``identity``."""
        last = self._last.get(identity)
        time = clock.get(identity)
        if step and last is not None and time is not None:
            previous = last[0]
            if previous[identity] == time - 1 and clock == {**previous, identity: time}:
                own = str(time)
                self._last[identity] = (clock, *last[1:])
                return last[1] + own + last[2], last[3] + own + last[4]
        trace, shiviz = clock_texts(clock)
        if time is not None:
            self._remember(identity, clock, time, trace, shiviz)
        return trace, shiviz

    def _remember(
        self, identity: str, clock: dict[str, int], time: int, trace: str, shiviz: str
    ) -> None:
        key = go_string(identity) + ":"
        own = len(str(time))
        at, at_shiviz = trace.find(key), shiviz.find(key)
        if at < 0 or at != trace.rfind(key) or at_shiviz != shiviz.rfind(key):
            self._last.pop(identity, None)  # the own entry is not found once: no reuse
            return
        at, at_shiviz = at + len(key), at_shiviz + len(key)
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[identity] = (
            clock,
            trace[:at],
            trace[at + own :],
            shiviz[:at_shiviz],
            shiviz[at_shiviz + own :],
        )


def shiviz_clock(clock: dict[str, int]) -> str:
    """``{"a":1, "b":2}``: a ShiViz clock, keys sorted, joined by ``", "``."""
    return clock_texts(clock)[1]


def body_json(body: dict) -> str:
    """The Body's JSON text; a body JSON cannot hold becomes an Error object."""
    if not body:
        return "{}"
    if len(body) == 1:  # a token event's {"Token": bytes}: two in five records
        token = body.get("Token")
        if type(token) is bytes:
            return '{"Token":"' + b2a_base64(token, newline=False).decode("ascii") + '"}'
    try:
        return go_json(body)
    except (TypeError, ValueError, RecursionError) as exc:
        return go_json({"Error": f"unencodable body: {exc}"})


_TRACE_LINE = '{"TracerIdentity":%s,"TraceID":%d,"Tag":%s,"Body":%s,"VectorClock":%s}\n'
_SHIVIZ_PAIR = "%s %s\n%d %s %s\n"


def record_lines(record: Record, clocks: ClockTextCache | None = None) -> tuple[str, str]:
    """(trace_output.log line, ShiViz line pair) for one record, Body encoded once."""
    body = body_json(record.body)
    if clocks is None:
        trace_clock, shiviz_clock_text = clock_texts(record.clock)
    else:
        trace_clock, shiviz_clock_text = clocks.texts(record.identity, record.clock, record.step)
    identity, trace_id, tag = record.identity, record.trace_id, record.tag
    return (
        _TRACE_LINE % (go_string(identity), trace_id, go_string(tag), body, trace_clock),
        _SHIVIZ_PAIR % (identity, shiviz_clock_text, trace_id, tag, body),
    )


def format_records(
    records: Iterable[Record], clocks: ClockTextCache, trace: list[str], shiviz: list[str]
) -> int:
    """``record_lines`` for many records, appended to ``trace`` and ``shiviz``; how many.

    The tracing server's hot path: the same texts as ``record_lines`` gives,
    with its calls for the common cases (empty and token bodies, quoted
    names) done inline.
    """
    add_trace, add_shiviz = trace.append, shiviz.append
    texts = clocks.texts
    quoted = QUOTED.get
    count = 0
    for record in records:
        body = record.body
        if not body:
            body_text = "{}"
        elif len(body) == 1 and type(token := body.get("Token")) is bytes:
            body_text = '{"Token":"' + b2a_base64(token, newline=False).decode("ascii") + '"}'
        else:
            body_text = body_json(body)
        identity, trace_id, tag = record.identity, record.trace_id, record.tag
        trace_clock, shiviz_clock_text = texts(identity, record.clock, record.step)
        add_trace(
            _TRACE_LINE
            % (
                quoted(identity) or go_string(identity),
                trace_id,
                quoted(tag) or go_string(tag),
                body_text,
                trace_clock,
            )
        )
        add_shiviz(_SHIVIZ_PAIR % (identity, shiviz_clock_text, trace_id, tag, body_text))
        count += 1
    return count


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
