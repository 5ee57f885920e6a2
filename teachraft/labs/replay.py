"""Replaying a grade's counterexample with tracing on, for the TimelinePanel.

The grader runs untraced, for speed. A counterexample is deterministic (a
seed and a list of steps, or a path of the search), so it is run once more
with a real ``Tracer`` per node writing into one ``EventTable``: every figure,
the TimelinePanel and the ShiViz export then work on it as on a live run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from teachraft.tracing.events import EventTable
from teachraft.tracing.tracer import Tracer


@dataclass
class Replayed:
    """A counterexample's events, and the event where it went wrong."""

    source: Any
    """An ``EventTable``, or a Go trace folder (lab 5): any source a figure takes."""
    at: int
    """The event where the violation showed (the panel opens there)."""


def _tracers(seed: int, table: EventTable) -> Any:
    def make(name: str) -> Tracer:
        return Tracer(name, table, rng=random.Random(f"{seed}:{name}"))

    return make


def replay(grade: Any) -> Replayed:
    """Run ``grade``'s counterexample again, traced; raise ValueError if it has none."""
    cx = grade.counterexample
    if cx is None:
        raise ValueError("this grade has no counterexample: every check passed")
    if cx.kind == "trace":
        from teachraft.data import go_trace

        assert cx.mismatch is not None
        return Replayed(go_trace(cx.mismatch.trace), cx.mismatch.index)
    table = EventTable()
    if cx.kind == "search":
        from teachraft.labs.explore import replay_steps

        election = grade.exploration.election if grade.exploration is not None else "coord"
        replay_steps(
            grade.server_class,
            grade.coord_class,
            cx.path,
            tracer_factory=_tracers(0, table),
            election=election,
        )
    else:
        from teachraft.labs.schedules import run_schedule

        assert cx.schedule is not None
        run_schedule(
            cx.schedule,
            grade.server_class,
            grade.coord_class,
            tracer_factory=_tracers(cx.schedule.seed, table),
            linearizability=False,
        )
    return Replayed(table, max(0, len(table) - 1))


def timeline(grade: Any) -> Any:
    """A ``TimelinePanel`` on the counterexample, opened at the event where it went wrong."""
    from teachraft.widgets import TimelinePanel

    run = replay(grade)
    return TimelinePanel(run.source, start=run.at)
