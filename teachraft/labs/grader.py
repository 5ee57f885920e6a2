"""``grade(lab, MyClass)``: seeded schedules, an exhaustive search, a shrunk counterexample.

For a server or coord lab the grader

1. plays ``seeds`` random schedules (``schedules.random_schedule``: message
   loss, reordering, duplication, crashes and restarts, partitions, slow links,
   leader failures) with the student's class in the simulated cluster, under
   the invariant monitor, then heals and checks termination and
   linearizability;
2. explores the small configuration exhaustively, breadth first, within a
   stated bound (``explore.explore``);
3. shrinks the first failing random schedule (or takes the search's path,
   which is already the smallest) into a short list of steps.

The result, a ``Grade``, has a score per check, the first violation in one
sentence, the counterexample's steps, a JSON form for an LMS and, in a
notebook, a widget with a replay button (``teachraft.labs.widget``).
Lab 5 (vector clocks) is graded by ``clocks.grade_clocks``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from teachraft.labs.catalog import Lab, solutions_injected, submission
from teachraft.labs.catalog import lab as find_lab
from teachraft.labs.clocks import RULES, TRACES, ClockMismatch, grade_clocks
from teachraft.labs.explore import Exploration, explore
from teachraft.labs.invariants import INVARIANTS
from teachraft.labs.schedules import (
    HANDLERS,
    LINEARIZABLE,
    TERMINATION,
    RunResult,
    Schedule,
    random_schedule,
    run_schedule,
    shrink,
)
from teachraft.labs.world import RUN_SECONDS, HandlerFailure, time_limit

SEARCH = "Exhaustive search"
SEARCH_SECONDS = 8.0
SERVER_CHECKS = (HANDLERS, *INVARIANTS, LINEARIZABLE, TERMINATION, SEARCH)
DEFAULT_SEEDS = 300


@dataclass
class CheckScore:
    """One check: how many runs it held in, of those that reached it."""

    name: str
    passed: int
    total: int

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.passed == self.total

    def text(self) -> str:
        if self.total == 0:
            return "not reached"
        return f"{self.passed}/{self.total}"


@dataclass
class Counterexample:
    """The smallest failing run found, as steps a student reads and can replay."""

    kind: str
    """``schedule`` (a shrunk random schedule), ``search`` (a path of the BFS) or ``trace``."""
    steps: list[str]
    schedule: Schedule | None = None
    path: list[Any] = field(default_factory=list)
    mismatch: ClockMismatch | None = None
    step: int = 0


@dataclass
class Grade:
    """The outcome of ``grade``: scores per check, the first violation, the counterexample."""

    lab: Lab
    graded: str
    """The class graded (``the reference solution`` when TEACHRAFT_LAB_SOLUTIONS is set)."""
    checks: list[CheckScore]
    violation: str = ""
    """The first violated check, in one sentence (empty when everything passed)."""
    failed_check: str = ""
    detail: str = ""
    counterexample: Counterexample | None = None
    exploration: Exploration | None = None
    seeds: int = 0
    seconds: float = 0.0
    server_class: Any = None
    coord_class: Any = None

    @property
    def passed(self) -> bool:
        return not self.violation and all(c.ok for c in self.checks)

    @property
    def heading(self) -> str:
        """``Lab 1 (The AppendEntries receiver)``, or the title alone for an investigation."""
        if self.lab.number == 0:
            return self.lab.title[:1].upper() + self.lab.title[1:]
        return f"Lab {self.lab.number} ({self.lab.title})"

    @property
    def score(self) -> float:
        """0-100: the mean over checks of the share of runs each held in."""
        if not self.checks:
            return 0.0
        parts = [c.passed / c.total if c.total else 0.0 for c in self.checks]
        return round(100.0 * sum(parts) / len(parts), 1)

    def summary(self) -> str:
        head = f"{self.heading}: {self.score:g}/100"
        if self.passed:
            return head + " - every check passed."
        return head + f" - {self.failed_check}: {self.violation}"

    def to_json(self) -> dict[str, Any]:
        """Plain data for an LMS: lab, score, passed, per-check scores, the violation."""
        return {
            "lab": self.lab.number,
            "lab_name": self.lab.name,
            "graded": self.graded,
            "score": self.score,
            "max_score": 100,
            "passed": self.passed,
            "checks": [
                {"name": c.name, "passed": c.passed, "total": c.total, "ok": c.ok}
                for c in self.checks
            ],
            "violation": self.violation,
            "failed_check": self.failed_check,
            "counterexample": self.counterexample.steps if self.counterexample else [],
            "search": self.exploration.bound() if self.exploration else "",
            "seeds": self.seeds,
            "seconds": round(self.seconds, 2),
        }

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {c.name}: {c.text()}" for c in self.checks]
        if self.exploration is not None:
            lines.append(f"  ({self.exploration.bound()})")
        if self.counterexample is not None:
            lines.append("Counterexample:")
            lines += [f"  {i}. {s}" for i, s in enumerate(self.counterexample.steps, 1)]
        if self.detail:
            lines.append(self.detail)
        return "\n".join(lines)

    def widget(self) -> Any:
        """The result as a notebook widget, with a replay button for the counterexample."""
        from teachraft.labs.widget import GradeWidget

        return GradeWidget(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """In a notebook: the widget, with the HTML and the text as fallbacks."""
        from teachraft.labs.widget import grade_html

        bundle: dict[str, Any] = {"text/plain": str(self), "text/html": grade_html(self)}
        try:
            widget_bundle = self.widget()._repr_mimebundle_(**kwargs)
        except Exception:  # no widget front end: the HTML still says it all
            return bundle
        if isinstance(widget_bundle, tuple):
            widget_bundle = widget_bundle[0]
        return {**bundle, **(widget_bundle or {})}

    def replay(self) -> Any:
        """The counterexample's trace events, and the event where it went wrong."""
        from teachraft.labs.replay import replay

        return replay(self)


