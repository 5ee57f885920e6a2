"""Scripted transcripts for the Coord machine: join, failure detection, fenced selection.

The fenced selection is teachraft's safety fix over the original KVRaft: the
coord raises the term and fences every live server at it *before* it reads
their log states, and it picks a leader only from a fenced majority of all
servers. These transcripts feed the machine one message at a time, built by
keyword, and read the effects it asks for.
"""

from __future__ import annotations

from typing import Any

import pytest

from teachraft.core.coord import (
    FENCING,
    NO_QUORUM,
    NOTIFYING,
    SERVING,
    TRANSITIONS,
    Coord,
    CoordOptions,
    CoordStateError,
    Phase,
)
from teachraft.core.effects import Reply, Send
from teachraft.core.messages import (
    FailOverDone,
    GetLeader,
    JoinResponse,
    LeaderFailOver,
    LeaderInfo,
    ServerJoin,
    ServerJoined,
    ServerLogState,
    ServerLogStateRequest,
)
from teachraft.tracing.tracer import NullTracer


class Box:
    """A responder: the core hands it back in a Reply effect, untouched."""

    def __init__(self, name: str) -> None:
        self.name = name


def serving_coord(n: int = 5, thresh: int = 1, timeout: int = 10) -> Coord:
    """A coord whose n servers joined; server 1 leads term 1; client c1 is known."""
    c = Coord(NullTracer(), CoordOptions(n, thresh, selection_timeout_ticks=timeout))
    c.start()
    for sid in range(1, n + 1):
        join = ServerJoin(
            server_id=sid,
            server_addr=f"s{sid}",
            heartbeat_addr=f"h{sid}",
            client_addr=f"c{sid}",
            token=b"",
        )
        c.server_join(join, Box(f"join{sid}"))
    for sid in range(1, n + 1):
        c.server_joined(ServerJoined(server_id=sid, token=b""))
    c.get_leader(GetLeader(client_id="c1", client_addr="client-addr", token=b""), Box("gl"))
    c.take()
    assert c.phase == SERVING and c.leader == 1 and c.term == 1
    return c


def sends(c: Coord, kind: type) -> list[tuple[str, Any]]:
    return [(e.dest, e.msg) for e in c.take() if isinstance(e, Send) and isinstance(e.msg, kind)]


def log_state(sid: int, term: int, *, fenced: int | None = None, last: tuple[int, int]) -> Any:
    return ServerLogState(
        server_id=sid,
        request_term=term,
        fenced_term=term if fenced is None else fenced,
        term=last[0],
        log_idx=last[1],
        token=b"",
    )


def fail(c: Coord, sid: int) -> None:
    c.heartbeat(sid, ok=False)


def test_join_answers_every_server_once_all_arrived_and_the_lowest_id_leads() -> None:
    c = Coord(NullTracer(), CoordOptions(num_servers=3))
    for sid in (3, 1):
        join = ServerJoin(
            server_id=sid, server_addr=f"s{sid}", heartbeat_addr="h", client_addr="c", token=b""
        )
        c.server_join(join, Box(str(sid)))
    assert not [e for e in c.take() if isinstance(e, Reply)], "nobody is answered before all join"
    join2 = ServerJoin(
        server_id=2, server_addr="s2", heartbeat_addr="h", client_addr="c", token=b""
    )
    c.server_join(join2, Box("2"))
    answers = [e.msg for e in c.take() if isinstance(e, Reply)]
    assert sorted(a.server_id for a in answers) == [1, 2, 3]
    assert all(isinstance(a, JoinResponse) and a.leader == 1 and a.term == 1 for a in answers)
    assert c.phase == Phase.JOINING  # until every server acknowledged


def test_fence_then_read_then_notify() -> None:
    c = serving_coord()
    fail(c, 1)
    assert c.phase == FENCING and c.term == 2
    fences = sends(c, ServerLogStateRequest)
    assert sorted(d for d, _ in fences) == ["server2", "server3", "server4", "server5"]
    assert all(m.term == 2 and m.fence for _, m in fences)
    c.log_state(log_state(2, 2, last=(1, 5)))
    c.log_state(log_state(3, 2, last=(1, 7)))
    assert c.phase == FENCING, "two of five is not a majority of all servers"
    assert sends(c, LeaderFailOver) == []
    c.log_state(log_state(4, 2, last=(1, 6)))
    assert c.phase == NOTIFYING and c.chosen == 3, "the most up-to-date log wins"
    ((dest, notice),) = sends(c, LeaderFailOver)
    assert dest == "server3" and notice.term == 2 and notice.failed_leader_id == 1
    c.failover_done(FailOverDone(server_id=3, term=2, token=b""))
    assert c.phase == SERVING and c.leader == 3 and c.chosen == 0
    pushed = sends(c, LeaderInfo)
    assert pushed and pushed[0][0] == "client:client-addr" and pushed[0][1].leader == 3


def test_a_log_state_of_an_earlier_round_is_ignored() -> None:
    c = serving_coord()
    fail(c, 1)
    c.take()
    for sid in (2, 3, 4):
        c.log_state(log_state(sid, 1, last=(1, 9)))  # answers to a round that is over
    assert c.phase == FENCING and c.fenced == {}
    c.log_state(log_state(2, 2, fenced=1, last=(1, 9)))  # not fenced at this term
    assert c.fenced == {}, "an unfenced answer must not count toward the majority"


