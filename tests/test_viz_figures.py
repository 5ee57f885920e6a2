"""Every figure builds from every kind of source and shows what the run recorded.

Sources: the Go original's four traces (both file formats), a live cluster, a
finished (closed) cluster, and an EventTable. Assertions are on traces, data
and titles, never on pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import pytest
from conftest import REFERENCE_TRACES

from teachraft.cluster import Cluster
from teachraft.tracing.files import load_trace
from teachraft.tracing.validate import validate_shiviz
from teachraft.viz import (
    Timeline,
    logs_figure,
    put_trace_id,
    shiviz_download,
    spacetime_figure,
    topology_figure,
)
from teachraft.viz.inplace import update_in_place
from teachraft.viz.spacetime import causal_path
from teachraft.viz.style import ROLE_ORDER
from teachraft.viz.topology import EDGE_CLASSES

MakeCluster = Callable[..., Cluster]  # the conftest fixture: start a traced cluster
RUNS = sorted(p.name for p in REFERENCE_TRACES.iterdir())
FILES = ["trace_output.log", "shiviz_output.log"]


def trace_named(fig: go.Figure, name: str) -> go.BaseTraceType:
    return next(t for t in fig.data if t.name == name)


def shown_roles(fig: go.Figure) -> dict[str, list[str]]:
    """Role name -> the server names drawn with it in a topology figure."""
    roles = ("leader", "follower", "failed (stopped)", "partitioned away", "paused")
    return {t.name: [s.split("<br>")[0][3:-4] for s in t.text] for t in fig.data if t.name in roles}


# --- the Go original's traces ----------------------------------------------------------------


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("name", FILES)
def test_every_figure_builds_from_the_go_traces(run: str, name: str) -> None:
    path = REFERENCE_TRACES / run / name
    table = load_trace(path)
    topo = topology_figure(path)
    assert topo.layout.title.text.startswith(f"{run} · term ")
    assert sum(len(t.x) for t in topo.data if t.mode == "markers+text") == 7  # 3+2+coord+tracing
    logs = logs_figure(path)
    assert len(logs.layout.yaxis.ticktext) == 3
    space = spacetime_figure(path)
    points = sum(len(t.x) for t in space.data if t.type == "scattergl" and "markers" in t.mode)
    assert points == len(table)
    assert list(space.layout.meta["hosts"]) == table.hosts()


def test_go_leader_failure_shows_the_new_leader_and_its_no_op() -> None:
    run = REFERENCE_TRACES / "3Server2ClientLeaderFailure"
    topo = topology_figure(run)
    assert "term 2 · leader server2 · 1 failed" in topo.layout.title.text
    assert shown_roles(topo)["leader"] == ["server2"]
    assert shown_roles(topo)["failed (stopped)"] == ["server1"]
    logs = logs_figure(run)
    committed = logs.data[0]
    assert committed.z[1][4] == 2 and "No-Op" in committed.customdata[1][4]
    assert committed.z[0][4] is None, "the failed leader never got index 5"
    commit = trace_named(logs, "commit index")
    assert list(commit.x) == [4.5, 9.5, 9.5]


def test_go_quorum_impossible_says_so_in_the_title() -> None:
    topo = topology_figure(REFERENCE_TRACES / "3Server2ClientQuorumImpossible")
    assert "2 failed · no quorum" in topo.layout.title.text


def test_spacetime_arrows_join_each_send_to_its_receive() -> None:
    table = load_trace(REFERENCE_TRACES / "3Server2ClientNormalOperation" / "trace_output.log")
    fig = spacetime_figure(table)
    xs = list(trace_named(fig, "messages").x)
    pairs = [(xs[i], xs[i + 1]) for i in range(0, len(xs), 3)]
    received = [e for e in table if e.tag == "ReceiveTokenTrace" and e.partner is not None]
    assert len(pairs) == len(received)
    for send, recv in pairs:
        assert table[send].tag == "GenerateTokenTrace" and table[recv].partner == send
        assert send < recv, "messages go forward in happened-before order"


def test_spacetime_filters_by_host_tag_and_trace() -> None:
    table = load_trace(REFERENCE_TRACES / "3Server2ClientLeaderFailure" / "trace_output.log")
    only = spacetime_figure(table, hosts=["server2", "server3"])
    assert list(only.layout.yaxis.ticktext) == ["server2", "server3"]
    tagged = spacetime_figure(table, tags=["BecameLeader"])
    assert tagged.layout.meta["events"] == 2
    tid = put_trace_id(table, "k1", client="client1")
    one = spacetime_figure(table, trace_ids=[tid])
    assert one.layout.meta["events"] == len(table.filter(trace_ids=[tid]))


def test_highlighting_a_put_shows_its_replication_rounds_too() -> None:
    table = load_trace(REFERENCE_TRACES / "3Server2ClientNormalOperation" / "trace_output.log")
    tid = put_trace_id(table, "k0", client="client1")
    path = causal_path(table, tid)
    tags = [table[i].tag for i in path]
    for tag in ("Put", "PutRecvd", "AppendEntriesRequestRecvd", "PutCommitted", "PutResultRecvd"):
        assert tag in tags
    fig = spacetime_figure(table, highlight=tid)
    assert sorted(trace_named(fig, "highlighted trace").x) == path
    assert "Put(k0,val0) by client1" in fig.layout.title.text
    with pytest.raises(LookupError):
        put_trace_id(table, "no-such-key")


def test_faults_and_leader_changes_are_marked_across_all_lanes() -> None:
    fig = spacetime_figure(REFERENCE_TRACES / "3Server2ClientLeaderFailure")
    notes = [a.text for a in fig.layout.annotations]
    assert notes == ["server1 leads", "coord: server1 failed", "server2 leads"]
    assert len(fig.layout.shapes) == 3


def test_shiviz_download_of_a_go_trace_is_valid_and_says_upload() -> None:
    link = shiviz_download(REFERENCE_TRACES / "3Server2ClientLeaderFailure")
    assert validate_shiviz(link.text) == []
    assert link.events == 359
    assert "upload" in link.html() and link.href().startswith("data:text/plain")


# --- live and finished clusters ----------------------------------------------------------------


@pytest.mark.slow
def test_figures_follow_a_live_cluster_and_its_finished_run(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=5, clients=2)
    for i in range(4):
        c.put(f"k{i}", f"v{i}")
    old = c.leader()
    topo = topology_figure(c)
    assert f"leader server{old}" in topo.layout.title.text
    c.fail_leader()
    c.put("after", "x", client=2)
    c.cut(c.leader(), "client1", one_way=True)
    live = topology_figure(c)
    new = c.leader()
    assert f"term 2 · leader server{new} · 1 failed" == live.layout.title.text
    assert shown_roles(live)["failed (stopped)"] == [f"server{old}"]
    assert len(trace_named(live, "one-way cut (arrow: lost direction)").x) == 3
    assert len(live.layout.annotations) == 1, "one arrow shows the lost direction"
    logs = logs_figure(c)
    assert logs.layout.meta["entries"] == 6  # 4 puts, the No-Op, the put after
    assert len(spacetime_figure(c).data) == len(spacetime_figure(c).data)
    c.close()
    finished = topology_figure(c)
    assert finished.layout.title.text.startswith(f"term 2 · leader server{new} · 1 failed")
    assert shown_roles(finished) == shown_roles(live)
    replayed = logs_figure(c)
    assert replayed.data[0].z[new - 1] == logs.data[0].z[new - 1]


@pytest.mark.slow
def test_live_logs_mark_entries_that_differ_from_the_leader(make_cluster: MakeCluster) -> None:
    """The original's hole: the chosen leader lacks entries the old one committed."""
    c = make_cluster(servers=5, unsafe_leader_selection=True)
    c.put("x", "0")
    old = c.leader()
    behind = 2 if old != 2 else 3
    c.cut(old, behind)
    c.cut("coord", old)
    for i in range(6):
        c.put(f"k{i}", f"v{i}")
    c.wait_until(lambda: c.deployment.leader() not in (0, old), 10, "no new leader")
    c.put("after", "y")
    fig = logs_figure(c)
    rows = list(fig.layout.yaxis.ticktext)
    differs = trace_named(fig, "differs from the leader")
    assert differs.x, "the old leader's entries differ from the new leader's"
    assert {rows[int(y)].split("</b>")[0][3:] for y in differs.y} >= {f"server{old}"}


