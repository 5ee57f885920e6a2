"""The production anchor: a real etcd cluster under the suite's workloads, in the same run.

etcd (Debian's etcd-server, 3.4) runs as one process per member, started by
:class:`teachraft.etcd.EtcdCluster` on loopback with the members talking
directly (no fault proxies, which would cost a Python hop). The bench process is the
client: the same closed-loop driver as teachraft's (``bench.workloads.drive``)
sends puts through etcd's v3 JSON gateway with persistent httpx connections,
to the leader's client port, as teachraft's clients send to the leader.

Variants: ``fsync`` is etcd as shipped (every commit is fsynced: the number a
production cluster gets); ``no fsync`` adds ``--unsafe-no-fsync``, which is
the fair match for teachraft's in-memory default. Sequential puts, 64 in
flight, and the time from killing the leader to the next committed put, on
3 and 5 members. An op costs the Python client about 0.6 ms of CPU in httpx,
so with many ops in flight the load is split over ``DRIVERS`` client
processes (``python -m bench.peer_etcd drive``), started together, as
teachraft's per-process mode splits its load over bench client processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.procs import PYTHON, REPO
from bench.results_model import PEER, PER_PROCESS, TEACHRAFT
from bench.workloads import Sample, WorkloadSpec, drive, merge, put_after, warm_up

ETCD = "etcd"
VARIANTS = {True: "fsync", False: "no fsync"}
# plan name -> (runs, member counts, fsync variants)
PLANS: dict[str, tuple[int, tuple[int, ...], tuple[bool, ...]]] = {
    "tiny": (1, (3,), (False,)),
    "quick": (1, (3, 5), (True, False)),
    "full": (3, (3, 5), (True, False)),
}
WORKLOADS = ("seq", "inflight64")
DRIVERS = max(1, min(4, os.cpu_count() or 1))  # client processes for ops in flight
KILL_PROBE_TIMEOUT = 0.2


class EtcdSystem:
    """One etcd cluster for one session of the suite (the ``System`` protocol)."""

    def __init__(self, servers: int, fsync: bool) -> None:
        self.servers = servers
        self.fsync = fsync
        self.cluster: Any = None
        self.clients: list[Any] = []

    def start(self) -> None:
        from teachraft.etcd import EtcdCluster

        self.cluster = EtcdCluster(
            self.servers, fsync=self.fsync, op_timeout=5.0, proxies=False
        ).start()
        leader = self.cluster.wait_for_leader()
        self.clients = [self._client("bench", leader)]

    def _client(self, name: str, leader: int, timeout: float = 5.0) -> Any:
        from teachraft.etcd import EtcdClient

        c = self.cluster
        return c.call_in_loop(
            lambda: EtcdClient(name, c.client_urls, None, timeout=timeout, start=leader - 1)
        )

    def run(self, spec: WorkloadSpec) -> Sample:
        if spec.in_flight > 1:
            leader = self.cluster.wait_for_leader()
            return drive_in_children(self.cluster.members[leader].client_url, spec)

        async def go() -> Sample:
            await warm_up(self.clients)
            return await drive(self.clients, spec)

        return self.cluster.run(go(), timeout=spec.max_seconds + 120)

    def leader_kill(self) -> float:
        """SIGKILL the leader; seconds until a put through a client commits again.

        The probing client gives up on a put after ``KILL_PROBE_TIMEOUT`` and
        tries the next member, so the figure is at most that much late.
        """
        c = self.cluster
        leader = (c.status())["leader"]
        client = self._client("killprobe", leader, KILL_PROBE_TIMEOUT)

        async def kill() -> float:
            await warm_up([client])
            since = time.monotonic()
            await c.afail_inner(leader)
            return await put_after(client, since)

        return float(c.run(kill(), timeout=60))

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()


def drive_in_children(url: str, spec: WorkloadSpec, parts: int = DRIVERS) -> Sample:
    """Run ``spec`` split over ``parts`` client processes that start at the same instant."""
    start_at = time.monotonic() + 3.0  # CLOCK_MONOTONIC: one clock for every process
    children = [
        subprocess.Popen(
            [
                PYTHON,
                "-m",
                "bench.peer_etcd",
                "drive",
                url,
                json.dumps(part.to_json()),
                str(start_at),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for part in (spec.share(parts, i) for i in range(parts))
    ]
    samples = []
    try:
        for child in children:
            out, err = child.communicate(timeout=spec.max_seconds + 60)
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            if not lines:
                raise RuntimeError(f"an etcd client process failed: {err.strip()[-300:]}")
            samples.append(Sample.from_json(json.loads(lines[-1])))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                with contextlib.suppress(Exception):
                    child.communicate(timeout=10)
    return merge(samples)


async def _drive_part(url: str, spec: WorkloadSpec, start_at: float) -> Sample:
    """One client process: its own connections, warmed up, then its share of the load."""
    from teachraft.etcd import EtcdClient

    # one connection each: httpx's pool scans its connections on every request
    clients = [
        EtcdClient(f"driver{i}", lambda: [url], None, timeout=5.0)
        for i in range(max(1, spec.in_flight))
    ]
    try:
        await warm_up(clients[:1])
        return await drive(clients, spec, start_at)
    finally:
        for client in clients:
            await client.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.peer_etcd drive URL SPEC_JSON START_AT``: prints one Sample as JSON."""
    p = argparse.ArgumentParser(prog="python -m bench.peer_etcd")
    p.add_argument("cmd", choices=["drive"])
    p.add_argument("url")
    p.add_argument("spec")
    p.add_argument("start_at", type=float)
    args = p.parse_args(argv)
    spec = WorkloadSpec.from_json(json.loads(args.spec))
    sample = asyncio.run(_drive_part(args.url, spec, args.start_at))
    print(json.dumps(sample.to_json()))
    return 0


