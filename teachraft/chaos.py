"""Seeded chaos runs: a workload, a nemesis, and a linearizability verdict at the end.

``teachraft chaos --seed S --duration SEC`` starts a cluster with stable
storage, lets C clients run a mixed get/put workload on a few keys, and lets a
nemesis driven by ``random.Random(S)`` kill, restart, pause, partition, cut
and slow the network (the fault model of labrpc, Maelstrom and Jepsen over
real sockets). At the end everything heals, every server's applied state must
converge, and the recorded history must be linearizable.

The schedule is a pure function of the seed; the timing of a real network is
not, so a seed names a scenario rather than an exact interleaving.

``--unsafe`` switches the original's leader selection back on (no fencing) and
uses the ``isolate`` nemesis: it cuts the leader from the coord but not from
its followers, while the links between servers are slow, so the old leader
keeps committing writes that the next leader overwrites. The checker catches it.

``--election raft`` runs the same chaos on Raft's own elections (no coord):
the partitions then split the servers only, and ``cut-leader`` cuts the
leader off from every other server.

Logs compact every ``--snapshot-every`` entries (100 by default, far more often
than a cluster's default), so a server that comes back from a kill or a
partition usually catches up by InstallSnapshot: the summary counts them.
``--unsafe`` runs never compact, as the original never did: compaction relies on
committed entries never changing, which is exactly what the unfenced selection
breaks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachraft.check import History, check
from teachraft.cluster import Cluster
from teachraft.errors import KVError

log = logging.getLogger(__name__)

NEMESES = ("kill", "pause", "partition", "cut-leader", "drop", "delay")
CHAOS_SNAPSHOT_EVERY = 100
SCENARIOS = {"mixed": NEMESES, "isolate": ("isolate",)}


@dataclass
class ChaosReport:
    """What a chaos run did and found."""

    seed: int
    ok: int = 0
    fail: int = 0
    unknown: int = 0
    faults: list[str] = field(default_factory=list)
    verdict: str = "unknown"
    converged: bool = False
    explanation: str = ""
    history: Any = None
    result: Any = None
    fault_periods: list[tuple[float, float, str]] = field(default_factory=list)
    snapshots_installed: int = 0
    """InstallSnapshots completed by the servers' current lives (a restart resets a count)."""

    @property
    def passed(self) -> bool:
        return self.verdict == "linearizable" and self.converged

    def summary(self) -> str:
        return (
            f"chaos seed={self.seed}: ops ok={self.ok} fail={self.fail} unknown={self.unknown}, "
            f"faults={len(self.faults)}, snapshots installed={self.snapshots_installed}, "
            f"verdict={self.verdict}, {'converged' if self.converged else 'NOT converged'}"
        )


