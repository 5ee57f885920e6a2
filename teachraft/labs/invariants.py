"""Raft's safety properties, checked on a running ``LabSim`` after every step.

Figure 3 of the Raft paper lists what must always hold; the ``Monitor`` checks
each one against the live machines and says, in one sentence, which broke
first:

* **Election Safety**: at most one leader is elected in a given term.
* **Log Matching**: two logs holding an entry with the same index and term
  are identical up to it (and every log holds index i at position i).
* **Leader Completeness**: a leader's log holds every committed entry.
* **State Machine Safety**: no two servers apply (or commit) different entries
  at one index, and no entry is applied before it is committed.
* **Commit rule**: a leader advances its commit index only to an entry of its
  current term that a majority of the servers hold (Figure 8); a committed
  entry stays on a majority.
* **Exactly-once apply**: each client op changes the state machine once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teachraft.core.log import NOOP, Entry
from teachraft.core.server import server_name

ELECTION_SAFETY = "Election Safety"
LOG_MATCHING = "Log Matching"
LEADER_COMPLETENESS = "Leader Completeness"
STATE_MACHINE_SAFETY = "State Machine Safety"
COMMIT_RULE = "Commit only on a majority of current-term entries"
EXACTLY_ONCE = "Exactly-once apply"
INVARIANTS = (
    ELECTION_SAFETY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    COMMIT_RULE,
    EXACTLY_ONCE,
)


@dataclass(slots=True)
class Violation:
    """The first broken invariant: which, in one sentence, and at which step."""

    invariant: str
    sentence: str
    step: int


class InvariantBroken(Exception):
    """Raised inside a run to stop it at the first violation."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.sentence)
        self.violation = violation


def _show(entry: Entry) -> str:
    return f"{entry.describe()} (term {entry.term})"


