"""How fast the figures build, on the Go original's largest trace and on big live runs.

Targets:
- the space-time diagram in < 2 s, on the largest reference trace and on a
  20,000-event run;
- the logs figure in < 2 s with 1,000 entries per server;
- the topology and logs at any moment of the 20,000-event run (a time-cursor
  seek) in < 0.5 s;
- one in-place refresh of the live panel's figures in < 0.5 s.

The big runs are recorded first on a live 5-server cluster over TCP (not timed).
Times are the best of ``--repeat`` runs, from events already in memory.

Run: ``python -m bench.bench_viz [--repeat N] [--events N] [--entries N]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from teachraft.cluster import Cluster
from teachraft.tracing.events import EventTable
from teachraft.tracing.files import load_trace
from teachraft.viz import Replay, logs_figure, spacetime_figure, topology_figure
from teachraft.viz.inplace import update_in_place
from teachraft.viz.state import snapshot_of_cluster

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TRACES = SHARED / "reference-traces" / "kvraft-go"


@dataclass
class Row:
    """One line of the table."""

    name: str
    target: float
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.seconds < self.target


def best(fn: Callable[[], Any], repeat: int) -> float:
    """The best wall time of ``repeat`` calls."""
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def largest_reference_trace() -> EventTable | None:
    files = sorted(TRACES.glob("*/trace_output.log"), key=lambda p: p.stat().st_size)
    return load_trace(files[-1]) if files else None


def record_events(n: int, out: Path) -> EventTable:
    """A live run with at least ``n`` traced events (puts of 50 keys, 5 servers)."""
    with Cluster(servers=5, clients=1, out_dir=out) as cluster:
        for i in range(100_000):
            cluster.put(f"k{i % 50}", f"v{i}")
            if i % 50 == 49:
                cluster.flush_traces()
                if len(cluster.events()) >= n:
                    break
    return load_trace(out / "trace_output.log")


def record_entries(n: int) -> Cluster:
    """A running untraced cluster whose servers hold ``n`` log entries."""
    cluster = Cluster(servers=5, clients=1, tracing=False).start()
    for i in range(n):
        cluster.put(f"k{i % 50}", f"v{i}")
    cluster.wait_converged()
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_viz")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--events", type=int, default=20_000, help="events of the big run")
    parser.add_argument("--entries", type=int, default=1_000, help="log entries per server")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    reference = largest_reference_trace()
    if reference is not None:
        row = Row(f"space-time, largest reference trace ({len(reference)} events)", 2.0)
        row.seconds = best(lambda: spacetime_figure(reference), args.repeat)
        rows.append(row)
    with tempfile.TemporaryDirectory(prefix="bench-viz-") as tmp:
        big = record_events(args.events, Path(tmp))
    rows.append(Row(f"space-time, live run ({len(big)} events)", 2.0))
    rows[-1].seconds = best(lambda: spacetime_figure(big), args.repeat)
    replay = Replay(big)
    middle = len(big) // 2
    rows.append(Row(f"topology + logs at event {middle} (seek)", 0.5))
    rows[-1].seconds = best(
        lambda: (topology_figure(replay.at(middle)), logs_figure(replay.at(middle))), args.repeat
    )
    cluster = record_entries(args.entries)
    try:
        rows.append(Row(f"logs figure, {args.entries} entries x 5 servers", 2.0))
        rows[-1].seconds = best(lambda: logs_figure(cluster), args.repeat)
        topo = go.FigureWidget(topology_figure(cluster))
        logs = go.FigureWidget(logs_figure(cluster))

        def refresh() -> None:
            snap = snapshot_of_cluster(cluster)
            update_in_place(topo, topology_figure(snap))
            update_in_place(logs, logs_figure(snap))

        rows.append(Row(f"live panel refresh in place ({args.entries} entries)", 0.5))
        rows[-1].seconds = best(refresh, args.repeat)
    finally:
        cluster.close()
    width = max(len(r.name) for r in rows)
    for r in rows:
        mark = "ok" if r.ok else "SLOW"
        print(f"{r.name:<{width}}  {r.seconds:7.3f} s  (target < {r.target:g} s)  {mark}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
