"""An event table of bounded memory for runs of any length, backed by trace_output.log.

A traced run writes about ten events per client op, and an ``Event`` with its
clock and body costs a kilobyte or two, so a table that keeps every event
grows by tens of megabytes a minute. ``BoundedEventTable`` keeps the newest
``window`` events as ``Event`` objects and, for the newest ``columns`` events
(500,000 by default, a few minutes of a busy run), a few columns: the line's
byte offset in the file, its host, own time, tag, trace and message partner
(about 40 bytes). An older event is parsed again from its line when it is read,
through a small cache. ``find``, ``by_host``, ``filter``, ``causal_path`` and
``trace_ids`` run on the columns alone, so they see the newest ``columns``
events; ``hosts``, ``tags``, ``len``, indexing and iteration cover the whole
run: an event past the columns is found from a mark kept every ``STRIDE``
events (its partner is then unknown), and iterating streams the file's old
part from disk. Memory stays flat however long the run: the soak in
``bench/soak_memory.py`` checks it.

The table follows a file that a tracing server appends to: ``refresh`` reads
the whole lines added since the last call. Reads and refreshes take one lock,
so a notebook thread and the cluster's loop may share a table.
"""

from __future__ import annotations

import logging
import threading
from array import array
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, overload

from teachraft.tracing.events import GENERATE, RECEIVE, Event, EventTable, _token_sender
from teachraft.tracing.files import record_from_json
from teachraft.tracing.sinks import Record

WINDOW = 5_000
"""Events kept as objects (about 3 KB each): the live panel draws the last 1,500."""
CACHE = 4_096
"""Older events kept after they were parsed again (a replay steps through them in order)."""
NO_PARTNER = -1
CHUNK = 1 << 22
"""Bytes read from the file at a time."""
COLUMNS = 500_000
"""Events whose columns are kept (about 40 bytes each, 20 MB in all)."""
STRIDE = 64
"""One byte offset is kept per this many events, to find any older event's line."""

logger = logging.getLogger(__name__)


