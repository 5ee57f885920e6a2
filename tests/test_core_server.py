"""Scripted transcripts for one Server machine, rule by rule (Raft paper, Figure 2)."""

from __future__ import annotations

from teachraft.core.effects import Reply, Send
from teachraft.core.log import NOOP, PUT, Entry
from teachraft.core.messages import (
    AppendEntries,
    AppendEntriesReply,
    ClientRequest,
    JoinResponse,
    LeaderFailOver,
    ServerLogStateRequest,
)
from teachraft.core.server import LEADER, Server
from teachraft.tracing.sinks import MemorySink
from teachraft.tracing.tracer import NullTracer, Tracer

PEERS = [(1, "a1"), (2, "a2"), (3, "a3")]


def follower(sid: int = 2, term: int = 1) -> Server:
    s = Server(sid, NullTracer())
    s.join_response(JoinResponse(server_id=sid, leader=1, peers=PEERS, term=term, token=b""))
    s.take()
    return s


def leader() -> Server:
    s = Server(1, NullTracer())
    s.join_response(JoinResponse(server_id=1, leader=1, peers=PEERS, term=1, token=b""))
    s.take()
    return s


def e(term: int, index: int, key: str = "k") -> Entry:
    return Entry(term, index, PUT, key, f"v{index}", "c", index, 0)


def ae(
    term: int, prev: int, prev_term: int, entries: list[Entry], commit: int = 0
) -> AppendEntries:
    return AppendEntries(
        term=term,
        leader_id=1,
        prev_log_index=prev,
        prev_log_term=prev_term,
        entries=entries,
        leader_commit=commit,
        token=b"",
    )


def replies(s: Server) -> list[AppendEntriesReply]:
    return [
        x.msg for x in s.take() if isinstance(x, Send) and isinstance(x.msg, AppendEntriesReply)
    ]


def test_rule1_reject_a_lower_term() -> None:
    s = follower(term=3)
    s.append_entries(ae(2, 0, 0, [e(2, 1)]))
    (r,) = replies(s)
    assert not r.success and r.term == 3 and s.log.last_index == 0


def test_rule2_reject_when_prev_entry_term_differs_with_a_hint() -> None:
    s = follower()
    s.append_entries(ae(1, 0, 0, [e(1, 1), e(1, 2)]))
    replies(s)
    s.append_entries(ae(2, 2, 2, [e(2, 3)]))
    (r,) = replies(s)
    assert not r.success and r.conflict_index == 1  # first index of term 1 at index 2


def test_rule3_delete_a_conflicting_suffix_but_never_on_a_match() -> None:
    s = follower()
    s.append_entries(ae(1, 0, 0, [e(1, 1), e(1, 2), e(1, 3)]))
    replies(s)
    s.append_entries(ae(1, 0, 0, [e(1, 1)]))  # a stale, reordered AppendEntries
    assert s.log.last_index == 3, "a matching prefix must not truncate the log"
    s.append_entries(ae(2, 1, 1, [e(2, 2, "x")]))
    assert [x.term for x in s.log.user_entries()] == [1, 2]


def test_rule5_commit_is_min_of_leader_commit_and_last_new_entry() -> None:
    s = follower()
    s.append_entries(ae(1, 0, 0, [e(1, 1), e(1, 2)], commit=5))
    assert s.commit_index == 2 and s.last_applied == 2
    assert s.kv.data == {"k": "v2"}


def test_leader_walks_next_index_back_and_repairs() -> None:
    s = leader()
    for i in range(1, 4):
        s.client_request(ClientRequest("c", i, PUT, "k", str(i), 0, b""), responder=i)
    s.flush()
    s.take()
    pr = s.progress[2]
    assert pr.next_index == 4  # pipelined: sent without waiting for replies
    s.append_entries_reply(
        AppendEntriesReply(
            term=1, server_id=2, success=False, match_index=0, conflict_index=1, token=b""
        )
    )
    sends = [x.msg for x in s.take() if isinstance(x, Send)]
    assert pr.next_index == 4 and sends[0].prev_log_index == 0 and len(sends[0].entries) == 3


def test_commit_needs_a_majority_and_the_current_term_figure_8() -> None:
    s = Server(1, NullTracer())
    s.log.append(e(1, 1))  # an entry of an older term
    s.leader_failover(
        LeaderFailOver(server_id=1, failed_leader_id=3, peers=PEERS, term=2, token=b"")
    )
    s.take()
    assert s.role == LEADER and s.log[2].kind == NOOP and s.log[2].term == 2
    s.append_entries_reply(
        AppendEntriesReply(
            term=2, server_id=2, success=True, match_index=1, conflict_index=0, token=b""
        )
    )
    assert s.commit_index == 0, "an old-term entry alone never commits (Figure 8)"
    s.append_entries_reply(
        AppendEntriesReply(
            term=2, server_id=2, success=True, match_index=2, conflict_index=0, token=b""
        )
    )
    assert s.commit_index == 2


def test_fenced_server_rejects_the_old_leader() -> None:
    s = follower(term=1)
    s.log_state_request(ServerLogStateRequest(term=2, fence=True, token=b""))
    s.take()
    s.append_entries(ae(1, 0, 0, [e(1, 1)]))
    (r,) = replies(s)
    assert not r.success and r.term == 2


def test_duplicate_is_answered_from_the_cache_without_a_second_entry() -> None:
    s = leader()
    req = ClientRequest(
        client_id="c", op_id=1, kind=PUT, key="k", value="v", acked_below=0, token=b""
    )
    s.client_request(req, responder="first")
    s.append_entries_reply(
        AppendEntriesReply(
            term=1, server_id=2, success=True, match_index=1, conflict_index=0, token=b""
        )
    )
    s.take()
    s.client_request(req, responder="retry")
    answers = [x for x in s.take() if isinstance(x, Reply)]
    assert [a.responder for a in answers] == ["retry"] and answers[0].msg.ok
    assert s.log.last_index == 1 and s.duplicates_answered == 1


def test_actions_use_the_original_tags() -> None:
    sink = MemorySink()
    s = Server(1, Tracer("server1", sink))
    s.start("a1", "h1")
    s.join_response(JoinResponse(server_id=1, leader=1, peers=PEERS, term=1, token=b""))
    tags = [r.tag for r in sink]
    assert tags[:3] == ["CreateTrace", "ServerStart", "ServerJoining"]
    assert "ServerJoined" in tags and "BecameLeader" in tags


def test_node_names_parse_in_one_place() -> None:
    from teachraft.core.server import server_id_of

    assert server_id_of("server3") == 3 and server_id_of("server12") == 12
    assert [server_id_of(n) for n in ("coord", "client1", "server", "server³", "srv3")] == [
        None
    ] * 5


def test_a_machine_refuses_an_input_it_does_not_serve() -> None:
    import pytest

    from teachraft.core.machine import NotServed
    from teachraft.core.messages import GetLeader

    with pytest.raises(NotServed, match="server2 does not serve GetLeader"):
        follower().step(GetLeader(client_id="c", client_addr="", token=b""))


def test_peers_never_include_the_server_itself() -> None:
    s = follower(sid=2)
    assert sorted(s.peers) == [1, 3] and s.majority == 2
