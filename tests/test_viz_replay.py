"""Replaying trace events into snapshots: the state the topology and logs figures draw.

Small hand-made traces pin down each rule (Raft's AppendEntries consistency
check and conflict rule, commits, roles, faults); the Go original's traces
check that the rules add up to the story its README tells.
"""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import REFERENCE_TRACES

from teachraft.tracing.events import EventTable
from teachraft.tracing.files import load_trace
from teachraft.tracing.sinks import Record
from teachraft.viz.replay import Replay, parse_detail


class Builder:
    """Records with correct own-time clocks, for small hand-made traces."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.times: Counter[str] = Counter()

    def add(self, host: str, tag: str, **body: object) -> Builder:
        self.times[host] += 1
        self.records.append(Record(host, 1, tag, dict(body), {host: self.times[host]}))
        return self

    def table(self) -> EventTable:
        return EventTable(self.records)


def entry(term: int, index: int, key: str = "k", kind: int = 1, op: int = 1) -> dict:
    return {
        "Term": term,
        "Command": {
            "Kind": kind,
            "Key": key,
            "Val": "v",
            "ClientInfo": {"ClientId": "1", "OpId": op},
        },
        "Index": index,
    }


def ae(term: int, prev: int, prev_term: int, entries: list[dict], commit: int) -> dict:
    return {
        "Term": term,
        "LeaderId": 1,
        "PrevLogIndex": prev,
        "PrevLogTerm": prev_term,
        "Entries": entries,
        "LeaderCommit": commit,
    }


def test_follower_appends_and_commits_what_the_leader_sends() -> None:
    b = Builder()
    b.add("server1", "BecameLeader", ServerId=1)
    b.add("server1", "AppendEntriesRequestSent", **ae(1, 0, 0, [entry(1, 1, "a")], 0))
    b.add("server2", "AppendEntriesRequestRecvd", **ae(1, 0, 0, [entry(1, 1, "a")], 0))
    b.add("server1", "PutCommitted", ClientId="1", OpId=1, Key="a", Value="v")
    b.add("server2", "AppendEntriesRequestRecvd", **ae(1, 1, 1, [], 1))
    snap = Replay(b.table()).at()
    leader, follower = snap.servers[1], snap.servers[2]
    assert leader.role == "leader" and snap.leader == 1 and snap.term == 1
    assert [e.describe() for e in follower.log] == ["Put(a,v)"]
    assert (leader.commit_index, follower.commit_index) == (1, 1)


def test_follower_rejects_entries_that_do_not_follow_its_log() -> None:
    b = Builder()
    b.add("server2", "AppendEntriesRequestRecvd", **ae(1, 3, 1, [entry(1, 4)], 3))
    snap = Replay(b.table()).at()
    assert snap.servers[2].log == [] and snap.servers[2].commit_index == 0


def test_a_conflicting_suffix_is_replaced_by_the_new_leaders_entries() -> None:
    b = Builder()
    b.add(
        "server2",
        "AppendEntriesRequestRecvd",
        **ae(1, 0, 0, [entry(1, 1, "a"), entry(1, 2, "b")], 0),
    )
    b.add("server2", "AppendEntriesRequestRecvd", **ae(2, 1, 1, [entry(2, 2, "", kind=0)], 1))
    log = Replay(b.table()).at().servers[2].log
    assert [(e.term, e.describe()) for e in log] == [(1, "Put(a,v)"), (2, "No-Op")]


def test_an_old_terms_append_entries_is_ignored() -> None:
    b = Builder()
    b.add("server2", "AppendEntriesRequestRecvd", **ae(2, 0, 0, [entry(2, 1, "a")], 0))
    b.add("server2", "AppendEntriesRequestRecvd", **ae(1, 0, 0, [entry(1, 1, "z")], 0))
    assert [e.key for e in Replay(b.table()).at().servers[2].log] == ["a"]


def test_failures_restarts_and_leader_changes_set_roles() -> None:
    b = Builder()
    b.add("server1", "BecameLeader", ServerId=1)
    b.add("server2", "BecameFollower", ServerId=2)
    b.add("cluster", "FaultInjected", Kind="fail", Nodes=["server1"], Detail="fail-stop")
    b.add("coord", "ServerFail", ServerId=1)
    b.add("coord", "LeaderFailOver", ServerId=2, FailedLeaderId=1, Peers=None, Term=2)
    b.add("server2", "BecameLeader", ServerId=2)
    during = Replay(b.table()).at()
    assert during.leader == 0, "no leader until the coord's reconfiguration is done"
    b.add("coord", "LeaderReconfigDone", ServerId=2)
    b.add("server1", "ServerRestart", ServerId=1)
    replay = Replay(b.table())
    assert replay.at(3).servers[1].role == "failed"
    final = replay.at()
    assert final.leader == 2 and final.term == 2
    assert final.servers[2].role == "leader" and final.servers[1].role == "follower"
    assert "cluster" not in final.nodes


def test_partitions_and_one_way_cuts_are_replayed() -> None:
    b = Builder()
    for sid in (1, 2, 3):
        b.add(f"server{sid}", "ServerStart", ServerId=sid)
    b.add("coord", "CoordStart")
    b.add("server1", "BecameLeader", ServerId=1)
    groups = '{"groups": [["coord", "server1", "server2"], ["server3"]]}'
    b.add("cluster", "FaultInjected", Kind="partition", Nodes=[], Detail=groups)
    replay = Replay(b.table())
    snap = replay.at()
    assert snap.link("server1", "server3").state == "cut"
    assert [s.sid for s in snap.servers.values() if s.partitioned] == [3]
    b.add("cluster", "FaultHealed", Kind="heal", Nodes=[])
    one_way = '{"a": "server1", "b": "client1", "one_way": true}'
    b.add("cluster", "FaultInjected", Kind="cut", Nodes=["client1", "server1"], Detail=one_way)
    snap = Replay(b.table()).at()
    assert snap.link("server1", "client1").state == "one-way"
    assert snap.link("client1", "server1").state == "up"
    assert not any(s.partitioned for s in snap.servers.values())


def test_fault_details_are_read_without_evaluating_them() -> None:
    assert parse_detail('{"a": "coord", "b": "server1", "one_way": false}') == {
        "a": "coord",
        "b": "server1",
        "one_way": False,
    }
    assert parse_detail("__import__('os')") == {}
    assert parse_detail("{'a': __import__('os')}") == {}
    assert parse_detail("fail-stop") == {}


def test_go_leader_failure_trace_ends_with_a_term_2_no_op_on_the_survivors() -> None:
    table = load_trace(REFERENCE_TRACES / "3Server2ClientLeaderFailure" / "trace_output.log")
    snap = Replay(table).at()
    assert snap.leader == 2 and snap.term == 2
    assert snap.servers[1].role == "failed"
    for sid in (2, 3):
        log = snap.servers[sid].log
        assert (log[4].term, log[4].index, log[4].describe()) == (2, 5, "No-Op")
        assert all(e.term == 1 for e in log[:4]) and all(e.term == 2 for e in log[4:])
    assert snap.link("server2", "server3").sent > 0


@pytest.mark.parametrize("every", [1, 7, 64])
def test_seeking_from_checkpoints_matches_replaying_from_the_start(every: int) -> None:
    table = load_trace(REFERENCE_TRACES / "3Server2ClientFollowerFailure" / "shiviz_output.log")
    straight, seeking = Replay(table, every=10**9), Replay(table, every=every)
    for index in (len(table) - 1, 0, 150, 37, -1, 299):
        a, b = straight.at(index), seeking.at(index)
        assert a.servers == b.servers and a.links == b.links and a.leader == b.leader
