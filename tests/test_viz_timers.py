"""The timers figure: the coord's failure detector and raft's election timers.

The coord's transcripts drive the real ``Coord`` machine with heartbeat
results and a real ``Tracer`` writing into an ``EventTable``; the lanes and the
figure are then read back from those events, so what is asserted is what a
student would see: the count climbing to LostMsgsThresh, the failure declared
at that moment, the count back at zero when a server answers. The raft lanes
are read from events recorded with raft mode's own trace actions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import pytest

from teachraft.core.coord import BEATS_KEPT, Coord, CoordOptions, Heartbeat
from teachraft.core.messages import ServerJoin, ServerJoined
from teachraft.tracing import actions as A
from teachraft.tracing.events import EventTable
from teachraft.tracing.tracer import Tracer
from teachraft.viz.replay import Replay
from teachraft.viz.sources import events_of
from teachraft.viz.state import as_snapshot
from teachraft.viz.timers import MARKS, timer_lanes, timers_figure
from teachraft.widgets import ControlPanel, TimelinePanel

MakeCluster = Callable[..., Any]


def traced_coord(n: int = 3, thresh: int = 3) -> tuple[Coord, EventTable]:
    """A serving coord whose every action lands in an EventTable."""
    table = EventTable()
    coord = Coord(Tracer("coord", table), CoordOptions(n, thresh))
    coord.start()
    for sid in range(1, n + 1):
        join = ServerJoin(
            server_id=sid,
            server_addr=f"s{sid}",
            heartbeat_addr=f"h{sid}",
            client_addr="",
            token=b"",
        )
        coord.step(join, object())
    for sid in range(1, n + 1):
        coord.step(ServerJoined(server_id=sid, token=b""))
    coord.take()
    return coord, table


def beat(coord: Coord, sid: int, ok: bool) -> None:
    """One heartbeat result, one coord tick later."""
    coord.tick()
    coord.step(Heartbeat(sid, ok))
    coord.take()


def trace_named(fig: go.Figure, name: str) -> Any:
    return next(t for t in fig.data if t.name == name)


def test_misses_are_counted_to_the_threshold_and_the_failure_declared_there() -> None:
    coord, table = traced_coord(thresh=3)
    for _ in range(5):
        beat(coord, 2, True)
    for _ in range(6):  # the coord declares server2 failed at the third miss
        beat(coord, 2, False)
    lanes = timer_lanes(table)
    lane = lanes.lanes[2]
    assert lanes.mode == "coord" and lanes.thresh == 3
    assert [lost for _, lost in lane.lost] == [1, 2, 3], "misses after the failure are not traced"
    fail_at = next(e.index for e in table if e.tag == "ServerFail")
    declared = lane.kinds("declared")
    assert [m.index for m in declared] == [fail_at]
    assert lane.lost[-1][0] < fail_at, "declared right after the third miss"
    assert not lanes.lanes[1].marks and not lanes.lanes[3].marks
    # the coord's own ring: every result, stamped with its tick, the count in it
    ring = coord.status()["heartbeats"][2]
    assert [ok for _, ok, _ in ring] == [True] * 5 + [False] * 6
    assert [lost for _, _, lost in ring][-6:] == [1, 2, 3, 4, 5, 6]
    assert [tick for tick, _, _ in ring] == list(range(1, 12))


def test_an_answer_after_misses_puts_the_count_back_to_zero() -> None:
    coord, table = traced_coord(thresh=3)
    beat(coord, 3, False)
    beat(coord, 3, False)
    beat(coord, 3, True)
    beat(coord, 3, True)  # a second ack in a row traces nothing more
    lane = timer_lanes(table).lanes[3]
    assert [lost for _, lost in lane.lost] == [1, 2, 0]
    assert len(lane.kinds("acked")) == 1 and not lane.kinds("declared")
    assert "after 2 lost heartbeats" in lane.kinds("acked")[0].text
    assert Replay(table).at(None).lost == {3: 0}
    before_ack = next(e.index for e in table if e.tag == "HeartbeatAcked") - 1
    assert Replay(table).at(before_ack).lost == {3: 2}


def test_the_heartbeat_ring_stays_bounded() -> None:
    coord, _ = traced_coord()
    for _ in range(BEATS_KEPT * 3):
        beat(coord, 1, True)
    ring = coord.status()["heartbeats"][1]
    assert len(ring) == BEATS_KEPT
    assert ring[-1][0] == coord.ticks


def test_coord_figure_draws_the_count_and_the_declaration_in_the_right_lane() -> None:
    coord, table = traced_coord(thresh=2)
    for _ in range(4):
        beat(coord, 1, False)
    fail_at = next(e.index for e in table if e.tag == "ServerFail")
    fig = timers_figure(table)
    assert fig.layout.meta["mode"] == "coord"
    rows = list(fig.layout.yaxis.ticktext)
    declared = trace_named(fig, MARKS["declared"][0])
    assert list(declared.x) == [fail_at]
    assert rows[round(declared.y[0])] == "<b>server1</b>"
    missed = trace_named(fig, MARKS["missed"][0])
    assert len(missed.x) == 2 and all(x < fail_at for x in missed.x)
    # the second miss sits higher in its lane (a smaller y: lanes grow downwards)
    assert missed.y[1] < missed.y[0]
    assert "LostMsgsThresh (2)" in [t.name for t in fig.data]
    # a cursor before the failure shows the count at that moment in the right column
    at = int(missed.x[0])
    scrubbed = timers_figure(table, at=at)
    labels = list(trace_named(scrubbed, "now (text)").text)
    assert labels[0] == "lost 1 of 2"
    assert list(trace_named(scrubbed, "cursor").x) == [at + 0.5, at + 0.5]


# --- raft lanes ------------------------------------------------------------------------


def raft_table() -> tuple[EventTable, dict[str, int]]:
    """Three servers: heartbeats, then a split vote in term 3 and server2 winning term 4."""
    table = EventTable()
    s = {i: Tracer(f"server{i}", table).create_trace() for i in (1, 2, 3)}
    at: dict[str, int] = {}

    def record(sid: int, action: object, name: str = "") -> None:
        s[sid].record_action(action)
        if name:
            at[name] = len(table) - 1

    record(1, A.LeaderElected(ServerId=1, Term=2, Votes=[1, 2]))
    ae = {
        "Term": 2,
        "LeaderId": 1,
        "PrevLogIndex": 0,
        "PrevLogTerm": 0,
        "Entries": [],
        "LeaderCommit": 0,
        "Token": None,
    }
    record(2, A.AppendEntriesRequestRecvd(**ae), "heartbeat2")
    record(3, A.AppendEntriesRequestRecvd(**ae), "heartbeat3")
    record(2, A.ElectionTimeout(ServerId=2, Term=2, Elapsed=20, Timeout=20), "timeout2")
    record(2, A.BecameCandidate(ServerId=2, Term=3))
    record(3, A.ElectionTimeout(ServerId=3, Term=2, Elapsed=22, Timeout=22))
    record(3, A.BecameCandidate(ServerId=3, Term=3))
    record(2, A.ElectionTimeout(ServerId=2, Term=3, Elapsed=17, Timeout=17), "split2")
    record(2, A.BecameCandidate(ServerId=2, Term=4))
    vote = {"Term": 4, "VoterId": 3, "VoteGranted": True, "PreVote": False, "Token": None}
    record(3, A.RequestVoteResponseSent(**vote, Reason=""), "vote3")
    record(2, A.RequestVoteResponseRecvd(**vote), "vote-recvd")
    record(2, A.LeaderElected(ServerId=2, Term=4, Votes=[2, 3]), "won2")
    record(1, A.ElectionTimeout(ServerId=1, Term=4, Elapsed=3, Timeout=25), "now1")
    return table, at


def test_raft_lanes_mark_resets_timeouts_a_split_vote_and_the_winner() -> None:
    table, at = raft_table()
    lanes = timer_lanes(table)
    assert lanes.mode == "raft"
    two, three = lanes.lanes[2], lanes.lanes[3]
    assert [m.index for m in two.kinds("heartbeat")] == [at["heartbeat2"]]
    assert [m.index for m in two.kinds("timeout")] == [at["timeout2"], at["split2"]]
    assert [m.index for m in two.kinds("split")] == [at["split2"]]
    assert "term 3" in two.kinds("split")[0].text
    assert [m.index for m in two.kinds("won")] == [at["won2"]]
    assert [m.index for m in three.kinds("vote")] == [at["vote3"]]
    assert not three.kinds("split"), "server3 timed out once: no split on its lane"
    assert [m.index for m in lanes.lanes[1].kinds("timeout-now")] == [at["now1"]]
    assert [(role, term) for _, role, term in two.roles] == [
        ("follower", 2),
        ("candidate", 3),
        ("candidate", 4),
        ("leader", 4),
    ]


def test_raft_replay_holds_the_votes_a_candidate_won() -> None:
    table, at = raft_table()
    before = Replay(table).at(at["vote-recvd"] - 1)
    assert before.election == "raft"
    assert before.servers[2].role == "candidate" and before.servers[2].term == 4
    assert before.votes_granted() == []
    after = Replay(table).at(at["vote-recvd"])
    assert after.votes_granted() == [(3, 2)]
    won = Replay(table).at(at["won2"])
    assert won.leader == 2 and won.term == 4 and won.servers[2].role == "leader"


def test_raft_figure_puts_each_mark_on_its_servers_lane() -> None:
    table, at = raft_table()
    fig = timers_figure(table, at=at["won2"])
    rows = list(fig.layout.yaxis.ticktext)
    won = trace_named(fig, MARKS["won"][0])
    assert at["won2"] in list(won.x)
    server2 = [x for x, y in zip(won.x, won.y, strict=True) if rows[round(y)] == "<b>server2</b>"]
    assert server2 == [at["won2"]]
    split = trace_named(fig, MARKS["split"][0])
    assert list(split.x) == [at["split2"]]
    assert rows[round(split.y[0])] == "<b>server2</b>"
    assert trace_named(fig, "candidate").x, "the candidate stretches are drawn"


# --- live clusters and panels ------------------------------------------------------------


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.slow
def test_live_coord_failure_detector_in_the_panels(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3)
    c.put("a", "1")
    c.fail(3)
    assert wait_for(lambda: 3 not in c.status()["coord"]["view"])
    panel = ControlPanel(c, timers=True)
    assert panel.timers is not None and panel.timers in panel.children
    ring = as_snapshot(c.snapshot()).beats[3]
    assert not ring[-1][1] and ring[-1][2] >= 3, "the coord's last results for server3 are misses"
    live = panel.timers
    rows = list(live.layout.yaxis.ticktext)
    declared = trace_named(live, MARKS["declared"][0])
    assert [rows[round(y)] for y in declared.y] == ["<b>server3</b>"]
    panel.close()
    c.close()
    table = events_of(c)
    fail_at = next(e.index for e in table if e.tag == "ServerFail")
    timeline = TimelinePanel(c)
    assert timeline.timers is not None
    third = next(e.index for e in table if e.tag == "HeartbeatMissed" and e.body["Lost"] == 3)
    assert third < fail_at
    timeline.go(third - 1)
    now = trace_named(timeline.timers, "now (text)")
    assert list(now.text)[2] == "lost 2 of 3 (stopped)", "the coord does not know yet"
    timeline.go(fail_at)
    assert list(trace_named(timeline.timers, "cursor").x) == [fail_at + 0.5] * 2
    assert list(trace_named(timeline.timers, "now (text)").text)[2] == "lost 3 of 3 (stopped)"
    timeline.close()


def test_a_lone_candidate_or_a_won_term_is_no_split_vote() -> None:
    table = EventTable()
    s = {i: Tracer(f"server{i}", table).create_trace() for i in (1, 2, 3)}
    # server3 is cut off: it times out again and again, alone in each term
    for term in (2, 3, 4):
        s[3].record_action(A.ElectionTimeout(ServerId=3, Term=term - 1, Elapsed=20, Timeout=20))
        s[3].record_action(A.BecameCandidate(ServerId=3, Term=term))
    # term 6: servers 1 and 2 both campaign, server1 wins; server2's timer then runs out
    s[1].record_action(A.BecameCandidate(ServerId=1, Term=6))
    s[2].record_action(A.BecameCandidate(ServerId=2, Term=6))
    s[1].record_action(A.LeaderElected(ServerId=1, Term=6, Votes=[1, 3]))
    s[2].record_action(A.ElectionTimeout(ServerId=2, Term=6, Elapsed=18, Timeout=18))
    lanes = timer_lanes(table).lanes
    assert len(lanes[3].kinds("timeout")) == 3
    assert not lanes[3].kinds("split"), "a candidate alone split nothing"
    assert lanes[2].kinds("timeout") and not lanes[2].kinds("split"), "term 6 had a winner"


def test_replayed_pre_votes_are_drawn_apart_from_votes() -> None:
    table = EventTable()
    s = {i: Tracer(f"server{i}", table).create_trace() for i in (1, 2, 3)}
    s[2].record_action(A.BecamePreCandidate(ServerId=2, Term=1))
    pre = {"Term": 2, "VoterId": 3, "VoteGranted": True, "PreVote": True, "Token": None}
    s[2].record_action(A.RequestVoteResponseRecvd(**pre))
    snap = Replay(table).at(None)
    assert snap.servers[2].role == "pre-candidate" and snap.servers[2].term == 1
    assert snap.votes_granted(pre=True) == [(3, 2)]
    assert snap.votes_granted() == [], "a pre-vote is no vote"
    s[2].record_action(A.BecameCandidate(ServerId=2, Term=2))
    snap = Replay(table).at(None)
    assert snap.votes_granted(pre=True) == [] and snap.servers[2].votes == [2]
