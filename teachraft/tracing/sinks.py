"""Records and the sinks a tracer hands them to.

A ``Record`` is one traced event exactly as the trace files will show it:
who (identity), which trace, the Tag, the Body and the vector clock after the
tick. A tracer calls ``sink.emit(record)`` synchronously, so a sink must be
cheap: ``MemorySink`` appends to a list, ``TracingClient`` appends to a send
buffer, ``TeeSink`` fans out. Keeping the tracer ignorant of where records go
is what lets the same node code trace into a test's list, a notebook's event
table or a tracing server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class Record:
    """One traced event: the five fields of a trace_output.log line."""

    identity: str
    trace_id: int
    tag: str
    body: dict[str, Any]
    clock: dict[str, int]
    step: bool = field(default=False, compare=False, repr=False)
    """True when ``clock`` is the same identity's previous record's clock with only its
    own entry one higher (every event but a receive). It lets the tracing client
    send such a clock as "one step on" and the server skip re-checking it; it is
    not part of the event and two records that differ only in it are equal."""

    @property
    def time(self) -> int:
        """The recording node's own clock value (1, 2, ... per identity)."""
        return self.clock[self.identity]


class Sink(Protocol):
    """Where a tracer's records go; ``emit`` is called on the tracer's thread."""

    def emit(self, record: Record) -> None: ...


class MemorySink:
    """Keeps every record in ``records`` (tests, and the in-process event table)."""

    __slots__ = ("emit", "records")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.emit = self.records.append

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def clear(self) -> None:
        """Forget every record kept so far."""
        self.records.clear()


class TeeSink:
    """Sends each record to several sinks, in order; closing closes them all."""

    __slots__ = ("sinks",)

    def __init__(self, *sinks: Sink) -> None:
        self.sinks: tuple[Sink, ...] = sinks

    def emit(self, record: Record) -> None:
        for sink in self.sinks:
            sink.emit(record)

    def flush(self) -> None:
        for sink in self.sinks:
            flush = getattr(sink, "flush", None)
            if flush is not None:
                flush()

    def close(self) -> None:
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()

    async def aclose(self) -> None:
        for sink in self.sinks:
            aclose = getattr(sink, "aclose", None)
            if aclose is not None:
                await aclose()
            else:
                close = getattr(sink, "close", None)
                if close is not None:
                    close()
