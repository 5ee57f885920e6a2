"""Grading lab 5: a student's vector-clock rules, against the rules and the Go original's traces.

Two checks: the three rules on many random clocks (compared with
``teachraft.tracing.clock``), and a replay of every recorded Go KVRaft run
(``teachraft.data.go_trace``) in which each event's clock is recomputed with
the student's functions from the event before it on the same node (and, for a
receive, the clock its token carried) and compared with the recorded clock.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from teachraft.tracing import clock as rules
from teachraft.tracing.events import GENERATE, RECEIVE, EventTable

RULES = ("tick rule", "send rule", "receive rule")
TRACES = "Go traces replayed"


@dataclass
class ClockMismatch:
    """The first event whose clock the student's functions got wrong."""

    trace: str
    index: int
    host: str
    tag: str
    expected: dict[str, int]
    got: Any

    def sentence(self) -> str:
        return (
            f"in the Go run {self.trace}, event {self.index} ({self.tag} on {self.host}) "
            f"has clock {_show(self.expected)}, but your functions give {_show(self.got)}."
        )


@dataclass
class ClockScores:
    """Per check: (passed, total); the first failure, and where to replay it."""

    scores: dict[str, tuple[int, int]] = field(default_factory=dict)
    sentence: str = ""
    failure: str = ""
    detail: str = ""
    mismatch: ClockMismatch | None = None


def _show(clock: Any) -> str:
    if not isinstance(clock, Mapping):
        return repr(clock)
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(clock.items()) if v) + "}"


def _norm(clock: Any) -> dict[str, int] | None:
    if not isinstance(clock, Mapping):
        return None
    return {k: v for k, v in clock.items() if v}


def _call(fn: Any, *args: Any) -> Any:
    arg = dict(args[0])
    out = fn(arg, *args[1:])
    return arg if out is None else out


def grade_clocks(impl: Any, cases: int = 300, seed: int = 0) -> ClockScores:
    """Grade ``impl`` (an object or class with ``tick``, ``send`` and ``receive``)."""
    if isinstance(impl, type):
        impl = impl()
    result = ClockScores()
    rng = random.Random(seed)
    nodes = ["coord", "server1", "server2", "client1"]
    for name in RULES:
        passed = 0
        for _ in range(cases):
            me = rng.choice(nodes)
            local = {n: rng.randint(0, 6) for n in nodes if rng.random() < 0.7}
            got: Any
            try:
                if name == "tick rule":
                    want = rules.next_clock(local, me)
                    got = _call(impl.tick, local, me)
                elif name == "send rule":
                    want = rules.next_clock(local, me)
                    got = _call(impl.send, local, me)
                else:
                    received = {n: rng.randint(0, 9) for n in nodes if rng.random() < 0.7}
                    want = rules.next_clock(local, me, received)
                    got = _call(impl.receive, local, me, received)
            except Exception as exc:
                if not result.failure:
                    result.failure = "Handlers run without error"
                    result.sentence = f"your {name.split()[0]}() raised {type(exc).__name__}: {exc}"
                    result.detail = "".join(traceback.format_exception(exc)[-3:])
                continue
            if _norm(got) == _norm(want):
                passed += 1
            elif not result.failure:
                result.failure = name
                result.sentence = (
                    f"{name}: on node {me} with clock {_show(local)}, expected {_show(want)}, "
                    f"got {_show(got)}."
                )
        result.scores[name] = (passed, cases)
    _replay_go(impl, result)
    return result


def _replay_go(impl: Any, result: ClockScores) -> None:
    from teachraft.data import go_trace, go_trace_names
    from teachraft.viz.sources import load_events

    passed = total = 0
    for name in go_trace_names():
        table: EventTable = load_events(go_trace(name))
        last: dict[str, dict[str, int]] = {}
        for event in table:
            prev = last.get(event.host, {})
            partner = table[event.partner] if event.partner is not None else None
            recorded = _norm(event.clock) or {}
            last[event.host] = dict(event.clock)
            if event.tag == RECEIVE and partner is not None and partner.tag == GENERATE:
                want = rules.next_clock(prev, event.host, partner.clock)
                call: tuple[Any, ...] = (impl.receive, prev, event.host, partner.clock)
            elif event.tag == RECEIVE:
                continue  # its sender's event is not in this trace
            elif event.tag == GENERATE:
                want = rules.next_clock(prev, event.host)
                call = (impl.send, prev, event.host)
            else:
                want = rules.next_clock(prev, event.host)
                call = (impl.tick, prev, event.host)
            if _norm(want) != recorded:
                continue  # the recording itself does not follow the rules here
            total += 1
            try:
                got = _call(*call)
            except Exception as exc:
                got = f"{type(exc).__name__}: {exc}"
            if _norm(got) == recorded:
                passed += 1
            elif result.mismatch is None:
                result.mismatch = ClockMismatch(
                    name, event.index, event.host, event.tag, recorded, got
                )
                if not result.failure:
                    result.failure = TRACES
                    result.sentence = result.mismatch.sentence()
    result.scores[TRACES] = (passed, total)
