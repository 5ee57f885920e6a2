"""How fast the linearizability checker decides the shared reference histories.

Targets: the 20 Jepsen etcd histories in 10 s in total; kv/c50-ok.txt and
kv/c50-bad.txt in 2 s each. Times include reading the file. Each verdict is
also compared with VERDICTS.tsv, so a fast wrong answer does not pass.

Run: ``python -m bench.bench_check [--repeat N]`` (prints the best of N runs).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from teachraft.check import check, load_history

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference-histories"


@dataclass
class Row:
    """One line of the table: a group of histories, its time and its target."""

    name: str
    files: list[str]
    target: float
    seconds: float = 0.0
    correct: bool = True


def expected_verdicts() -> dict[str, str]:
    lines = (SHARED / "VERDICTS.tsv").read_text().splitlines()[1:]
    return {ln.split("\t")[0]: ln.split("\t")[1].replace("-", " ") for ln in lines if ln}


def time_files(files: list[str], expected: dict[str, str]) -> tuple[float, bool]:
    """Seconds to load and check every file, and whether every verdict was right."""
    correct = True
    start = time.perf_counter()
    for name in files:
        result = check(load_history(SHARED / name), timeout=None)
        correct &= result.verdict == expected[name]
    return time.perf_counter() - start, correct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_check")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args(argv)
    expected = expected_verdicts()
    etcd = sorted(n for n in expected if n.startswith("jepsen-etcd/"))
    rows = [
        Row("20 etcd histories (total)", etcd, 10.0),
        Row("kv/c50-ok.txt", ["kv/c50-ok.txt"], 2.0),
        Row("kv/c50-bad.txt", ["kv/c50-bad.txt"], 2.0),
    ]
    for row in rows:
        runs = [time_files(row.files, expected) for _ in range(max(1, args.repeat))]
        row.seconds = min(seconds for seconds, _ in runs)
        row.correct = all(ok for _, ok in runs)
    print(f"{'benchmark':<28} {'seconds':>8} {'target':>8}  result")
    for row in rows:
        status = "ok" if row.correct and row.seconds <= row.target else "MISSED"
        if not row.correct:
            status += " (wrong verdict)"
        print(f"{row.name:<28} {row.seconds:>8.3f} {row.target:>8.1f}  {status}")
    return 0 if all(r.correct and r.seconds <= r.target for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
