"""Raft's own elections (``election="raft"``), machine by machine: transcripts over a tiny network.

The servers are the real ``Server`` machines; ``Net`` only carries their
``Send`` effects to each other (minus cut links) until nothing is in flight.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from teachraft.core.client import ClientSession, RequestDone, RequestFailed
from teachraft.core.effects import Deliver, Persist, Reply, Send, SendRequest
from teachraft.core.log import NOOP, PUT, Entry
from teachraft.core.messages import ClientReply, ClientRequest, RequestVote, RequestVoteReply
from teachraft.core.server import (
    CANDIDATE,
    FOLLOWER,
    LEADER,
    PRECANDIDATE,
    Configure,
    ElectNow,
    Server,
    ServerOptions,
    TransferLeader,
)
from teachraft.runtime.storage import Storage
from teachraft.safety import SafetyViolation, explore
from teachraft.tracing.sinks import MemorySink
from teachraft.tracing.tracer import NullTracer, Tracer


@dataclass
class Net:
    """Carries Send effects between raft-mode servers; ``cut`` holds blocked pairs."""

    servers: dict[int, Server]
    cut: set[frozenset[int]] = field(default_factory=set)
    sent: list[tuple[int, int, object]] = field(default_factory=list)

    def isolate(self, sid: int) -> None:
        for other in self.servers:
            if other != sid:
                self.cut.add(frozenset((sid, other)))

    def deliver(self, rounds: int = 200) -> None:
        for _ in range(rounds):
            moved = False
            for sid, s in self.servers.items():
                s.flush()
                for eff in s.take():
                    if not isinstance(eff, Send):
                        continue
                    dst = int(eff.dest.removeprefix("server"))
                    self.sent.append((sid, dst, eff.msg))
                    if frozenset((sid, dst)) in self.cut:
                        continue
                    self.servers[dst].step(eff.msg)
                    moved = True
            if not moved:
                return

    def tick(self, n: int = 1, only: list[int] | None = None) -> None:
        for _ in range(n):
            for sid, s in self.servers.items():
                if only is None or sid in only:
                    s.tick()
            self.deliver()

    def leaders(self) -> list[int]:
        return [sid for sid, s in self.servers.items() if s.role == LEADER]


def options(**kw: object) -> ServerOptions:
    base: dict[str, object] = {
        "election": "raft",
        "election_ticks_min": 10,
        "election_ticks_max": 20,
        "heartbeat_ticks": 2,
    }
    base.update(kw)
    return ServerOptions(**base)  # type: ignore[arg-type]


def net(n: int = 3, seed: int = 1, tracer: bool = False, **kw: object) -> Net:
    rng = random.Random(seed)
    servers = {
        i: Server(
            i,
            Tracer(f"server{i}", MemorySink()) if tracer else NullTracer(),
            options(**kw),
            randint=random.Random(rng.random()).randint,
        )
        for i in range(1, n + 1)
    }
    peers = [(i, f"s{i}", f"c{i}") for i in servers]
    for s in servers.values():
        s.step(Configure(peers))
    return Net(servers)


def elect(n: Net, sid: int) -> None:
    n.servers[sid].step(ElectNow())
    n.deliver()
    assert n.leaders() == [sid]


def e(term: int, index: int) -> Entry:
    return Entry(term, index, PUT, "k", f"v{index}", "c", index, 0)


# ------------------------------------------------------------------ elections
def test_a_timed_out_server_is_elected_and_appends_a_noop() -> None:
    n = net(3)
    n.tick(25)  # past every randomized timeout: somebody campaigns and wins
    assert len(n.leaders()) == 1
    leader = n.servers[n.leaders()[0]]
    assert leader.current_term == 1
    assert leader.log[1].kind == NOOP and leader.log[1].term == 1
    for s in n.servers.values():
        assert s.current_term == 1
        assert s.voted_for in (0, leader.server_id)
        assert s.leader_id == leader.server_id
        assert s.commit_index == 1


def test_heartbeats_keep_followers_from_timing_out() -> None:
    n = net(5)
    elect(n, 2)
    n.tick(200)
    assert n.leaders() == [2]
    assert all(s.current_term == 1 for s in n.servers.values())


def test_vote_once_per_term_and_persist_before_replying() -> None:
    s = Server(1, NullTracer(), options(persist=True))
    s.step(Configure([(1, "s1", "c1"), (2, "s2", "c2"), (3, "s3", "c3")]))
    s.take()
    s.step(RequestVote(1, 2, 0, 0, False, False, b""))
    out = s.take()
    kinds = [type(x) for x in out]
    last_persist = len(kinds) - 1 - kinds[::-1].index(Persist)
    assert last_persist < kinds.index(Send)  # the vote is durable before it leaves
    persist = out[last_persist]
    assert isinstance(persist, Persist)
    assert (persist.term, persist.voted_for) == (1, 2)
    reply = next(x.msg for x in out if isinstance(x, Send))
    assert isinstance(reply, RequestVoteReply) and reply.vote_granted
    s.step(RequestVote(1, 3, 5, 1, False, False, b""))
    refused = next(x.msg for x in s.take() if isinstance(x, Send))
    assert isinstance(refused, RequestVoteReply) and not refused.vote_granted
    assert s.voted_for == 2


@pytest.mark.parametrize(
    ("last_term", "last_index", "granted"),
    [(1, 1, False), (2, 1, False), (2, 2, True), (2, 3, True), (3, 1, True)],
)
def test_election_restriction(last_term: int, last_index: int, granted: bool) -> None:
    """§5.4.1: a vote only for a log at least as up to date (last term, then last index)."""
    s = Server(1, NullTracer(), options())
    s.step(Configure([(1, "s1", "c1"), (2, "s2", "c2"), (3, "s3", "c3")]))
    s.restore(2, [e(1, 1), e(2, 2)])
    s.step(RequestVote(3, 2, last_index, last_term, False, False, b""))
    reply = next(x.msg for x in s.take() if isinstance(x, Send))
    assert isinstance(reply, RequestVoteReply)
    assert reply.vote_granted is granted
    assert s.current_term == 3  # the term is adopted either way


def test_a_server_with_a_stale_log_cannot_win() -> None:
    n = net(3, pre_vote=False)
    elect(n, 1)
    n.cut.add(frozenset((1, 3)))
    n.servers[1].step(ClientRequest("c", 1, PUT, "k", "v", 1, b""), "responder")
    n.deliver()
    assert n.servers[2].log.last_index == 2 and n.servers[3].log.last_index == 1
    n.isolate(1)  # the leader is gone; server 3, behind, campaigns first
    n.cut.discard(frozenset((2, 3)))
    n.servers[3].step(ElectNow())
    n.deliver()
    assert n.servers[3].role != LEADER
    for _ in range(100):  # whoever times out next, only server 2 can win
        n.tick(1, only=[2, 3])
        assert n.servers[3].role != LEADER
        if n.servers[2].role == LEADER:
            break
    assert n.servers[2].role == LEADER
    assert n.servers[2].log[2].value == "v"  # the committed entry survived


def test_split_vote_is_resolved_by_randomized_timeouts() -> None:
    n = net(5, pre_vote=False, seed=4)
    # Candidates 1, 2 and 3 start together; 4 hears only 1, 5 hears only 2.
    for a, b in [(1, 2), (1, 3), (2, 3), (1, 5), (2, 4), (3, 4), (3, 5)]:
        n.cut.add(frozenset((a, b)))
    for sid in (1, 2, 3):
        n.servers[sid].step(ElectNow())
    n.deliver()
    assert n.leaders() == []
    assert sorted(s.role for s in n.servers.values()).count(CANDIDATE) == 3
    n.cut.clear()
    n.tick(100)
    assert len(n.leaders()) == 1
    leader = n.servers[n.leaders()[0]]
    assert leader.current_term >= 2
    assert all(s.current_term == leader.current_term for s in n.servers.values())


# ------------------------------------------------------------------- PreVote
def test_prevote_keeps_a_rejoining_server_from_raising_the_term() -> None:
    n = net(5)
    elect(n, 1)
    n.isolate(5)
    n.tick(200)  # server 5 times out again and again, alone
    assert n.servers[5].current_term == 1
    assert n.servers[5].role in (PRECANDIDATE, FOLLOWER)
    n.cut.clear()
    n.tick(30)
    assert n.leaders() == [1]
    assert all(s.current_term == 1 for s in n.servers.values())
    assert n.servers[5].leader_id == 1


def test_without_prevote_a_rejoining_server_deposes_the_leader() -> None:
    n = net(5, pre_vote=False)
    elect(n, 1)
    n.isolate(5)
    n.tick(200)
    assert n.servers[5].current_term > 1
    n.cut.clear()
    n.tick(60)
    assert all(s.current_term > 1 for s in n.servers.values())  # the term moved for everyone
    assert len(n.leaders()) == 1


def test_a_follower_in_its_leaders_lease_refuses_votes() -> None:
    n = net(3, pre_vote=False)
    elect(n, 1)
    n.servers[2].step(RequestVote(5, 3, 10, 5, False, False, b""))
    reply = next(x.msg for x in n.servers[2].take() if isinstance(x, Send))
    assert isinstance(reply, RequestVoteReply) and not reply.vote_granted
    assert n.servers[2].current_term == 1


# --------------------------------------------------------------- CheckQuorum
def test_checkquorum_leader_cut_from_the_majority_steps_down() -> None:
    n = net(5)
    elect(n, 1)
    for other in (2, 3, 4):
        n.cut.add(frozenset((1, other)))
    n.tick(21, only=[1])  # by the second check, one whole period had no majority's answers
    assert n.servers[1].role == FOLLOWER
    assert n.servers[1].current_term == 1  # it steps down without raising the term


def test_without_checkquorum_a_cut_off_leader_stays_leader() -> None:
    n = net(5, check_quorum=False)
    elect(n, 1)
    for other in (2, 3, 4):
        n.cut.add(frozenset((1, other)))
    n.tick(50, only=[1])
    assert n.servers[1].role == LEADER


# ------------------------------------------------------- leadership transfer
def test_transfer_leader_hands_over_with_timeout_now() -> None:
    n = net(5, tracer=True)
    elect(n, 1)
    n.servers[1].step(ClientRequest("c", 1, PUT, "k", "v", 1, b""), "r")
    n.deliver()
    n.servers[1].take()
    n.servers[1].step(TransferLeader(4))
    n.servers[1].step(ClientRequest("c", 2, PUT, "k", "w", 1, b""), "r2")
    refused = [x.msg for x in n.servers[1].outbox if isinstance(x, Reply)]
    assert refused and "handing leadership to server4" in refused[0].error
    assert refused[0].leader == 4 and refused[0].leader_addr == "c4"
    n.deliver()
    assert n.leaders() == [4]
    assert n.servers[4].current_term == 2
    assert n.servers[4].log[2].value == "v"
    tags = [r.tag for r in n.servers[4].tracer.sink.records]  # type: ignore[attr-defined]
    assert "TimeoutNowRecvd" in tags and "LeaderElected" in tags


def test_status_shows_the_election_state() -> None:
    n = net(3)
    elect(n, 2)
    row = n.servers[2].status()
    assert row["role"] == LEADER and row["votes"] and row["voted_for"] == 2
    for key in ("election_timeout", "election_elapsed", "heartbeat_ticks", "transferee"):
        assert key in row
    assert "voted_for" not in Server(1, NullTracer()).status()  # coord mode unchanged


# -------------------------------------------------------------------- clients
def raft_session() -> ClientSession:
    s = ClientSession("1", NullTracer(), raft=True)
    s.set_servers({1: "c1", 2: "c2", 3: "c3"})
    s.start()
    return s


def sent(s: ClientSession) -> list[SendRequest]:
    return [x for x in s.take() if isinstance(x, SendRequest)]


def test_client_follows_a_followers_hint_with_the_same_op_id() -> None:
    s = raft_session()
    s.submit(PUT, "k", "v")
    first = sent(s)[0]
    assert first.address == "c1"
    s.step(RequestDone(ClientReply(1, False, None, "not leader: ...", 3, "c3", b""), 1))
    again = sent(s)[0]
    assert (again.address, again.request.op_id) == ("c3", 1)


def test_client_answers_no_quorum_when_every_server_says_so() -> None:
    s = raft_session()
    s.submit(PUT, "k", "v")
    done: list[Deliver] = []
    asked = []
    for _ in range(10):
        out = s.take()
        done += [x for x in out if isinstance(x, Deliver)]
        reqs = [x for x in out if isinstance(x, SendRequest)]
        if done or not reqs:
            break
        asked.append(reqs[0].address)
        err = "no quorum: server heard from 1 of 3 servers"
        s.step(RequestDone(ClientReply(1, False, None, err, 0, None, b""), reqs[0].attempt))
    assert asked == ["c1", "c2", "c3"]
    assert done and not done[0].ok and done[0].error.startswith("no quorum")


def test_client_skips_an_unreachable_server_that_followers_still_name() -> None:
    s = raft_session()
    s.submit(PUT, "k", "v")
    req = sent(s)[0]
    s.step(RequestFailed(1, "cannot connect to c1", req.attempt))
    probe = sent(s)[0]
    assert probe.address == "c2"
    stale = ClientReply(1, False, None, "not leader: the leader is server1", 1, "c1", b"")
    s.step(RequestDone(stale, probe.attempt))
    assert sent(s)[0].address == "c3"  # not back to the dead server1


# -------------------------------------------------------------------- storage
def test_voted_for_survives_a_restart(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "server1.log"
    st = Storage(path, fsync=False)
    st.write([Persist(3, None, [], 2), Persist(3, None, [e(3, 1)], 2)])
    st.write([Persist(4, None, [], 0)])
    st.close()
    rec = Storage.recover(path)
    assert rec is not None and (rec.term, rec.voted_for, len(rec.entries)) == (4, 0, 1)
    st = Storage(path, fsync=False)
    st.write([Persist(4, None, [], 5)])
    st.close()
    rec = Storage.recover(path)
    assert rec is not None and (rec.term, rec.voted_for) == (4, 5)


# ------------------------------------------------------------- safety (seeded)
@pytest.mark.parametrize("servers", [3, 5, 7])
def test_seeded_schedules_keep_raft_safety(servers: int) -> None:
    """Loss, reordering, crashes, restarts and partitions; the four properties at each step."""
    elections = 0
    for seed in range(250):
        outcome = explore(seed, servers=servers, rounds=6)
        elections += outcome.terms
    assert elections > 250  # the schedules did elect leaders, often more than once


def test_the_safety_monitor_catches_a_missing_election_restriction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Server._vote_refusal

    def no_restriction(self: Server, rv: RequestVote) -> str:
        reason = original(self, rv)
        return "" if reason == "log not up to date" else reason

    monkeypatch.setattr(Server, "_vote_refusal", no_restriction)
    with pytest.raises(SafetyViolation):
        for seed in range(200):
            explore(seed, servers=3)


def test_simulated_split_vote_resolves_in_a_later_term() -> None:
    """Two servers time out together after the leader crashed: a split, then a winner."""
    from teachraft.sim import SimCluster

    sim = SimCluster(servers=5, seed=4, election="raft", pre_vote=False)
    assert sim.run_until(sim.serving, 20_000)
    dead = sim.leader()
    sim.crash(dead)
    first, second = [i for i in sim.nodes if i != dead][:2]
    sim.timeout_now(first)
    sim.timeout_now(second)
    while sim.step():
        pass
    assert sim.leader() == 0
    assert {sim.nodes[first].role, sim.nodes[second].role} == {CANDIDATE}
    split_term = sim.nodes[first].current_term
    assert sim.run_until(sim.serving, 20_000)
    assert sim.nodes[sim.leader()].current_term > split_term


def test_simulated_raft_cluster_runs_until_settled_after_a_crash_and_restart() -> None:
    from teachraft.sim import SimCluster

    sim = SimCluster(servers=5, seed=1, election="raft")
    sim.run()
    assert sim.settled()
    for i in range(5):
        sim.submit("1", PUT, "k", str(i))
    dead = sim.leader()
    sim.crash(dead)
    sim.run()
    assert sim.settled() and sim.leader() not in (0, dead)
    assert [d.ok for d in sim.delivered["1"]] == [True] * 5
    sim.restart(dead)
    sim.run()
    assert sim.settled() and sim.nodes[dead].kv.data == sim.nodes[sim.leader()].kv.data
    assert sim.nodes[dead].last_applied == 7  # two No-Ops, five puts (sent concurrently)
