"""What the suite measured: figures made of runs, medians, pair ratios and targets.

A *figure* is one number of the report (say, sequential puts on 5 servers,
in-process, tracing off) measured over several *runs*; its value is the
median over the runs. Runs of teachraft and PySyncObj were taken alternately,
so run ``i`` of one system and run ``i`` of the other form a *pair*, and a
ratio is the median of the per-pair ratios, not the ratio of two medians: a
machine that slowed down for a while slows both halves of a pair.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.workloads import median

TEACHRAFT, PEER, GO = "teachraft", "pysyncobj", "go"
IN_PROCESS, PER_PROCESS = "in-process", "per-process"
RAFT_VARIANT = "raft elections"
"""teachraft with Raft's own elections (``election="raft"``, tracing off), beside coord mode."""
COORD_VARIANT = "tracing off"
"""The coord-mode figures the raft-mode ones are paired with."""
WORKLOADS = {
    "seq": "sequential put",
    "inflight64": "64 in flight",
    "mix": "50/50 get/put, 64 in flight",
    "inflight1024": "1,024 in flight",
    "leader_kill": "leader kill -> next op",
    "rss": "RSS after the fill",
}
METRICS = {"leader_kill": "seconds", "rss": "rss_mb"}


def main_metric(workload: str) -> str:
    """The number a figure of this workload is judged by."""
    return METRICS.get(workload, "ops_s")


@dataclass
class Figure:
    """One measured quantity and the runs behind it."""

    system: str
    variant: str
    mode: str
    servers: int
    workload: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return "|".join([self.system, self.variant, self.mode, str(self.servers), self.workload])

    def values(self, metric: str) -> list[float]:
        """The metric of every run that produced it (NaN for failed runs)."""
        values = [r.get(metric) for r in self.runs]
        return [math.nan if v is None else float(v) for v in values]

    def median(self, metric: str | None = None) -> float:
        return median(self.values(metric or main_metric(self.workload)))

    def errors(self) -> list[str]:
        return sorted({str(r["error"]) for r in self.runs if r.get("error")})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["medians"] = {
            m: _round(self.median(m))
            for m in ("ops_s", "p50_ms", "p90_ms", "p99_ms", "seconds", "rss_mb")
            if any(m in r for r in self.runs)
        }
        data["value"] = _round(self.median())
        data["errors"] = self.errors()
        return data


@dataclass
class Ratio:
    """teachraft over PySyncObj for one figure, per pair of alternate runs."""

    workload: str
    mode: str
    servers: int
    teachraft: str
    peer: str
    metric: str
    pairs: list[float]

    @property
    def value(self) -> float:
        return median(self.pairs)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["pairs"] = [_round(p) for p in self.pairs]
        data["median"] = _round(self.value)
        return data


def pair_ratios(ours: Figure, theirs: Figure, metric: str) -> list[float]:
    """ours[i] / theirs[i] for every run index where both have a finite value."""
    out = []
    for a, b in zip(ours.values(metric), theirs.values(metric), strict=False):
        if math.isfinite(a) and math.isfinite(b) and b > 0:
            out.append(a / b)
    return out


@dataclass(frozen=True)
class Target:
    """A speed target of the 5-server in-process figures."""

    name: str
    key: str
    metric: str
    bound: float
    at_most: bool
    unit: str

    def met(self, value: float) -> bool | None:
        if not math.isfinite(value):
            return None
        return value <= self.bound if self.at_most else value >= self.bound

    def text(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.bound:,.4g} {self.unit}"


def _key(variant: str, workload: str) -> str:
    return "|".join([TEACHRAFT, variant, IN_PROCESS, "5", workload])


TARGETS = [
    Target(
        "sequential put, tracing off, p50", _key("tracing off", "seq"), "p50_ms", 1.0, True, "ms"
    ),
    Target(
        "sequential put, tracing off", _key("tracing off", "seq"), "ops_s", 1000, False, "ops/s"
    ),
    Target("sequential put, tracing on", _key("tracing on", "seq"), "ops_s", 1200, False, "ops/s"),
    Target(
        "64 in flight, tracing off",
        _key("tracing off", "inflight64"),
        "ops_s",
        15000,
        False,
        "ops/s",
    ),
    Target(
        "64 in flight, tracing on", _key("tracing on", "inflight64"), "ops_s", 8000, False, "ops/s"
    ),
    Target(
        "64 in flight from the notebook's loop, tracing off",
        _key("tracing off", "inflight64_foreign"),
        "ops_s",
        15000,
        False,
        "ops/s",
    ),
    Target(
        "leader kill -> next op, tracing off",
        _key("tracing off", "leader_kill"),
        "seconds",
        0.5,
        True,
        "s",
    ),
    Target("RSS after 100,000 entries", _key("tracing off", "rss"), "rss_mb", 100, True, "MB"),
    Target(
        "RSS after 100,000 entries, tracing on",
        _key("tracing on", "rss"),
        "rss_mb",
        400,
        True,
        "MB",
    ),
    Target(
        "raft elections: leader kill -> next op",
        _key(RAFT_VARIANT, "leader_kill"),
        "seconds",
        0.4,
        True,
        "s",
    ),
]

ELECTION_TARGETS = [
    Target("raft / coord, sequential put", _key(RAFT_VARIANT, "seq"), "ops_s", 0.9, False, "x"),
    Target(
        "raft / coord, 64 in flight", _key(RAFT_VARIANT, "inflight64"), "ops_s", 0.9, False, "x"
    ),
]
"""Raft mode's throughput over coord mode's, per pair of alternate runs (a ratio, not ops/s)."""

GO_REFERENCE = [
    {
        "figure": "sequential put, 5 servers, tracing on",
        "value": 85,
        "unit": "ops/s",
        "key": _key("tracing on", "seq"),
    },
    {
        "figure": "sequential put, 3 servers, tracing on",
        "value": 130,
        "unit": "ops/s",
        "key": "|".join([TEACHRAFT, "tracing on", IN_PROCESS, "3", "seq"]),
    },
    {
        "figure": "leader kill -> next op",
        "value": 5.0,
        "range": "4-6",
        "unit": "s",
        "key": _key("tracing off", "leader_kill"),
    },
]


def _round(x: float) -> float | None:
    if not math.isfinite(x):
        return None
    return round(x, 4 if abs(x) < 10 else 1)
