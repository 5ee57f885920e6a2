"""A snapshot of a cluster at one moment: what the topology and log figures draw.

Figures never ask a cluster or a trace directly; they draw a ``Snapshot``. A
snapshot is taken from a live ``Cluster`` through its public API
(:func:`snapshot_of_cluster`) or replayed from trace events
(:mod:`teachraft.viz.replay`), so the same drawing code serves a running
lesson, a finished run and the Go original's trace files (the raftscope habit:
the renderer only reads model state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from teachraft.core.log import Entry
from teachraft.core.server import server_id_of
from teachraft.viz.style import (
    CAMPAIGNING,
    CANDIDATE,
    FAILED,
    FOLLOWER,
    LEADER,
    PARTITIONED,
    PAUSED,
    PRE_CANDIDATE,
)

ROLES = frozenset({LEADER, CANDIDATE, PRE_CANDIDATE, FOLLOWER, FAILED, PAUSED})

if TYPE_CHECKING:
    from teachraft.cluster.protocol import ClusterLike
    from teachraft.cluster.views import ClusterSnapshot

BLOCKED = frozenset({"cut", "one-way"})
server_id = server_id_of
"""The id in ``serverN``, or None for other node names (the one parser of node names)."""


@dataclass(slots=True)
class ServerView:
    """One server as a figure shows it."""

    sid: int
    role: str = FOLLOWER
    term: int = 0
    leader: int = 0
    commit_index: int = 0
    last_applied: int = 0
    log: list[Entry] = field(default_factory=list)
    """The entries the server still holds: those after its snapshot (all of them without one)."""
    snapshot_index: int = 0
    snapshot_term: int = 0
    """The last index and term the server compacted into its snapshot (0: none taken)."""
    partitioned: bool = False
    voted_for: int = 0
    votes: list[int] = field(default_factory=list)
    """Raft mode: the servers whose votes a candidate holds in its current term."""
    pre_votes: list[int] = field(default_factory=list)
    """Raft mode: the servers that granted a pre-candidate their pre-vote."""
    timeout: int = 0
    elapsed: int = 0
    """Raft mode: the election timer, in ticks (``elapsed`` counts up to ``timeout``)."""
    tick_ms: float = 0.0

    @property
    def name(self) -> str:
        return f"server{self.sid}"

    @property
    def last_index(self) -> int:
        """The index of the server's last entry, compacted or not (its log's length in Raft)."""
        return self.log[-1].index if self.log else self.snapshot_index

    def entry_at(self, index: int) -> Entry | None:
        """The entry the server holds at Raft ``index`` (None if compacted or past the end)."""
        pos = index - self.snapshot_index - 1
        if 0 <= pos < len(self.log) and self.log[pos].index == index:
            return self.log[pos]
        return None

    @property
    def shown_role(self) -> str:
        """The role to colour: stopped and paused beat partitioned, which beats the rest."""
        if self.role in (FAILED, PAUSED):
            return self.role
        if self.partitioned:
            return PARTITIONED
        return self.role if self.role == LEADER or self.role in CAMPAIGNING else FOLLOWER


@dataclass(slots=True)
class LinkView:
    """One direction of a link: its fault state and the messages it carried."""

    state: str = "up"
    sent: int = 0
    received: int = 0
    dropped: int = 0


@dataclass(slots=True)
class Snapshot:
    """Everything the topology and log figures need about one moment of a run.

    ``source`` is ``"live"`` or ``"trace"``; ``at`` is the event index a replay
    stopped after (None for a live snapshot); ``event`` describes that event.
    Counts of a replayed link are traced messages (token pairs), not frames.
    """

    servers: dict[int, ServerView]
    nodes: list[str]
    links: dict[tuple[str, str], LinkView]
    leader: int = 0
    term: int = 0
    source: str = "live"
    at: int | None = None
    event: str = ""
    name: str = ""
    problems: dict[str, int] = field(default_factory=dict)
    election: str = "coord"
    """``"coord"`` (KVRaft's coord picks leaders) or ``"raft"`` (servers elect them)."""
    beats: dict[int, list[tuple[int, bool, int]]] = field(default_factory=dict)
    """Coord mode, live: the coord's last heartbeat results per server, ``(tick, ok, lost)``."""
    lost: dict[int, int] = field(default_factory=dict)
    """Coord mode: consecutive heartbeats lost per server, as the coord counts them."""
    lost_msgs_thresh: int = 0
    coord_failed: bool = False
    """Coord mode: the coord was failed (``fail("coord")``): no one detects failures."""

    def link(self, a: str, b: str) -> LinkView:
        """The a->b direction (an untouched ``up`` link when nothing was recorded)."""
        return self.links.get((a, b)) or LinkView()

    @property
    def failed(self) -> list[int]:
        return [s.sid for s in self.servers.values() if s.role == FAILED]

    def votes_granted(self, pre: bool = False) -> list[tuple[int, int]]:
        """``(voter, candidate)`` for each vote a campaigning or leading server holds
        in the newest term any live server holds (a deposed leader's old votes are
        not drawn), or with ``pre`` each pre-vote a pre-candidate holds (a
        server's vote for itself is not an edge)."""
        edges = []
        newest = max((v.term for v in self.servers.values() if v.role != FAILED), default=0)
        for view in self.servers.values():
            if not pre and view.term != newest:
                continue
            if pre and view.role == PRE_CANDIDATE:
                edges += [(v, view.sid) for v in view.pre_votes if v != view.sid]
            elif not pre and view.role in (CANDIDATE, LEADER):
                edges += [(v, view.sid) for v in view.votes if v != view.sid]
        return sorted(edges)


def mark_partitioned(snap: Snapshot) -> None:
    """Flag servers the coord cannot hear from, or that are cut off from the leader."""
    leader = f"server{snap.leader}" if snap.leader else None
    for view in snap.servers.values():
        name = view.name
        from_coord = snap.link(name, "coord").state in BLOCKED
        to_coord = snap.link("coord", name).state in BLOCKED
        cut_from_leader = (
            leader is not None
            and name != leader
            and snap.link(leader, name).state in BLOCKED
            and snap.link(name, leader).state in BLOCKED
        )
        view.partitioned = from_coord or to_coord or cut_from_leader


def _role(role: str) -> str:
    """A status row's role as figures name it (``precandidate`` is drawn as pre-candidate)."""
    if role == "precandidate":
        return PRE_CANDIDATE
    return role if role in ROLES else FOLLOWER


def raft_leader(snap: Snapshot) -> None:
    """With no coord, the cluster's term is the highest a live server holds, and its
    leader the server that leads in that term (none while an election runs)."""
    live = [v for v in snap.servers.values() if v.role != FAILED]
    snap.term = max((v.term for v in live), default=snap.term)
    leaders = [v.sid for v in live if v.role == LEADER and v.term == snap.term]
    snap.leader = leaders[0] if leaders else 0


def snapshot_of_cluster(cluster: ClusterLike) -> Snapshot:
    """Take a snapshot of a running cluster in one hop (``Cluster.snapshot``)."""
    return as_snapshot(cluster.snapshot())


def as_snapshot(live: ClusterSnapshot | Snapshot) -> Snapshot:
    """What a figure draws, from a live cluster's snapshot (a ready Snapshot passes through)."""
    if isinstance(live, Snapshot):
        return live
    servers: dict[int, ServerView] = {}
    for sid, st in live.servers.items():
        servers[sid] = ServerView(
            sid=sid,
            role=_role(st["role"]),
            term=st["term"],
            leader=st["leader"] or 0,
            commit_index=st["commit_index"],
            last_applied=st["last_applied"],
            log=list(st["log"]),
            snapshot_index=int(st.get("snapshot_index") or 0),
            snapshot_term=int(st.get("snapshot_term") or 0),
            voted_for=st.get("voted_for") or 0,
            votes=sorted(st.get("votes") or ()),
            pre_votes=sorted(st.get("pre_votes") or ()),
            timeout=st.get("election_timeout") or 0,
            elapsed=st.get("election_elapsed") or 0,
            tick_ms=float(st.get("election_tick_ms") or 0.0),
        )
    links = {
        pair: LinkView(row["state"], row["sent"], row["received"], row["dropped"])
        for pair, row in live.links.items()
    }
    snap = Snapshot(
        servers=servers,
        nodes=list(live.nodes),
        links=links,
        leader=live.leader,
        term=live.term,
        source="live",
        problems=dict(live.problems),
        election=getattr(live, "election", "") or ("coord" if "coord" in live.nodes else "raft"),
    )
    if snap.election == "raft":
        raft_leader(snap)
    coord = live.coord or {}
    for sid, ring in (coord.get("heartbeats") or {}).items():
        snap.beats[int(sid)] = [(int(t), bool(ok), int(n)) for t, ok, n in ring]
        snap.lost[int(sid)] = snap.beats[int(sid)][-1][2] if ring else 0
    snap.lost_msgs_thresh = int(coord.get("lost_msgs_thresh") or 0)
    snap.coord_failed = coord.get("phase") == "failed"
    mark_partitioned(snap)
    return snap
