"""What a student sees of snapshots and log compaction (Raft §7).

Hand-made traces pin down the replay rules (SnapshotTaken, SnapshotInstalled,
AppendEntries after a compacted prefix); the logs figure is checked on those
replays and on live rows; a seeded simulation with ``snapshot_every`` checks
that a replay of its trace ends where the real servers' logs end.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import pytest

from teachraft.cluster import Cluster
from teachraft.cluster.views import ClusterSnapshot
from teachraft.core.log import GET, PUT, Entry
from teachraft.sim import SimCluster
from teachraft.tracing import actions
from teachraft.tracing.events import EventTable
from teachraft.tracing.sinks import Record
from teachraft.tracing.tracer import Tracer
from teachraft.viz import logs_figure, topology_figure
from teachraft.viz.labels import body_text, summary
from teachraft.viz.logs import differs
from teachraft.viz.replay import Replay
from teachraft.viz.state import ServerView, as_snapshot
from teachraft.viz.style import event_group
from teachraft.viz.timeline import MOMENT_TAGS, Timeline
from teachraft.viz.timers import timer_lanes
from teachraft.widgets import ControlPanel, TimelinePanel

MakeCluster = Callable[..., Cluster]  # the conftest fixture: start a traced cluster
SNAPSHOT_TAGS = (
    "SnapshotTaken",
    "InstallSnapshotRequestSent",
    "InstallSnapshotRequestRecvd",
    "InstallSnapshotResponseSent",
    "InstallSnapshotResponseRecvd",
    "SnapshotInstalled",
)


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


def entry(term: int, index: int) -> dict[str, Any]:
    command = {"Kind": 1, "Key": f"k{index}", "Val": "v", "ClientInfo": {"ClientId": "1"}}
    command["ClientInfo"]["OpId"] = index
    return {"Term": term, "Command": command, "Index": index}


def ae(term: int, prev: int, prev_term: int, entries: list[dict[str, Any]], commit: int) -> dict:
    return {
        "Term": term,
        "LeaderId": 1,
        "PrevLogIndex": prev,
        "PrevLogTerm": prev_term,
        "Entries": entries,
        "LeaderCommit": commit,
    }


def install(b: Builder, follower: int, index: int, term: int) -> None:
    """The leader's one-chunk InstallSnapshot to ``follower``, as a traced run records it."""
    rpc = {"Term": 1, "LeaderId": 1, "LastIncludedIndex": index, "LastIncludedTerm": term}
    b.add("server1", "InstallSnapshotRequestSent", **rpc, Offset=0, Done=True, Token=b"t")
    b.add(f"server{follower}", "InstallSnapshotRequestRecvd", **rpc, Offset=0, Done=True)
    b.add(f"server{follower}", "InstallSnapshotResponseSent", Term=1, Offset=3, Token=b"u")
    b.add("server1", "InstallSnapshotResponseRecvd", Term=1, Offset=3)
    b.add(f"server{follower}", "SnapshotInstalled", ServerId=follower, **_last(index, term))


def _last(index: int, term: int) -> dict[str, int]:
    return {"LastIncludedIndex": index, "LastIncludedTerm": term}


def lagging_run(entries: int = 30, snapshot: int = 20) -> Builder:
    """server1 leads and replicates ``entries`` to server2; server3 holds only 3.
    server1 and server2 compact up to ``snapshot``."""
    b = Builder()
    b.add("server1", "BecameLeader", ServerId=1)
    sent = [entry(1, i) for i in range(1, entries + 1)]
    b.add("server1", "AppendEntriesRequestSent", **ae(1, 0, 0, sent, 0))
    b.add("server2", "AppendEntriesRequestRecvd", **ae(1, 0, 0, sent, 0))
    b.add("server3", "AppendEntriesRequestRecvd", **ae(1, 0, 0, sent[:3], 0))
    b.add("server1", "AppendEntriesRequestSent", **ae(1, entries, 1, [], entries - 2))
    b.add("server2", "AppendEntriesRequestRecvd", **ae(1, entries, 1, [], entries - 2))
    for sid in (1, 2):
        b.add(f"server{sid}", "SnapshotTaken", ServerId=sid, **_last(snapshot, 1))
    return b


