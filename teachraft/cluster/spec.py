"""How the core machines of one deployment are built, shared by every way of running them.

The in-process ``Cluster``, the one-process-per-node commands (``nodes.py``)
and the seeded simulator (``sim.py``) all build their ``Coord``, ``Server``
and ``ClientSession`` machines here, so that a tunable means the same thing
everywhere. This module imports the core only: no sockets, no event loop.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from teachraft.core.client import ClientSession
from teachraft.core.coord import Coord, CoordOptions
from teachraft.core.server import RAFT, Server, ServerOptions
from teachraft.core.tracelike import TracerLike

DEFAULT_SNAPSHOT_EVERY = 10_000
"""A live cluster compacts each server's log every 10,000 applied entries (Raft §7),
so that a long run's memory stays flat. Lessons' runs stay below it; pass
``snapshot_every`` to see compaction sooner, or 0 to keep every entry."""


@dataclass(slots=True)
class MachineSpec:
    """The tunables of one deployment's machines (KVRaft's config keys where it has them)."""

    servers: int = 5
    lost_msgs_thresh: int = 3
    selection_timeout_ticks: int = 10
    unsafe_leader_selection: bool = False
    persist: bool = False
    ch_capacity: int = 64
    max_in_flight: int = 16
    op_timeout_ticks: int = 200
    server_class: type[Server] = field(default=Server)
    """The server machine: the core's, a lab's skeleton filled in by a student, or a bug."""
    coord_class: type[Coord] = field(default=Coord)
    """The coord machine, likewise (the leader-selection lab plugs in here)."""
    election: str = "coord"
    """``coord`` (KVRaft) or ``raft`` (Raft's own elections, no coord)."""
    election_ticks_min: int = 15
    election_ticks_max: int = 30
    heartbeat_ticks: int = 5
    """Raft mode: ticks of the election timer between a leader's heartbeats."""
    pre_vote: bool = True
    check_quorum: bool = True
    seed: int = 0
    """Raft mode: seeds each server's randomized election timeouts."""
    snapshot_every: int = 0
    """Compact each server's log after this many applied entries (0: never)."""

    def coord(self, tracer: TracerLike) -> Coord:
        return self.coord_class(
            tracer,
            CoordOptions(
                num_servers=self.servers,
                lost_msgs_thresh=self.lost_msgs_thresh,
                selection_timeout_ticks=self.selection_timeout_ticks,
                unsafe_leader_selection=self.unsafe_leader_selection,
            ),
        )

    @property
    def raft(self) -> bool:
        return self.election == RAFT

    def server(self, server_id: int, tracer: TracerLike) -> Server:
        if not self.raft:
            options = ServerOptions(persist=self.persist, snapshot_every=self.snapshot_every)
            return self.server_class(server_id, tracer, options)
        options = ServerOptions(
            persist=self.persist,
            snapshot_every=self.snapshot_every,
            election=self.election,
            election_ticks_min=self.election_ticks_min,
            election_ticks_max=self.election_ticks_max,
            heartbeat_ticks=self.heartbeat_ticks,
            resend_ticks=2,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
        )
        draw = random.Random(f"{self.seed}:{server_id}").randint
        return self.server_class(server_id, tracer, options, randint=draw)

    def session(self, client_id: str, tracer: TracerLike) -> ClientSession:
        return ClientSession(
            client_id,
            tracer,
            ch_capacity=self.ch_capacity,
            max_in_flight=self.max_in_flight,
            op_timeout_ticks=self.op_timeout_ticks,
            raft=self.raft,
        )


def machine_classes(
    server_class: type[Server] | None = None,
    coord_class: type[Coord] | None = None,
    bugs: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``server_class`` and ``coord_class`` of a spec: a student's or the core's,
    with the named bugs of ``teachraft.labs.bugs`` composed on top (for lessons)."""
    server, coord = server_class or Server, coord_class or Coord
    if not (isinstance(server, type) and issubclass(server, Server)):
        raise TypeError(f"server_class must be a subclass of Server, not {server!r}")
    if not (isinstance(coord, type) and issubclass(coord, Coord)):
        raise TypeError(f"coord_class must be a subclass of Coord, not {coord!r}")
    names = [bugs] if isinstance(bugs, str) else list(bugs)
    if names:
        from teachraft.labs.bugs import compose

        server, coord = compose(names, server, coord)
    return {"server_class": server, "coord_class": coord}
