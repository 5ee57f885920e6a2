"""Causal delivery: write records in an order that respects happened-before.

Tracers send over different connections, so a receive can reach the tracing
server before the send it depends on. The files must still list every event
after everything it knows about (KVRaft's files did, by luck of synchronous
sends; ShiViz does not need it but every reader of the file does). The rule
is the classic causal-delivery one, expressed with the record's own clock:
a record of host h at own time t is written once (h, t-1) is written and, for
every other host k, the event (k, clock[k]) is written. Otherwise it is held,
filed under the one event it waits for, and woken when that event is written.

Records are deduplicated by (identity, own time), so a client may resend a
batch whose ack it lost. ``drain`` gives up waiting (at shutdown) and returns
what is held in an order consistent with happened-before among those records;
``expire`` does the same for records that waited too long.
The class is pure: no I/O, no clock, easy to test with scripted arrivals.

Most records are local events whose clock is the host's previous one with the
own entry +1 (``Record.step``). Once that previous record was written with its
whole past, such a record's past is written too; checking that its clock is
exactly one step on (one dict comparison) replaces the entry-by-entry check.
"""

from __future__ import annotations

from collections.abc import Iterable

from teachraft.tracing.sinks import Record

Key = tuple[str, int]


class CausalOrderer:
    """Holds records back until their causal past is written (see module docstring)."""

    def __init__(self) -> None:
        self._upto: dict[str, int] = {}
        self._extra: dict[str, set[int]] = {}
        self._held: dict[Key, Record] = {}
        self._waiting: dict[Key, list[Record]] = {}
        self._last: dict[str, dict[str, int]] = {}
        self._since: dict[Key, float] = {}
        self._now = 0.0
        self._clean: dict[str, dict[str, int]] = {}
        """Per host, the clock of its latest record written after its whole past."""

    # --- state ---------------------------------------------------------------

    @property
    def held(self) -> int:
        """How many records are waiting for their causal past."""
        return len(self._held)

    def written(self, host: str, time: int) -> bool:
        """True when (host, time) has been written (time 0 always counts as written)."""
        if time <= self._upto.get(host, 0):
            return True
        extra = self._extra.get(host)
        return extra is not None and time in extra

    def seen(self, host: str, time: int) -> bool:
        """True when (host, time) has been written or is held."""
        return self.written(host, time) or (host, time) in self._held

    def last_clock(self, identity: str) -> dict[str, int] | None:
        """The clock of the latest event received from ``identity`` (written or held)."""
        clock = self._last.get(identity)
        return None if clock is None else dict(clock)

    def previous_clock(self, identity: str) -> dict[str, int] | None:
        """Like ``last_clock`` but not a copy: for read-only checks on the hot path."""
        return self._last.get(identity)

    def restore(self, records: Iterable[Record]) -> None:
        """Mark records as already written (e.g. read back from an existing file)."""
        for record in records:
            time = record.clock.get(record.identity, 0)
            if time > 0 and not self.written(record.identity, time):
                self._note_last(record, time)
                self._mark_written(record.identity, time)

    # --- delivery ------------------------------------------------------------

    def offer(self, record: Record, now: float = 0.0) -> list[Record]:
        """Accept one record; return every record that can now be written, in order.

        A record already written or held (same identity and own time) is ignored.
        ``now`` (any clock) stamps a record that has to wait, for ``expire``.
        """
        self._now = now
        host = record.identity
        time = record.clock.get(host, 0)
        if time <= 0 or self.seen(host, time):
            return []
        self._note_last(record, time)
        out: list[Record] = []
        self._deliver(record, out)
        return out

    def offer_many(self, records: Iterable[Record], now: float = 0.0) -> list[Record]:
        """``offer`` for several records; the writable ones in one list.

        The common case (the host's next event, whose causal past is written,
        nothing waiting on it) is handled inline; everything else goes through
        the general path.
        """
        self._now = now
        out: list[Record] = []
        upto = self._upto
        extra = self._extra
        held = self._held
        waiting = self._waiting
        clean = self._clean
        latest = self._last
        for record in records:
            host = record.identity
            clock = record.clock
            time = clock.get(host, 0)
            if time == upto.get(host, 0) + 1 and not extra and (host, time) not in held:
                previous = clean.get(host) if record.step else None
                ready = (
                    previous is not None
                    and previous[host] == time - 1
                    and clock == {**previous, host: time}
                )  # one step on from a record written with its whole past (``_steps_on``)
                if not ready:
                    for other, value in clock.items():
                        if other != host and value > upto.get(other, 0):
                            break
                    else:
                        ready = True
                if ready:
                    clean[host] = clock
                    upto[host] = time
                    last = latest.get(host)
                    if last is None or time > last[host]:  # ``_note_last``
                        latest[host] = clock
                    out.append(record)
                    if waiting:
                        self._wake((host, time), out)
                    continue
            if time <= 0 or self.seen(host, time):
                continue
            self._note_last(record, time)
            self._deliver(record, out)
        return out

    def drain(self) -> list[Record]:
        """Stop waiting: return every held record in a causally consistent order."""
        out: list[Record] = []
        self._force(list(self._held.values()), out)
        self._waiting.clear()
        return out

    def expire(self, now: float, timeout: float) -> list[Record]:
        """Give up on records held since before ``now - timeout``; return what to write.

        Their missing causal past is presumed lost (a tracer that died with
        unsent records). Records waiting only for them are released too.
        """
        limit = now - timeout
        stale = [self._held[key] for key, since in self._since.items() if since <= limit]
        out: list[Record] = []
        if stale:
            self._now = now
            self._force(stale, out)
        return out

    def _force(self, records: list[Record], out: list[Record]) -> None:
        """Write ``records`` without their missing past, in causal order among them.

        Sorting by the sum of the clock is a linear extension of happened-before
        (an event's clock is componentwise at least its predecessor's, and larger).
        """
        records.sort(key=lambda r: (sum(r.clock.values()), r.identity, r.clock[r.identity]))
        for record in records:
            key = (record.identity, record.clock[record.identity])
            if key not in self._held:
                continue  # released meanwhile by an earlier forced record
            del self._held[key]
            self._since.pop(key, None)
            self._mark_written(*key)
            out.append(record)
            self._wake(key, out)

    def _wake(self, key: Key, out: list[Record]) -> None:
        woken = self._waiting.pop(key, None)
        for sleeper in reversed(woken or ()):
            sleeper_key = (sleeper.identity, sleeper.clock[sleeper.identity])
            if sleeper_key in self._held:
                self._deliver(sleeper, out)

    def _deliver(self, record: Record, out: list[Record]) -> None:
        stack = [record]
        while stack:
            current = stack.pop()
            host = current.identity
            key = (host, current.clock[host])
            if current.step and self._steps_on(current.clock, host, key[1]):
                blocker = None
            else:
                blocker = self._blocker(current, host)
            if blocker is not None:
                if key not in self._held:
                    self._held[key] = current
                    self._since[key] = self._now
                self._waiting.setdefault(blocker, []).append(current)
                continue
            if self._held.pop(key, None) is not None:
                del self._since[key]
            self._mark_written(*key)
            self._clean[host] = current.clock
            out.append(current)
            woken = self._waiting.pop(key, None)
            if woken:
                held = self._held
                stack.extend(
                    r for r in reversed(woken) if (r.identity, r.clock[r.identity]) in held
                )

    def _steps_on(self, clock: dict[str, int], host: str, time: int) -> bool:
        """True when ``clock`` is one step on from the host's latest record written
        with its whole past: its own past, and so its whole past, is written."""
        previous = self._clean.get(host)
        return (
            previous is not None
            and previous[host] == time - 1
            and clock
            == {
                **previous,
                host: time,
            }
        )

    def _blocker(self, record: Record, host: str) -> Key | None:
        """The first event ``record`` depends on that is not written yet, or None."""
        upto = self._upto
        for other, value in record.clock.items():
            if other == host:
                value -= 1
                if value == 0:
                    continue
            if value > upto.get(other, 0):
                extra = self._extra.get(other)
                if extra is None or value not in extra:
                    return (other, value)
        return None

    def _mark_written(self, host: str, time: int) -> None:
        upto = self._upto.get(host, 0)
        if time != upto + 1:
            if time > upto:
                self._extra.setdefault(host, set()).add(time)
            return
        extra = self._extra.get(host)
        upto = time
        if extra:
            while upto + 1 in extra:
                upto += 1
                extra.discard(upto)
            if not extra:
                del self._extra[host]
        self._upto[host] = upto

    def _note_last(self, record: Record, time: int) -> None:
        last = self._last.get(record.identity)
        if last is None or time > last[record.identity]:
            self._last[record.identity] = record.clock
