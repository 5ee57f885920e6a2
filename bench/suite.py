"""The benchmark suite: which figures, how many runs, in what order.

Every run starts fresh clusters, and within a run teachraft and PySyncObj
take turns, so run ``i`` of each forms a pair for the ratios (see
``results_model``). Only one cluster is alive at a time, so an idle peer never
steals CPU from the system being measured.

The phases run in priority order: the 5-server in-process figures and the
memory figure (which carry the targets) first, then per-process mode and 3
servers. A plan with a time budget (``--quick``) skips a later phase when the
budget would not cover it, and says so in the results, rather than overrun.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.procs import PYTHON, REPO
from bench.results_model import (
    COORD_VARIANT,
    ELECTION_TARGETS,
    GO_REFERENCE,
    IN_PROCESS,
    PEER,
    PER_PROCESS,
    RAFT_VARIANT,
    TARGETS,
    TEACHRAFT,
    Figure,
    Ratio,
    main_metric,
    pair_ratios,
)
from bench.workloads import FOREIGN, Sample, WorkloadSpec

Say = Callable[[str], None]
THROUGHPUT = ("seq", "inflight64", "mix", "inflight1024")
RAFT_LOADS = ["seq", "inflight64"]
"""What raft mode is measured on, beside coord mode (plus its leader kill)."""
HEAVY = ("inflight1024",)
NOTEBOOK_LOOP = "inflight64" + FOREIGN
"""64 in flight awaited from another loop (``await cluster.aput``), as a notebook does."""
FILL_TIMEOUT = 900.0


class System(Protocol):
    """What the suite needs of a cluster, whichever system and mode it is."""

    def start(self) -> None: ...
    def run(self, spec: WorkloadSpec) -> Sample: ...
    def leader_kill(self) -> float: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """How much to measure. ``windows``: workload -> (max ops, max seconds) of one run."""

    name: str
    windows: dict[str, tuple[int, float]]
    key_runs: int
    heavy_runs: int
    kill_runs: int
    peer_kill_runs: int
    fast_kill_runs: int
    small_runs: int
    proc_sizes: tuple[int, ...]
    proc_runs: int
    rss_entries: int
    rss_runs: int
    peer_rss_runs: int
    rss_tracing_runs: int = 0
    rss_parallel: int = 2
    proc_tracing: tuple[bool, ...] = (False, True)
    proc_peer: tuple[bool, ...] = (True, False)
    budget_s: float | None = None
    sizes: tuple[int, ...] = (5, 3)

    def spec(self, workload: str, seed: int = 1) -> WorkloadSpec:
        max_ops, max_seconds = self.windows[workload.removesuffix(FOREIGN)]
        in_flight = {"seq": 1, "inflight64": 64, "mix": 64, "inflight1024": 1024}.get(
            workload.removesuffix(FOREIGN), 1
        )
        ratio = 0.5 if workload == "mix" else 0.0
        return WorkloadSpec(workload, in_flight, ratio, max_ops, max_seconds, seed=seed)


PLANS = {
    "tiny": Plan(
        "tiny",
        {
            "seq": (30, 0.2),
            "inflight64": (400, 0.2),
            "mix": (400, 0.2),
            "inflight1024": (2048, 0.3),
        },
        key_runs=1,
        heavy_runs=1,
        kill_runs=1,
        peer_kill_runs=0,
        fast_kill_runs=0,
        small_runs=1,
        proc_sizes=(3,),
        proc_runs=1,
        rss_entries=2000,
        rss_runs=1,
        peer_rss_runs=0,
        sizes=(3,),
        proc_tracing=(False,),
        proc_peer=(False,),
    ),
    "quick": Plan(
        "quick",
        {
            "seq": (5000, 0.5),
            "inflight64": (50_000, 0.6),
            "mix": (50_000, 0.4),
            "inflight1024": (100_000, 1.0),
        },
        key_runs=5,
        heavy_runs=2,
        kill_runs=5,
        peer_kill_runs=3,
        fast_kill_runs=3,
        small_runs=1,
        proc_sizes=(5,),
        proc_runs=1,
        rss_entries=100_000,
        rss_runs=5,
        peer_rss_runs=1,
        rss_tracing_runs=1,
        budget_s=200.0,
    ),
    "full": Plan(
        "full",
        {
            "seq": (20_000, 1.5),
            "inflight64": (200_000, 2.0),
            "mix": (200_000, 1.5),
            "inflight1024": (200_000, 3.0),
        },
        key_runs=5,
        heavy_runs=5,
        kill_runs=5,
        peer_kill_runs=5,
        fast_kill_runs=5,
        small_runs=5,
        proc_sizes=(5, 3),
        proc_runs=5,
        rss_entries=100_000,
        rss_runs=5,
        peer_rss_runs=5,
        rss_tracing_runs=5,
    ),
}


@dataclass
class Suite:
    """Runs a plan and collects its figures."""

    plan: Plan
    say: Say
    peer: bool = True
    etcd: bool = False
    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    # ------------------------------------------------------------ recording
    def add(
        self, system: str, variant: str, mode: str, servers: int, workload: str, run: dict[str, Any]
    ) -> None:
        fig = Figure(system, variant, mode, servers, workload)
        self.figures.setdefault(fig.key, fig).runs.append(run)

    def measure(self, system: System, spec: WorkloadSpec, where: tuple[str, str, str, int]) -> None:
        try:
            summary = system.run(spec).summary()
        except Exception as exc:
            summary = {"error": f"{type(exc).__name__}: {exc}"}
        self.add(*where, spec.name, summary)
        self.say(f"  {' '.join(map(str, where))} {spec.name}: {_brief(summary)}")

    def kill(self, system: System, where: tuple[str, str, str, int]) -> None:
        try:
            run: dict[str, Any] = {"seconds": round(system.leader_kill(), 4)}
        except Exception as exc:
            run = {"error": f"{type(exc).__name__}: {exc}"}
        self.add(*where, "leader_kill", run)
        self.say(f"  {' '.join(map(str, where))} leader_kill: {_brief(run)}")

    # --------------------------------------------------------------- phases
    def session(
        self,
        make: Callable[[], System],
        where: tuple[str, str, str, int],
        workloads: list[str],
        kill: bool = False,
        seed: int = 1,
    ) -> None:
        """Start one cluster, run each workload once, maybe kill its leader, close."""
        try:
            system = make()
            system.start()
        except Exception as exc:
            for w in workloads + (["leader_kill"] if kill else []):
                self.add(*where, w, {"error": f"start failed: {type(exc).__name__}: {exc}"})
            self.say(f"  {' '.join(map(str, where))}: start failed: {exc}")
            return
        try:
            for w in workloads:
                self.measure(system, self.plan.spec(w, seed), where)
            if kill:
                self.kill(system, where)
        finally:
            with contextlib.suppress(Exception):
                system.close()

    def in_process(self, servers: int, runs: int) -> None:
        from bench.local import LocalTeachraft

        local_peer = _peer_class("LocalPeer") if self.peer else None

        plan = self.plan
        for r in range(runs):
            self.say(f"[{self.elapsed():.0f} s] in-process, {servers} servers, run {r + 1}/{runs}")
            loads = [w for w in THROUGHPUT if w not in HEAVY or r < plan.heavy_runs]
            kill = r < plan.kill_runs
            peer_kill = self.peer and r < plan.peer_kill_runs
            for tracing in (False, True):
                where = (TEACHRAFT, _tracing(tracing), IN_PROCESS, servers)
                ours = loads if tracing else [*loads, NOTEBOOK_LOOP]
                self.session(lambda t=tracing: LocalTeachraft(servers, t), where, ours, seed=r)
                if not tracing:  # Raft's own elections, right after: the two form a pair
                    self.raft_mode(servers, r, kill)
                if kill:
                    self.session(lambda t=tracing: LocalTeachraft(servers, t), where, [], kill=True)
                if not self.peer or tracing:
                    continue
                for batched in (True, False):
                    self.session(
                        lambda b=batched: local_peer(servers, b),
                        (PEER, _batched(batched), IN_PROCESS, servers),
                        loads,
                        seed=r,
                        kill=peer_kill,
                    )
            if self.peer and r < plan.fast_kill_runs:
                self.session(
                    lambda: local_peer(servers, True, fast=True),
                    (PEER, "batched, fast timers", IN_PROCESS, servers),
                    [],
                    kill=True,
                )

    def raft_mode(self, servers: int, run: int, kill: bool) -> None:
        """teachraft with Raft's own elections (``election="raft"``), tracing off."""
        from bench.local import LocalTeachraft

        where = (TEACHRAFT, RAFT_VARIANT, IN_PROCESS, servers)
        self.session(
            lambda: LocalTeachraft(servers, False, election="raft"),
            where,
            RAFT_LOADS,
            seed=run,
            kill=kill,
        )

    def per_process(self, servers: int) -> None:
        """One process per node: fresh clusters every run, teachraft and PySyncObj in turn."""
        from bench.cli_cluster import ProcTeachraft

        proc_peer = _peer_class("ProcPeer") if self.peer else None

        plan = self.plan
        loads = list(THROUGHPUT)
        with tempfile.TemporaryDirectory(prefix="teachraft-bench-") as tmp:
            for r in range(plan.proc_runs):
                self.say(
                    f"[{self.elapsed():.0f} s] per-process, {servers} servers, "
                    f"run {r + 1}/{plan.proc_runs}"
                )
                for tracing in plan.proc_tracing:
                    d = Path(tmp) / f"run{r}-teachraft-{_tracing(tracing).replace(' ', '-')}"
                    d.mkdir()
                    self.session(
                        lambda t=tracing, d=d: ProcTeachraft(servers, t, d),
                        (TEACHRAFT, _tracing(tracing), PER_PROCESS, servers),
                        loads,
                        seed=r,
                        kill=True,
                    )
                    if tracing or not self.peer:
                        continue
                    for batched in plan.proc_peer:
                        d = Path(tmp) / f"run{r}-pysyncobj-{_batched(batched)}"
                        d.mkdir()
                        self.session(
                            lambda b=batched, d=d: proc_peer(servers, d, b),
                            (PEER, _batched(batched), PER_PROCESS, servers),
                            loads,
                            seed=r,
                            kill=True,
                        )

    def memory(self) -> None:
        """The RSS figure: each fill in a fresh subprocess, a few at a time."""
        plan = self.plan
        jobs: list[tuple[tuple[str, str, str, int], list[str]]] = []
        base = ["--servers", "5", "--entries", str(plan.rss_entries)]
        for _ in range(plan.rss_runs):
            jobs.append(((TEACHRAFT, "tracing off", IN_PROCESS, 5), ["bench.local", "rss", *base]))
        for _ in range(plan.rss_tracing_runs):
            jobs.append(
                (
                    (TEACHRAFT, "tracing on", IN_PROCESS, 5),
                    ["bench.local", "rss", *base, "--tracing"],
                )
            )
        for _ in range(plan.peer_rss_runs if self.peer else 0):
            jobs.append(((PEER, "batched", IN_PROCESS, 5), ["bench.peer_pysyncobj", "rss", *base]))
        self.say(
            f"[{self.elapsed():.0f} s] memory: {len(jobs)} fills of {plan.rss_entries:,} entries, "
            f"{plan.rss_parallel} at a time"
        )
        for where, run in run_pool(jobs, plan.rss_parallel):
            self.add(*where, "rss", run)
            self.say(f"  {' '.join(map(str, where))} rss: {_brief(run)}")

    # ------------------------------------------------------------------ all
    def run(self) -> dict[str, Any]:
        plan = self.plan
        phases: list[tuple[str, float, Callable[[], None]]] = [
            (
                f"in-process {plan.sizes[0]}",
                0,
                lambda: self.in_process(plan.sizes[0], plan.key_runs),
            ),
            ("memory", 0, self.memory),
        ]
        phases += [
            (f"per-process {s}", 45, lambda s=s: self.per_process(s)) for s in plan.proc_sizes
        ]
        phases += [
            (f"in-process {s}", 20, lambda s=s: self.in_process(s, plan.small_runs))
            for s in plan.sizes[1:]
        ]
        if self.etcd:  # a real etcd cluster: bench.peer_etcd
            from bench.peer_etcd import etcd_phase

            phases.append(("etcd", 0, lambda: etcd_phase(self)))
        for name, estimate, phase in phases:
            if self.over_budget(estimate):
                self.skipped.append(name)
                self.say(f"skipping {name}: the time budget would not cover it")
                continue
            phase()
        return self.results()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def over_budget(self, estimate: float) -> bool:
        budget = self.plan.budget_s
        return budget is not None and estimate > 0 and self.elapsed() + estimate > budget

    def ratios(self) -> list[Ratio]:
        out = []
        for fig in self.figures.values():
            if fig.system != TEACHRAFT:
                continue
            for peer in self.figures.values():
                if (peer.system, peer.mode, peer.servers, peer.workload) != (
                    PEER,
                    fig.mode,
                    fig.servers,
                    fig.workload,
                ):
                    continue
                metrics = [main_metric(fig.workload)] + (
                    ["p50_ms"] if fig.workload == "seq" else []
                )
                for metric in metrics:
                    pairs = pair_ratios(fig, peer, metric)
                    if pairs:
                        out.append(
                            Ratio(
                                fig.workload,
                                fig.mode,
                                fig.servers,
                                fig.variant,
                                peer.variant,
                                metric,
                                pairs,
                            )
                        )
        return out

    def election_ratio(self, target_key: str, metric: str) -> Ratio | None:
        """Raft mode over coord mode (tracing off) for one figure, per pair of runs."""
        ours = self.figures.get(target_key)
        theirs = self.figures.get(target_key.replace(RAFT_VARIANT, COORD_VARIANT))
        if ours is None or theirs is None:
            return None
        pairs = pair_ratios(ours, theirs, metric)
        if not pairs:
            return None
        return Ratio(ours.workload, ours.mode, ours.servers, RAFT_VARIANT, "coord", metric, pairs)

    def results(self) -> dict[str, Any]:
        targets = []
        for t in TARGETS:
            fig = self.figures.get(t.key)
            value = fig.median(t.metric) if fig else math.nan
            targets.append(
                {**asdict(t), "text": t.text(), "value": _finite(value), "met": t.met(value)}
            )
        for t in ELECTION_TARGETS:  # ratios: the metric says so, so no ops/s sits beside them
            ratio = self.election_ratio(t.key, t.metric)
            value = ratio.value if ratio else math.nan
            row = {**asdict(t), "metric": "ratio to coord mode", "text": t.text()}
            targets.append({**row, "value": _finite(value), "met": t.met(value)})
        return {
            "meta": self.meta(),
            "figures": [f.to_json() for f in self.figures.values()],
            "ratios": [r.to_json() for r in self.ratios()],
            "election_ratios": [
                r.to_json()
                for t in ELECTION_TARGETS
                if (r := self.election_ratio(t.key, t.metric)) is not None
            ],
            "targets": targets,
            "go_reference": GO_REFERENCE,
            "skipped": self.skipped,
        }

    def meta(self) -> dict[str, Any]:
        return {
            "plan": asdict(self.plan),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "seconds": round(self.elapsed(), 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": _cpus(),
            "pysyncobj": _peer_version() if self.peer else None,
            "etcd": _etcd_version() if self.etcd else None,
            "notes": NOTES,
        }


NOTES = [
    "Medians over runs; ratios are medians of per-pair ratios of alternate runs.",
    "Ratio = teachraft / PySyncObj: above 1 is better for ops/s, below 1 for ms, s and MB.",
    "in-process: teachraft runs every node on one event-loop thread (notebook mode); "
    "PySyncObj runs several SyncObj in one process, one tick thread each (its autoTick).",
    "per-process: one process per node; teachraft's clients are 8 bench client processes, "
    "PySyncObj's ops are submitted inside the leader's process (no client hop).",
    "PySyncObj gets are @replicated (they go through the log, as teachraft's do).",
    "RSS: each fill in a fresh subprocess; rss_mb includes the interpreter (base_mb).",
    "raft elections: election='raft' (no coord; default timers, 150-300 ms election "
    "timeouts), tracing off; its runs follow coord mode's, and the raft/coord ratios pair them.",
]


def run_pool(jobs: list[tuple[Any, list[str]]], parallel: int) -> list[tuple[Any, dict[str, Any]]]:
    """Run ``python -m ARGS`` children, ``parallel`` at a time; each prints one JSON line."""
    pending = list(jobs)
    running: list[tuple[Any, subprocess.Popen[str], float]] = []
    done: list[tuple[Any, dict[str, Any]]] = []
    while pending or running:
        while pending and len(running) < max(1, parallel):
            tag, args = pending.pop(0)
            proc = subprocess.Popen(
                [PYTHON, "-m", *args],
                cwd=REPO,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            running.append((tag, proc, time.monotonic()))
        tag, proc, t0 = running.pop(0)
        done.append((tag, _collect(proc, FILL_TIMEOUT - (time.monotonic() - t0))))
    return done


def _collect(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The last JSON line a child printed, or an error; the child is killed past ``timeout``."""
    try:
        out, err = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"the fill did not finish within {FILL_TIMEOUT:.0f} s"}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": err.strip()[-300:] or f"no output (exit code {proc.returncode})"}
    return dict(json.loads(lines[-1]))


def _peer_class(name: str) -> Any:
    """A class of ``bench.peer_pysyncobj``, imported only when PySyncObj is wanted."""
    from bench import peer_pysyncobj

    return getattr(peer_pysyncobj, name)


def _peer_version() -> str:
    import pysyncobj.version

    return str(pysyncobj.version.VERSION)


def _etcd_version() -> str | None:
    from bench.peer_etcd import version

    return version()


def _tracing(on: bool) -> str:
    return "tracing on" if on else "tracing off"


def _batched(on: bool) -> str:
    return "batched" if on else "unbatched"


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _brief(run: dict[str, Any]) -> str:
    """One line for the progress log."""
    if "error" in run and len(run) == 1:
        return f"FAILED {run['error']}"
    units = {"ops_s": "ops/s", "p50_ms": "ms p50", "rss_mb": "MB"}
    if "ops_s" not in run:
        units["seconds"] = "s"
    parts = [f"{run[k]:,.4g} {unit}" for k, unit in units.items() if run.get(k) is not None]
    if run.get("error"):
        parts.append(f"errors={run.get('errors', '?')} ({str(run['error'])[:80]})")
    return ", ".join(parts)
