"""The control panel and the topology in raft mode: Time out now, Transfer leadership, votes.

Every button is clicked on a live raft-mode cluster, and what is asserted is
what the cluster did (its trace and its status) and what the panel then
draws: the timed-out server's lane, the new leader, the votes it holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from teachraft.cluster import Cluster
from teachraft.viz.sources import events_of
from teachraft.viz.timers import MARKS, timer_lanes
from teachraft.viz.topology import VOTES, topology_figure
from teachraft.widgets import ControlPanel, TimelinePanel

MakeCluster = Callable[..., Cluster]

pytestmark = pytest.mark.slow


def wait_for(pred: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def named(fig: Any, name: str) -> Any:
    return next(t for t in fig.data if t.name == name)


def followers(c: Cluster) -> list[int]:
    return [i for i in range(1, c.num_servers + 1) if i != c.leader()]


def test_coord_mode_panel_has_no_election_buttons(make_cluster: MakeCluster) -> None:
    panel = ControlPanel(make_cluster(servers=3))
    assert panel.election == "coord"
    assert panel.timeout_buttons == {} and panel.transfer_button is None
    assert panel.timers is None, "the timers figure is opt-in in coord mode"
    panel.close()


def test_time_out_now_button_fires_that_servers_timer(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3, election="raft")
    wait_for(lambda: c.leader() != 0, "a first leader")
    c.put("a", "1")
    panel = ControlPanel(c)
    assert sorted(panel.timeout_buttons) == [1, 2, 3]
    assert panel.timers is not None and panel.timers.layout.meta["mode"] == "raft"
    target = followers(c)[0]
    panel.timeout_buttons[target].click()
    assert f"server{target} timed out" in panel.status.value
    c.flush_traces()
    lane = timer_lanes(events_of(c)).lanes[target]
    fired = lane.kinds("timeout-now")
    assert fired, "an ElectionTimeout with Elapsed < Timeout on the clicked server"
    panel.refresh()
    now = named(panel.timers, MARKS["timeout-now"][0])
    rows = list(panel.timers.layout.yaxis.ticktext)
    assert f"<b>server{target}</b>" in {rows[round(y)] for y in now.y}
    panel.close()


def test_transfer_leadership_moves_the_leader_and_its_votes(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=5, election="raft")
    wait_for(lambda: c.leader() != 0, "a first leader")
    c.put("a", "1")
    panel = ControlPanel(c)
    to = followers(c)[-1]
    panel.server_picker.value = to
    panel.transfer_button.click()
    assert f"server{to} leads now" in panel.status.value, panel.status.value
    assert c.leader() == to
    panel.refresh()
    assert f"leader server{to}" in panel.topology.layout.title.text
    # the new leader holds the votes that elected it: one green edge from each voter
    votes = c.status()["servers"][to]["votes"]
    assert len(votes) >= 3 and to in votes
    fig = topology_figure(c)
    edges = named(fig, VOTES)
    leader = named(fig, "leader")
    tip = (leader.x[0], leader.y[0])
    ends = {(edges.x[k + 1], edges.y[k + 1]) for k in range(0, len(edges.x), 3)}
    assert ends == {tip}, "every vote edge ends at the new leader"
    assert len(edges.x) // 3 == len(votes) - 1, "one edge per voter, none for itself"
    panel.fail_leader_button.click()
    assert "elect a new one" in panel.status.value
    panel.close()


def test_timeline_scrubs_the_election_timers_of_a_raft_run(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3, election="raft")
    wait_for(lambda: c.leader() != 0, "a first leader")
    c.put("a", "1")
    old = c.fail_leader()
    c.put("b", "2")  # served by the next leader
    new = c.leader()
    c.close()
    table = events_of(c)
    won = next(e.index for e in table if e.tag == "LeaderElected" and e.body["ServerId"] == new)
    panel = TimelinePanel(c)
    assert panel.timers is not None, "a raft run opens its timers figure"
    rows = list(panel.timers.layout.yaxis.ticktext)
    stars = named(panel.timers, MARKS["won"][0])
    assert won in list(stars.x)
    assert rows[round(stars.y[list(stars.x).index(won)])] == f"<b>server{new}</b>"
    panel.go(won - 1)
    now = list(named(panel.timers, "now (text)").text)
    assert not now[new - 1].startswith("leader"), "not the leader yet, just before it won"
    assert now[old - 1] == "failed"
    panel.go(won)
    assert list(named(panel.timers, "cursor").x) == [won + 0.5] * 2
    assert list(named(panel.timers, "now (text)").text)[new - 1].startswith("leader T")
    panel.close()


def test_a_failed_coord_is_drawn_failed_live_and_replayed(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3)
    c.put("a", "1")
    assert "coord failed" not in topology_figure(c).layout.title.text
    c.fail("coord")
    live = topology_figure(c)
    assert "coord failed" in live.layout.title.text
    coord = named(live, "coord (failed)")
    assert list(coord.text) == ["<b>coord</b> ✕ failed"]
    c.close()
    replayed = topology_figure(c)  # a closed cluster is replayed from its trace
    assert "coord failed" in replayed.layout.title.text
    assert named(replayed, "coord (failed)").x


def test_the_panel_samples_each_followers_timer_but_not_the_leaders(
    make_cluster: MakeCluster,
) -> None:
    c = make_cluster(servers=3, election="raft")
    wait_for(lambda: c.leader() != 0, "a first leader")
    panel = ControlPanel(c)
    for _ in range(3):
        panel.refresh()
    line = named(panel.timers, "timer left (sampled)")
    rows = list(panel.timers.layout.yaxis.ticktext)
    sampled: dict[str, int] = {}
    for y in line.y:
        if y is not None:
            row = rows[round(y)]
            sampled[row] = sampled.get(row, 0) + 1
    followers_rows = {f"<b>server{s}</b>" for s in followers(c)}
    assert set(sampled) == followers_rows, "the leader has no election timer to sample"
    assert all(n == panel.refreshes for n in sampled.values())
    assert all(0 <= x <= 1 for x in line.x if x is not None)
    panel.close()
