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
from teachraft.viz.style import FAILED, FOLLOWER, LEADER, PARTITIONED, PAUSED

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
    partitioned: bool = False

    @property
    def name(self) -> str:
        return f"server{self.sid}"

    @property
    def shown_role(self) -> str:
        """The role to colour: stopped and paused beat partitioned, which beats the rest."""
        if self.role in (FAILED, PAUSED):
            return self.role
        if self.partitioned:
            return PARTITIONED
        return LEADER if self.role == LEADER else FOLLOWER


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

    def link(self, a: str, b: str) -> LinkView:
        """The a->b direction (an untouched ``up`` link when nothing was recorded)."""
        return self.links.get((a, b)) or LinkView()

    @property
    def failed(self) -> list[int]:
        return [s.sid for s in self.servers.values() if s.role == FAILED]


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
            role=st["role"] if st["role"] in (LEADER, FOLLOWER, FAILED, PAUSED) else FOLLOWER,
            term=st["term"],
            leader=st["leader"],
            commit_index=st["commit_index"],
            last_applied=st["last_applied"],
            log=list(st["log"]),
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
    )
    mark_partitioned(snap)
    return snap