def traced(log: list[Entry]) -> list[tuple[int, int, str, str, int]]:
    """What a trace records of each entry (not ``acked_below``, which is not traced)."""
    return [(e.index, e.term, e.describe(), e.client_id, e.op_id) for e in log]


def indexes(view: ServerView) -> list[int]:
    return [e.index for e in view.log]


def trace_named(fig: go.Figure, name: str) -> Any:
    return next(t for t in fig.data if t.name == name)


# --- replaying compaction ------------------------------------------------------------------


def test_snapshot_taken_drops_the_prefix_and_keeps_indexes() -> None:
    snap = Replay(lagging_run().table()).at()
    leader = snap.servers[1]
    assert (leader.snapshot_index, leader.snapshot_term) == (20, 1)
    assert indexes(leader) == list(range(21, 31))
    assert leader.last_index == 30 and leader.commit_index == 28
    assert leader.entry_at(21) == leader.log[0] and leader.entry_at(20) is None
    assert indexes(snap.servers[3]) == [1, 2, 3] and snap.servers[3].snapshot_index == 0


def test_a_follower_without_the_last_included_entry_drops_its_whole_log() -> None:
    b = lagging_run()
    install(b, 3, 20, 1)
    follower = Replay(b.table()).at().servers[3]
    assert (follower.snapshot_index, follower.snapshot_term) == (20, 1)
    assert follower.log == [] and follower.commit_index == 20 and follower.last_applied == 20


def test_a_follower_keeps_the_entries_after_a_matching_last_included_entry() -> None:
    b = lagging_run()
    b.add("server2", "SnapshotInstalled", ServerId=2, **_last(25, 1))
    assert indexes(Replay(b.table()).at().servers[2]) == list(range(26, 31))


def test_a_follower_whose_entry_there_has_another_term_drops_its_whole_log() -> None:
    b = lagging_run()
    b.add("server2", "SnapshotInstalled", ServerId=2, **_last(25, 2))
    follower = Replay(b.table()).at().servers[2]
    assert follower.log == [] and (follower.snapshot_index, follower.snapshot_term) == (25, 2)


def test_append_entries_after_an_installed_snapshot_follow_it() -> None:
    b = lagging_run()
    install(b, 3, 20, 1)
    b.add("server3", "AppendEntriesRequestRecvd", **ae(1, 20, 1, [entry(1, 21), entry(1, 22)], 28))
    b.add("server3", "AppendEntriesRequestRecvd", **ae(1, 24, 1, [entry(1, 25)], 28))  # a gap
    follower = Replay(b.table()).at().servers[3]
    assert indexes(follower) == [21, 22] and follower.commit_index == 22


def test_append_entries_inside_the_snapshot_skip_what_it_holds() -> None:
    b = lagging_run()
    resend = [entry(1, i) for i in range(18, 32)]  # 18..20 are compacted, 31 is new
    b.add("server2", "AppendEntriesRequestRecvd", **ae(1, 17, 1, resend, 30))
    follower = Replay(b.table()).at().servers[2]
    assert indexes(follower) == list(range(21, 32)) and follower.commit_index == 30


def test_a_conflict_after_the_snapshot_truncates_at_the_right_index() -> None:
    b = lagging_run()
    b.add("server2", "AppendEntriesRequestRecvd", **ae(2, 22, 1, [entry(2, 23)], 22))
    follower = Replay(b.table()).at().servers[2]
    assert [(e.index, e.term) for e in follower.log] == [(21, 1), (22, 1), (23, 2)]


