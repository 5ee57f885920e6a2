"""Scripted transcripts for kvslib's ClientSession: op ids, retry, failover, order.

A retried op keeps its op id, so that the servers' duplicate detection answers
it from their cache instead of applying it twice (KVRaft's exactly-once rule).
Messages are built by keyword; the effects are read from ``take()``.
"""

from __future__ import annotations

from teachraft.core.client import AskLeader, ClientSession, Deliver, SendRequest
from teachraft.core.log import GET, PUT
from teachraft.core.messages import ClientReply, LeaderInfo
from teachraft.tracing.tracer import NullTracer


def info(leader: int, addr: str | None, term: int = 1, error: str = "") -> LeaderInfo:
    return LeaderInfo(leader=leader, leader_addr=addr, term=term, error=error, token=b"")


def ok(op_id: int, value: str | None = None) -> ClientReply:
    return ClientReply(
        op_id=op_id, ok=True, value=value, error="", leader=1, leader_addr=None, token=b""
    )


def refused(op_id: int, error: str, leader: int = 0, addr: str | None = None) -> ClientReply:
    return ClientReply(
        op_id=op_id, ok=False, value=None, error=error, leader=leader, leader_addr=addr, token=b""
    )


def effects(s: ClientSession, kind: type) -> list:
    return [e for e in s.take() if isinstance(e, kind)]


def session_with_leader(**kw: int) -> ClientSession:
    s = ClientSession("1", NullTracer(), **kw)
    s.start()
    assert len(effects(s, AskLeader)) == 1
    s.leader_info(info(1, "leader1"))
    return s


def test_ops_wait_for_a_leader_then_go_to_it_in_order() -> None:
    s = ClientSession("1", NullTracer())
    s.start()
    s.take()
    a = s.submit(PUT, "k", "v")
    b = s.submit(GET, "k")
    assert (a, b) == (1, 2) and effects(s, SendRequest) == []
    s.leader_info(info(1, "leader1"))
    sent = effects(s, SendRequest)
    assert [(r.op_id, r.address) for r in sent] == [(1, "leader1"), (2, "leader1")]


def test_a_failed_attempt_is_retried_with_the_same_op_id_after_asking_the_coord() -> None:
    s = session_with_leader()
    s.submit(PUT, "k", "v")
    (first,) = effects(s, SendRequest)
    s.failed(first.op_id, "timed out", attempt=first.attempt)
    assert len(effects(s, AskLeader)) == 1, "no leader known any more: ask the coord"
    s.leader_info(info(1, "leader1"))
    (retry,) = effects(s, SendRequest)
    assert retry.request.op_id == first.request.op_id == 1
    assert retry.attempt == first.attempt + 1


def test_a_late_failure_of_an_earlier_attempt_is_ignored() -> None:
    s = session_with_leader()
    s.submit(PUT, "k", "v")
    (first,) = effects(s, SendRequest)
    s.leader_info(info(2, "leader2"), pushed=True)  # failover: resent to the new leader
    (second,) = effects(s, SendRequest)
    assert second.address == "leader2" and second.request.op_id == 1
    s.failed(1, "connection lost", attempt=first.attempt)  # the old attempt's socket closes
    assert s.take() == [] and s.leader_addr == "leader2"


def test_not_leader_with_a_hint_goes_straight_to_the_hinted_leader() -> None:
    s = session_with_leader()
    s.submit(GET, "k")
    (first,) = effects(s, SendRequest)
    s.reply(refused(1, "not leader", leader=3, addr="leader3"), attempt=first.attempt)
    (retry,) = effects(s, SendRequest)
    assert retry.address == "leader3" and retry.request.op_id == 1 and s.leader == 3


def test_failover_pushed_by_the_coord_resends_every_op_in_flight() -> None:
    s = session_with_leader()
    for i in range(3):
        s.submit(PUT, f"k{i}", "v")
    s.take()
    s.leader_info(info(4, "leader4", term=2), pushed=True)
    resent = effects(s, SendRequest)
    assert [(r.request.op_id, r.address) for r in resent] == [(i, "leader4") for i in (1, 2, 3)]


def test_results_are_delivered_in_op_order_each_exactly_once() -> None:
    s = session_with_leader()
    s.submit(PUT, "k", "v")
    s.submit(GET, "k")
    s.take()
    s.reply(ok(2, "v"))
    assert effects(s, Deliver) == [], "op 2 waits for op 1"
    s.reply(ok(1))
    got = effects(s, Deliver)
    assert [(d.op_id, d.ok, d.value) for d in got] == [(1, True, None), (2, True, "v")]
    s.reply(ok(1))  # a duplicate answer of a retried op
    assert effects(s, Deliver) == []


def test_no_quorum_answers_every_waiting_op_with_that_error() -> None:
    s = session_with_leader()
    s.submit(PUT, "k", "v")
    s.take()
    s.leader_info(info(0, None, error="no quorum: 2 of 5 servers are alive"), pushed=True)
    (d,) = effects(s, Deliver)
    assert not d.ok and d.error.startswith("no quorum") and d.sent


def test_an_op_past_its_deadline_times_out() -> None:
    s = session_with_leader(op_timeout_ticks=2)
    s.submit(PUT, "k", "v")
    s.take()
    s.tick()
    s.tick()
    (d,) = effects(s, Deliver)
    assert not d.ok and d.error == "timed out after 1 attempts"


def test_acked_below_tells_servers_what_they_may_forget() -> None:
    s = session_with_leader()
    s.submit(PUT, "a", "1")
    s.take()
    s.reply(ok(1))
    s.take()
    s.submit(PUT, "b", "2")
    (req,) = effects(s, SendRequest)
    assert req.request.acked_below == 2


def test_an_op_via_a_chosen_server_goes_there_once_and_its_failure_is_its_result() -> None:
    s = session_with_leader()
    s.submit(PUT, "k", "v", via="old-leader")
    (req,) = effects(s, SendRequest)
    assert req.address == "old-leader" and req.request.op_id == 1
    s.reply(refused(1, "not leader: server1 is a follower", leader=2, addr="leader2"))
    (d,) = effects(s, Deliver)
    assert not d.ok and d.error.startswith("not leader") and d.sent
    assert s.leader_addr == "leader1", "a via op's refusal does not redirect the session"


def test_an_op_via_a_server_is_not_resent_on_failover() -> None:
    s = session_with_leader()
    s.submit(GET, "k", via="server-addr")
    s.take()
    s.leader_info(info(2, "leader2"), pushed=True)
    assert effects(s, SendRequest) == []
    s.failed(1, "timed out", attempt=1)
    (d,) = effects(s, Deliver)
    assert not d.ok and d.error == "timed out"
