"""Raft's safety properties (Figure 3 of the paper), checked on a running simulation.

``SafetyMonitor`` watches a ``SimCluster`` and raises ``SafetyViolation``, naming
the property and the evidence, the moment one of them fails:

* **Election Safety**: at most one leader is elected in a given term.
* **Log Matching**: if two logs hold an entry with the same index and term,
  the logs are identical in all entries up to that index.
* **Leader Completeness**: a committed entry is in the log of every leader of
  a later term.
* **State Machine Safety**: no two servers apply different entries at the
  same index, and two servers that applied the same prefix hold the same store
  and duplicate table (which is what a snapshot must carry across compaction).

``explore`` runs one seeded schedule with loss, reordering, crashes, restarts
and partitions in raft mode under the monitor, optionally compacting logs
(``snapshot_every``) so that restarted servers catch up by InstallSnapshot: the
tests run thousands of them, ``python -m bench --soak`` many more.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import combinations

from teachraft.core.log import GET, PUT
from teachraft.core.server import LEADER, Server, server_name
from teachraft.sim import SimCluster


class SafetyViolation(AssertionError):
    """A Raft safety property failed; the message names it and the seed replays it."""


@dataclass
class SafetyMonitor:
    """Checks the four properties on ``sim`` each time ``check`` is called."""

    sim: SimCluster
    leaders: dict[int, int] = field(default_factory=dict)
    """Term -> the one server that led it."""
    committed: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Index -> (entry term, a term at or after the one it was committed in)."""
    applied: dict[int, object] = field(default_factory=dict)
    _cursors: dict[int, int] = field(default_factory=dict)

    def _fail(self, prop: str, detail: str) -> None:
        raise SafetyViolation(f"{prop} violated (seed {self.sim.seed}): {detail}")

    def check(self, full: bool = False) -> None:
        """Election Safety and commits every call; the log-wide properties with ``full``."""
        for sid, s in self.sim.nodes.items():
            if s.role == LEADER:
                self._leader(sid, s)
            self._commits(s)
            self._applied(s)
        if full:
            self._log_matching()
            self._stores()

    def _leader(self, sid: int, s: Server) -> None:
        term = s.current_term
        other = self.leaders.setdefault(term, sid)
        if other != sid:
            self._fail("Election Safety", f"server{other} and server{sid} both led term {term}")
        compacted = s.log.snapshot_index  # committed entries, in its snapshot
        for index, (entry_term, seen_in) in self.committed.items():
            if seen_in <= term and index > compacted and s.log.term_at(index) != entry_term:
                self._fail(
                    "Leader Completeness",
                    f"server{sid} leads term {term} without the entry {index} (term "
                    f"{entry_term}) committed by term {seen_in}",
                )

    def _commits(self, s: Server) -> None:
        for index in range(s.log.first_index, s.commit_index + 1):  # past the snapshot
            term = s.log.term_at(index)
            assert term is not None
            known = self.committed.setdefault(index, (term, s.current_term))
            if known[0] != term:
                self._fail(
                    "State Machine Safety",
                    f"{s.name} committed index {index} at term {term}, another at {known[0]}",
                )

    def _applied(self, s: Server) -> None:
        key = id(s)
        start = self._cursors.get(key, 0)
        for entry, _ in s.applied[start:]:
            mine = (entry.term, entry.kind, entry.key, entry.value, entry.client_id, entry.op_id)
            other = self.applied.setdefault(entry.index, mine)
            if other != mine:
                self._fail(
                    "State Machine Safety",
                    f"{s.name} applied {mine} at index {entry.index}, another server {other}",
                )
        self._cursors[key] = len(s.applied)

    def _stores(self) -> None:
        by_applied: dict[int, tuple[int, Server]] = {}
        for sid, s in self.sim.nodes.items():
            first = by_applied.setdefault(s.last_applied, (sid, s))
            other = first[1]
            if other is s:
                continue
            if other.kv.data != s.kv.data or _table(other) != _table(s):
                self._fail(
                    "State Machine Safety",
                    f"server{first[0]} and server{sid} both applied up to index "
                    f"{s.last_applied} but hold different stores or duplicate tables",
                )

    def _log_matching(self) -> None:
        logs = {sid: s.log for sid, s in self.sim.nodes.items()}
        for (a, la), (b, lb) in combinations(logs.items(), 2):
            low = max(la.snapshot_index, lb.snapshot_index)  # compacted: committed, equal
            for i in range(min(la.last_index, lb.last_index), low, -1):
                if la.term_at(i) == lb.term_at(i):
                    if la.slice(low + 1, i + 1) != lb.slice(low + 1, i + 1):
                        self._fail(
                            "Log Matching",
                            f"server{a} and server{b} agree on index {i} (term {la[i].term}) "
                            "but differ before it",
                        )
                    break


