"""Figures of a teachraft run, built only from recorded data.

Every figure takes a live ``Cluster``, a finished one, an ``EventTable``, or a
trace file or run folder (the Go original's included):

- :func:`topology_figure`: nodes, roles, links and faults;
- :func:`logs_figure`: each server's log, coloured by term, a compacted prefix
  drawn as one grey snapshot block;
- :func:`spacetime_figure`: ShiViz's picture, with message arrows and filters;
- :func:`timers_figure`: the failure detectors, election timers or the coord's
  heartbeat counts, one lane per server;
- :class:`Timeline`: all of them at any event index of a finished run;
- :func:`shiviz_download`: the run's ShiViz log as a downloadable file.

Widgets that drive these live are in :mod:`teachraft.widgets`.
"""

from __future__ import annotations

from teachraft.viz.download import ShivizDownload, shiviz_download
from teachraft.viz.images import write_png
from teachraft.viz.logs import logs_figure
from teachraft.viz.replay import Replay
from teachraft.viz.sources import events_of, snapshot_of
from teachraft.viz.spacetime import causal_path, put_trace_id, spacetime_figure
from teachraft.viz.state import Snapshot
from teachraft.viz.timeline import Timeline
from teachraft.viz.timers import timers_figure
from teachraft.viz.topology import topology_figure

__all__ = [
    "Replay",
    "ShivizDownload",
    "Snapshot",
    "Timeline",
    "causal_path",
    "events_of",
    "logs_figure",
    "put_trace_id",
    "shiviz_download",
    "snapshot_of",
    "spacetime_figure",
    "timers_figure",
    "topology_figure",
    "write_png",
]
