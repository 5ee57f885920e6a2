"""Is a history linearizable? The checker's front door.

:func:`check` splits the history by key (keys are independent, so each is
checked on its own, which is exponentially cheaper), runs one
:class:`~teachraft.check.search.Search` per key and shares time between them
fairly: every key gets a first slice of steps, then slices double round after
round, so one hard key cannot starve the others and a violation in an easy key
is found at once. A time limit turns an undecided search into "unknown", with
how far the search got: the checker never guesses.

A violation is explained by its smallest window: the ops still open when the
failing op returned, the state every partial linearization was left in, and
why the failing op is illegal there (:mod:`teachraft.check.explain`).
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from teachraft.check.history import OUTCOMES, History, Op
from teachraft.check.models import UNSET, AllKeys, Model, State, make_model
from teachraft.check.search import Search, stepper_factory

Verdict = Literal["linearizable", "not linearizable", "unknown"]
FIRST_SLICE = 20_000


@dataclass
class Progress:
    """How far an undecided search got: the basis of an "unknown" verdict."""

    key: str | None
    linearized: int
    total: int
    steps: int
    decided: int
    keys: int


@dataclass
class CheckResult:
    """The verdict plus what explains it.

    ``linearization`` is a valid order of op ids when linearizable (across all
    keys; ops that need not take effect are left out), or the longest partial
    linearization of the failing key when not. ``points`` gives each op of
    ``linearization`` a time inside its call/return interval consistent with
    that order, for drawing; it is computed when first read.
    ``stuck_states`` are the states the partial linearizations were left in
    where the failing op returned; ``progress`` says how far an "unknown"
    search got.
    """

    verdict: Verdict
    failed_op: Op | None
    key: str | None
    elapsed: float
    model: Model | None = field(default=None, repr=False, compare=False)
    ops: dict[int, Op] = field(default_factory=dict, repr=False, compare=False)
    partitions: int = 0
    history: History | None = field(default=None, repr=False, compare=False)
    stuck_states: list[State] = field(default_factory=list, repr=False)
    progress: Progress | None = None
    timeout: float | None = None
    skipped: dict[str, int] = field(default_factory=dict, repr=False)
    _orders: list[list[Op]] = field(default_factory=list, repr=False, compare=False)
    _points: dict[int, float] | None = field(default=None, repr=False, compare=False)
    _order: list[int] | None = field(default=None, repr=False, compare=False)

    @property
    def linearization(self) -> list[int]:
        """The order of op ids (merged across keys on first use)."""
        if self._order is None:
            self._order = [] if self.verdict == "unknown" else self._merged()[0]
        return self._order

    @linearization.setter
    def linearization(self, order: list[int]) -> None:
        self._order = order

    @property
    def ok(self) -> bool:
        """True only for a proven "linearizable"."""
        return self.verdict == "linearizable"

    @property
    def points(self) -> dict[int, float]:
        """Linearization points, computed on first use (drawing needs them, verdicts do not)."""
        if self._points is None:
            self._points = self._merged()[1]
        return self._points

    def _merged(self) -> tuple[list[int], dict[int, float]]:
        end = _end(self.history) if self.history is not None else 0.0
        order, points = _merge(self._orders, end)
        if self.verdict != "linearizable":
            order = [op.id for op in self._orders[0]] if self._orders else []
        return order, points

    def window(self) -> list[Op]:
        """The smallest window of concurrent ops around the failure ([] unless violated)."""
        from teachraft.check.explain import violation_window

        return violation_window(self)

    def skipped_note(self) -> str:
        """One line on the events of non-client processes left out ("" if none)."""
        from teachraft.check.explain import skipped_note

        return skipped_note(self) if self.skipped else ""

    def explain(self) -> str:
        """A human-readable account of the verdict (see :mod:`teachraft.check.explain`)."""
        from teachraft.check.explain import explain

        return explain(self)


def check(
    history: History,
    model: str | Model | None = None,
    timeout: float | None = 10.0,
    partition: bool = True,
    initial: Any = UNSET,
) -> CheckResult:
    """Decide whether ``history`` is linearizable under ``model``.

    ``model`` is a name from :data:`teachraft.check.models.MODELS` or a model
    object; None picks one from the ops (and the file's format). ``initial``
    is the model's starting value where it has one (Knossos: ``0`` for a
    cas-register, ``{"x": 0, "y": 0}`` for a multi-register). ``timeout``
    (seconds, None for no limit) yields "unknown". ``partition=False`` checks
    all keys as one object (slower; for testing).
    """
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    base = make_model(model, history, initial)
    _validate(history)
    groups = _partitions(history, base, partition)
    used = base if partition else AllKeys(base, list(history.by_key()))
    make = stepper_factory(used)
    collecting = gc.isenabled()
    gc.disable()  # the search makes millions of tuples and no cycles: nothing to collect
    try:
        searches = {key: Search(ops, used, make) for key, ops in groups.items()}
        verdict, bad_key = _schedule(searches, deadline)
    finally:
        if collecting:
            gc.enable()
    result = CheckResult(verdict, None, None, 0.0, model=used, partitions=len(groups))
    result.history, result.timeout, result.skipped = history, timeout, dict(history.skipped)
    result.ops = {op.id: op for op in history.ops}
    if verdict == "not linearizable":
        bad = searches[bad_key]
        result.failed_op = bad.failed
        result.key = None if bad.failed is None else bad.failed.key
        result.linearization = list(bad.order)
        result.stuck_states = list(bad.stuck_states)
        result._orders = [[result.ops[i] for i in bad.order]]
    elif verdict == "linearizable":
        result._orders = [[result.ops[i] for i in s.order] for s in searches.values()]
        if len(result._orders) == 1:
            result.linearization = [o.id for o in result._orders[0]]
    else:
        result.progress = _progress(searches)
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


def _progress(searches: dict[str | None, Search]) -> Progress:
    """The undecided key whose search got least far, and how far that was."""
    undecided = [(k, s) for k, s in searches.items() if s.result is None]
    key, search = min(undecided, key=lambda ks: ks[1].progress()[0] / max(ks[1].progress()[1], 1))
    linearized, total = search.progress()
    steps = sum(s.steps for s in searches.values())
    return Progress(key, linearized, total, steps, len(searches) - len(undecided), len(searches))


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
