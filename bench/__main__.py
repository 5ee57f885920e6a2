"""``python -m bench`` (or ``teachraft bench``): teachraft side by side with PySyncObj.

Modes: the full suite (default, about twenty minutes), ``--quick`` (about four
minutes, 5 runs of the figures that carry targets), ``--tiny`` (a smoke run
for the tests). ``--soak`` runs long chaos, a 10-minute traced memory soak,
the fuzz soak and the lab grader's long run instead, ``--labs`` times the lab
grader, ``--profile`` profiles the store. Results go to
``bench/results/latest.json`` and ``latest.html`` (or ``--out DIR``); a table
is printed on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="about 4 minutes")
    size.add_argument("--tiny", action="store_true", help="a few ops, 1 run, 3 servers (tests)")
    size.add_argument("--soak", action="store_true", help="long chaos runs and the checker's time")
    size.add_argument("--labs", action="store_true", help="the lab grader's speed per lab")
    size.add_argument("--profile", action="store_true", help="profile the store (pyinstrument)")
    size.add_argument(
        "--report-only", action="store_true", help="print and re-render the saved latest.json"
    )
    p.add_argument("--no-peer", action="store_true", help="skip PySyncObj")
    p.add_argument("--no-etcd", action="store_true", help="skip the real etcd cluster")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    p.add_argument("--seeds", type=int, default=4, help="soak: number of seeds")
    p.add_argument(
        "--raft-schedules",
        type=int,
        default=1000,
        help="soak: simulated raft-mode schedules per cluster size (3, 5, 7)",
    )
    p.add_argument("--soak-duration", type=float, default=30.0, help="soak: seconds per seed")
    p.add_argument(
        "--memory-duration",
        type=float,
        default=600.0,
        help="soak: seconds of the traced steady-rate run whose RSS is sampled",
    )
    p.add_argument(
        "--check-duration",
        type=float,
        default=60.0,
        help="soak: seconds of the 5-client run whose history is timed",
    )
    return p


def _peer_available() -> bool:
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return False
    return True


def _etcd_available() -> bool:
    from bench.peer_etcd import available

    return available()


def run_suite(args: argparse.Namespace) -> int:
    from bench.report import text_report, write_html, write_json
    from bench.suite import PLANS, Suite

    plan = PLANS["tiny" if args.tiny else "quick" if args.quick else "full"]
    peer = not args.no_peer and _peer_available()
    if not peer and not args.no_peer:
        _say("PySyncObj is not installed (pip install 'teachraft[bench]'); running without it")
    etcd = not args.no_etcd and _etcd_available()
    if not etcd and not args.no_etcd:
        _say("etcd is not installed (bash .ci/etcd-deps); running without it")
    results = Suite(plan, _say, peer=peer, etcd=etcd).run()
    write_json(results, args.out / "latest.json")
    write_html(results, args.out / "latest.html")
    print(text_report(results))
    print(f"\nwrote {args.out / 'latest.json'} and {args.out / 'latest.html'}")
    return 0


def run_soak(args: argparse.Namespace) -> int:
    from bench.report import write_json
    from bench.soak import soak, soak_text

    data = soak(
        list(range(1, args.seeds + 1)), args.soak_duration, _say, check_duration=args.check_duration
    )
    from bench.soak import raft_chaos, raft_safety

    data["raft_safety"] = raft_safety(args.raft_schedules, _say)
    data["raft_chaos"] = raft_chaos(list(range(1, args.seeds + 1)), args.soak_duration, _say)
    write_json(data, args.out / "soak.json")
    print(soak_text(data))
    for size, row in data["raft_safety"]["sizes"].items():
        print(
            f"raft safety, {size} servers: {row['schedules']} schedules, "
            f"{len(row['violations'])} violations ({row['seconds']} s)"
        )
    for run in data["raft_chaos"]:
        print(f"raft mode: {run['summary']}")
    raft_ok = data["raft_safety"]["passed"] and all(r["passed"] for r in data["raft_chaos"])
    memory = run_memory_soak(args)
    fuzzed = run_fuzz_soak(args)
    graded = run_labs_soak(args)
    return 0 if data["all_passed"] and raft_ok and fuzzed and memory and graded else 1


def run_memory_soak(args: argparse.Namespace) -> bool:
    """A traced cluster at a steady rate for minutes: its RSS must stay flat."""
    from bench.report import write_json
    from bench.soak_memory import plot, soak_memory, soak_memory_text

    _say(f"memory soak: {args.memory_duration:.0f} s of traced puts at a steady rate")
    data = soak_memory(args.memory_duration, say=_say)
    write_json(data, args.out / "soak_memory.json")
    plot(data, args.out / "soak_memory.html")
    print(soak_memory_text(data))
    return bool(data["flat"] and data["under_target"])


def run_labs(args: argparse.Namespace) -> int:
    from bench.bench_labs import grade_speed, speed_text
    from bench.report import write_json

    data = grade_speed(_say)
    write_json(data, args.out / "labs.json")
    print(speed_text(data))
    return 0 if data["met"] else 1


def run_labs_soak(args: argparse.Namespace) -> bool:
    """The grader's long run: the reference over 2,000 seeds a lab, every bug under secret seeds."""
    from bench.bench_labs import labs_soak
    from bench.report import write_json

    data = labs_soak(2000, max(1, args.seeds), _say)
    write_json(data, args.out / "labs_soak.json")
    print(
        "labs soak:", "every bug caught, the reference passed" if data["all_passed"] else "FAILED"
    )
    return bool(data["all_passed"])


def run_fuzz_soak(args: argparse.Namespace) -> bool:
    """The long run of tests/fuzz: every port attacked while a workload checks answers."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))
    from hostile import run_fuzz

    ok = True
    for seed in range(1, args.seeds + 1):
        _say(f"fuzz: seed {seed}, {args.soak_duration:.0f} s of attacks")
        report = run_fuzz(args.soak_duration, seed)
        print(f"fuzz seed {seed}: {report.summary()}")
        ok = ok and report.ok
    return ok


def run_profile(args: argparse.Namespace) -> int:
    from bench.profiling import profile_all, profile_text
    from bench.report import write_json

    results = profile_all(args.out, _say)
    write_json({"profiles": results}, args.out / "profile.json")
    print(profile_text(results))
    return 0


def report_only(args: argparse.Namespace) -> int:
    from bench.report import text_report, write_html

    results = json.loads((args.out / "latest.json").read_text(encoding="utf-8"))
    write_html(results, args.out / "latest.html")
    print(text_report(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.soak:
        return run_soak(args)
    if args.profile:
        return run_profile(args)
    if args.labs:
        return run_labs(args)
    if args.report_only:
        return report_only(args)
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
