"""Turning whatever a lesson holds into events or a snapshot.

Every figure accepts the same things: a live ``Cluster``, a closed one (its
trace files on disk are read), an ``EventTable``, a trace file or a run folder
(``trace_output.log`` or ``shiviz_output.log``, the Go original's included), a
:class:`~teachraft.viz.replay.Replay`, or a ready ``Snapshot``. This module
decides which path each one takes, so the figures themselves never care.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from teachraft.errors import ClusterError
from teachraft.tracing.bounded import BoundedEventTable
from teachraft.tracing.events import EventTable
from teachraft.tracing.files import TraceFileError, load_runs
from teachraft.viz.replay import Replay
from teachraft.viz.state import Snapshot, as_snapshot, snapshot_of_cluster

log = logging.getLogger(__name__)
TRACE_FILES = ("trace_output.log", "shiviz_output.log")
# Longer than the tracing server's hold timeout (10 s), after which records whose
# causal past was lost with a failed node are written anyway.
FLUSH_TIMEOUT = 15.0


def is_cluster(source: Any) -> bool:
    """Duck-typed: anything with the Cluster's ``status`` and ``events`` methods."""
    return callable(getattr(source, "status", None)) and callable(getattr(source, "events", None))


def is_running(cluster: Any) -> bool:
    """True while the cluster's nodes run (started and not closed)."""
    closed = getattr(cluster, "closed", None)
    if closed is None:
        closed = getattr(cluster, "_closed", False)
    return not closed


def trace_file(path: str | Path) -> Path:
    """The trace file of a path: the file itself, or the first trace file in a run folder."""
    target = Path(path)
    if target.is_dir():
        for name in TRACE_FILES:
            if (target / name).is_file():
                return target / name
        raise FileNotFoundError(f"{target} holds neither {' nor '.join(TRACE_FILES)}")
    if not target.is_file():
        raise FileNotFoundError(f"no trace file at {target}")
    return target


def load_events(path: str | Path) -> EventTable:
    """Load one run's events from a trace file or a run folder."""
    runs = load_runs(trace_file(path))
    if len(runs) != 1:
        names = ", ".join(runs)
        raise TraceFileError(
            f"{path} holds {len(runs)} runs ({names}); pick one with "
            "teachraft.tracing.files.load_shiviz(path)[name]"
        )
    return next(iter(runs.values()))


def events_of(source: Any) -> EventTable:
    """The event table of any source (a live cluster's table is flushed first)."""
    if isinstance(getattr(source, "not_traced", None), str):  # e.g. an EtcdCluster
        raise TypeError(source.not_traced)
    if isinstance(source, EventTable):
        return source
    if isinstance(source, Replay):
        return source.table
    if isinstance(source, (str, Path)):
        return load_events(source)
    if is_cluster(source):
        if is_running(source):
            return live_events(source)
        return load_events(source.trace_paths[0])
    raise TypeError(f"cannot read trace events from {type(source).__name__}")


def live_events(cluster: Any, last: int | None = None) -> EventTable:
    """A consistent copy of a running cluster's events (the ``last`` ones if given).

    The copy is made on the cluster's own thread, so the table is never read
    while the tracing server appends to it; a copy of the last events is
    numbered from 0.
    """
    try:
        cluster.flush_traces(timeout=FLUSH_TIMEOUT)
    except (ClusterError, TimeoutError) as exc:  # draw what has arrived rather than fail
        log.info("drawing the events that arrived so far: %s", exc)
    table = cluster.events()
    if isinstance(table, BoundedEventTable):  # its own lock makes it safe to read here
        if last:
            return EventTable(event.to_record() for event in table[-last:])
        return table

    def copy() -> EventTable:
        events = table[-last:] if last else table[:]
        return EventTable(event.to_record() for event in events)

    return cluster.call_in_loop(copy)


def name_of(source: Any) -> str:
    """A short name for titles: the run folder's name for files, else empty."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        return path.name if path.is_dir() else path.parent.name
    if isinstance(source, Replay):
        return source.name
    return ""


def snapshot_of(source: Any, at: int | None = None) -> Snapshot:
    """The snapshot of any source: live state for a running cluster, else a replay.

    ``at`` is an event index: the state right after that event (replayed even
    for a running cluster, so that a time cursor works on a live run too).
    """
    if isinstance(source, Snapshot):
        return source
    if isinstance(source, Replay):
        return source.at(at)
    if callable(getattr(source, "snapshot", None)) and is_running(source) and at is None:
        return as_snapshot(source.snapshot())
    if is_cluster(source) and is_running(source) and at is None:
        return snapshot_of_cluster(source)
    return Replay(events_of(source), name=name_of(source)).at(at)
