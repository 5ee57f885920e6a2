"""Snapshots and log compaction (Raft §7): the log, the server, storage and a live cluster."""

from __future__ import annotations

import pytest

from teachraft.core.kv import KVStore
from teachraft.core.log import NOOP, PUT, Entry, Log
from teachraft.core.messages import ClientRequest, InstallSnapshot, LeaderFailOver
from teachraft.core.server import FOLLOWER, LEADER, Server, ServerOptions
from teachraft.core.snapshot import Snapshot
from teachraft.runtime.storage import Storage, StorageCorrupt
from teachraft.safety import SafetyViolation, explore
from teachraft.sim import SimCluster
from teachraft.tracing.tracer import NullTracer


def _put(index: int, term: int = 1, op: int = 0) -> Entry:
    return Entry(term, index, PUT, f"k{index}", f"v{index}", "c1", op or index, 0)


# ------------------------------------------------------------------------ the log


def test_a_compacted_log_keeps_raft_indexes() -> None:
    log = Log([_put(i) for i in range(1, 11)])
    log.compact(6, 1)
    assert (log.snapshot_index, log.snapshot_term, log.first_index, log.last_index) == (6, 1, 7, 10)
    assert log.term_at(6) == 1 and log.term_at(5) is None and log.term_at(11) is None
    assert log[7] == _put(7) and [e.index for e in log.slice(7, 9)] == [7, 8]
    with pytest.raises(IndexError, match="compacted"):
        log[5]
    with pytest.raises(IndexError, match="compacted"):
        log.slice(6)
    log.replace_suffix(9, [_put(9, term=2)])
    assert [e.term for e in log.user_entries()] == [1, 1, 2]


def test_compacting_to_a_snapshot_the_log_disagrees_with_drops_the_whole_log() -> None:
    log = Log([_put(i) for i in range(1, 5)])
    log.compact(3, 2)  # the log's entry 3 has term 1: InstallSnapshot rule 7
    assert log.user_entries() == [] and (log.last_index, log.last_term) == (3, 2)


def test_logs_compacted_at_different_points_are_the_same_log() -> None:
    a, b = Log([_put(i) for i in range(1, 9)]), Log([_put(i) for i in range(1, 9)])
    a.compact(5, 1)
    b.compact(2, 1)
    assert a.same_as(b) and b.same_as(a)
    b.replace_suffix(8, [_put(8, term=3)])
    assert not a.same_as(b)


# --------------------------------------------------------------------- the server


def _leader(snapshot_every: int) -> Server:
    """A lone server made leader of term 1 by the coord: it commits on its own."""
    s = Server(1, NullTracer(), ServerOptions(snapshot_every=snapshot_every))
    s.step(LeaderFailOver(1, 0, [], 1, b""))
    s.take()
    return s


class _Responder:
    def __init__(self) -> None:
        self.replies: list[object] = []


def test_a_retry_of_a_compacted_op_is_answered_from_the_snapshot_not_applied_again() -> None:
    s = _leader(snapshot_every=2)
    r = _Responder()
    for op in (1, 2, 3):
        s.step(ClientRequest("c1", op, PUT, "k", f"v{op}", 0, b""), r)
        s.flush()  # no peers: the leader commits alone
    assert s.log.snapshot_index >= 2 and s.snapshot is not None
    applied = s.kv.applied_ops
    s.step(ClientRequest("c1", 1, PUT, "k", "v1", 0, b""), r)  # the retry of op 1
    assert s.kv.applied_ops == applied and s.duplicates_answered == 1
    assert s.kv.data["k"] == "v3"  # op 1 did not overwrite a later put
    follower = Server(2, NullTracer())
    follower.restore(1, [], snapshot=s.snapshot)
    assert follower.kv.cached("c1", 1) == (True, None)