class BaseNemesis(ABC):
    """One seeded fault at a time, healed at random; never more than F servers down.

    The schedule (what breaks, where, and when it heals) is drawn here from the
    seeded ``rng``, the same for every engine; each engine supplies the fault
    calls (``afail``, ``apause``, ``apartition``...) for its own cluster.
    """

    log_revive = False  # whether healing everything is logged as a "heal" fault

    def __init__(self, cluster: Any, rng: random.Random, kinds: tuple[str, ...] = NEMESES) -> None:
        self.c = cluster
        self.rng = rng
        self.kinds = kinds
        self.down: set[int] = set()
        self.paused: set[int] = set()
        self.log: list[str] = []

    @property
    def max_down(self) -> int:
        return (self.c.num_servers - 1) // 2

    async def step(self) -> None:
        """Heal what is broken, or break something new."""
        if (self.down or self.paused) and self.rng.random() < 0.5:
            await self.heal_all()
            if self.log_revive:
                self.log.append("heal")
            return
        kind = self.rng.choice(self.kinds)
        servers = list(range(1, self.c.num_servers + 1))
        out = self.down | self.paused
        if kind in ("kill", "pause") and len(out) < self.max_down:
            sid = self.rng.choice([s for s in servers if s not in out])
            if kind == "kill":
                await self.afail(sid)
                self.down.add(sid)
            else:
                await self.apause(sid)
                self.paused.add(sid)
        elif kind == "partition":
            self.rng.shuffle(servers)
            cut = self.rng.randint(1, len(servers) // 2)
            await self.apartition(servers[:cut], servers[cut:])
        elif kind == "drop":
            a, b = self.rng.sample(servers, 2)
            await self.adrop(a, b, self.rng.uniform(0.1, 0.5))
        elif kind == "delay":
            for a in servers:
                for b in servers:
                    if a != b:
                        await self.adelay(a, b, 0.01, 0.01)
        elif not (kind == "cut-leader" and await self.acut_leader(servers)):
            await self.aheal()  # no room for another server down, or no leader to cut
            kind = "heal"
        self.log.append(kind)

    async def heal_all(self) -> None:
        """Resume the paused, restart the failed, and heal the network."""
        for sid in sorted(self.paused):
            await self.aresume(sid)
        for sid in sorted(self.down):
            await self.arestart(sid)
        self.paused.clear()
        self.down.clear()
        await self.aheal()

    # The engine's fault calls.
    @abstractmethod
    async def afail(self, sid: int) -> None:
        """Fail (kill) server ``sid``."""

    @abstractmethod
    async def arestart(self, sid: int) -> None:
        """Restart the failed server ``sid``."""

    @abstractmethod
    async def apause(self, sid: int) -> None:
        """Pause server ``sid``: it holds its connections but answers nothing."""

    @abstractmethod
    async def aresume(self, sid: int) -> None:
        """Resume the paused server ``sid``."""

    @abstractmethod
    async def apartition(self, minority: list[int], rest: list[int]) -> None:
        """Split ``minority`` from ``rest``."""

    @abstractmethod
    async def acut_leader(self, servers: list[int]) -> bool:
        """Take the leader's authority away; False when there is no leader to cut."""

    @abstractmethod
    async def adrop(self, a: int, b: int, p: float) -> None:
        """Lose a share ``p`` of the a->b traffic."""

    @abstractmethod
    async def adelay(self, a: int, b: int, mean: float, jitter: float) -> None:
        """Slow the a->b traffic by mean +- jitter seconds."""

    @abstractmethod
    async def aheal(self) -> None:
        """Remove every network fault."""


class Nemesis(BaseNemesis):
    """teachraft's nemesis: its fault calls go through ``Cluster.faults``; it also isolates."""

    async def step(self) -> None:
        if self.kinds == ("isolate",):  # nothing is ever down or paused in this scenario
            await self._isolate_or_heal()
            return
        await super().step()

    async def afail(self, sid: int) -> None:
        await self.c.faults.afail(sid)

    async def arestart(self, sid: int) -> None:
        await self.c.faults.arestart(sid)

    async def apause(self, sid: int) -> None:
        await self.c.faults.apause(sid)

    async def aresume(self, sid: int) -> None:
        await self.c.faults.aresume(sid)

    async def apartition(self, minority: list[int], rest: list[int]) -> None:
        if self.c.election == "raft":
            await self.c.faults.apartition(minority, rest)
            return
        await self.c.faults.apartition(minority, ["coord", *rest])

    async def acut_leader(self, servers: list[int]) -> bool:
        """Cut the leader from the coord, which then picks another.

        Raft mode: cut the leader from every other server; CheckQuorum makes it step down.
        """
        leader = await self.c.aleader()
        if leader and self.c.election == "raft":
            others = [s for s in range(1, self.c.num_servers + 1) if s != leader]
            await self.c.faults.apartition([leader], others)
        elif leader:
            await self.c.faults.acut("coord", leader)
        return bool(leader)

    async def adrop(self, a: int, b: int, p: float) -> None:
        await self.c.faults.adrop(a, b, p)

    async def adelay(self, a: int, b: int, mean: float, jitter: float) -> None:
        await self.c.faults.adelay(a, b, mean, jitter)

    async def aheal(self) -> None:
        await self.c.faults.aheal()

    async def _isolate_or_heal(self) -> None:
        """Alternate: cut the leader from the coord (not from its followers), then heal.

        One follower lags behind the old leader (a slow link) but is the first to
        answer the coord. The unsafe coord takes it as the new leader; the old
        leader, which nobody fenced, had meanwhile committed with the others
        entries the new leader lacks, and they are overwritten. A fencing coord
        waits for a majority and picks the most up-to-date among them instead.
        """
        c = self.c
        if self.log and self.log[-1] == "isolate":
            await c.faults.aheal()
            self.log.append("heal")
            return
        old = await c.aleader()
        if not old:
            return
        others = [s for s in range(1, c.num_servers + 1) if s != old]
        lagging = self.rng.choice(others)
        await c.faults.acut("coord", old)
        for cid in c.clients:  # the clients keep writing through the old leader
            await c.faults.acut("coord", f"client{cid}")
        # One follower lags behind the old leader but answers the coord first.
        await c.faults.adelay(old, lagging, 0.03, 0.0)
        for s in others:
            if s != lagging:
                await c.faults.adelay("coord", s, 0.01, 0.0)
        self.log.append("isolate")


async def _client_loop(c: Cluster, cid: int, rng: random.Random, keys: int, until: float) -> None:
    """One client: sequential random gets and puts with unique values, until the deadline."""
    client = c.client(cid)
    n = 0
    while time.monotonic() < until:
        n += 1
        key = f"k{rng.randrange(keys)}"
        try:
            if rng.random() < 0.5:
                await client.put(key, f"c{cid}-{n}")
            else:
                await client.get(key)
        except KVError:
            await asyncio.sleep(0.02)


async def _run(
    c: Cluster,
    report: ChaosReport,
    duration: float,
    clients: int,
    keys: int,
    kinds: tuple[str, ...],
    interval: float,
) -> None:
    report.faults = await drive(
        lambda rng: Nemesis(c, rng, kinds),
        lambda cid, rng, until: _client_loop(c, cid, rng, keys, until),
        report.seed,
        duration,
        clients,
        interval,
    )
    await c.faults.aheal()


async def drive(
    nemesis_of: Callable[[random.Random], BaseNemesis],
    client_loop: Callable[[int, random.Random, float], Awaitable[None]],
    seed: int,
    duration: float,
    clients: int,
    interval: float,
) -> list[str]:
    """Run the clients and the nemesis until the deadline, heal all, return the faults.

    Every random choice comes from ``seed``: one draw seeds the nemesis, then one
    per client, so a seed names the same schedule on every engine.
    """
    rng = random.Random(seed)
    nemesis = nemesis_of(random.Random(rng.random()))
    until = time.monotonic() + duration
    workers = [
        asyncio.ensure_future(client_loop(i, random.Random(rng.random()), until))
        for i in range(1, clients + 1)
    ]
    while time.monotonic() < until:
        await asyncio.sleep(nemesis.rng.uniform(interval * 0.5, interval * 1.5))
        if time.monotonic() < until - interval:
            await nemesis.step()
    await asyncio.gather(*workers)
    await nemesis.heal_all()
    return nemesis.log


def run_chaos(
    seed: int,
    duration: float = 10.0,
    servers: int = 5,
    clients: int = 3,
    keys: int = 3,
    unsafe: bool = False,
    tracing: bool = False,
    out_dir: str | Path | None = None,
    check_timeout: float = 30.0,
    scenario: str | None = None,
    election: str = "coord",
    snapshot_every: int | None = None,
) -> ChaosReport:
    """Run one chaos scenario and return its report (it never raises for a violation).

    ``scenario`` is "mixed" (every nemesis) or "isolate" (the old leader cut from
    the coord but not from its followers); the default is "isolate" with
    ``unsafe`` and "mixed" without. ``snapshot_every`` defaults to
    ``CHAOS_SNAPSHOT_EVERY``, and to 0 (never) with ``unsafe``.
    """
    scenario = scenario or ("isolate" if unsafe else "mixed")
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if election == "raft" and (unsafe or scenario == "isolate"):
        raise ValueError("--unsafe and the isolate scenario are about the coord: coord mode only")
    with Cluster(
        servers=servers,
        clients=clients,
        tracing=tracing,
        seed=seed,
        persist=True,
        fsync=False,
        out_dir=out_dir,
        unsafe_leader_selection=unsafe,
        election=election,
        snapshot_every=(0 if unsafe else CHAOS_SNAPSHOT_EVERY)
        if snapshot_every is None
        else snapshot_every,
    ) as c:
        return chaos_on(c, seed, duration, keys, scenario, check_timeout)


def chaos_on(
    c: Cluster,
    seed: int,
    duration: float = 10.0,
    keys: int = 3,
    scenario: str = "mixed",
    check_timeout: float = 30.0,
) -> ChaosReport:
    """Run one chaos scenario on a started cluster (every client of it works) and report.

    The cluster stays open, so a lesson can draw it afterwards; it needs
    ``persist=True`` for the kill nemesis to restart servers. A lesson's
    mystery cluster (``teachraft.labs.mystery``) is run this way.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    report = ChaosReport(seed)
    kinds = SCENARIOS[scenario]
    interval = 0.5 if scenario == "isolate" else 0.7
    clients = int(c.num_clients)
    c.run(_run(c, report, duration, clients, keys, kinds, interval), timeout=duration + 120)
    try:
        c.wait_converged(timeout=30)
        report.converged = _same_state(c)
    except Exception as exc:
        log.warning("chaos seed %d: %s", seed, exc)
    report.history = c.history()
    report.fault_periods = c.fault_periods()
    servers = c.status()["servers"].values()
    report.snapshots_installed = sum(row.get("snapshots_installed", 0) for row in servers)
    report.result = check(report.history, "kv", timeout=check_timeout)
    report.verdict = report.result.verdict
    report.explanation = report.result.explain() if not report.result.ok else ""
    count_outcomes(report, report.history)
    return report


def count_outcomes(report: Any, history: History) -> None:
    """Add each op's outcome (ok, fail or unknown) to the report's counter of that name."""
    for op in history.ops:
        setattr(report, op.outcome, getattr(report, op.outcome) + 1)


def _same_state(c: Cluster) -> bool:
    states = [c.kv(i) for i in sorted(c.servers) if not c.servers[i].stopped]
    return all(s == states[0] for s in states)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="teachraft chaos", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of workload")
    p.add_argument("--servers", type=int, default=5)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--keys", type=int, default=3)
    p.add_argument(
        "--unsafe", action="store_true", help="the original's leader selection without fencing"
    )
    p.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default=None,
        help="mixed: every nemesis; isolate: the leader cut from the coord only",
    )
    p.add_argument("--trace", action="store_true", help="record a vector-clock trace")
    p.add_argument("--out", default=None, help="folder for the trace and the history")
    p.add_argument("--engine", choices=("teachraft", "etcd"), default="teachraft")
    p.add_argument(
        "--election",
        choices=("coord", "raft"),
        default="coord",
        help="coord: KVRaft's coord picks leaders; raft: Raft's own elections, no coord",
    )
    p.add_argument(
        "--snapshot-every",
        type=int,
        default=None,
        help=f"compact each server's log after this many entries (0: never; default "
        f"{CHAOS_SNAPSHOT_EVERY}, and never with --unsafe)",
    )
    args = p.parse_args(argv)
    if args.election == "raft" and (args.unsafe or args.scenario == "isolate"):
        p.error("--unsafe and --scenario isolate are about the coord: use them in coord mode")
    if args.engine == "etcd":  # a real etcd cluster: teachraft.etcd.chaos
        from teachraft.etcd.chaos import main as etcd_main

        return etcd_main(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = run_chaos(
        args.seed,
        args.duration,
        args.servers,
        args.clients,
        args.keys,
        unsafe=args.unsafe,
        tracing=args.trace,
        out_dir=args.out,
        scenario=args.scenario,
        election=args.election,
        snapshot_every=args.snapshot_every,
    )
    print(report.summary())
    if args.out:
        from teachraft.check import write_jsonl

        write_jsonl(report.history, Path(args.out) / "history.jsonl")
    if report.explanation:
        print(report.explanation)
    return 0 if report.passed else 1