def _seed_list(seeds: int, secret_seed: int | None) -> list[int]:
    if secret_seed is None:
        return list(range(seeds))
    rng = random.Random(secret_seed)
    return [rng.randrange(2**31) for _ in range(seeds)]


def grade(
    lab: int | str | Lab,
    cls: Any,
    *,
    seeds: int = DEFAULT_SEEDS,
    secret_seed: int | None = None,
    search: bool = True,
    search_states: int = 1500,
    shrink_budget: int = 60,
) -> Grade:
    """Grade ``cls`` for ``lab`` (1-5 or its name); see the module docstring.

    ``seeds`` random schedules are played (seeds 0..N-1, or N seeds drawn from
    ``secret_seed``, a teacher's hidden choice). Never raises for what the
    student's code does: every failure is a check in the result.
    """
    t0 = time.monotonic()
    item = find_lab(lab)
    injected = solutions_injected()
    cls = submission(item.number, cls)
    graded = "the reference solution" if injected else getattr(cls, "__name__", repr(cls))
    problem = _refuse(item, cls)
    if problem:
        result = Grade(item, graded, [CheckScore(HANDLERS, 0, 1)], problem, HANDLERS)
        result.seconds = time.monotonic() - t0
        return result
    if item.kind == "clocks":
        result = _grade_clocks(item, cls, graded, seeds, secret_seed)
    else:
        server_class, coord_class = _classes(item, cls)
        result = grade_machines(
            item,
            server_class,
            coord_class,
            graded,
            _seed_list(seeds, secret_seed),
            search=search,
            search_states=search_states,
            shrink_budget=shrink_budget,
        )
    result.seconds = time.monotonic() - t0
    return result


def _refuse(item: Lab, cls: Any) -> str:
    """Why ``cls`` cannot be graded for ``item`` at all (empty when it can)."""
    if item.kind == "clocks":
        missing = [n for n in item.handlers if not callable(getattr(cls, n, None))]
        return f"the class has no {', '.join(missing)}" if missing else ""
    from teachraft.core.coord import Coord
    from teachraft.core.server import Server

    base = Coord if item.kind == "coord" else Server
    if not isinstance(cls, type):
        return f"grade() needs a class (a subclass of {item.skeleton.__name__}), not {cls!r}"
    if not issubclass(cls, base):
        return (
            f"{cls.__name__} is not a subclass of teachraft.labs.{item.skeleton.__name__}; "
            f"write class MyClass({item.skeleton.__name__}) and define {', '.join(item.handlers)}"
        )
    return ""