def test_a_follower_installs_a_snapshot_sent_in_chunks_and_keeps_a_matching_suffix() -> None:
    kv = KVStore()
    for i in range(1, 6):
        kv.apply(_put(i))
    snap = kv.snapshot(5, 1)
    f = Server(2, NullTracer(), ServerOptions())
    f.restore(1, [_put(i) for i in range(1, 8)])  # holds 1-7, committed none
    assert len(snap.chunk(0, 10)[0]) < snap.size  # 10 bytes: more than one chunk
    offset = 0
    while offset < snap.size:
        pairs, sessions = snap.chunk(offset, 10)
        done = offset + len(pairs) + len(sessions) == snap.size
        f.step(InstallSnapshot(1, 1, 5, 1, offset, pairs, sessions, done, b""))
        offset += len(pairs) + len(sessions)
    assert f.role == FOLLOWER and f.log.snapshot_index == 5
    assert [e.index for e in f.log.user_entries()] == [6, 7]  # the suffix agreed: kept
    assert f.kv.data == {f"k{i}": f"v{i}" for i in range(1, 6)} and f.last_applied == 5
    f.step(InstallSnapshot(1, 1, 5, 1, 3, [("x", "y")], [], True, b""))  # a stale chunk
    assert "x" not in f.kv.data


def test_an_out_of_order_chunk_is_refused_with_the_offset_expected() -> None:
    f = Server(2, NullTracer(), ServerOptions())
    f.restore(1, [])
    f.step(InstallSnapshot(1, 1, 9, 1, 0, [("a", "1")], [], False, b""))
    f.take()
    f.step(InstallSnapshot(1, 1, 9, 1, 4, [("e", "5")], [], True, b""))
    (reply,) = [e.msg for e in f.take()]
    assert (reply.offset, reply.installed) == (1, False) and f.log.snapshot_index == 0


def test_restore_refuses_a_log_with_a_gap_after_its_snapshot() -> None:
    s = Server(1, NullTracer())
    with pytest.raises(ValueError, match="gap"):
        s.restore(1, [_put(9)], snapshot=Snapshot(5, 1, [], []))
    with pytest.raises(ValueError, match="no snapshot"):
        s.restore(1, [_put(3)])


# ----------------------------------------------------------------- simulated runs


@pytest.mark.parametrize("servers", [3, 5])
def test_seeded_schedules_with_compaction_keep_every_safety_property(servers: int) -> None:
    """Crashes, restarts, loss and partitions while logs compact every 3 entries.

    A restarted or cut-off server catches up by InstallSnapshot, sent a few pairs
    per chunk; the monitor also checks that servers which applied the same
    prefix hold the same store and duplicate table.
    """
    installed = 0
    for seed in range(25):
        outcome = explore(seed, servers=servers, rounds=8, snapshot_every=3)
        installed += outcome.snapshots_installed
    assert installed >= 10


def test_the_monitor_catches_a_snapshot_that_drops_the_duplicate_table(monkeypatch) -> None:
    restore = KVStore.restore

    def forgetful(self: KVStore, snapshot: Snapshot) -> None:
        restore(self, snapshot)
        self.sessions = {}

    monkeypatch.setattr(KVStore, "restore", forgetful)
    with pytest.raises(SafetyViolation, match="duplicate table"):
        for seed in range(25):
            explore(seed, servers=3, rounds=8, snapshot_every=3)


def test_coord_mode_compacts_and_a_cut_off_follower_catches_up_by_snapshot() -> None:
    sim = SimCluster(servers=3, clients=1, seed=4, snapshot_every=5)
    sim.run()
    sim.cut.update({frozenset(("server1", "server3")), frozenset(("server2", "server3"))})
    for i in range(30):
        sim.submit("1", PUT, f"k{i % 4}", str(i))
        sim.run()
    leader = sim.nodes[sim.coord.leader]
    assert leader.role == LEADER and leader.log.snapshot_index >= 25
    sim.cut.clear()
    assert sim.run_until(lambda: sim.nodes[3].last_applied == leader.last_applied)
    assert sim.nodes[3].snapshots_installed >= 1
    assert sim.nodes[3].kv.data == leader.kv.data
    assert all(e.kind != NOOP or e.index > 25 for e in sim.nodes[3].log.user_entries())


# ----------------------------------------------------------------------- storage


