"""Where the time goes in the store, for whoever optimises ``teachraft.core``/``runtime``.

Every node of an in-process cluster runs on one event-loop thread, so the
samples of that one thread are the whole store: clients, leader, followers,
coord and, with tracing on, the tracing server. ``python -m bench --profile``
profiles three workloads (sequential puts and 64 in flight with tracing off,
sequential puts with tracing on) and summarises self time by package and by
function, plus the inclusive share of each teachraft package.

py-spy samples from outside the process, so it costs the store nothing and
the shares are honest; it records a child ``python -m bench.profiling target``
and writes the collapsed stacks to ``profile-*.txt``. Without py-spy,
pyinstrument runs on the cluster's own thread instead; it hooks every call,
so it slows the store down several times and inflates small functions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from bench.local import CLIENTS, LocalTeachraft
from bench.procs import PYTHON, REPO
from bench.workloads import WorkloadSpec, drive

SECONDS = 5.0
CASES = [
    ("seq-tracing-off", False, 1),
    ("inflight64-tracing-off", False, 64),
    ("seq-tracing-on", True, 1),
    ("inflight64-tracing-on", True, 64),
]
LOOP_THREAD = "LoopBridge.ensure_loop"
PACKAGES = ("teachraft.core", "teachraft.runtime", "teachraft.net", "teachraft.tracing", "asyncio")


def package_of(path: str) -> str:
    """A coarse owner for a source file: a teachraft subpackage, asyncio, msgpack, ..."""
    p = path.replace("\\", "/")
    if "teachraft/" in p:
        rest = p.split("teachraft/", 1)[1].split("/")
        return "teachraft." + (rest[0] if len(rest) > 1 else rest[0].removesuffix(".py"))
    if "bench/" in p:
        return "bench (the workload driver)"
    if p.startswith("<string>"):
        return "generated __init__ (dataclasses)"
    for name in ("asyncio", "msgpack", "selectors", "json", "random", "logging", "base64"):
        if f"{name}/" in p or p.endswith(f"{name}.py"):
            return name
    parts = p.rsplit("/", 2)
    return "/".join(parts[-2:]) if len(parts) > 1 else p


def _frame(text: str) -> tuple[str, str]:
    """``Func (path:line)`` -> (``Func (path)``, package)."""
    name, _, where = text.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    return f"{name} ({path})", package_of(path)


def summarise_stacks(lines: Iterable[str]) -> dict[str, Any]:
    """Self and inclusive shares from py-spy's collapsed stacks of the cluster's thread."""
    self_pkg: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if LOOP_THREAD not in stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        fn, pkg = frames[-1]
        self_pkg[pkg] += n
        self_fn[fn] += n
        for p in {pkg for _, pkg in frames} & set(PACKAGES):
            inclusive[p] += n
    return _shares(self_pkg, self_fn, inclusive, total)


def _shares(
    self_pkg: Counter[str], self_fn: Counter[str], inclusive: Counter[str], total: float
) -> dict[str, Any]:
    total = total or 1.0
    return {
        "samples": total,
        "packages": {k: round(100 * v / total, 1) for k, v in self_pkg.most_common()},
        "functions": {k: round(100 * v / total, 1) for k, v in self_fn.most_common(25)},
        "inclusive": {k: round(100 * inclusive[k] / total, 1) for k in PACKAGES},
    }


# ----------------------------------------------------------------- py-spy path
def spy_case(name: str, tracing: bool, in_flight: int, out: Path) -> dict[str, Any]:
    """Record a child running the workload with py-spy; summarise its collapsed stacks."""
    raw = out / f"profile-{name}.txt"
    target = [
        PYTHON,
        "-m",
        "bench.profiling",
        "target",
        "--in-flight",
        str(in_flight),
        "--seconds",
        str(SECONDS),
    ] + (["--tracing"] if tracing else [])
    spy = shutil.which("py-spy")
    assert spy is not None
    run = subprocess.run(
        [spy, "record", "-r", "400", "-f", "raw", "-o", str(raw), "--", *target],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
    if run.returncode != 0 or not lines or not raw.exists():
        raise RuntimeError(f"py-spy failed: {run.stderr.strip()[-300:]}")
    sample = json.loads(lines[-1])
    with raw.open(encoding="utf-8") as f:
        summary = summarise_stacks(f)
    return {"case": name, "profiler": "py-spy", **sample, **summary}


def target(tracing: bool, in_flight: int, seconds: float) -> dict[str, Any]:
    """The profiled child: one workload on a fresh 5-server cluster."""
    system = LocalTeachraft(5, tracing)
    system.start()
    try:
        sample = system.run(WorkloadSpec("profile", in_flight, max_ops=10**7, max_seconds=seconds))
    finally:
        system.close()
    return {
        "ops_s": round(sample.rate, 1),
        "ops": sample.ops,
        "us_per_op": round(1e6 * sample.seconds / max(1, sample.ops), 1),
    }


# ----------------------------------------------------------- pyinstrument path
async def _profiled(work: Awaitable[Any]) -> tuple[Any, Any]:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        result = await work
    finally:
        profiler.stop()
    return profiler, result


def _walk(frame: Any, owner: str, acc: tuple[Counter[str], Counter[str]]) -> None:
    """Self time of a pyinstrument tree; a built-in's time goes to its caller's package."""
    builtin = frame.file_path_short == "<built-in>" or frame.file_path is None
    here = owner if builtin else package_of(frame.file_path or "")
    own = sum(c.time for c in frame.children if c.is_synthetic)
    if own:
        acc[0][here] += own
        acc[1][f"{frame.function} ({here if builtin else frame.file_path_short})"] += own
    for child in frame.children:
        if not child.is_synthetic:
            _walk(child, here, acc)


def pyinstrument_case(name: str, tracing: bool, in_flight: int, out: Path) -> dict[str, Any]:
    system = LocalTeachraft(5, tracing)
    system.start()
    try:
        assert system.cluster is not None
        clients = [system.cluster.client(i) for i in range(1, CLIENTS + 1)]
        spec = WorkloadSpec("profile", in_flight, max_ops=10**7, max_seconds=SECONDS)
        profiler, sample = system.cluster.run(_profiled(drive(clients, spec)), timeout=120)
    finally:
        system.close()
    (out / f"profile-{name}.txt").write_text(profiler.output_text(unicode=True), encoding="utf-8")
    acc: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    _walk(profiler.last_session.root_frame(), "other", acc)
    summary = _shares(acc[0], acc[1], Counter(), sum(acc[0].values()))
    summary.pop("inclusive")
    return {
        "case": name,
        "profiler": "pyinstrument (slows the store)",
        "ops_s": round(sample.rate, 1),
        "ops": sample.ops,
        "us_per_op": round(1e6 * sample.seconds / max(1, sample.ops), 1),
        **summary,
    }


# ---------------------------------------------------------------------- driver
def profile_all(out: Path, say: Callable[[str], None]) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    case = spy_case if shutil.which("py-spy") else pyinstrument_case
    results = []
    for name, tracing, in_flight in CASES:
        say(f"profiling {name} ({SECONDS:.0f} s, {case.__name__.split('_')[0]})")
        results.append(case(name, tracing, in_flight, out))
    return results


def profile_text(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(
            f"== {r['case']} ({r['profiler']}): {r['ops_s']:,} ops/s while sampled, "
            f"{r['us_per_op']} us of wall time per op"
        )
        lines.append(
            "   self time by package: "
            + ", ".join(f"{k} {v}%" for k, v in list(r["packages"].items())[:9])
        )
        if r.get("inclusive"):
            lines.append(
                "   inclusive: " + ", ".join(f"{k} {v}%" for k, v in r["inclusive"].items())
            )
        lines.append("   top functions (self time):")
        lines += [f"     {v:5.1f}%  {k}" for k, v in list(r["functions"].items())[:15]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profiling")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("target", help="run one workload to be sampled (prints JSON)")
    t.add_argument("--tracing", action="store_true")
    t.add_argument("--in-flight", type=int, default=1)
    t.add_argument("--seconds", type=float, default=SECONDS)
    args = p.parse_args(argv)
    started = time.monotonic()
    result = target(args.tracing, args.in_flight, args.seconds)
    result["wall_s"] = round(time.monotonic() - started, 2)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
