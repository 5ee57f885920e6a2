"""A snapshot of the replicated state: what replaces a compacted log prefix (Raft §7).

A server that has applied ``snapshot_every`` entries since its last snapshot
copies its key-value store here and drops those entries from its log. The
snapshot must hold everything the dropped entries meant:

* the store's pairs, the state machine itself;
* the duplicate table (each client's cached results, ``acked_below`` and last op
  id): without it a retried op whose entry was compacted away would be applied
  a second time, and exactly-once would end at the first compaction;
* the index and term of the last entry it includes, which AppendEntries'
  consistency check still needs for the entry after it.

A leader sends its snapshot to a follower that needs an entry it compacted, in
chunks (InstallSnapshot). As the paper's ``offset`` counts bytes, a chunk's
``offset`` here counts items: the pairs first, then the sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Pair = tuple[str, str]
SessionState = tuple[str, int, int, list[tuple[int, str | None]]]
"""One client's duplicate-table row: (client_id, acked_below, last_op_id, [(op_id, result)])."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine up to and including ``last_included_index``."""

    last_included_index: int
    last_included_term: int
    pairs: list[Pair]
    sessions: list[SessionState]

    @property
    def size(self) -> int:
        """Items to send: every pair, then every session."""
        return len(self.pairs) + len(self.sessions)

    def chunk(self, offset: int, max_bytes: int) -> tuple[list[Pair], list[SessionState]]:
        """The items from ``offset`` on that fit in about ``max_bytes`` (at least one)."""
        pairs: list[Pair] = []
        sessions: list[SessionState] = []
        budget = max_bytes
        n_pairs = len(self.pairs)
        i = offset
        while i < self.size and (budget > 0 or not (pairs or sessions)):
            if i < n_pairs:
                key, value = self.pairs[i]
                pairs.append(self.pairs[i])
                budget -= len(key) + len(value) + 8
            else:
                session = self.sessions[i - n_pairs]
                sessions.append(session)
                budget -= _session_bytes(session)
            i += 1
        return pairs, sessions


def _session_bytes(session: SessionState) -> int:
    client_id, _, _, results = session
    return len(client_id) + 16 + sum(12 + len(r or "") for _, r in results)


class SnapshotBuilder:
    """A follower's half-received snapshot: chunks are accepted only in order."""

    __slots__ = ("last_included_index", "last_included_term", "pairs", "sessions")

    def __init__(self, last_included_index: int, last_included_term: int) -> None:
        self.last_included_index = last_included_index
        self.last_included_term = last_included_term
        self.pairs: list[Pair] = []
        self.sessions: list[SessionState] = []

    @property
    def offset(self) -> int:
        """The next item this builder expects."""
        return len(self.pairs) + len(self.sessions)

    def matches(self, last_included_index: int, last_included_term: int) -> bool:
        return (self.last_included_index, self.last_included_term) == (
            last_included_index,
            last_included_term,
        )

    def add(self, pairs: list[Pair], sessions: list[SessionState]) -> None:
        self.pairs.extend(pairs)
        self.sessions.extend(sessions)

    def build(self) -> Snapshot:
        return Snapshot(
            self.last_included_index, self.last_included_term, self.pairs, self.sessions
        )


# --- wire checks (messages.py and storage use them) ------------------------------------


def check_pairs(v: Any) -> list[Pair]:
    """A received list of [key, value] pairs, or ValueError."""
    if type(v) is not list:
        raise ValueError("expected a list of [key, value] pairs")
    out = []
    for p in v:
        if type(p) is not list or len(p) != 2 or type(p[0]) is not str or type(p[1]) is not str:
            raise ValueError("expected a list of [key, value] pairs")
        out.append((p[0], p[1]))
    return out


def check_sessions(v: Any) -> list[SessionState]:
    """A received list of duplicate-table rows, or ValueError."""
    bad = "expected a list of [client_id, acked_below, last_op_id, [[op_id, result], ...]]"
    if type(v) is not list:
        raise ValueError(bad)
    out: list[SessionState] = []
    for row in v:
        if type(row) is not list or len(row) != 4:
            raise ValueError(bad)
        client_id, acked_below, last_op_id, results = row
        if (
            type(client_id) is not str
            or type(acked_below) is not int
            or type(last_op_id) is not int
            or type(results) is not list
        ):
            raise ValueError(bad)
        checked = []
        for r in results:
            if (
                type(r) is not list
                or len(r) != 2
                or type(r[0]) is not int
                or (r[1] is not None and type(r[1]) is not str)
            ):
                raise ValueError(bad)
            checked.append((r[0], r[1]))
        out.append((client_id, acked_below, last_op_id, checked))
    return out


def snapshot_from_wire(v: Any) -> Snapshot:
    """A stored snapshot: [last_included_index, last_included_term, pairs, sessions]."""
    if type(v) is not list or len(v) != 4 or type(v[0]) is not int or type(v[1]) is not int:
        raise ValueError("expected [last_included_index, last_included_term, pairs, sessions]")
    return Snapshot(v[0], v[1], check_pairs(v[2]), check_sessions(v[3]))


def snapshot_to_wire(s: Snapshot) -> list[Any]:
    return [s.last_included_index, s.last_included_term, s.pairs, s.sessions]
