"""A time cursor over a finished run: every figure at one event index.

``Timeline`` replays a run (see :mod:`teachraft.viz.replay`) and answers
"what did the cluster look like right after event i?" for the topology and
logs figures, the timers figure, and where the cursor sits in the space-time
diagram. It also lists the moments worth stopping at (faults, a leader
failing, a new leader, its No-Op, reconfiguration done, a follower installing
the leader's snapshot), so a lesson can step through a leader failure event
by event. The slider that drives it lives in
:class:`teachraft.widgets.TimelinePanel`; this module has no widgets, so it
is tested and used in plain scripts too.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from teachraft.tracing.events import Event, EventTable
from teachraft.viz.labels import summary
from teachraft.viz.logs import logs_figure
from teachraft.viz.replay import Replay
from teachraft.viz.sources import events_of, name_of
from teachraft.viz.spacetime import spacetime_figure
from teachraft.viz.state import Snapshot
from teachraft.viz.style import FAULT_TAGS
from teachraft.viz.timers import Lanes, draw_lanes, timer_lanes
from teachraft.viz.topology import topology_figure

MOMENT_TAGS = FAULT_TAGS | {
    "BecameLeader",
    "LeaderFailOver",
    "NoOpRequest",
    "LeaderReconfigDone",
    "LeaderSelectionFailed",
    "NewClusterView",
    "LeaderElected",
    "BecameCandidate",
    "SteppedDown",
    "CheckQuorumFailed",
    "SnapshotInstalled",
}


class Timeline:
    """Seekable views of one run: ``snapshot(i)``, ``figures(i)``, ``moments()``."""

    def __init__(self, source: Any, window: int = 200) -> None:
        self.table: EventTable = events_of(source)
        self.name = name_of(source)
        self.replay = Replay(self.table, name=self.name)
        self.window = window
        self._lanes: Lanes | None = None

    def __len__(self) -> int:
        return len(self.table)

    @property
    def last(self) -> int:
        return len(self.table) - 1

    def event(self, index: int) -> Event:
        return self.table[index]

    def describe(self, index: int) -> str:
        """One line about event ``index``."""
        if not 0 <= index < len(self.table):
            return "before the first event"
        return summary(self.table[index], limit=160)

    def snapshot(self, index: int) -> Snapshot:
        """The cluster right after event ``index``."""
        return self.replay.at(index)

    def moments(self) -> list[int]:
        """Indices of faults and leadership changes, in order."""
        return [e.index for e in self.table if e.tag in MOMENT_TAGS]

    def next_moment(self, index: int) -> int:
        """The first moment after ``index`` (the last event when there is none)."""
        return next((m for m in self.moments() if m > index), self.last)

    def previous_moment(self, index: int) -> int:
        """The last moment before ``index`` (0 when there is none)."""
        return next((m for m in reversed(self.moments()) if m < index), 0)

    def find(self, tag: str, start: int = 0, host: str | None = None) -> int:
        """The index of the first ``tag`` event at or after ``start`` (-1 if none)."""
        for e in self.table[start:]:
            if e.tag == tag and (host is None or e.host == host):
                return e.index
        return -1

    def figures(self, index: int) -> tuple[go.Figure, go.Figure, go.Figure]:
        """(topology, logs, space-time) at event ``index``."""
        snap = self.snapshot(index)
        return (
            topology_figure(snap),
            logs_figure(snap),
            spacetime_figure(self.table, cursor=index, window=self.window),
        )

    @property
    def lanes(self) -> Lanes:
        """The timer lanes of the whole run (computed once)."""
        if self._lanes is None:
            self._lanes = timer_lanes(self.table, sorted(self.snapshot(self.last).servers))
        return self._lanes

    def has_timers(self) -> bool:
        """True when the run has something for the timers figure to show: elections
        (raft mode) or heartbeats the coord lost (a Go original's trace has neither)."""
        lanes = self.lanes
        return lanes.mode == "raft" or any(lane.lost for lane in lanes.lanes.values())

    def timers(self, index: int, snap: Snapshot | None = None) -> go.Figure:
        """The timers figure with its cursor after event ``index``."""
        snap = snap if snap is not None else self.snapshot(index)
        return draw_lanes(self.lanes, snap, index, self.window, None, live=False)

    def spacetime_range(self, index: int) -> list[float]:
        """The x range that centres the space-time diagram on ``index``."""
        half = self.window // 2
        lo = min(max(-1, index - half), max(-1, self.last + 1 - self.window))
        return [lo, lo + self.window]