def _classes(item: Lab, cls: type) -> tuple[Any, Any]:
    from teachraft.labs.api import LabCoord, LabServer

    return (LabServer, cls) if item.kind == "coord" else (cls, LabCoord)


def grade_machines(
    item: Lab,
    server_class: Any,
    coord_class: Any,
    graded: str,
    seeds: list[int],
    *,
    search: bool = True,
    search_states: int = 1500,
    shrink_budget: int = 60,
    weighting: Callable[[int], int] | None = None,
) -> Grade:
    """Grade a server and coord class pair; ``weighting(seed)`` names the lab whose faults
    a seed's schedule favours (``item``'s own by default)."""
    counts = {name: [0, 0] for name in SERVER_CHECKS}
    first: RunResult | None = None
    for seed in seeds:
        lab_weights = weighting(seed) if weighting is not None else item.number
        res = run_schedule(random_schedule(seed, lab_weights), server_class, coord_class)
        _count(counts, res)
        if not res.ok and first is None:
            first = res
        if res.endless:  # every other run would stop the same way, seconds later
            search = False
            shrink_budget = 0
            break
    exploration = None
    if search:
        try:
            with time_limit(SEARCH_SECONDS + RUN_SECONDS):
                exploration = explore(
                    server_class,
                    coord_class,
                    max_states=search_states,
                    time_limit=SEARCH_SECONDS,
                    election=item.election,
                )
        except HandlerFailure as exc:
            exploration = Exploration(max_states=search_states, failure=HANDLERS)
            exploration.sentence, exploration.detail = exc.sentence, exc.detail
        counts[SEARCH] = [1 if exploration.ok else 0, 1]
    else:
        del counts[SEARCH]
    checks = [CheckScore(n, p, t) for n, (p, t) in counts.items()]
    result = Grade(item, graded, checks, exploration=exploration, seeds=len(seeds))
    result.server_class, result.coord_class = server_class, coord_class
    if exploration is not None and not exploration.ok:
        result.violation, result.failed_check = exploration.sentence, exploration.failure
        result.detail = exploration.detail
        result.counterexample = Counterexample(
            "search", exploration.steps, path=list(exploration.path)
        )
    elif first is not None:

        def run(s: Schedule) -> RunResult:
            return run_schedule(s, server_class, coord_class)

        small = shrink(first, run, shrink_budget)
        result.violation, result.failed_check = small.sentence, small.failure
        result.detail = small.detail
        steps = small.schedule.describe()
        result.counterexample = Counterexample(
            "schedule", steps, schedule=small.schedule, step=small.step
        )
    return result


def _count(counts: dict[str, list[int]], res: RunResult) -> None:
    """A run counts for every check it reached: passed if it held, failed where it broke."""
    if res.failure == HANDLERS:
        counts[HANDLERS][1] += 1
        return
    counts[HANDLERS][0] += 1
    counts[HANDLERS][1] += 1
    reached = [*INVARIANTS, TERMINATION, LINEARIZABLE]
    if res.failure in INVARIANTS:
        reached = list(INVARIANTS)
    elif res.failure == TERMINATION:
        reached = [*INVARIANTS, TERMINATION]
    for name in reached:
        counts[name][1] += 1
        if name != res.failure:
            counts[name][0] += 1


def _grade_clocks(item: Lab, cls: Any, graded: str, seeds: int, secret_seed: int | None) -> Grade:
    scores = grade_clocks(cls, cases=max(50, seeds), seed=secret_seed or 0)
    checks = [CheckScore(n, *scores.scores[n]) for n in (*RULES, TRACES)]
    result = Grade(item, graded, checks, scores.sentence, scores.failure, scores.detail)
    if scores.mismatch is not None:
        m = scores.mismatch
        result.counterexample = Counterexample(
            "trace",
            [
                f"load the Go run {m.trace}",
                f"replay every event up to event {m.index} with your functions",
                f"event {m.index}: {m.tag} on {m.host}: expected {m.expected}, got {m.got}",
            ],
            mismatch=m,
        )
    result.seeds = seeds
    return result
