"""The notebook's path: ops awaited from a foreign event loop, against the cluster's own loop.

A notebook awaits ``cluster.aput`` on the kernel's loop while the cluster runs
on its own loop thread, so every op crosses two threads. Run with
``python -m bench.bench_handoff``: it drives 64 puts in flight through
``await cluster.aput(...)`` from this thread's loop, then the same workload on
the cluster's own loop (``cluster.run``), tracing off, and prints both rates
and their ratio. The goal: the foreign-loop
path >= 15,000 ops/s on 2 cores, close to the own-loop path.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

from bench.local import LocalTeachraft, foreign
from bench.workloads import WorkloadSpec


def measure(servers: int, runs: int, max_ops: int, seconds: float) -> dict[str, Any]:
    system = LocalTeachraft(servers, tracing=False)
    system.start()
    rates: dict[str, list[float]] = {"foreign": [], "own": []}
    try:
        for run in range(runs):
            spec = WorkloadSpec("inflight64", 64, 0.0, max_ops, seconds, seed=run + 1)
            for path, sample in (("foreign", foreign(system, spec)), ("own", system.run(spec))):
                if sample.error:
                    raise RuntimeError(f"{path} run {run}: {sample.error}")
                rates[path].append(sample.ops / sample.seconds)
    finally:
        system.close()
    med = {path: statistics.median(values) for path, values in rates.items()}
    return {
        "servers": servers,
        "runs": runs,
        "foreign_ops_s": round(med["foreign"]),
        "own_loop_ops_s": round(med["own"]),
        "foreign_over_own": round(med["foreign"] / med["own"], 2),
        "all": {k: [round(v) for v in vs] for k, vs in rates.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_handoff", description=__doc__)
    p.add_argument("--servers", type=int, default=5)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--ops", type=int, default=50_000, help="max ops per run")
    p.add_argument("--seconds", type=float, default=1.0, help="max seconds per run")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.servers, args.runs, args.ops, args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