def test_an_older_snapshot_changes_nothing() -> None:
    b = lagging_run()
    b.add("server1", "SnapshotTaken", ServerId=1, **_last(12, 1))
    b.add("server2", "SnapshotInstalled", ServerId=2, **_last(15, 1))
    snap = Replay(b.table()).at()
    assert [snap.servers[s].snapshot_index for s in (1, 2)] == [20, 20]
    assert indexes(snap.servers[2]) == list(range(21, 31))


@pytest.mark.parametrize("every", [1, 4, 64])
def test_seeking_a_compacted_run_from_checkpoints_matches_replaying_it(every: int) -> None:
    b = lagging_run()
    install(b, 3, 20, 1)
    b.add("server3", "AppendEntriesRequestRecvd", **ae(1, 20, 1, [entry(1, 21)], 28))
    table = b.table()
    straight, seeking = Replay(table, every=10**9), Replay(table, every=every)
    for index in (len(table) - 1, 0, 9, 5, 13, -1):
        assert straight.at(index).servers == seeking.at(index).servers


# --- the logs figure ---------------------------------------------------------------------


def test_the_logs_figure_draws_each_compacted_prefix_as_one_grey_block() -> None:
    b = lagging_run()
    fig = logs_figure(Replay(b.table()))
    block = trace_named(fig, "snapshot (compacted entries)")
    assert list(block.y) == [0, 1] and list(block.x) == [20, 20] and list(block.base) == [0.5, 0.5]
    assert list(block.text) == ["snapshot ≤ 20 (term 1)"] * 2
    assert "duplicate table" in block.hovertext[0] and block.showlegend
    committed = fig.data[0]
    assert committed.x[0] == 1, "server3 still holds index 1, so the cells start there"
    row = dict(zip(committed.x, committed.z[0], strict=True))
    assert row[20] is None and row[21] == 1 and row[28] == 1
    assert [committed.z[2][i] for i in range(3)] == [None] * 3, "3's entries are not committed"
    assert "snapshot ≤ 20" in fig.layout.yaxis.ticktext[0]
    assert "snapshot" not in fig.layout.yaxis.ticktext[2]
    assert "compacted up to 20" in fig.layout.title.text
    assert list(fig.layout.meta["snapshots"]) == [20, 20, 0]
    assert not trace_named(fig, "differs from the leader").x, "compacted: not a difference"


def test_cells_start_at_the_first_index_any_server_still_holds() -> None:
    b = lagging_run()
    install(b, 3, 20, 1)
    fig = logs_figure(Replay(b.table()))
    committed = fig.data[0]
    assert committed.x[0] == 21 and len(committed.x) == 10
    assert list(committed.z[2]) == [None] * 10, "server3 holds nothing after its snapshot yet"
    assert list(trace_named(fig, "commit index").x) == [28.5, 28.5, 20.5]


def test_a_long_compacted_log_opens_on_a_window_of_the_newest_entries() -> None:
    b = lagging_run(entries=300, snapshot=280)
    fig = logs_figure(Replay(b.table()), window=40)
    assert list(fig.layout.xaxis.range) == [260.5, 300.9]
    assert "newest 40 shown" in fig.layout.title.text
    assert list(trace_named(fig, "snapshot (compacted entries)").x) == [280, 280]
    assert fig.data[0].x[0] == 1  # server3's three entries are still there to drag back to


def test_a_figure_without_snapshots_keeps_the_same_traces() -> None:
    b = Builder()
    b.add("server1", "AppendEntriesRequestSent", **ae(1, 0, 0, [entry(1, 1)], 0))
    plain, compacted = logs_figure(Replay(b.table())), logs_figure(Replay(lagging_run().table()))
    assert [t.type for t in plain.data] == [t.type for t in compacted.data]
    block = trace_named(plain, "snapshot (compacted entries)")
    assert list(block.x) == [] and not block.showlegend
    assert "compacted" not in plain.layout.title.text


