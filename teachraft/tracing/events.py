"""The event table: every traced event of a run, indexed for figures and checks.

Figures, widgets and checkers read traces only through this table (the mesa
habit: views read recorded data). An ``Event`` is a record plus its position
and its message partner: a ``ReceiveTokenTrace`` is linked to the
``GenerateTokenTrace`` that made its token (the token names the sender and the
sender's own time) and back, which gives the message arrows of a space-time
diagram without any knowledge of the protocol.

Bodies are kept as recorded: bytes values are ``bytes`` for live records and
base64 text for records loaded from files; ``Event.body_json`` gives the text
the files hold either way.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, overload

from teachraft.tracing.formats import body_json
from teachraft.tracing.sinks import Record
from teachraft.tracing.tokens import TokenError, decode_token

logger = logging.getLogger(__name__)

GENERATE = "GenerateTokenTrace"
RECEIVE = "ReceiveTokenTrace"
CREATE = "CreateTrace"


@dataclass(slots=True)
class Event:
    """One event of a run; ``index`` is its position in the table."""

    index: int
    host: str
    time: int
    clock: dict[str, int]
    trace_id: int
    tag: str
    body: dict[str, Any]
    partner: int | None = None

    @property
    def body_json(self) -> str:
        """The Body as the trace files write it (Go-style JSON)."""
        return body_json(self.body)

    def to_record(self) -> Record:
        """The record this event was made from."""
        return Record(self.host, self.trace_id, self.tag, self.body, self.clock)


class EventTable:
    """A list of Events with indexes by host, trace and (host, own time).

    ``append`` is also available as ``emit``, so a table is a Sink.
    """

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._events: list[Event] = []
        self._by_key: dict[tuple[str, int], int] = {}
        self._by_host: dict[str, list[int]] = {}
        self._by_trace: dict[int, list[int]] = {}
        self._unmatched: dict[tuple[str, int], list[int]] = {}
        for record in records:
            self.append(record)

    # --- building --------------------------------------------------------------

    def append(self, record: Record) -> Event:
        """Add one record as the next event and link it to its message partner."""
        index = len(self._events)
        host = record.identity
        time = record.clock.get(host, 0)
        event = Event(
            index, host, time, record.clock, record.trace_id, record.tag, record.body, None
        )
        self._events.append(event)
        self._by_key.setdefault((host, time), index)
        by_host = self._by_host.get(host)
        if by_host is None:
            self._by_host[host] = [index]
        else:
            by_host.append(index)
        by_trace = self._by_trace.get(record.trace_id)
        if by_trace is None:
            self._by_trace[record.trace_id] = [index]
        else:
            by_trace.append(index)
        if record.tag == RECEIVE:
            self._link_receive(event)
        elif record.tag == GENERATE:
            self._link_generate(event)
        return event

    emit = append

    def extend(self, records: Iterable[Record]) -> None:
        """Append several records."""
        for record in records:
            self.append(record)

    def _link_receive(self, event: Event) -> None:
        sender = _token_sender(event.body.get("Token"))
        if sender is None:
            return
        index = self._by_key.get(sender)
        if index is not None and self._events[index].tag == GENERATE:
            _pair(self._events[index], event)
        else:
            self._unmatched.setdefault(sender, []).append(event.index)

    def _link_generate(self, event: Event) -> None:
        waiting = self._unmatched.pop((event.host, event.time), None)
        for index in waiting or ():
            _pair(event, self._events[index])

    # --- reading ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        return self._events[index]

    def __repr__(self) -> str:
        return f"EventTable({len(self)} events, {len(self._by_host)} hosts)"

    def hosts(self) -> list[str]:
        """Hosts in ShiViz's default order: most events first, then first seen."""
        return sorted(self._by_host, key=lambda host: -len(self._by_host[host]))

    def by_host(self, host: str) -> list[Event]:
        """The host's events in own-time order."""
        events = [self._events[i] for i in self._by_host.get(host, ())]
        events.sort(key=lambda event: event.time)
        return events

    def find(self, host: str, time: int) -> Event | None:
        """The event of ``host`` with own time ``time``, if recorded."""
        index = self._by_key.get((host, time))
        return None if index is None else self._events[index]

    def tags(self) -> list[str]:
        """The distinct Tags, in order of first appearance."""
        return list(dict.fromkeys(event.tag for event in self._events))

    def trace_ids(self) -> list[int]:
        """The distinct trace ids, in order of first appearance."""
        return list(self._by_trace)

    def filter(
        self,
        hosts: Collection[str] | None = None,
        tags: Collection[str] | None = None,
        trace_ids: Collection[int] | None = None,
    ) -> list[Event]:
        """The events matching every given criterion, in table order.

        The events keep their indices in this table (and their partners).
        """
        events: Iterable[Event] = self._events
        if trace_ids is not None:
            wanted = sorted({i for t in trace_ids for i in self._by_trace.get(t, ())})
            events = [self._events[i] for i in wanted]
        if hosts is not None:
            host_set = set(hosts)
            events = [e for e in events if e.host in host_set]
        if tags is not None:
            tag_set = set(tags)
            events = [e for e in events if e.tag in tag_set]
        return list(events)

    def causal_path(self, trace_id: int) -> list[int]:
        """Indices of one trace's events and of the token events linking them.

        For one Put this is the client's Put, the token hops to the leader, the
        leader's actions and replication rounds of that trace, and the reply.
        """
        indices = set(self._by_trace.get(trace_id, ()))
        for index in list(indices):
            partner = self._events[index].partner
            if partner is not None:
                indices.add(partner)
        return sorted(indices)

    def to_records(self) -> list[Record]:
        """Every event as a Record, in table order."""
        return [event.to_record() for event in self._events]


def _pair(generate: Event, receive: Event) -> None:
    receive.partner = generate.index
    if generate.partner is None:
        generate.partner = receive.index


def _token_sender(token: object) -> tuple[str, int] | None:
    """(sender identity, sender's own time) named by a token, or None."""
    if not token or not isinstance(token, (bytes, str)):
        return None
    try:
        identity, _, clock = decode_token(token)
    except TokenError as exc:
        logger.debug("cannot decode a token in the event table: %s", exc)
        return None
    time = clock.get(identity)
    return None if time is None else (identity, time)
