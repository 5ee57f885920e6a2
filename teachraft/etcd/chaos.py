"""Seeded chaos against a real etcd cluster, checked by teachraft's linearizability checker.

``teachraft chaos --engine etcd --seed S --duration SEC`` starts an
:class:`EtcdCluster`, lets C clients run the chaos workload (gets and puts on
a few keys, checked with the ``kv`` model, and reads, writes and
compare-and-sets on a few registers, checked with the ``etcd`` cas model),
while a nemesis driven by ``random.Random(S)`` kills, pauses, partitions,
isolates the leader, and drops and delays peer traffic, one fault at a time,
never more than F members down. At the end every fault heals, the members
must converge, and both histories must be linearizable.

teachraft's ``cut-leader`` cuts the leader from the coord; etcd has no coord,
so here it cuts the leader from every other member, which is what takes its
authority away in etcd: the others elect a new leader once they stop hearing
its heartbeats.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachraft.chaos import NEMESES, BaseNemesis, count_outcomes, drive
from teachraft.check import History, check, write_jsonl
from teachraft.errors import KVError
from teachraft.etcd.client import b64
from teachraft.etcd.cluster import EtcdCluster

log = logging.getLogger(__name__)
KV_OPS = ("get", "put")
CAS_OPS = ("read", "write", "cas")


@dataclass
class EtcdChaosReport:
    """What an etcd chaos run did and found (one verdict per model)."""

    seed: int
    members: int = 0
    ok: int = 0
    fail: int = 0
    unknown: int = 0
    faults: list[str] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)
    explanations: dict[str, str] = field(default_factory=dict)
    converged: bool = False
    history: History | None = None
    results: dict[str, Any] = field(default_factory=dict)
    fault_periods: list[tuple[float, float, str]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``linearizable`` only when every model says so."""
        values = set(self.verdicts.values())
        if values == {"linearizable"}:
            return "linearizable"
        return "not linearizable" if "not linearizable" in values else "unknown"

    @property
    def explanation(self) -> str:
        return "\n".join(f"[{m}] {text}" for m, text in self.explanations.items() if text)

    @property
    def passed(self) -> bool:
        return self.verdict == "linearizable" and self.converged

    def summary(self) -> str:
        models = ", ".join(f"{m}: {v}" for m, v in self.verdicts.items())
        return (
            f"etcd chaos seed={self.seed} members={self.members}: ops ok={self.ok} "
            f"fail={self.fail} unknown={self.unknown}, faults={len(self.faults)}, "
            f"verdict={self.verdict} ({models}), "
            f"{'converged' if self.converged else 'NOT converged'}"
        )


class EtcdNemesis(BaseNemesis):
    """The shared nemesis with etcd's fault calls: signals to the members, faults in the proxies.

    Every call runs on the cluster's own loop, where the fault filter lives.
    """

    log_revive = True

    def __init__(self, cluster: EtcdCluster, rng: random.Random) -> None:
        super().__init__(cluster, rng, NEMESES)

    async def afail(self, sid: int) -> None:
        await self.c.afail_inner(sid)

    async def arestart(self, sid: int) -> None:
        await self.c.arestart_inner(sid)

    async def apause(self, sid: int) -> None:
        await self.c._apause(sid, True)

    async def aresume(self, sid: int) -> None:
        await self.c._apause(sid, False)

    async def apartition(self, minority: list[int], rest: list[int]) -> None:
        self.c.faults.partition([f"server{s}" for s in minority], [f"server{s}" for s in rest])

    async def acut_leader(self, servers: list[int]) -> bool:
        """Cut the leader from every other member (etcd has no coord)."""
        leader = (await self.c._astatus())["leader"]
        if leader:
            others = [f"server{s}" for s in servers if s != leader]
            self.c.faults.partition([f"server{leader}"], others)
        return bool(leader)

    async def adrop(self, a: int, b: int, p: float) -> None:
        self.c.faults.drop(f"server{a}", f"server{b}", p)

    async def adelay(self, a: int, b: int, mean: float, jitter: float) -> None:
        self.c.faults.delay(f"server{a}", f"server{b}", mean, jitter)

    async def aheal(self) -> None:
        self.c.faults.heal()


