"""Where the time goes in the store: pyinstrument on the cluster's own loop thread.

Every node of an in-process cluster runs on one event-loop thread, so one
sampling profiler started *on that thread* (inside a coroutine run with
``cluster.run``) sees the whole store: clients, leader, followers, coord and,
with tracing on, the tracing server. ``python -m bench --profile`` profiles
three workloads (sequential puts and 64 in flight with tracing off,
sequential puts with tracing on), writes each full call tree to
``bench/results/profile-*.txt``, and summarises self time by package and by
function, which is what an optimiser of ``teachraft.core``/``runtime`` needs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.local import LocalTeachraft
from bench.workloads import WorkloadSpec, drive

CASES = [
    ("seq-tracing-off", False, WorkloadSpec("seq", 1, max_ops=100_000, max_seconds=3.0)),
    (
        "inflight64-tracing-off",
        False,
        WorkloadSpec("inflight64", 64, max_ops=1_000_000, max_seconds=3.0),
    ),
    ("seq-tracing-on", True, WorkloadSpec("seq", 1, max_ops=100_000, max_seconds=3.0)),
]
IDLE = "idle (waiting in epoll)"


async def _profiled(work: Awaitable[Any]) -> tuple[Any, Any]:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        result = await work
    finally:
        profiler.stop()
    return profiler, result


def package_of(path: str, function: str) -> str:
    """A coarse owner for a source file: a teachraft subpackage, asyncio, msgpack, ..."""
    p = path.replace("\\", "/")
    if "/teachraft/" in p:
        rest = p.split("/teachraft/", 1)[1].split("/")
        return "teachraft." + (rest[0] if len(rest) > 1 else rest[0].removesuffix(".py"))
    if "/bench/" in p:
        return "bench (the workload driver)"
    for name in ("asyncio", "msgpack", "selectors", "json", "random", "logging"):
        if f"/{name}/" in p or p.endswith(f"/{name}.py"):
            return name
    return p.rsplit("/", 1)[-1] or function


def self_times(root: Any) -> tuple[Counter[str], Counter[str]]:
    """Self time per package and per function; a built-in's time goes to its caller's package."""
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()

    def walk(frame: Any, owner: str) -> None:
        builtin = frame.file_path_short == "<built-in>" or frame.file_path is None
        here = owner if builtin else package_of(frame.file_path or "", frame.function)
        own = sum(c.time for c in frame.children if c.is_synthetic)
        if own:
            name = f"{frame.function} ({here if builtin else frame.file_path_short})"
            if builtin and owner == "selectors":
                here, name = IDLE, IDLE
            by_package[here] += own
            by_function[name] += own
        for child in frame.children:
            if not child.is_synthetic:
                walk(child, here)

    walk(root, "other")
    return by_package, by_function


def profile_case(name: str, tracing: bool, spec: WorkloadSpec, out: Path) -> dict[str, Any]:
    system = LocalTeachraft(5, tracing)
    system.start()
    try:
        assert system.cluster is not None
        clients = [system.cluster.client(i) for i in range(1, 9)]
        started = time.monotonic()
        profiler, sample = system.cluster.run(_profiled(drive(clients, spec)), timeout=120)
        wall = time.monotonic() - started
    finally:
        system.close()
    (out / f"profile-{name}.txt").write_text(
        profiler.output_text(unicode=True, color=False), encoding="utf-8"
    )
    packages, functions = self_times(profiler.last_session.root_frame())
    total = sum(packages.values()) or 1.0
    return {
        "case": name,
        "ops_s": round(sample.rate, 1),
        "wall_s": round(wall, 2),
        "packages": {k: round(100 * v / total, 1) for k, v in packages.most_common()},
        "functions": {k: round(100 * v / total, 1) for k, v in functions.most_common(25)},
        "us_per_op": round(1e6 * sample.seconds / max(1, sample.ops), 1),
    }


def profile_all(out: Path, say: Callable[[str], None]) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name, tracing, spec in CASES:
        say(f"profiling {name} ({spec.max_seconds:.0f} s)")
        results.append(profile_case(name, tracing, spec, out))
    return results


def profile_text(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(
            f"== {r['case']}: {r['ops_s']:,} ops/s under the profiler, "
            f"{r['us_per_op']} us of loop time per op"
        )
        lines.append(
            "   self time by package: "
            + ", ".join(f"{k} {v}%" for k, v in list(r["packages"].items())[:10])
        )
        lines.append("   top functions (self time):")
        lines += [f"     {v:5.1f}%  {k}" for k, v in list(r["functions"].items())[:15]]
    return "\n".join(lines)
