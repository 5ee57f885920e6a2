"""The workloads of the suite, and the one driver that runs them on teachraft clients.

A workload is a closed loop: ``in_flight`` workers, each waiting for its op's
result before it sends the next, spread round-robin over the clients. It
stops after ``max_ops`` ops or ``max_seconds``, whichever comes first, so that
a slow system (PySyncObj's batched mode commits about ten sequential puts a
second) bounds the run in time rather than stretching it. The same spec drives
PySyncObj (``bench.peer_pysyncobj``), so both systems see the same load.

``Sample`` is one measured run; it survives a JSON round trip, which is how
the bench client processes of the per-process mode report back.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from teachraft.errors import KVError, NoQuorumError

WARMUP_OPS = 10
FOREIGN = "_foreign"
"""A workload whose name ends so is driven from another loop, through ``await cluster.aput``."""


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """What to run: how many ops in flight, the share of gets, and the bounds."""

    name: str
    in_flight: int
    get_ratio: float = 0.0
    max_ops: int = 1000
    max_seconds: float = 1.0
    keys: int = 1000
    seed: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkloadSpec:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})

    def share(self, parts: int, index: int) -> WorkloadSpec:
        """The part of this workload that client process ``index`` of ``parts`` runs."""
        return WorkloadSpec(
            self.name,
            _split(self.in_flight, parts, index),
            self.get_ratio,
            _split(self.max_ops, parts, index),
            self.max_seconds,
            self.keys,
            self.seed * 1009 + index,
        )


def _split(total: int, parts: int, index: int) -> int:
    """Share ``index`` of ``total`` cut into ``parts`` near-equal whole shares."""
    return total // parts + (1 if index < total % parts else 0)


@dataclass(slots=True)
class Sample:
    """One run of a workload: completed ops, errors, wall time and every op's latency."""

    ops: int = 0
    errors: int = 0
    t0: float = 0.0
    t1: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def seconds(self) -> float:
        return max(self.t1 - self.t0, 1e-9)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.ops else 0.0

    def percentile(self, q: float) -> float:
        """The q-th quantile (0..1) of the latencies, in seconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        """The figures the report keeps for this run (latencies in ms, None without any)."""
        out: dict[str, Any] = {
            "ops": self.ops,
            "errors": self.errors,
            "seconds": round(self.seconds, 4),
            "ops_s": round(self.rate, 1),
        }
        for name, q in (("p50_ms", 0.50), ("p90_ms", 0.90), ("p99_ms", 0.99)):
            value = self.percentile(q)
            out[name] = round(value * 1000, 3) if value == value else None
        out["error"] = self.error
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["latencies"] = [round(x, 7) for x in self.latencies]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sample:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})


def merge(samples: Sequence[Sample]) -> Sample:
    """One sample from the parts run by several processes against one cluster."""
    if not samples:
        return Sample(error="no samples")
    return Sample(
        ops=sum(s.ops for s in samples),
        errors=sum(s.errors for s in samples),
        t0=min(s.t0 for s in samples),
        t1=max(s.t1 for s in samples),
        latencies=[x for s in samples for x in s.latencies],
        error="; ".join(sorted({s.error for s in samples if s.error})),
    )


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


class _Budget:
    """The shared op counter and deadline of one workload run."""

    def __init__(self, spec: WorkloadSpec, t0: float) -> None:
        self.left = spec.max_ops
        self.deadline = t0 + spec.max_seconds
        self.stop = False

    def take(self) -> bool:
        if self.stop or self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        return True


async def drive(
    clients: Sequence[Any], spec: WorkloadSpec, start_at: float | None = None
) -> Sample:
    """Run ``spec`` on teachraft ``KVClient``s (on their loop); one Sample back.

    With ``start_at`` (a ``time.monotonic()`` instant, shared by every process
    of one machine) the run begins then, so that several client processes
    start together.
    """
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    sample = Sample(t0=time.monotonic())
    budget = _Budget(spec, sample.t0)
    workers = [
        _worker(
            clients[j % len(clients)], spec, random.Random(spec.seed * 7919 + j), budget, sample, j
        )
        for j in range(spec.in_flight)
    ]
    await asyncio.gather(*workers)
    sample.t1 = time.monotonic()
    return sample


async def _worker(
    client: Any, spec: WorkloadSpec, rng: random.Random, budget: _Budget, sample: Sample, j: int
) -> None:
    clock = time.monotonic
    lat = sample.latencies
    n = 0
    while budget.take():
        n += 1
        key = f"k{rng.randrange(spec.keys)}"
        start = clock()
        try:
            if spec.get_ratio and rng.random() < spec.get_ratio:
                await client.get(key)
            else:
                await client.put(key, f"w{j}-{n}")
        except NoQuorumError as exc:
            sample.errors += 1
            sample.error = str(exc)
            budget.stop = True
            return
        except KVError as exc:
            sample.errors += 1
            sample.error = str(exc)
            continue
        lat.append(clock() - start)
        sample.ops += 1


async def warm_up(clients: Sequence[Any]) -> None:
    """A few puts through every client, so each one has found the leader and connected."""
    for client in clients:
        for i in range(WARMUP_OPS):
            await client.put(f"warm{i}", "x")


async def put_after(client: Any, since: float, timeout: float = 30.0) -> float:
    """Seconds from ``since`` until one put through ``client`` commits (it retries inside)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(client.put("after-kill", "v"), deadline - time.monotonic())
            return time.monotonic() - since
        except KVError:
            await asyncio.sleep(0.01)
    raise TimeoutError(f"no put committed within {timeout:.0f} s of the leader kill")