def _table(s: Server) -> dict[str, tuple[int, dict[int, str | None]]]:
    """The duplicate table, without rows a lookup created before anything was applied."""
    return {
        c: (x.acked_below, x.results)
        for c, x in s.kv.sessions.items()
        if x.results or x.acked_below or x.last_op_id
    }


@dataclass(slots=True)
class Outcome:
    """What one explored schedule did (for reports; a violation raises instead)."""

    seed: int
    servers: int
    steps: int
    terms: int
    ok_ops: int
    crashes: int
    partitions: int
    snapshots_installed: int = 0


def explore(
    seed: int,
    servers: int = 5,
    rounds: int = 8,
    steps_per_round: int = 200,
    drop: float = 0.05,
    pre_vote: bool = True,
    check_quorum: bool = True,
    snapshot_every: int = 0,
) -> Outcome:
    """One seeded raft-mode schedule under the monitor; raises SafetyViolation."""
    rng = random.Random(f"explore:{seed}")
    sim = SimCluster(
        servers=servers,
        clients=2,
        seed=seed,
        drop=drop,
        election="raft",
        pre_vote=pre_vote,
        check_quorum=check_quorum,
        snapshot_every=snapshot_every,
    )
    for s in sim.nodes.values():
        s.options.snapshot_chunk_bytes = 24  # a few pairs per chunk: InstallSnapshot in parts
        s.options.election_ticks_min, s.options.election_ticks_max = 6, 12
        s.options.heartbeat_ticks = 2
        s.election_timeout = s._draw_timeout()
    monitor = SafetyMonitor(sim)
    crashes = partitions = 0
    names = [server_name(i) for i in sim.nodes]
    for r in range(rounds):
        event = rng.random()
        if event < 0.3 and len(sim.down) < servers // 2 + 1:
            sim.crash(rng.choice(sorted(set(sim.nodes) - sim.down)))
            crashes += 1
        elif event < 0.5 and sim.down:
            sim.restart(rng.choice(sorted(sim.down)))
        elif event < 0.7:
            _partition(sim, names, rng)
            partitions += 1
        elif event < 0.85:
            sim.cut.clear()
        for _ in range(rng.randint(1, 4)):
            client = rng.choice(sorted(sim.sessions))
            if sim.sessions[client].waiting < 8:
                key = f"k{rng.randint(1, 3)}"
                kind = PUT if rng.random() < 0.6 else GET
                sim.submit(client, kind, key, f"s{seed}r{r}")
        _run(sim, monitor, steps_per_round, rng)
    sim.cut.clear()
    for sid in sorted(sim.down):
        sim.restart(sid)
    _run(sim, monitor, steps_per_round * 2, rng)
    monitor.check(full=True)
    ok = sum(1 for d in sim.delivered.values() for x in d if x.ok)
    installed = sum(s.snapshots_installed for s in sim.nodes.values())
    return Outcome(
        seed, servers, sim.steps, len(monitor.leaders), ok, crashes, partitions, installed
    )


def _partition(sim: SimCluster, names: list[str], rng: random.Random) -> None:
    """Split the servers in two at random (clients keep reaching everyone)."""
    sim.cut.clear()
    side = {n for n in names if rng.random() < 0.5}
    for a in side:
        for b in names:
            if b not in side:
                sim.cut.add(frozenset((a, b)))


def _run(sim: SimCluster, monitor: SafetyMonitor, steps: int, rng: random.Random) -> None:
    every = 2 * len(sim.nodes)  # a tick per round of messages: the network keeps up
    for n in range(steps):
        if n % every == 0 or not sim.network:
            sim.tick()
        sim.step()
        monitor.check(full=n % 50 == 49)
