"""How fast the linearizability checker decides histories, and whether it is right.

Targets:
- every reference history in ``tests/data/reference-histories`` (Jepsen etcd,
  Porcupine kv, Knossos), each under the model VERDICTS.tsv names: under 5 s
  in total, reading the files included;
- a teachraft chaos history of at least 200,000 ops (seed 7, 60 s, 5
  clients): checked in at most 2 s (reading the file is timed apart).

Each verdict is compared with the expected one, so a fast wrong answer does
not pass. The targets are wall-clock seconds on a quiet machine; the CPU
seconds beside them are what a busy, shared machine can still measure.

The chaos history takes a minute of live cluster to record (a busy machine
records fewer ops); pass ``--history FILE`` to reuse one written by
``teachraft chaos --seed 7 --duration 60 --clients 5 --out DIR``
(DIR/history.jsonl).

Run: ``python -m bench.bench_check [--repeat N] [--history FILE]`` (best of N).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teachraft.check import History, check, load_history
from teachraft.check.cli import parse_init
from teachraft.check.models import UNSET

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "reference-histories"
CHAOS_OPS = 200_000


@dataclass
class Row:
    """One line of the table: what was timed, its time and its target."""

    name: str
    target: float
    seconds: float = 0.0
    cpu: float = 0.0
    correct: bool = True
    note: str = ""


def reference_rows() -> list[tuple[str, str, str, Any]]:
    """(file, expected verdict, model, initial value) for every VERDICTS.tsv row."""
    rows = []
    for line in (REFERENCE / "VERDICTS.tsv").read_text().splitlines()[1:]:
        if not line:
            continue
        name, expected, named = line.split("\t")[:3]
        model, initial = model_of(named)
        rows.append((name, expected.replace("-", " "), model, initial))
    return rows


def model_of(named: str) -> tuple[str, Any]:
    """VERDICTS.tsv's model column as a model name and initial value."""
    if named.startswith("etcd-cas-register"):
        return "etcd", UNSET
    if named.startswith("kv-get-put-append"):
        return "kv", UNSET
    m = re.fullmatch(r"([\w-]+)\(init (.+)\)", named)
    if m is None:
        raise ValueError(f"unknown model {named!r} in VERDICTS.tsv")
    name, init = m.groups()
    if "=" in init:
        init = "{" + " ".join(f":{k} {v}" for k, v in (p.split("=") for p in init.split(","))) + "}"
    return name, parse_init(init)


def time_references(rows: list[tuple[str, str, str, Any]]) -> tuple[float, float, bool, str]:
    """Wall and CPU seconds to load and check every reference file, whether every
    verdict was right, and the files that were wrong."""
    wrong = []
    start, cpu = time.perf_counter(), time.process_time()
    for name, expected, model, initial in rows:
        result = check(load_history(REFERENCE / name), model, timeout=None, initial=initial)
        if result.verdict != expected:
            wrong.append(name)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, not wrong, ", ".join(wrong)


def time_check(history: History) -> tuple[float, float, bool]:
    """Wall and CPU seconds to check the chaos history, and whether it was linearizable."""
    cpu = time.process_time()
    result = check(history, "kv", timeout=None)
    return result.elapsed, time.process_time() - cpu, result.ok


def chaos_history(path: str | None) -> History:
    """The long chaos history: from ``path``, or recorded now (about a minute)."""
    if path is not None:
        return load_history(path)
    from teachraft.chaos import run_chaos

    with tempfile.TemporaryDirectory() as out:
        report = run_chaos(7, 60.0, servers=5, clients=5, out_dir=out, check_timeout=1.0)
    return report.history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_check")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--history", default=None, help="a saved chaos history.jsonl to reuse")
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)
    refs = reference_rows()
    ref = Row(f"{len(refs)} reference histories (total)", 5.0)
    runs = [time_references(refs) for _ in range(repeat)]
    ref.seconds, ref.cpu = min(s for s, *_ in runs), min(c for _, c, *_ in runs)
    ref.correct = all(ok for *_, ok, _ in runs)
    ref.note = next((w for *_, w in runs if w), "")

    started = time.perf_counter()
    history = chaos_history(args.history)
    loaded = time.perf_counter() - started
    chaos = Row(f"chaos history, {len(history):,} ops", 2.0)
    checks = [time_check(history) for _ in range(repeat)]
    chaos.seconds, chaos.cpu = min(s for s, _, _ in checks), min(c for _, c, _ in checks)
    chaos.correct = len(history) >= CHAOS_OPS and all(ok for *_, ok in checks)
    chaos.note = f"(read in {loaded:.2f} s)" if args.history else ""
    if len(history) < CHAOS_OPS:
        chaos.note += f" only {len(history):,} ops: a busy machine records fewer; see --history"

    print(f"{'benchmark':<34} {'seconds':>8} {'cpu s':>8} {'target':>8}  result")
    for row in (ref, chaos):
        status = "ok" if row.correct and row.seconds <= row.target else "MISSED"
        if not row.correct:
            status += " (wrong verdict or too few ops)"
        line = f"{row.name:<34} {row.seconds:>8.3f} {row.cpu:>8.3f} {row.target:>8.1f}  {status}"
        print(f"{line} {row.note}".rstrip())
    return 0 if all(r.correct and r.seconds <= r.target for r in (ref, chaos)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