class BoundedEventTable(EventTable):
    """The events of one trace_output.log, the newest ``window`` of them in memory."""

    def __init__(
        self, path: str | Path, window: int = WINDOW, cache: int = CACHE, columns: int = COLUMNS
    ) -> None:
        super().__init__()
        if window < 1 or columns < window:
            raise ValueError("window must be >= 1 and columns >= window")
        self.path = Path(path)
        self.window = window
        self.columns = columns
        self._count = 0  # events in the file so far
        self._col_base = 0  # the first event that still has columns
        self._marks = array("q")  # the line offset of every STRIDE-th event
        self._host_counts: list[int] = []
        self._cache_size = cache
        self._rlock = threading.RLock()
        self._read_to = 0  # bytes of the file read so far (whole lines only)
        self._offsets = array("q")
        self._host_of = array("H")
        self._time_of = array("Q")
        self._tag_of = array("H")
        self._partner = array("q")
        self._hosts: list[str] = []
        self._host_ids: dict[str, int] = {}
        self._tags: list[str] = []
        self._tag_ids: dict[str, int] = {}
        self._host_events: list[array[int]] = []  # per host: its indexes, own-time order
        self._traces: dict[int, list[int]] = {}
        self._waiting: dict[tuple[str, int], list[int]] = {}  # receives before their send
        self._recent: deque[Event] = deque()
        self._cache: OrderedDict[int, Event] = OrderedDict()

    # ------------------------------------------------------------------ growing
    def refresh(self) -> BoundedEventTable:
        """Read the whole lines the file gained since the last call; returns self."""
        with self._rlock:
            try:
                handle = open(self.path, "rb")  # noqa: SIM115 (closed below)
            except FileNotFoundError:
                return self
            with handle:
                handle.seek(self._read_to)
                size = CHUNK
                while chunk := handle.read(size):  # bounded memory, however much is new
                    end = chunk.rfind(b"\n") + 1
                    if not end and len(chunk) < size:
                        break  # the last line is still being written
                    if end:
                        self._add_lines(chunk, end)
                    size = CHUNK if end else size * 2  # a line longer than a chunk
                    handle.seek(self._read_to)
        return self

    def _add_lines(self, chunk: bytes, end: int) -> None:
        start = 0
        while start < end:
            stop = chunk.index(b"\n", start) + 1
            line = chunk[start:stop]
            if line.strip():
                self._add_line(self._read_to + start, line)
            start = stop
        self._read_to += end

    def add(self, record: Record) -> None:
        raise TypeError("a BoundedEventTable grows from its file: call refresh()")

    emit = add

    def extend(self, records: Iterable[Record]) -> None:
        raise TypeError("a BoundedEventTable grows from its file: call refresh()")

    def _add_line(self, offset: int, line: bytes) -> None:
        try:
            record = record_from_json(line.decode("utf-8", errors="replace"))
        except ValueError as exc:  # not written by a tracing server: say so, keep reading
            logger.warning("%s: skipping an unreadable line at byte %d: %s", self.path, offset, exc)
            return
        self._add(offset, record)

    def _add(self, offset: int, record: Record) -> None:
        index = self._count
        self._count += 1
        if index % STRIDE == 0:
            self._marks.append(offset)
        host = record.identity
        time = record.clock.get(host, 0)
        host_id = self._host_ids.get(host)
        if host_id is None:
            host_id = self._host_ids[host] = len(self._hosts)
            self._hosts.append(host)
            self._host_events.append(array("Q"))
            self._host_counts.append(0)
        self._host_counts[host_id] += 1
        tag_id = self._tag_ids.get(record.tag)
        if tag_id is None:
            tag_id = self._tag_ids[record.tag] = len(self._tags)
            self._tags.append(record.tag)
        self._offsets.append(offset)
        self._host_of.append(host_id)
        self._time_of.append(time)
        self._tag_of.append(tag_id)
        self._partner.append(NO_PARTNER)
        self._host_events[host_id].append(index)
        self._traces.setdefault(record.trace_id, []).append(index)
        event = Event(index, host, time, record.clock, record.trace_id, record.tag, record.body)
        self._recent.append(event)
        if record.tag == RECEIVE:
            self._link_receive_at(event)
        elif record.tag == GENERATE:
            for receive in self._waiting.pop((host, time), ()):
                self._pair_at(index, receive)
        if len(self._recent) > self.window:
            self._recent.popleft()
        if self._count - self._col_base > self.columns + self.columns // 8:
            self._forget_columns(self._count - self.columns)

    def _forget_columns(self, base: int) -> None:
        """Drop the columns of every event before ``base`` (in batches: arrays shift)."""
        drop = base - self._col_base
        for column in (self._offsets, self._host_of, self._time_of, self._tag_of, self._partner):
            del column[:drop]
        for own in self._host_events:
            del own[: bisect_left(own, base)]
        traces = self._traces
        for trace_id, indexes in list(traces.items()):  # once per columns/8 events
            if indexes[0] < base:
                del indexes[: bisect_left(indexes, base)]
                if not indexes:
                    del traces[trace_id]
        self._waiting = {
            sender: kept
            for sender, receives in self._waiting.items()
            if (kept := [i for i in receives if i >= base])
        }
        self._col_base = base

    def _link_receive_at(self, event: Event) -> None:
        sender = _token_sender(event.body.get("Token"))
        if sender is None:
            return
        generate = self._index_of(*sender)
        if generate is not None and self._tags[self._tag_of[generate - self._col_base]] == GENERATE:
            self._pair_at(generate, event.index)
        else:
            self._waiting.setdefault(sender, []).append(event.index)

    def _pair_at(self, generate: int, receive: int) -> None:
        """As ``EventTable`` links: a receive names its send, a send its first receive."""
        self._set_partner(receive, generate)
        if self._partner[generate - self._col_base] == NO_PARTNER:
            self._set_partner(generate, receive)

    def _set_partner(self, index: int, partner: int) -> None:
        self._partner[index - self._col_base] = partner
        event = self._live(index)
        if event is not None:
            event.partner = partner

    # ------------------------------------------------------------------ reading
    def _base(self) -> int:
        return self._count - len(self._recent)

    def _live(self, index: int) -> Event | None:
        """The Event object for ``index`` if one is in memory (recent or cached)."""
        base = self._base()
        if index >= base:
            return self._recent[index - base]
        return self._cache.get(index)

    def _event(self, index: int) -> Event:
        event = self._live(index)
        if event is not None:
            if index < self._base():
                self._cache.move_to_end(index)
            return event
        with open(self.path, "rb") as handle:
            if index >= self._col_base:
                handle.seek(self._offsets[index - self._col_base])
                event = self._parsed(index, record_from_json(handle.readline().decode("utf-8")))
            else:
                event = self._read_old(handle, index)
        self._cache[index] = event
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return event

    def _read_old(self, handle: BinaryIO, index: int) -> Event:
        """An event past the columns: read on from the mark before it."""
        handle.seek(self._marks[index // STRIDE])
        at = index - index % STRIDE
        for record in _records(handle):
            if at == index:
                return self._parsed(index, record)
            at += 1
        raise IndexError(f"event {index} is no longer in {self.path}")

    def _parsed(self, index: int, record: Record) -> Event:
        """The Event of ``record``; its partner only while the event has columns."""
        partner = NO_PARTNER
        if index >= self._col_base:
            partner = self._partner[index - self._col_base]
        return Event(
            index,
            record.identity,
            record.clock.get(record.identity, 0),
            record.clock,
            record.trace_id,
            record.tag,
            record.body,
            None if partner == NO_PARTNER else partner,
        )

    def _index_of(self, host: str, time: int) -> int | None:
        host_id = self._host_ids.get(host)
        if host_id is None:
            return None
        indexes = self._host_events[host_id]
        times, col_base = self._time_of, self._col_base
        at = bisect_left(indexes, time, key=lambda i: times[i - col_base])
        if at < len(indexes) and times[indexes[at] - col_base] == time:
            return indexes[at]
        return None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Event]:
        """Every event in order: the old part streamed from the file, then the recent."""
        with self._rlock:
            base, recent = self._base(), list(self._recent)
        if base:
            with open(self.path, "rb") as handle:
                for index, record in zip(range(base), _records(handle), strict=False):
                    with self._rlock:
                        event = self._live(index) or self._parsed(index, record)
                    yield event
        yield from recent

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        with self._rlock:
            if isinstance(index, slice):
                return [self._event(i) for i in range(*index.indices(self._count))]
            if index < 0:
                index += self._count
            if not 0 <= index < self._count:
                raise IndexError("event index out of range")
            return self._event(index)

    def __repr__(self) -> str:
        return f"BoundedEventTable({len(self)} events, {len(self._hosts)} hosts, {self.path.name})"

    def hosts(self) -> list[str]:
        with self._rlock:
            counts = {h: self._host_counts[i] for i, h in enumerate(self._hosts)}
        return sorted(counts, key=lambda host: -counts[host])

    def by_host(self, host: str) -> list[Event]:
        with self._rlock:
            host_id = self._host_ids.get(host)
            if host_id is None:
                return []
            return [self._event(i) for i in self._host_events[host_id]]

    def find(self, host: str, time: int) -> Event | None:
        with self._rlock:
            index = self._index_of(host, time)
            return None if index is None else self._event(index)

    def tags(self) -> list[str]:
        with self._rlock:
            return list(self._tags)

    def trace_ids(self) -> list[int]:
        with self._rlock:
            return list(self._traces)

    def filter(
        self,
        hosts: Collection[str] | None = None,
        tags: Collection[str] | None = None,
        trace_ids: Collection[int] | None = None,
    ) -> list[Event]:
        with self._rlock:
            if trace_ids is not None:
                indexes: Iterable[int] = sorted(
                    {i for t in trace_ids for i in self._traces.get(t, ())}
                )
            else:
                indexes = range(self._col_base, self._count)
            base = self._col_base
            if hosts is not None:
                host_ids = {self._host_ids[h] for h in hosts if h in self._host_ids}
                indexes = [i for i in indexes if self._host_of[i - base] in host_ids]
            if tags is not None:
                tag_ids = {self._tag_ids[t] for t in tags if t in self._tag_ids}
                indexes = [i for i in indexes if self._tag_of[i - base] in tag_ids]
            return [self._event(i) for i in indexes]

    def causal_path(self, trace_id: int) -> list[int]:
        with self._rlock:
            indices = set(self._traces.get(trace_id, ()))
            for index in list(indices):
                partner = self._partner[index - self._col_base]
                if partner != NO_PARTNER:
                    indices.add(partner)
            return sorted(indices)

    def to_records(self) -> list[Record]:
        return [event.to_record() for event in self]


def _records(handle: BinaryIO) -> Iterator[Record]:
    """The records of the lines from the handle's position on, as ``refresh`` counts them."""
    for line in handle:
        if not line.endswith(b"\n"):
            return  # a last line still being written is not an event yet
        if not line.strip():
            continue
        try:
            yield record_from_json(line.decode("utf-8", errors="replace"))
        except ValueError:
            continue  # refresh skipped it too (and said so)
