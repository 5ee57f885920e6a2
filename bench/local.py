"""teachraft in notebook mode: one ``Cluster`` in this process, every node on its loop thread.

The suite drives the workloads inside one coroutine on the cluster's own
loop (``cluster.run``), so the many ops in flight cost no thread hops; this is
how a notebook would drive a cluster hard. History recording is off: it is a
teaching aid whose cost the store's figures should not include.

``fill`` is the memory figure: it runs in a fresh subprocess
(``python -m bench.local rss``), so the RSS it reports is the cluster's own
plus a bare interpreter's, not the suite's; a traced cluster's tracing-server
child is added to it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from typing import Any

from bench.procs import rss_mb
from bench.workloads import FOREIGN, Sample, WorkloadSpec, drive, put_after, warm_up
from teachraft.cluster import Cluster

CLIENTS = 8


class LocalTeachraft:
    """An in-process teachraft cluster with ``CLIENTS`` clients, ready for workloads."""

    def __init__(
        self, servers: int, tracing: bool, max_in_flight: int = 128, election: str = "coord"
    ) -> None:
        self.servers = servers
        self.tracing = tracing
        self.max_in_flight = max_in_flight
        self.election = election
        self.cluster: Cluster | None = None

    def start(self) -> None:
        self.cluster = Cluster(
            servers=self.servers,
            clients=CLIENTS,
            tracing=self.tracing,
            history=False,
            max_in_flight=self.max_in_flight,
            election=self.election,
        ).start()
        self.cluster.run(warm_up(self._clients()), timeout=60)

    def _clients(self) -> list[Any]:
        assert self.cluster is not None
        return [self.cluster.client(i) for i in range(1, CLIENTS + 1)]

    def run(self, spec: WorkloadSpec) -> Sample:
        assert self.cluster is not None
        if spec.name.endswith(FOREIGN):  # awaited from this thread's loop, as a notebook does
            return foreign(self, spec)
        return self.cluster.run(drive(self._clients(), spec), timeout=spec.max_seconds + 90)

    def leader_kill(self) -> float:
        """Fail-stop the leader; seconds until the next put commits."""
        assert self.cluster is not None
        cluster = self.cluster

        async def kill() -> float:
            since = time.monotonic()
            await cluster.afail_leader()
            return await put_after(cluster.client(1), since)

        return cluster.run(kill(), timeout=60)

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


class ForeignClient:
    """A client seen from another loop: every op goes through the cluster's async twins."""

    def __init__(self, cluster: Cluster, client: int) -> None:
        self.cluster = cluster
        self.client = client

    async def put(self, key: str, value: str) -> None:
        await self.cluster.aput(key, value, client=self.client)

    async def get(self, key: str) -> str | None:
        return await self.cluster.aget(key, client=self.client)


def foreign(system: LocalTeachraft, spec: WorkloadSpec) -> Sample:
    """Run ``spec`` from a fresh loop in this thread, as a notebook cell's ``await`` would."""
    assert system.cluster is not None
    clients = [ForeignClient(system.cluster, i) for i in range(1, CLIENTS + 1)]
    return asyncio.run(drive(clients, spec))


def fill(
    servers: int, entries: int, tracing: bool = False, timeout: float = 800.0
) -> dict[str, Any]:
    """Commit ``entries`` puts, wait for every server to apply them; this process's RSS.

    A run cut short (a transient "no quorum" under load) is resumed until the
    log holds ``entries`` entries or ``timeout`` passes.
    """
    before = rss_mb()["rss_mb"]
    started = time.monotonic()
    system = LocalTeachraft(servers, tracing)
    system.start()
    try:
        assert system.cluster is not None
        cluster = system.cluster
        while (done := _committed(cluster)) < entries:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                break
            sample = system.run(WorkloadSpec("fill", 64, max_ops=entries - done, max_seconds=left))
            if sample.error:
                time.sleep(1.0)
        cluster.wait_converged(timeout=60)
        status = cluster.status()["servers"]
        gc.collect()
        out = rss_mb()
        # a traced cluster's tracing server is a child process: its memory counts too
        child_pid = getattr(cluster.tracing_server, "pid", None)
        if child_pid is not None:
            child = rss_mb(child_pid)
            out["tracing_child_mb"] = child.get("rss_mb", 0.0)
            out["rss_mb"] += out["tracing_child_mb"]
    finally:
        system.close()
    return {
        "entries": min(s["commit_index"] for s in status.values()),
        "log_length": min(s["log_length"] for s in status.values()),
        "base_mb": before,
        "seconds": time.monotonic() - started,
        **out,
    }


def _committed(cluster: Cluster) -> int:
    return max(s["commit_index"] for s in cluster.status()["servers"].values())


def row(workload: str, tracing: bool, runs: int) -> list[dict[str, Any]]:
    """One row of the quick suite, run alone: its session's figures, one dict per run.

    Each run starts a fresh 5-server cluster, runs the quick plan's ``seq``
    first (as the suite's session does) and then ``workload``, and reports its
    ops/s with the CPU time per op of the cluster's loop thread and, when
    traced, of the tracing-server process: the two halves of a traced op.
    """
    from bench.suite import PLANS

    plan = PLANS["quick"]
    out = []
    for r in range(runs):
        system = LocalTeachraft(5, tracing)
        system.start()
        try:
            assert system.cluster is not None
            cluster = system.cluster
            system.run(plan.spec("seq", r))
            spec = plan.spec(workload, r)
            child = getattr(cluster.tracing_server, "pid", None)
            before = _cpu_seconds(child)

            sample, loop_cpu = cluster.run(
                _timed(system._clients(), spec), timeout=spec.max_seconds + 90
            )
            if tracing:
                cluster.flush_traces()
            ops = max(1, sample.ops)
            figures = {"ops_s": round(sample.rate), "loop_us_per_op": round(1e6 * loop_cpu / ops)}
            if child is not None:
                figures["tracing_us_per_op"] = round(1e6 * (_cpu_seconds(child) - before) / ops)
            out.append(figures)
        finally:
            system.close()
    return out


async def _timed(clients: list[Any], spec: WorkloadSpec) -> tuple[Sample, float]:
    """Run ``spec``; the sample and the CPU seconds this thread (the loop's) spent."""
    start = time.thread_time()
    sample = await drive(clients, spec)
    return sample, time.thread_time() - start


def _cpu_seconds(pid: int | None) -> float:
    """User plus system CPU seconds of process ``pid`` so far (Linux; 0 elsewhere)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.local")
    sub = p.add_subparsers(dest="cmd", required=True)
    rss = sub.add_parser("rss", help="RSS of a cluster after N committed puts (prints JSON)")
    rss.add_argument("--servers", type=int, default=5)
    rss.add_argument("--entries", type=int, default=100_000)
    rss.add_argument("--tracing", action="store_true")
    one = sub.add_parser("row", help="one quick-suite row alone, a few runs (prints JSON lines)")
    one.add_argument("workload", nargs="?", default="inflight64")
    one.add_argument("--tracing", action="store_true")
    one.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    if args.cmd == "row":
        for figures in row(args.workload, args.tracing, args.runs):
            print(json.dumps(figures), flush=True)
        return 0
    print(json.dumps(fill(args.servers, args.entries, args.tracing)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
