"""Live clusters in raft mode (``election="raft"``, no coord), and the coord's own failure.

The same public API as coord mode: put/get, fail, fail_leader, restart, pause,
partition, heal, history; plus transfer_leader and timeout_now.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from teachraft.check import check
from teachraft.cluster import Cluster
from teachraft.errors import ClusterError, NoQuorumError
from teachraft.runtime.storage import Storage
from teachraft.tracing.validate import validate_shiviz, validate_trace_output


def raft(servers: int = 3, **kw: object) -> Cluster:
    return Cluster(servers=servers, election="raft", seed=11, **kw)  # type: ignore[arg-type]


def test_raft_cluster_serves_fails_over_and_restarts(tmp_path: Path) -> None:
    with raft(5, persist=True, out_dir=tmp_path) as c:
        assert "coord" not in c.node_names()
        c.put("k", "v1")
        assert c.get("k") == "v1"
        before = c.status()["servers"][c.leader()]
        old = c.fail_leader()
        c.put("k", "v2")  # a new leader was elected with no coord
        new = c.leader()
        assert new not in (0, old)
        saved = Storage.recover(c.data_dir / f"server{old}.log")  # votedFor is on disk
        assert saved is not None
        assert (saved.term, saved.voted_for) == (before["term"], old)
        c.restart(old)
        c.wait_converged(timeout=10)
        assert c.get("k") == "v2"
        st = c.status()
        assert st["election"] == "raft" and st["coord"] == {} and st["leader"] == new
        row = st["servers"][new]
        assert row["role"] == "leader" and row["voted_for"] == new and new in row["votes"]
        assert row["election_tick_ms"] == pytest.approx(10.0)
        for key in ("election_timeout_ms", "election_elapsed_ms", "pre_votes", "transferee"):
            assert key in row
        snap = c.snapshot()
        assert snap.election == "raft" and snap.leader == new and snap.term == row["term"]
        assert check(c.history(), "kv").ok


def test_transfer_leader_and_timeout_now() -> None:
    with raft(5) as c:
        c.put("k", "v")
        leader = c.leader()
        target = 1 if leader != 1 else 2
        c.transfer_leader(target)
        assert c.leader() == target
        c.put("k", "w")
        assert c.get("k") == "w"
        follower = 3 if target != 3 else 4
        c.timeout_now(follower)  # PreVote: the leader's followers are in its lease
        time.sleep(0.3)
        assert c.leader() == target
        with pytest.raises(ClusterError, match="not running"):
            c.fail(follower)
            c.timeout_now(follower)


def test_a_leader_cut_from_the_majority_steps_down_and_the_majority_serves() -> None:
    with raft(5) as c:
        c.put("k", "v")
        old = c.leader()
        others = [s for s in range(1, 6) if s != old]
        c.partition([old], others)
        c.put("k", "w")
        c.wait_until(
            lambda: c.servers[old].core.role != "leader", 3.0, "the cut-off leader kept leading"
        )
        c.heal()
        c.wait_converged(timeout=10)
        assert c.get("k") == "w"


def test_no_quorum_is_reported_within_bounded_time() -> None:
    with raft(3, clients=1) as c:
        c.put("k", "v")
        leader = c.leader()
        for sid in (1, 2, 3):
            if sid != leader:
                c.fail(sid)  # the leader is left alone: it steps down (CheckQuorum)
        started = time.monotonic()
        with pytest.raises(NoQuorumError, match="no quorum"):
            c.put("k", "w")
        assert time.monotonic() - started < 5.0


def test_pause_a_raft_leader_and_resume_it() -> None:
    with raft(3) as c:
        c.put("k", "v")
        old = c.leader()
        c.pause(old)
        c.put("k", "w")
        assert c.leader() != old
        c.resume(old)
        c.wait_converged(timeout=10)
        assert c.servers[old].core.role == "follower"


def test_raft_trace_is_valid_for_shiviz(tmp_path: Path) -> None:
    with raft(3, tracing=True, out_dir=tmp_path) as c:
        c.put("k", "v")
        leader = c.leader()
        c.transfer_leader(1 if leader != 1 else 2)
        c.fail_leader()
        c.put("k", "w")
        c.flush_traces()
        table = c.events()
        tags = set(c.call_in_loop(lambda: [e.tag for e in table]))
    for tag in ("RequestVoteRequestSent", "RequestVoteResponseRecvd", "LeaderElected"):
        assert tag in tags
    assert "TimeoutNowRecvd" in tags and "ElectionTimeout" in tags
    trace, shiviz = tmp_path / "trace_output.log", tmp_path / "shiviz_output.log"
    assert validate_shiviz(shiviz.read_text()) == []
    assert validate_trace_output(trace.read_text()) == []


def test_raft_mode_refuses_coord_faults_and_coord_mode_refuses_elections() -> None:
    with raft(3) as c, pytest.raises(ClusterError, match="no coord"):
        c.fail("coord")
    with Cluster(servers=3) as c, pytest.raises(ClusterError, match="election='raft'"):
        c.transfer_leader(2)
    with pytest.raises(ClusterError, match="election must be"):
        Cluster(servers=3, election="paxos")
    with pytest.raises(ClusterError, match="the coord's"):
        Cluster(servers=3, election="raft", unsafe_leader_selection=True)


def test_coord_failure_serves_until_the_leader_fails_then_says_why() -> None:
    with Cluster(servers=3) as c:
        c.put("k", "v")
        c.fail("coord")
        c.put("k", "w")  # the leader still serves without the coord
        assert c.get("k") == "w"
        st = c.status()
        assert st["coord"]["phase"] == "failed" and "coord down" in st["problems"]
        c.fail_leader()
        with pytest.raises(ClusterError, match="only the coord detects failures"):
            c.put("k", "x")
