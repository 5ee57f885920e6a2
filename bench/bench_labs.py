"""The grader's speed, and its long run: ``python -m bench --labs`` and ``--soak``.

A lab's default grade must take at most 60 s on a 2-core machine, and should
take about 20 s, because CI runs every lab notebook twice (as shipped, and with
the solutions injected). ``grade_speed`` times the default grade of every
lab's reference solution, skeleton and one catalogued bug. ``labs_soak`` is
the long version of the tests: the reference over many more seeds per lab,
and every bug under several hidden (secret) seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TARGET_S = 60.0
AIM_S = 20.0


def _timed(lab: int, cls: Any, **kwargs: Any) -> dict[str, Any]:
    from teachraft import labs

    started = time.monotonic()
    grade = labs.grade(lab, cls, **kwargs)
    return {
        "lab": lab,
        "graded": getattr(cls, "__name__", str(cls)),
        "score": grade.score,
        "passed": grade.passed,
        "violation": grade.violation[:200],
        "seconds": round(time.monotonic() - started, 2),
    }


def grade_speed(say: Callable[[str], None]) -> dict[str, Any]:
    """Time the default grade of each lab: solution, skeleton, one bug of the lab."""
    from teachraft import labs

    rows = []
    for number in labs.LABS:
        candidates: list[Any] = [labs.solution(number), labs.skeleton(number)]
        bug = next((b for b in labs.BUGS.values() if b.lab == number), None)
        if bug is not None:
            server, coord = labs.compose([bug.name])
            candidates.append(coord if bug.coord is not None else server)
        for cls in candidates:
            row = _timed(number, cls)
            say(f"lab {number}: {row['graded']}: {row['score']}/100 in {row['seconds']} s")
            rows.append(row)
    slowest = max(r["seconds"] for r in rows)
    return {
        "grades": rows,
        "slowest_s": slowest,
        "target_s": TARGET_S,
        "aim_s": AIM_S,
        "met": slowest <= TARGET_S,
    }


def labs_soak(seeds: int, secret_seeds: int, say: Callable[[str], None]) -> dict[str, Any]:
    """The reference over ``seeds`` schedules per lab; every bug under several secret seeds."""
    from teachraft import labs

    reference = []
    for number in (1, 2, 3, 4, 6):
        row = _timed(number, labs.solution(number), seeds=seeds, search=False)
        say(f"soak lab {number}: reference over {seeds} seeds: {row['score']}/100")
        reference.append(row)
    bugs = []
    for name, bug in labs.BUGS.items():
        server, coord = labs.compose([name])
        cls = coord if bug.coord is not None else server
        for secret in range(1, secret_seeds + 1):
            row = _timed(bug.lab, cls, secret_seed=secret)
            row["bug"], row["secret_seed"] = name, secret
            say(f"soak bug {name}, secret seed {secret}: caught={not row['passed']}")
            bugs.append(row)
    return {
        "reference": reference,
        "bugs": bugs,
        "all_passed": all(r["passed"] for r in reference) and not any(b["passed"] for b in bugs),
    }


def speed_text(data: dict[str, Any]) -> str:
    lines = ["lab  graded                         score   seconds"]
    for r in data["grades"]:
        lines.append(f"{r['lab']:<4} {r['graded'][:30]:<30} {r['score']:<7} {r['seconds']}")
    verdict = "met" if data["met"] else "MISSED"
    lines.append(
        f"slowest default grade: {data['slowest_s']} s (target <= {TARGET_S:.0f} s, "
        f"aim ~{AIM_S:.0f} s): {verdict}"
    )
    return "\n".join(lines)