def _persisted(tmp_path, snapshot_every: int = 4) -> tuple[Server, Storage]:
    s = _leader(snapshot_every)
    storage = Storage(tmp_path / "server1.log", fsync=False)
    s.options.persist = True
    r = _Responder()
    for op in range(1, 11):
        s.step(ClientRequest("c1", op, PUT, f"k{op % 3}", f"v{op}", 0, b""), r)
        s.flush()
        storage.write([e for e in s.take() if type(e).__name__ == "Persist"])
    return s, storage


def test_a_restart_reloads_the_snapshot_and_the_entries_after_it(tmp_path) -> None:
    s, storage = _persisted(tmp_path)
    storage.close()
    saved = Storage.recover(tmp_path / "server1.log")
    assert saved is not None and saved.snapshot == s.snapshot
    again = Server(1, NullTracer())
    again.restore(saved.term, saved.entries, snapshot=saved.snapshot)
    assert again.log.same_as(s.log) and again.log.snapshot_index == 8
    assert again.kv.data == dict(s.snapshot.pairs)
    assert again.kv.cached("c1", 1) == s.kv.cached("c1", 1)


def test_a_crash_between_the_snapshot_and_the_log_rewrite_loses_nothing(tmp_path) -> None:
    s, storage = _persisted(tmp_path)
    storage.close()
    old_log = (tmp_path / "server1.log").read_bytes()
    s.step(ClientRequest("c1", 11, PUT, "k", "v11", 0, b""), _Responder())
    s.flush()
    s._take_snapshot()  # a new snapshot reaches disk; the crash comes before the log rewrite
    storage = Storage(tmp_path / "server1.log", fsync=False)
    storage.write([e for e in s.take() if type(e).__name__ == "Persist"])
    storage.close()
    (tmp_path / "server1.log").write_bytes(old_log)
    saved = Storage.recover(tmp_path / "server1.log")
    assert saved is not None
    again = Server(1, NullTracer())
    again.restore(saved.term, saved.entries, snapshot=saved.snapshot)
    assert again.log.snapshot_index == s.last_applied and again.kv.data["k"] == "v11"


def test_a_damaged_snapshot_refuses_the_restart_with_one_clear_message(tmp_path) -> None:
    _, storage = _persisted(tmp_path)
    storage.close()
    snap = tmp_path / "server1.snap"
    data = bytearray(snap.read_bytes())
    data[-3] ^= 0xFF
    snap.write_bytes(bytes(data))
    with pytest.raises(StorageCorrupt, match=r"corrupt snapshot .*move it and the log"):
        Storage.recover(tmp_path / "server1.log")


# --------------------------------------------------------------------- live cluster


@pytest.mark.slow
def test_a_restarted_server_catches_up_by_install_snapshot_live(make_cluster, tmp_path) -> None:
    c = make_cluster(servers=3, persist=True, data_dir=tmp_path / "data", snapshot_every=20)
    c.put("first", "1")
    victim = next(sid for sid in (1, 2, 3) if sid != c.leader())
    c.fail(victim)
    for i in range(120):
        c.put(f"k{i % 7}", str(i), client=1)
    c.restart(victim)
    c.wait_converged(timeout=20)
    status = c.status()["servers"]
    assert status[victim]["snapshot_index"] >= 100
    assert c.kv(victim) == c.kv(c.leader())
    assert c.get("first") == "1" and c.get("k0") == "119"
    tags = [e.tag for e in c.events()]
    assert "SnapshotTaken" in tags and "SnapshotInstalled" in tags
    received = tags.count("InstallSnapshotRequestRecvd")  # sends to the failed server are lost
    assert 1 <= received <= tags.count("InstallSnapshotRequestSent")
    assert tags.count("InstallSnapshotResponseRecvd") >= 1
    assert (tmp_path / "data" / f"server{victim}.snap").exists()
    c.fail(victim)  # and once more from its own snapshot on disk
    c.restart(victim)
    c.wait_converged(timeout=20)
    assert c.kv(victim) == c.kv(c.leader())


def test_snapshot_every_must_be_a_count(make_cluster) -> None:
    from teachraft.cluster import Cluster
    from teachraft.errors import ClusterError

    with pytest.raises(ClusterError, match="snapshot_every must be a whole number"):
        Cluster(snapshot_every=-1)