def test_differs_compares_only_what_the_leader_still_holds() -> None:
    leader = ServerView(sid=1, log=[Entry(2, 11, 1, "a")], snapshot_index=10, snapshot_term=2)
    assert not differs(Entry(1, 4, 1, "z"), leader), "compacted away: nothing to compare"
    assert differs(Entry(1, 10, 1, "z"), leader), "the snapshot keeps the term of index 10"
    assert not differs(Entry(2, 10, 1, "z"), leader)
    assert not differs(Entry(2, 11, 1, "a"), leader)
    assert differs(Entry(1, 11, 1, "a"), leader) and differs(Entry(2, 12, 1, "b"), leader)


def live_row(role: str, log: list[Entry], snapshot: tuple[int, int], commit: int) -> dict:
    return {
        "role": role,
        "term": 1,
        "leader": 1,
        "commit_index": commit,
        "last_applied": commit,
        "log": log,
        "snapshot_index": snapshot[0],
        "snapshot_term": snapshot[1],
    }


def test_the_live_figure_reads_the_snapshot_from_each_status_row() -> None:
    kept = [Entry(1, i, 1, f"k{i}", "v", "1", i) for i in range(11, 16)]
    live = ClusterSnapshot(
        servers={
            1: live_row("leader", kept, (10, 1), 15),
            2: live_row("follower", kept[:3], (10, 1), 13),
            3: live_row("failed", [Entry(1, 1, 1, "k1", "v", "1", 1)], (0, 0), 1),
        },
        coord={},
        leader=1,
        term=1,
        nodes=["tracing", "coord", "server1", "server2", "server3"],
    )
    snap = as_snapshot(live)
    assert (snap.servers[1].snapshot_index, snap.servers[1].last_index) == (10, 15)
    fig = logs_figure(snap)
    assert list(trace_named(fig, "snapshot (compacted entries)").y) == [0, 1]
    assert fig.layout.meta["entries"] == 15 and fig.data[0].x[0] == 1
    assert "15 entries, compacted up to 10" in fig.layout.title.text


# --- labels, colours and moments ------------------------------------------------------------


def test_snapshot_actions_have_their_own_group_and_readable_summaries() -> None:
    assert set(SNAPSHOT_TAGS) <= set(actions.ACTION_TYPES)
    assert {event_group(tag) for tag in SNAPSHOT_TAGS} == {"snapshot"}
    b = lagging_run()
    install(b, 3, 20, 1)
    table = b.table()
    sent = next(e for e in table if e.tag == "InstallSnapshotRequestSent")
    assert '"Token":"<token>"' in body_text(sent) and '"LastIncludedIndex":20' in body_text(sent)
    assert summary(sent).startswith("#8 server1 InstallSnapshotRequestSent {")
    assert "SnapshotInstalled" in MOMENT_TAGS and "SnapshotTaken" not in MOMENT_TAGS


# --- real runs: a seeded simulation and a live cluster ----------------------------------------


def traced_sim(seed: int, snapshot_every: int) -> tuple[SimCluster, EventTable]:
    """A raft-mode simulation whose every node records into one event table."""
    table = EventTable()

    def tracer(name: str) -> Tracer:
        return Tracer(name, table, rng=random.Random(f"{seed}:{name}"))

    sim = SimCluster(
        servers=3, election="raft", seed=seed, snapshot_every=snapshot_every, tracer_factory=tracer
    )
    assert sim.run_until(sim.serving)
    return sim, table


def put_all(sim: SimCluster, keys: list[str]) -> None:
    for key in keys:
        sim.submit("1", PUT, key, "v")
        assert sim.run_until(lambda: not sim.sessions["1"].ops)