def available() -> bool:
    from teachraft.etcd import etcd_available

    return etcd_available()


def version() -> str | None:
    """etcd's version line (``etcd Version: 3.4.23``), or None without etcd."""
    import subprocess

    from teachraft.etcd import etcd_binary

    try:
        out = subprocess.run(
            [etcd_binary(), "--version"], capture_output=True, text=True, timeout=10
        )
    except Exception:
        return None
    first = out.stdout.splitlines()[0] if out.stdout else ""
    return first.split(":", 1)[-1].strip() or None


def etcd_phase(suite: Any) -> None:
    """Run the etcd sessions of the suite's plan (teachraft and PySyncObj ran before)."""
    runs, sizes, variants = PLANS.get(suite.plan.name, PLANS["quick"])
    for r in range(runs):
        for servers in sizes:
            suite.say(f"[{suite.elapsed():.0f} s] etcd, {servers} members, run {r + 1}/{runs}")
            for fsync in variants:
                where = (ETCD, VARIANTS[fsync], PER_PROCESS, servers)
                suite.session(
                    lambda s=servers, f=fsync: EtcdSystem(s, f),
                    where,
                    list(WORKLOADS),
                    kill=True,
                    seed=r,
                )


# --------------------------------------------------------------------- the table
COLUMNS = [
    ("teachraft, in-process", TEACHRAFT, "tracing off", "in-process"),
    ("teachraft, per-process", TEACHRAFT, "tracing off", PER_PROCESS),
    ("PySyncObj u, in-process", PEER, "unbatched", "in-process"),
    ("etcd, no fsync", ETCD, "no fsync", PER_PROCESS),
    ("etcd, fsync", ETCD, "fsync", PER_PROCESS),
]
ROWS = [
    ("sequential put (ops/s)", "seq", "ops_s"),
    ("sequential put p50 (ms)", "seq", "p50_ms"),
    ("64 in flight (ops/s)", "inflight64", "ops_s"),
    ("leader kill -> next op (s)", "leader_kill", "seconds"),
]


def comparison_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """teachraft, PySyncObj and etcd side by side, per member count (medians)."""
    from bench.report import _fmt

    figures = {
        (f["system"], f["variant"], f["mode"], f["servers"], f["workload"]): f
        for f in results["figures"]
    }
    sizes = sorted({f["servers"] for f in results["figures"] if f["system"] == ETCD})
    rows = []
    for n in sizes:
        for label, workload, metric in ROWS:
            cells = []
            for _, system, variant, mode in COLUMNS:
                fig = figures.get((system, variant, mode, n, workload))
                cells.append(_fmt(fig["medians"].get(metric)) if fig else "-")
            rows.append([f"{n} servers: {label}", *cells])
    return ["figure (median)", *[c[0] for c in COLUMNS]], rows


def comparison_markdown(results: dict[str, Any]) -> str:
    """The same table as Markdown, for the README."""
    header, rows = comparison_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
