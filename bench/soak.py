"""The soak: seeded chaos runs for longer, and the checker's time on a long history.

``python -m bench --soak`` runs ``teachraft.chaos.run_chaos`` for several
seeds (each a bounded number of seconds of workload under the mixed
nemesis), reports every verdict, and then times the linearizability checker
on the history of a 60 s run with 5 clients (target: at most 5 s). Not a
test: a long run finds the rare interleavings a test's short run does not.

``raft_safety`` explores many more seeded raft-mode schedules in the
simulator than the tests do (``teachraft.safety``), and raft-mode chaos runs
join the live ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CHECK_TARGET_S = 5.0


def chaos_run(seed: int, duration: float, clients: int) -> dict[str, Any]:
    """One chaos run; its verdict, op counts and the checker's time."""
    from teachraft.chaos import run_chaos

    started = time.monotonic()
    report = run_chaos(seed, duration, servers=5, clients=clients, check_timeout=120.0)
    result = report.result
    return {
        "seed": seed,
        "duration_s": duration,
        "clients": clients,
        "verdict": report.verdict,
        "converged": report.converged,
        "passed": report.passed,
        "ops": {"ok": report.ok, "fail": report.fail, "unknown": report.unknown},
        "faults": len(report.faults),
        "check_s": round(result.elapsed, 3) if result is not None else None,
        "wall_s": round(time.monotonic() - started, 1),
        "explanation": report.explanation[:500],
    }


def soak(
    seeds: list[int],
    duration: float,
    say: Callable[[str], None],
    check_duration: float = 60.0,
    check_clients: int = 5,
) -> dict[str, Any]:
    """Chaos for every seed, then the timed check of a long 5-client history."""
    runs = []
    for seed in seeds:
        say(f"soak: seed {seed}, {duration:.0f} s of chaos")
        run = chaos_run(seed, duration, clients=3)
        say(
            f"  {run['verdict']}, {'converged' if run['converged'] else 'NOT converged'}, "
            f"ok={run['ops']['ok']} fail={run['ops']['fail']} unknown={run['ops']['unknown']}, "
            f"{run['faults']} faults, check {run['check_s']} s"
        )
        runs.append(run)
    say(f"soak: the checker on a {check_duration:.0f} s, {check_clients}-client run")
    long_run = chaos_run(max(seeds, default=0) + 1000, check_duration, clients=check_clients)
    say(
        f"  {long_run['verdict']}, {sum(long_run['ops'].values())} ops, "
        f"check {long_run['check_s']} s (target <= {CHECK_TARGET_S:.0f} s)"
    )
    check_s = long_run["check_s"]
    return {
        "runs": runs,
        "check_run": long_run,
        "check_target_s": CHECK_TARGET_S,
        "check_met": check_s is not None and check_s <= CHECK_TARGET_S,
        "all_passed": all(r["passed"] for r in [*runs, long_run]),
    }


def raft_safety(schedules: int, say: Callable[[str], None]) -> dict[str, Any]:
    """``schedules`` seeded raft-mode schedules per cluster size under the safety monitor."""
    from teachraft.safety import SafetyViolation, explore

    sizes: dict[str, Any] = {}
    for servers in (3, 5, 7):
        started = time.monotonic()
        violations: list[str] = []
        terms = 0
        for seed in range(schedules):
            try:
                terms += explore(10_000 + seed, servers=servers, rounds=12).terms
            except SafetyViolation as exc:
                violations.append(str(exc))
        seconds = round(time.monotonic() - started, 1)
        say(f"raft safety: {servers} servers, {schedules} schedules, {len(violations)} violations")
        sizes[str(servers)] = {
            "schedules": schedules,
            "leaders_elected": terms,
            "violations": violations[:20],
            "seconds": seconds,
        }
    return {"sizes": sizes, "passed": not any(s["violations"] for s in sizes.values())}


def raft_chaos(seeds: list[int], duration: float, say: Callable[[str], None]) -> list[Any]:
    """Chaos in raft mode (no coord): the same nemesis, a linearizability verdict each."""
    from teachraft.chaos import run_chaos

    runs = []
    for seed in seeds:
        report = run_chaos(seed, duration, servers=5, clients=3, election="raft")
        say(f"raft chaos: seed {seed}: {report.summary()}")
        runs.append({"seed": seed, "summary": report.summary(), "passed": report.passed})
    return runs


def soak_text(data: dict[str, Any]) -> str:
    lines = [
        "seed  seconds  verdict               converged  ok     fail  unknown  faults  check s"
    ]
    for r in [*data["runs"], data["check_run"]]:
        lines.append(
            f"{r['seed']:<5} {r['duration_s']:<8.0f} {r['verdict']:<21} "
            f"{'yes' if r['converged'] else 'NO':<10} {r['ops']['ok']:<6} {r['ops']['fail']:<5} "
            f"{r['ops']['unknown']:<8} {r['faults']:<7} {r['check_s']}"
        )
    met = "met" if data["check_met"] else "MISSED"
    lines.append(
        f"checker on the {data['check_run']['duration_s']:.0f} s, "
        f"{data['check_run']['clients']}-client history: {data['check_run']['check_s']} s "
        f"(target <= {data['check_target_s']:.0f} s): {met}"
    )
    lines.append(
        "all runs linearizable and converged"
        if data["all_passed"]
        else "SOME RUNS FAILED: see soak.json"
    )
    return "\n".join(lines)