class Monitor:
    """Watches a LabSim; ``check(sim)`` raises ``InvariantBroken`` at the first violation."""

    def __init__(self, every: int = 8) -> None:
        self.every = every
        self.committed: dict[int, Entry] = {}
        self.applied: dict[int, tuple[Entry, str]] = {}
        self.seen_commit: dict[tuple[int, int], int] = {}
        self.seen_applied: dict[tuple[int, int], int] = {}
        self.leader_terms: set[tuple[int, int]] = set()
        self.term_leader: dict[int, int] = {}

    def _fail(self, sim: Any, invariant: str, sentence: str) -> None:
        raise InvariantBroken(Violation(invariant, sentence, sim.steps))

    def check(self, sim: Any, full: bool = False) -> None:
        for sid, node in sorted(sim.nodes.items()):
            if sid in sim.down:
                continue
            key = (sid, sim.incarnation.get(sid, 0))
            self._commits(sim, sid, key, node)
            self._applies(sim, sid, key, node)
            self._leadership(sim, sid, node)
        if full or sim.steps % self.every == 0:
            self.log_matching(sim)
            self.durability(sim)
            self.exactly_once(sim)

    # ------------------------------------------------------------ commits
    def _commits(self, sim: Any, sid: int, key: tuple[int, int], node: Any) -> None:
        seen = self.seen_commit.get(key, 0)
        commit = node.commit_index
        if commit <= seen:
            return
        self.seen_commit[key] = commit
        name = server_name(sid)
        log = node.log
        if commit > log.last_index:
            self._fail(
                sim,
                STATE_MACHINE_SAFETY,
                f"{name} set its commit index to {commit} but its log ends at {log.last_index}.",
            )
        if node.role == "leader":
            term = log.term_at(commit)
            if term != node.current_term:
                self._fail(
                    sim,
                    COMMIT_RULE,
                    f"leader {name} committed index {commit}, an entry of term {term}, "
                    f"in term {node.current_term} by counting replicas (Figure 8 forbids "
                    "it).",
                )
            holders = [i for i, s in sim.nodes.items() if s.log.term_at(commit) == term]
            if len(holders) < node.majority:
                self._fail(
                    sim,
                    COMMIT_RULE,
                    f"leader {name} committed index {commit} while only "
                    f"{len(holders)} of {len(sim.nodes)} servers held it.",
                )
        for i in range(seen + 1, commit + 1):
            entry = log[i]
            first = self.committed.setdefault(i, entry)
            if first != entry:
                self._fail(
                    sim,
                    STATE_MACHINE_SAFETY,
                    f"{name} committed {_show(entry)} at index {i}, where "
                    f"{_show(first)} had been committed.",
                )

    def _applies(self, sim: Any, sid: int, key: tuple[int, int], node: Any) -> None:
        applied = node.applied
        seen = self.seen_applied.get(key, 0)
        if len(applied) <= seen:
            return
        self.seen_applied[key] = len(applied)
        name = server_name(sid)
        for position, (entry, _result) in enumerate(applied[seen:], start=seen + 1):
            committed = self.committed.get(position)
            if committed is None:
                self._fail(
                    sim,
                    STATE_MACHINE_SAFETY,
                    f"{name} applied {_show(entry)} at index {position} before any "
                    "server had committed that index.",
                )
            elif committed != entry:
                self._fail(
                    sim,
                    STATE_MACHINE_SAFETY,
                    f"{name} applied {_show(entry)} at index {position}, where "
                    f"{_show(committed)} was committed.",
                )

    def _leadership(self, sim: Any, sid: int, node: Any) -> None:
        if node.role != "leader" or (sid, node.current_term) in self.leader_terms:
            return
        self.leader_terms.add((sid, node.current_term))
        other = self.term_leader.setdefault(node.current_term, sid)
        if other != sid:
            self._fail(
                sim,
                ELECTION_SAFETY,
                f"server{other} and server{sid} were both leader of term {node.current_term}.",
            )
        log = node.log
        for i, entry in sorted(self.committed.items()):
            if i > log.last_index or log[i] != entry:
                self._fail(
                    sim,
                    LEADER_COMPLETENESS,
                    f"server{sid} became leader of term {node.current_term} without the "
                    f"committed entry {_show(entry)} at index {i}.",
                )

    # ------------------------------------------------------- whole-log checks
    def log_matching(self, sim: Any) -> None:
        logs = [(server_name(i), s.log.entries) for i, s in sorted(sim.nodes.items())]
        for name, entries in logs:
            for pos, e in enumerate(entries):
                if not isinstance(e, Entry):
                    self._fail(
                        sim,
                        LOG_MATCHING,
                        f"{name}'s log holds {e!r} at position {pos}, which is not an Entry.",
                    )
                if e.index != pos:
                    self._fail(
                        sim,
                        LOG_MATCHING,
                        f"{name}'s log holds an entry for index {e.index} at position {pos}.",
                    )
        for a in range(len(logs)):
            for b in range(a + 1, len(logs)):
                self._pair(sim, logs[a], logs[b])

    def _pair(self, sim: Any, one: tuple[str, list[Entry]], two: tuple[str, list[Entry]]) -> None:
        (na, ea), (nb, eb) = one, two
        top = min(len(ea), len(eb)) - 1
        while top > 0 and ea[top].term != eb[top].term:
            top -= 1
        if top > 0 and ea[: top + 1] != eb[: top + 1]:
            i = next(k for k in range(top + 1) if ea[k] != eb[k])
            self._fail(
                sim,
                LOG_MATCHING,
                f"{na} and {nb} both hold an entry of term {ea[top].term} at index {top} "
                f"but differ at index {i}: {_show(ea[i])} against {_show(eb[i])}.",
            )

    def durability(self, sim: Any) -> None:
        if not self.committed:
            return
        need = len(sim.nodes) // 2 + 1
        for i, entry in sorted(self.committed.items()):
            holders = sum(
                1
                for s in sim.nodes.values()
                if s.log.term_at(i) == entry.term and s.log[i] == entry
            )
            if holders < need:
                self._fail(
                    sim,
                    LEADER_COMPLETENESS,
                    f"the committed entry {_show(entry)} at index {i} is now held by "
                    f"only {holders} of {len(sim.nodes)} servers: a later leader can "
                    "lose it.",
                )

    def exactly_once(self, sim: Any) -> None:
        for sid, node in sorted(sim.nodes.items()):
            ops = {(e.client_id, e.op_id) for e, _ in node.applied if e.kind != NOOP}
            count = node.kv.applied_ops
            if count > len(ops):
                self._fail(
                    sim,
                    EXACTLY_ONCE,
                    f"server{sid} executed {count} client ops but only {len(ops)} "
                    "different ones were applied: a retried op took effect twice.",
                )