@pytest.mark.parametrize("seed", [3, 7, 11])
def test_a_replayed_simulation_ends_with_the_servers_real_logs(seed: int) -> None:
    sim, table = traced_sim(seed, snapshot_every=4)
    lagger = next(i for i in sim.nodes if i != sim.leader())
    put_all(sim, ["a", "b"])
    sim.crash(lagger)
    put_all(sim, [f"k{i}" for i in range(9)])
    sim.restart(lagger)
    assert sim.run_until(sim.settled)
    replay = Replay(table)
    final = replay.at()
    for sid, node in sim.nodes.items():
        view = final.servers[sid]
        assert (view.snapshot_index, view.snapshot_term) == (
            node.log.snapshot_index,
            node.log.snapshot_term,
        )
        assert traced(view.log) == traced(node.log.user_entries())
        assert view.commit_index == node.commit_index
    installed = table.filter(hosts={f"server{lagger}"}, tags={"SnapshotInstalled"})
    assert installed, "the restarted server caught up by a snapshot"
    first = installed[0]
    moment = replay.at(first.index).servers[lagger]
    assert moment.snapshot_index == first.body["LastIncludedIndex"]
    assert all(e.index > moment.snapshot_index for e in moment.log)
    fig = logs_figure(replay)
    block = trace_named(fig, "snapshot (compacted entries)")
    assert sorted(block.x) == sorted(n.log.snapshot_index for n in sim.nodes.values())


