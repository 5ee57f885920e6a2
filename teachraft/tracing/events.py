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
import threading
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

    Adding is lazy: ``add``/``extend`` (and ``emit``, so a table is a Sink)
    only keep the record, and the Event with its indexes and partner link is
    built when the table is next read. The tracing server's hot path then pays
    a list append, and a notebook reading the table from another thread
    builds the new events under a lock. ``append`` adds eagerly and returns
    the Event.
    """

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._records: list[Record] = list(records)
        self._events: list[Event] = []
        self._by_key: dict[tuple[str, int], int] = {}
        self._by_host: dict[str, list[int]] = {}
        self._by_trace: dict[int, list[int]] = {}
        self._unmatched: dict[tuple[str, int], list[int]] = {}
        self._lock = threading.Lock()

    # --- building --------------------------------------------------------------

    def add(self, record: Record) -> None:
        """Add one record as the next event (built when the table is next read)."""
        self._records.append(record)

    emit = add

    def extend(self, records: Iterable[Record]) -> None:
        """Add several records (built when the table is next read)."""
        self._records.extend(records)

    def append(self, record: Record) -> Event:
        """Add one record as the next event now, and return that Event."""
        self._records.append(record)
        self._sync()
        return self._events[-1]

    def _sync(self) -> None:
        """Build the events of every record added since the last read."""
        if len(self._events) == len(self._records):
            return
        with self._lock:
            records = self._records
            for i in range(len(self._events), len(records)):
                self._build(records[i])

    def _build(self, record: Record) -> None:
        events = self._events
        index = len(events)
        host = record.identity
        clock = record.clock
        time = clock.get(host, 0)
        tag = record.tag
        trace_id = record.trace_id
        event = Event(index, host, time, clock, trace_id, tag, record.body, None)
        events.append(event)
        key = (host, time)
        if key not in self._by_key:
            self._by_key[key] = index
        try:
            self._by_host[host].append(index)
        except KeyError:
            self._by_host[host] = [index]
        try:
            self._by_trace[trace_id].append(index)
        except KeyError:
            self._by_trace[trace_id] = [index]
        if tag == RECEIVE:
            self._link_receive(event)
        elif tag == GENERATE:
            self._link_generate(event)

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
        return len(self._records)

    def __iter__(self) -> Iterator[Event]:
        self._sync()
        return iter(self._events[: len(self._events)])

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        self._sync()
        return self._events[index]

    def __repr__(self) -> str:
        self._sync()
        return f"EventTable({len(self)} events, {len(self._by_host)} hosts)"

    def hosts(self) -> list[str]:
        """Hosts in ShiViz's default order: most events first, then first seen."""
        self._sync()
        return sorted(self._by_host, key=lambda host: -len(self._by_host[host]))

    def by_host(self, host: str) -> list[Event]:
        """The host's events in own-time order."""
        self._sync()
        events = [self._events[i] for i in self._by_host.get(host, ())]
        events.sort(key=lambda event: event.time)
        return events

    def find(self, host: str, time: int) -> Event | None:
        """The event of ``host`` with own time ``time``, if recorded."""
        self._sync()
        index = self._by_key.get((host, time))
        return None if index is None else self._events[index]

    def tags(self) -> list[str]:
        """The distinct Tags, in order of first appearance."""
        self._sync()
        return list(dict.fromkeys(event.tag for event in self._events))

    def trace_ids(self) -> list[int]:
        """The distinct trace ids, in order of first appearance."""
        self._sync()
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
        self._sync()
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
        self._sync()
        indices = set(self._by_trace.get(trace_id, ()))
        for index in list(indices):
            partner = self._events[index].partner
            if partner is not None:
                indices.add(partner)
        return sorted(indices)

    def to_records(self) -> list[Record]:
        """Every record, in table order."""
        return self._records[: len(self._records)]


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
