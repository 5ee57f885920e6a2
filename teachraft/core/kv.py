"""The key-value state machine that committed log entries are applied to.

Besides the map it keeps, per client, the results of applied ops: this is
KVRaft's duplicate detection. A client retries an op with the same op id, so a
retry whose op was already applied is answered from this cache and never
applied twice. Because the cache is built only from applied entries, every
server holds the same one and a new leader can answer retries at once.

Each entry also carries the client's ``acked_below``: the client holds every
result below it, so the cache can forget those ops and stays small.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from teachraft.core.log import GET, PUT, Entry
from teachraft.core.snapshot import Snapshot


@dataclass(slots=True)
class Session:
    """What the store remembers about one client: recent results by op id."""

    results: dict[int, str | None] = field(default_factory=dict)
    acked_below: int = 0
    last_op_id: int = 0

    def forget_below(self, op_id: int) -> None:
        """Drop results the client has acknowledged having."""
        if op_id <= self.acked_below:
            return
        self.acked_below = op_id
        results = self.results
        # Results arrive in op order nearly always, so the oldest sit in front;
        # a straggler behind a newer op goes once that op is forgotten too.
        while results:
            first = next(iter(results))
            if first >= op_id:
                break
            del results[first]


class KVStore:
    """The replicated map plus the per-client duplicate table."""

    __slots__ = ("applied_ops", "data", "duplicates", "sessions")

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.sessions: dict[str, Session] = {}
        self.applied_ops = 0
        self.duplicates = 0

    def session(self, client_id: str) -> Session:
        s = self.sessions.get(client_id)
        if s is None:
            s = self.sessions[client_id] = Session()
        return s

    def cached(self, client_id: str, op_id: int) -> tuple[bool, str | None]:
        """(True, result) if this op was already applied and its result is still cached."""
        s = self.sessions.get(client_id)
        if s is not None and op_id in s.results:
            return True, s.results[op_id]
        return False, None

    def apply(self, entry: Entry) -> str | None:
        """Apply one committed entry and return its result (a Get's value, a Put's None)."""
        if entry.kind not in (PUT, GET):
            return None
        s = self.session(entry.client_id)
        if entry.op_id in s.results or entry.op_id < s.acked_below:
            self.duplicates += 1
            return s.results.get(entry.op_id)
        if entry.kind == PUT:
            self.data[entry.key] = entry.value
            result = None
        else:
            result = self.data.get(entry.key)
        self.applied_ops += 1
        s.results[entry.op_id] = result
        s.last_op_id = max(s.last_op_id, entry.op_id)
        s.forget_below(entry.acked_below)
        return result

    def snapshot(self, last_included_index: int, last_included_term: int) -> Snapshot:
        """A copy of the map and of the duplicate table, as of ``last_included_index``."""
        sessions = [
            (client_id, s.acked_below, s.last_op_id, list(s.results.items()))
            for client_id, s in self.sessions.items()
        ]
        return Snapshot(last_included_index, last_included_term, list(self.data.items()), sessions)

    def restore(self, snapshot: Snapshot) -> None:
        """Become exactly the state a snapshot holds (an installed or a reloaded snapshot)."""
        self.data = dict(snapshot.pairs)
        self.sessions = {
            client_id: Session(dict(results), acked_below, last_op_id)
            for client_id, acked_below, last_op_id, results in snapshot.sessions
        }