@pytest.mark.slow
def test_a_restarted_server_catches_up_by_snapshot_in_the_live_and_replayed_figures(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(servers=3, snapshot_every=5, persist=True)
    cluster.put("a", "0")
    cluster.fail(3)
    for i in range(12):
        cluster.put(f"k{i}", f"v{i}")
    cluster.restart(3)
    cluster.wait_converged()
    rows = cluster.status()["servers"]
    assert {rows[s]["snapshot_index"] for s in rows} == {10}
    live = logs_figure(cluster)
    assert list(trace_named(live, "snapshot (compacted entries)").x) == [10, 10, 10]
    assert list(live.layout.meta["snapshots"]) == [10, 10, 10]
    assert [e.index for e in as_snapshot(cluster.snapshot()).servers[3].log] == [11, 12, 13]
    cluster.flush_traces()
    replayed = Timeline(cluster)
    last = replayed.snapshot(replayed.last)
    for sid in rows:
        assert last.servers[sid].snapshot_index == 10
        assert traced(last.servers[sid].log) == traced(cluster.log(sid))
    assert any(replayed.event(m).tag == "SnapshotInstalled" for m in replayed.moments())
    assert len(cluster.events().filter(hosts={"server3"}, tags={"SnapshotInstalled"})) >= 1


@pytest.mark.slow
def test_panels_show_the_first_snapshot_without_rebuilding_their_figures(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(servers=3, snapshot_every=4)
    panel = ControlPanel(cluster)
    traces = [id(t) for t in panel.logs.data]
    for i in range(9):
        cluster.put(f"k{i}", str(i))
        panel.refresh()
    cluster.wait_converged()
    panel.refresh()
    assert [id(t) for t in panel.logs.data] == traces, "refreshed in place"
    assert list(trace_named(panel.logs, "snapshot (compacted entries)").x) == [8, 8, 8]
    assert "compacted up to 8" in panel.logs.layout.title.text
    cluster.flush_traces()
    timeline = TimelinePanel(cluster)
    taken = cluster.events().filter(hosts={"server1"}, tags={"SnapshotTaken"})
    timeline.go(taken[0].index)
    block = trace_named(timeline.logs, "snapshot (compacted entries)")
    assert 0 in block.y and block.text[list(block.y).index(0)] == "snapshot ≤ 4 (term 1)"
    timeline.go(taken[0].index - 1)
    assert 0 not in trace_named(timeline.logs, "snapshot (compacted entries)").y


def test_the_topology_hover_gives_the_last_index_and_the_snapshot() -> None:
    fig = topology_figure(Replay(lagging_run().table()))
    hovers = [h for t in fig.data if t.hovertext for h in t.hovertext if h and "log length" in h]
    leader = next(h for h in hovers if h.startswith("<b>server1</b>"))
    assert "log length 30" in leader and "entries up to 20 compacted" in leader
    lagging = next(h for h in hovers if h.startswith("<b>server3</b>"))
    assert "log length 3" in lagging and "compacted" not in lagging


def test_an_install_snapshot_chunk_resets_a_followers_election_timer_in_the_figure() -> None:
    b = Builder()
    b.add("server1", "BecameCandidate", ServerId=1, Term=1)
    b.add("server1", "LeaderElected", ServerId=1, Term=1, Votes=[1, 2])
    rpc = {"Term": 1, "LeaderId": 1, "LastIncludedIndex": 8, "LastIncludedTerm": 1}
    b.add("server2", "InstallSnapshotRequestRecvd", **rpc, Offset=0, Done=True)
    lanes = timer_lanes(b.table(), [1, 2])
    assert lanes.mode == "raft"
    marks = lanes.lanes[2].kinds("heartbeat")
    assert [m.text for m in marks] == ["an InstallSnapshot chunk from the leader, term 1"]


def chaotic_compacting_run(seed: int, rounds: int = 8) -> tuple[SimCluster, EventTable]:
    """A traced raft-mode schedule with loss, crashes, restarts and partitions, in which
    servers compact every 4 entries and snapshots travel in chunks of a few pairs."""
    rng = random.Random(f"snapview:{seed}")
    table = EventTable()

    def tracer(name: str) -> Tracer:  # a restarted server's tracer draws anew
        return Tracer(name, table, rng=random.Random(f"{seed}:{name}:{rng.random()}"))

    sim = SimCluster(
        servers=5, clients=2, seed=seed, drop=0.05, election="raft", snapshot_every=4,
        tracer_factory=tracer,
    )  # fmt: skip
    names = [f"server{i}" for i in sim.nodes]

    def restart(sid: int) -> None:
        sim.restart(sid)
        sim.nodes[sid].options.snapshot_chunk_bytes = 24

    for node in sim.nodes.values():
        node.options.snapshot_chunk_bytes = 24
    for r in range(rounds):
        event = rng.random()
        if event < 0.3 and len(sim.down) < 3:
            sim.crash(rng.choice(sorted(set(sim.nodes) - sim.down)))
        elif event < 0.5 and sim.down:
            restart(rng.choice(sorted(sim.down)))
        elif event < 0.7:
            cut_off = set(rng.sample(names, 2))
            sim.cut = {frozenset((a, b)) for a in cut_off for b in names if b not in cut_off}
        else:
            sim.cut.clear()
        for _ in range(rng.randint(1, 4)):
            client = rng.choice(sorted(sim.sessions))
            kind = PUT if rng.random() < 0.6 else GET
            sim.submit(client, kind, f"k{rng.randint(1, 3)}", f"s{r}")
        for _ in range(300):  # a tick every 50 deliveries, and whenever the network is empty
            if sim.steps % 50 == 0:
                sim.tick()
            if not sim.step():
                sim.tick()
    sim.cut.clear()
    for sid in sorted(sim.down):
        restart(sid)
    assert sim.run_until(sim.settled)
    return sim, table


def test_replays_of_chaotic_compacting_schedules_end_with_the_servers_real_logs() -> None:
    installs = chunks = 0
    for seed in range(16):
        sim, table = chaotic_compacting_run(seed)
        final = Replay(table).at()
        for sid, node in sim.nodes.items():
            view = final.servers[sid]
            assert (view.snapshot_index, view.snapshot_term) == (
                node.log.snapshot_index,
                node.log.snapshot_term,
            ), f"seed {seed}, server{sid}"
            assert traced(view.log) == traced(node.log.user_entries()), f"seed {seed}, server{sid}"
        installs += len(table.filter(tags={"SnapshotInstalled"}))
        chunks += len(table.filter(tags={"InstallSnapshotRequestRecvd"}))
    assert installs >= 16 and chunks > 2 * installs, "snapshots were installed, in several chunks"