@pytest.mark.slow
def test_in_place_updates_keep_the_same_traces(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3)
    widget = go.FigureWidget(topology_figure(c))
    before = list(widget.data)
    c.put("a", "1")
    c.fail_leader()
    update_in_place(widget, topology_figure(c))
    assert [id(t) for t in widget.data] == [id(t) for t in before]
    assert "1 failed" in widget.layout.title.text
    assert len(widget.data) == len(EDGE_CLASSES) + 3 + len(ROLE_ORDER) + 3


@pytest.mark.slow
def test_timeline_steps_through_a_leader_failure(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3)
    c.put("a", "1")
    old = c.fail_leader()
    c.put("b", "2")
    c.close()
    tl = Timeline(c)
    fail = tl.find("ServerFail")
    became = tl.find("BecameLeader", start=fail)
    assert 0 < fail < became < len(tl)
    assert fail in tl.moments() and became in tl.moments()
    assert tl.snapshot(fail - 1).leader == old
    assert tl.snapshot(fail).leader == 0
    assert tl.next_moment(fail) > fail and tl.previous_moment(fail) < fail
    topo, _, space = tl.figures(became)
    assert "after event" in topo.layout.title.text
    cursor = trace_named(space, "time cursor")
    assert list(cursor.x) == [became + 0.5, became + 0.5]
    new = tl.snapshot(tl.last)
    assert new.leader not in (0, old) and new.servers[new.leader].log[-2].describe() == "No-Op"