async def client_loop(
    c: EtcdCluster, cid: int, rng: random.Random, keys: int, until: float
) -> None:
    """One client: sequential random kv ops and register ops with unique values."""
    client = c.client(cid)
    seen: dict[str, str | None] = {}
    n = 0
    while time.monotonic() < until:
        n += 1
        value = f"c{cid}-{n}"
        try:
            if rng.random() < 0.5:
                key = f"k{rng.randrange(keys)}"
                if rng.random() < 0.5:
                    await client.put(key, value)
                else:
                    await client.get(key)
            else:
                key = f"r{rng.randrange(keys)}"
                roll = rng.random()
                if roll < 0.4:
                    seen[key] = await client.read(key)
                elif roll < 0.7:
                    await client.write(key, value)
                    seen[key] = value
                elif await client.cas(key, seen.get(key), value):
                    seen[key] = value
        except KVError:
            await asyncio.sleep(0.02)


async def _run(
    c: EtcdCluster,
    report: EtcdChaosReport,
    duration: float,
    clients: int,
    keys: int,
    interval: float,
) -> None:
    report.faults = await drive(
        lambda rng: EtcdNemesis(c, rng),
        lambda cid, rng, until: client_loop(c, cid, rng, keys, until),
        report.seed,
        duration,
        clients,
        interval,
    )


async def _converged(c: EtcdCluster, keys: int, timeout: float) -> bool:
    """Every member applied the same index and holds the same value for every key."""
    deadline = time.monotonic() + timeout
    names = [f"{p}{i}" for p in ("k", "r") for i in range(keys)]
    while time.monotonic() < deadline:
        status = await c._astatus()
        applied = {s["last_applied"] for s in status["servers"].values()}
        if status["leader"] and len(applied) == 1 and 0 not in applied:
            views = []
            for member in c.members.values():
                view = {}
                for key in names:
                    body = {"key": b64(key), "serializable": True}
                    kvs = (await c._call(member, "/v3/kv/range", body)).get("kvs") or []
                    view[key] = kvs[0].get("value") if kvs else None
                views.append(view)
            if all(v == views[0] for v in views):
                return True
        await asyncio.sleep(0.2)
    return False


def split(history: History) -> dict[str, History]:
    """The kv part (get/put) and the register part (read/write/cas) of one history."""
    return {
        "kv": History([op for op in history.ops if op.f in KV_OPS], history.initial),
        "etcd": History([op for op in history.ops if op.f in CAS_OPS], history.initial),
    }


def run_etcd_chaos(
    seed: int,
    duration: float = 10.0,
    members: int = 5,
    clients: int = 3,
    keys: int = 3,
    fsync: bool = False,
    out_dir: str | Path | None = None,
    check_timeout: float = 30.0,
    interval: float = 0.7,
) -> EtcdChaosReport:
    """Run one etcd chaos scenario and return its report (it never raises for a violation)."""
    report = EtcdChaosReport(seed, members)
    with EtcdCluster(members, fsync=fsync, seed=seed) as c:
        c.run(_run(c, report, duration, clients, keys, interval), timeout=duration + 120)
        report.converged = c.run(_converged(c, keys, 30.0), timeout=60)
        history = c.history()
        report.fault_periods = c.fault_periods()
    history = History([op for op in history.ops if op.client.startswith("client")])
    report.history = history
    for model, part in split(history).items():
        result = check(part, model, timeout=check_timeout)
        report.results[model] = result
        report.verdicts[model] = result.verdict
        report.explanations[model] = result.explain() if not result.ok else ""
    count_outcomes(report, history)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_jsonl(history, Path(out_dir) / "history.jsonl")
    return report


def main(argv: list[str]) -> int:
    """``teachraft chaos --engine etcd ...``: the same options as teachraft's chaos run."""
    p = argparse.ArgumentParser(
        prog="teachraft chaos --engine etcd", description=__doc__.splitlines()[0]
    )
    p.add_argument("--engine", choices=("etcd",), default="etcd")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of workload")
    p.add_argument("--servers", type=int, default=5, help="etcd members (odd, 1-7)")
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--keys", type=int, default=3)
    p.add_argument("--fsync", action="store_true", help="keep etcd's fsync (default: off)")
    p.add_argument("--out", default=None, help="folder for the history (history.jsonl)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = run_etcd_chaos(
        args.seed,
        args.duration,
        args.servers,
        args.clients,
        args.keys,
        fsync=args.fsync,
        out_dir=args.out,
    )
    print(report.summary())
    if report.explanation:
        print(report.explanation)
    return 0 if report.passed else 1