def test_a_fenced_term_above_the_coords_restarts_the_selection_above_it() -> None:
    c = serving_coord()
    fail(c, 1)
    c.take()
    c.log_state(log_state(2, 2, fenced=5, last=(1, 3)))
    assert c.phase == FENCING and c.term == 6, "fence again above the term the server saw"
    fences = sends(c, ServerLogStateRequest)
    assert fences and all(m.term == 6 for _, m in fences)


def test_the_chosen_server_dying_mid_selection_starts_it_over() -> None:
    c = serving_coord()
    fail(c, 1)
    for sid in (2, 3, 4):
        c.log_state(log_state(sid, 2, last=(1, sid)))
    assert c.phase == NOTIFYING and c.chosen == 4
    c.take()
    fail(c, 4)
    assert c.phase == FENCING and c.term == 3 and c.chosen == 0
    assert sorted(d for d, _ in sends(c, ServerLogStateRequest)) == [
        "server2",
        "server3",
        "server5",
    ]
    for sid in (2, 3, 5):
        c.log_state(log_state(sid, 3, last=(1, sid)))
    assert c.chosen == 5
    c.failover_done(FailOverDone(server_id=4, term=2, token=b""))  # the dead one, too late
    assert c.phase == NOTIFYING
    c.failover_done(FailOverDone(server_id=5, term=3, token=b""))
    assert c.phase == SERVING and c.leader == 5


def test_the_chosen_server_is_notified_again_each_tick_until_it_confirms() -> None:
    c = serving_coord(timeout=100)
    fail(c, 1)
    for sid in (2, 3, 4):
        c.log_state(log_state(sid, 2, last=(1, 1)))
    c.take()
    c.tick()
    ((dest, _),) = sends(c, LeaderFailOver)
    assert dest == "server2"  # ties go to the lowest id


def test_a_stalled_selection_starts_over_after_its_timeout() -> None:
    c = serving_coord(timeout=3)
    fail(c, 1)
    for _ in range(3):
        c.tick()
    assert c.phase == FENCING and c.term == 3


def test_losing_a_majority_is_an_explicit_no_quorum_that_clients_hear() -> None:
    c = serving_coord(n=3)
    fail(c, 2)
    fail(c, 3)
    assert c.phase == NO_QUORUM
    c.take()
    c.get_leader(GetLeader(client_id="c1", client_addr="", token=b""), Box("gl"))
    (answer,) = [e.msg for e in c.take() if isinstance(e, Reply)]
    assert answer.leader == 0 and answer.error.startswith("no quorum: 1 of 3")


def test_clients_asking_during_a_selection_wait_for_its_end() -> None:
    c = serving_coord()
    fail(c, 1)
    c.take()
    box = Box("waiting")
    c.get_leader(GetLeader(client_id="c2", client_addr="", token=b""), box)
    assert [e for e in c.take() if isinstance(e, Reply)] == []
    for sid in (2, 3, 4):
        c.log_state(log_state(sid, 2, last=(1, 1)))
    c.failover_done(FailOverDone(server_id=2, term=2, token=b""))
    (answer,) = [e for e in c.take() if isinstance(e, Reply)]
    assert answer.responder is box and answer.msg.leader == 2


def test_unsafe_selection_takes_the_first_answer_without_fencing() -> None:
    c = Coord(NullTracer(), CoordOptions(3, 1, unsafe_leader_selection=True))
    for sid in (1, 2, 3):
        c.server_join(
            ServerJoin(
                server_id=sid, server_addr="s", heartbeat_addr="h", client_addr="c", token=b""
            ),
            Box("j"),
        )
        c.server_joined(ServerJoined(server_id=sid, token=b""))
    c.take()
    fail(c, 1)
    assert all(not m.fence for _, m in sends(c, ServerLogStateRequest))
    c.log_state(log_state(3, 2, fenced=1, last=(1, 0)))
    assert c.phase == NOTIFYING and c.chosen == 3


def test_every_phase_change_goes_through_the_table() -> None:
    c = serving_coord()
    assert NO_QUORUM in TRANSITIONS[SERVING] and Phase.JOINING not in TRANSITIONS[SERVING]
    with pytest.raises(CoordStateError, match="no transition from serving to joining"):
        c._enter(Phase.JOINING)


def test_every_machine_fits_the_machine_protocol() -> None:
    from teachraft.core.client import ClientSession
    from teachraft.core.machine import Machine
    from teachraft.core.server import Server

    machines: list[Machine] = [
        Coord(NullTracer()),
        Server(1, NullTracer()),
        ClientSession("1", NullTracer()),
    ]
    for m in machines:
        m.tick()
        m.flush()
        assert isinstance(m.take(), list)


def test_quorum_back_after_an_aborted_selection_selects_again() -> None:
    """The old leader answered again during a selection and was fenced by its retry;
    when quorum returns, it no longer leads (it stepped down at the fence), so the
    coord must select again instead of pointing clients at a follower forever."""
    c = serving_coord(n=5, thresh=1, timeout=2)
    fail(c, 1)  # a false failure: the leader's heartbeats were late
    c.heartbeat(1, ok=True)  # back in the view while the selection runs
    c.tick()
    c.tick()  # the selection stalls and starts over: now server 1 is fenced too
    assert c.phase == FENCING and c.term == 3
    assert "server1" in [d for d, _ in sends(c, ServerLogStateRequest)]
    for sid in (3, 4, 5):
        fail(c, sid)
    assert c.phase == NO_QUORUM
    c.heartbeat(5, ok=True)
    c.heartbeat(4, ok=True)
    assert c.phase == FENCING and c.term == 4, "a fenced leader must not be served again"
