"""The pure core under a seeded simulated network: Raft's safety properties, exhaustively.

These tests run the real ``Server``, ``Coord`` and ``ClientSession`` machines
with no sockets, over hundreds of seeded schedules with lost messages and
crashes, and check the properties of the Raft paper (Figure 3) plus KVRaft's
duplicate detection.
"""

from __future__ import annotations

import pytest

from teachraft.core.log import GET, NOOP, PUT
from teachraft.sim import SimCluster


def _live(sim: SimCluster) -> list:
    return [s for i, s in sim.nodes.items() if i not in sim.down]


def _converged(sim: SimCluster) -> bool:
    live = _live(sim)
    first = live[0].log.entries
    return all(s.log.entries == first and s.last_applied == s.log.last_index for s in live)


def _do(sim: SimCluster, kind: int, key: str, value: str = "") -> object:
    op = sim.submit("1", kind, key, value)
    assert sim.run_until(lambda: len(sim.delivered["1"]) >= op, 400_000), sim.coord.status()
    return sim.delivered["1"][-1]


def _workload(sim: SimCluster, pairs: int, crash_at: int | None = None) -> None:
    """The original's put/get pairs, one at a time; optionally crash the leader midway."""
    assert sim.run_until(sim.serving)
    for i in range(pairs):
        if i == crash_at:
            sim.crash(sim.coord.leader)
        put = _do(sim, PUT, f"k{i}", f"val{i}")
        assert put.ok, put
        got = _do(sim, GET, f"k{i}")
        assert got.ok and got.value == f"val{i}", got


def test_normal_operation_every_get_sees_its_put_and_logs_agree() -> None:
    sim = SimCluster(servers=5, seed=1)
    _workload(sim, 20)
    assert sim.run_until(lambda: _converged(sim))
    listing = [e.describe() for e in sim.nodes[1].log.user_entries()]
    assert listing[:4] == ["Put(k0,val0)", "Get(k0)", "Put(k1,val1)", "Get(k1)"]
    assert all(s.kv.applied_ops == 40 for s in sim.nodes.values())


@pytest.mark.parametrize("servers", [3, 5, 7])
def test_leader_crash_under_message_loss_loses_nothing_and_applies_once(servers: int) -> None:
    for seed in range(60):
        sim = SimCluster(servers=servers, seed=seed, drop=0.2, lost_msgs_thresh=10)
        _workload(sim, 12, crash_at=5)
        assert sim.run_until(lambda sim=sim: _converged(sim)), seed
        for s in _live(sim):
            assert s.kv.applied_ops == 24, (seed, s.server_id)
            ops = [(e.client_id, e.op_id) for e in s.log.user_entries() if e.kind != NOOP]
            assert len(ops) == len(set(ops)), f"seed {seed}: an op is in the log twice"


def test_new_leader_noop_sits_in_new_term_after_old_entries() -> None:
    sim = SimCluster(servers=5, seed=3)
    _workload(sim, 20, crash_at=14)
    assert sim.run_until(lambda: _converged(sim))
    entries = _live(sim)[0].log.user_entries()
    noops = [e for e in entries if e.kind == NOOP]
    assert len(noops) == 1
    noop = noops[0]
    assert noop.term == 2
    before = entries[noop.index - 2]
    assert before.term == 1 and noop.index == before.index + 1
    assert all(e.term == 2 for e in entries[noop.index - 1 :])


def test_state_machine_safety_committed_prefixes_never_disagree() -> None:
    """No two servers ever apply different entries at one index (Figure 3)."""
    for seed in range(40):
        sim = SimCluster(servers=5, seed=seed, drop=0.15, lost_msgs_thresh=6)
        _workload(sim, 8, crash_at=3)
        applied = [s.applied for s in sim.nodes.values()]
        for i in range(max(len(a) for a in applied)):
            seen = {a[i][0] for a in applied if len(a) > i}
            assert len(seen) == 1, f"seed {seed}: index {i + 1} applied differently"


def test_duplicate_op_id_is_answered_from_the_cache() -> None:
    sim = SimCluster(servers=3, seed=5)
    assert sim.run_until(sim.serving)
    _do(sim, PUT, "a", "1")
    leader = sim.nodes[sim.coord.leader]
    session = sim.sessions["1"]
    # Resend op 1 by hand: the leader must answer it without a second entry.
    session.ops[1] = session.ops.get(1) or _pending(session, 1)
    session._send(session.ops[1])
    sim._drain("1", session)
    sim.run(max_steps=200)
    assert [e.op_id for e in leader.log.user_entries()] == [1]
    assert leader.kv.applied_ops == 1


def _pending(session: object, op_id: int) -> object:
    from teachraft.core.client import PendingOp

    return PendingOp(op_id, PUT, "a", "1", session.tracer.create_trace())


def _acked_writes_lost(unsafe: bool, seed: int) -> int:
    """Cut the leader from the coord only, keep writing through it, count lost acked puts."""
    sim = SimCluster(servers=5, seed=seed, unsafe_leader_selection=unsafe)
    assert sim.run_until(sim.serving)
    _do(sim, PUT, "x", "0")
    sim.cut.add(frozenset(("coord", "server1")))
    acked = []
    for i in range(40):
        d = _do(sim, PUT, "x", str(i + 1))
        if d.ok:
            acked.append(d.op_id)
    assert sim.run_until(lambda: sim.coord.phase == "serving" and sim.coord.leader != 1)
    sim.cut.clear()
    _do(sim, GET, "x")
    sim.run_until(lambda: _converged(sim), 200_000)
    final = {e.op_id for e in sim.nodes[sim.coord.leader].log.user_entries()}
    return sum(1 for op in acked if op not in final)


def test_fenced_selection_never_loses_an_acknowledged_write() -> None:
    assert sum(_acked_writes_lost(False, seed) for seed in range(30)) == 0


def test_unsafe_selection_loses_acknowledged_writes() -> None:
    """The original's hole, switched back on: some schedule must lose an acked write."""
    assert sum(_acked_writes_lost(True, seed) for seed in range(30)) > 0


def test_no_quorum_is_reported_to_clients() -> None:
    sim = SimCluster(servers=3, seed=2)
    assert sim.run_until(sim.serving)
    _do(sim, PUT, "a", "1")
    sim.crash(2)
    sim.crash(3)
    d = _do(sim, PUT, "a", "2")
    assert not d.ok and d.error.startswith("no quorum")
    assert sim.coord.phase == "no quorum"
