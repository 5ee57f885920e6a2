"""Is a history linearizable? The checker's front door.

:func:`check` splits the history by key (keys are independent, so each is
checked on its own, which is exponentially cheaper), runs one
:class:`~teachraft.check.search.Search` per key and shares time between them
fairly: every key gets a first slice of steps, then slices double round after
round, so one hard key cannot starve the others and a violation in an easy key
is found at once. A time limit turns an undecided search into "unknown": the
checker never guesses.

The result names the op at which no linearization could continue and the
longest partial linearization, which is what a student needs to see why.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

from teachraft.check.history import OUTCOMES, History, Op, client_label
from teachraft.check.models import AllKeys, Model, make_model
from teachraft.check.search import Search

Verdict = Literal["linearizable", "not linearizable", "unknown"]
FIRST_SLICE = 20_000
EXPLAIN_TAIL = 25
_ROW_LEAD = 2 + 4 + 5 + 5 + 1 + 8 + 2 + 40  # the width of a row before its " =>"


@dataclass
class CheckResult:
    """The verdict plus what explains it.

    ``linearization`` is a valid order of op ids when linearizable (across all
    keys; ops that need not take effect are left out), or the longest partial
    linearization of the failing key when not. ``points`` gives each op of
    ``linearization`` a time inside its call/return interval consistent with
    that order, for drawing.
    """

    verdict: Verdict
    linearization: list[int]
    failed_op: Op | None
    key: str | None
    elapsed: float
    points: dict[int, float] = field(default_factory=dict, repr=False)
    model: Model | None = field(default=None, repr=False, compare=False)
    ops: dict[int, Op] = field(default_factory=dict, repr=False, compare=False)
    partitions: int = 0

    @property
    def ok(self) -> bool:
        """True only for a proven "linearizable"."""
        return self.verdict == "linearizable"

    def explain(self) -> str:
        """A human-readable account: the verdict, the failed op, the partial order."""
        if self.verdict == "linearizable":
            return (
                f"linearizable: {len(self.ops)} ops in {self.partitions} key(s), "
                f"checked in {self.elapsed:.3f} s"
            )
        if self.verdict == "unknown":
            return (
                f"unknown: the search did not finish within the time limit "
                f"({self.elapsed:.3f} s); no verdict"
            )
        return "\n".join(self._explain_violation())

    def _explain_violation(self) -> list[str]:
        assert self.failed_op is not None and self.model is not None
        model, bad = self.model, self.failed_op
        where = "" if self.key is None else f" on key {self.key!r}"
        lines = [
            f"not linearizable{where}: no order of the ops can include "
            f"op {bad.id} by {client_label(bad.client)}: {model.describe(bad)} "
            f"[called {_t(bad.call)}, returned {_t(bad.ret)}]",
            f"longest partial linearization ({len(self.linearization)} ops), "
            f"with the state after each:",
        ]
        state = model.init()
        start = f"{'':8}(initial state)"
        lines.append(f"{start:<{_ROW_LEAD}} => {_clip(model.describe_state(state))}")
        rows = []
        for n, op_id in enumerate(self.linearization, 1):
            op = self.ops[op_id]
            state = model.step(state, op)[1]
            rows.append(
                f"  {n:>4}. op {op.id:<5} {op.client:>8}  {_clip(model.describe(op)):<40} "
                f"=> {_clip(model.describe_state(state))}"
            )
        if len(rows) > EXPLAIN_TAIL:
            lines.append(f"  ... {len(rows) - EXPLAIN_TAIL} earlier ops ...")
        lines += rows[-EXPLAIN_TAIL:]
        lines.append(
            f"then op {bad.id} ({model.describe(bad)}) cannot be linearized: "
            f"it returned at {_t(bad.ret)} but is illegal in every state reachable by then"
        )
        return lines


def _clip(text: str, width: int = 40) -> str:
    """Long appended values shortened in the middle, so rows stay on one line."""
    if len(text) <= width:
        return text
    half = (width - 3) // 2
    return f"{text[:half]}...{text[-half:]}"


def _t(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.6g}"


def check(
    history: History,
    model: str | Model | None = None,
    timeout: float | None = 10.0,
    partition: bool = True,
) -> CheckResult:
    """Decide whether ``history`` is linearizable under ``model`` ("kv" or "etcd").

    ``model`` None picks "etcd" for register histories (read/write/cas) and
    "kv" otherwise. ``timeout`` (seconds, None for no limit) yields "unknown".
    ``partition=False`` checks all keys as one object (slower; for testing).
    """
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    base = make_model(model, history)
    _validate(history)
    groups = _partitions(history, base, partition)
    used = base if partition else AllKeys(base, list(history.by_key()))
    searches = {key: Search(ops, used) for key, ops in groups.items()}
    verdict, bad_key = _schedule(searches, deadline)
    result = CheckResult(verdict, [], None, None, 0.0, model=used, partitions=len(groups))
    result.ops = {op.id: op for op in history.ops}
    if verdict == "not linearizable":
        bad = searches[bad_key]
        result.failed_op = bad.failed
        result.key = None if bad.failed is None else bad.failed.key
        result.linearization = list(bad.order)
        result.points = linearization_points([result.ops[i] for i in bad.order], _end(history))
    elif verdict == "linearizable":
        per_key = [[result.ops[i] for i in s.order] for s in searches.values()]
        result.linearization, result.points = _merge(per_key, _end(history))
    result.elapsed = time.monotonic() - start
    return result


def _validate(history: History) -> None:
    seen: set[int] = set()
    for op in history.ops:
        if op.id in seen:
            raise ValueError(f"op id {op.id} appears twice in the history")
        seen.add(op.id)
        if op.outcome not in OUTCOMES:
            raise ValueError(f"op {op.id}: unknown outcome {op.outcome!r}")
        if op.ret < op.call:
            raise ValueError(f"op {op.id}: returns ({op.ret}) before it is called ({op.call})")


def _partitions(history: History, model: Model, partition: bool) -> dict[str | None, list[Op]]:
    """The ops the search must place, by key (or all under None)."""
    relevant = [op for op in history.ops if model.relevant(op)]
    if not partition:
        return {None: relevant}
    groups: dict[str | None, list[Op]] = {}
    for op in relevant:
        groups.setdefault(op.key, []).append(op)
    return groups


def _schedule(
    searches: dict[str | None, Search], deadline: float | None
) -> tuple[Verdict, str | None]:
    """Round-robin with doubling slices until every key is decided or time is up."""
    pending = list(searches.items())
    budget = FIRST_SLICE
    while pending:
        undecided = []
        for key, search in pending:
            found = search.run(budget, deadline)
            if found is False:
                return "not linearizable", key
            if found is None:
                if deadline is not None and time.monotonic() > deadline:
                    return "unknown", None
                undecided.append((key, search))
        pending = undecided
        budget *= 2
    return "linearizable", None


def _end(history: History) -> float:
    """The last finite time in the history: where unknown ops are drawn to end."""
    times = [t for op in history.ops for t in (op.call, op.ret) if not math.isinf(t)]
    return max(times, default=0.0)


def linearization_points(order: list[Op], end: float) -> dict[int, float]:
    """A time for each op, inside its interval and nondecreasing along ``order``.

    Each op gets the middle of the window the order allows it (after every
    earlier op's call, before every later op's return); an op that never
    returned is bounded by ``end``. Because each point lies inside its op's
    interval, sorting several keys' points together keeps real-time order.
    """
    lo: list[float] = []
    latest = -math.inf
    for op in order:
        latest = max(latest, op.call)
        lo.append(latest)
    hi = [0.0] * len(order)
    earliest = math.inf
    for n in range(len(order) - 1, -1, -1):
        earliest = min(earliest, order[n].ret)
        hi[n] = earliest
    points: dict[int, float] = {}
    previous = -math.inf
    for n, op in enumerate(order):
        top = max(lo[n], end) if math.isinf(hi[n]) else hi[n]
        previous = max(previous, (lo[n] + top) / 2)
        points[op.id] = previous
    return points


def _merge(per_key: list[list[Op]], end: float) -> tuple[list[int], dict[int, float]]:
    """One global order from per-key linearizations (valid by locality)."""
    points: dict[int, float] = {}
    ranked: list[tuple[float, int, int, int]] = []
    for k, order in enumerate(per_key):
        key_points = linearization_points(order, end)
        points.update(key_points)
        ranked += [(key_points[op.id], k, n, op.id) for n, op in enumerate(order)]
    ranked.sort()
    return [op_id for *_, op_id in ranked], points
