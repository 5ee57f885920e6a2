"""The Wing & Gong / Lowe search for a linearization of one partition.

This is the algorithm Porcupine and Knossos's "linear" checker use. The
history becomes a time-ordered list of call and return entries (calls before
returns at equal times, so touching ops count as concurrent). A depth-first
search walks the list: at a call it tries to linearize that op next (the model
step must be legal), lifting its call and return out of the list; at a return
of an op not yet linearized it is stuck and backtracks. Each (set of
linearized ops, model state) is explored at most once: reaching a pair
already seen cannot lead anywhere new.

An op with unknown outcome has no return entry: it may be linearized at any
point after its call, or never. The search succeeds as soon as every op with
a known outcome is linearized.

The search is resumable: :meth:`Search.run` does a bounded number of steps and
keeps its place, so the checker can share time fairly between partitions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from teachraft.check.history import Op
from teachraft.check.models import Model, Stepper

_HEAD = 0
_DEADLINE_EVERY = 1024
MAX_STUCK_STATES = 8


class Search:
    """A resumable linearizability search over the ops of one key.

    After :meth:`run` returns True, ``order`` is a valid linearization (op
    ids). After it returns False, ``failed`` is the op whose return no
    linearization could get past, ``order`` is the longest partial
    linearization that reached that point, and ``stuck_states`` the model
    states the partial linearizations were in there.

    The set of linearized ops is kept small: ops that must return (known
    outcome) are numbered in call order and held as ``base`` (every op
    numbered below it is linearized) plus ``rel``, the bits above ``base``;
    ops with unknown outcome get their own bits in ``ulin``. That is a
    canonical form of the full bitset, so it is exact as a cache key, and it
    stays a few words long however long the history is: only the ops still
    open near the search's frontier have bits.
    """

    def __init__(self, ops: list[Op], model: Model, make: StepperFactory | None = None) -> None:
        self.ops = ops
        self.model = model
        self._build_entries()
        self.state: Hashable = model.init()
        self.base = 0
        self.rel = 0
        self.ulin = 0
        self.stack: list[tuple[int, Hashable, int, int, int]] = []
        self.cache: set[tuple[int, int, int, Hashable]] = set()
        make = make or stepper_factory(model)
        self.steppers = [make(op) for op in ops]
        self.remaining = sum(self.definite)
        self.entry = self.nxt[_HEAD]
        self.steps = 0
        self.deepest = 0
        self.result: bool | None = True if self.remaining == 0 else None
        self.order: list[int] = []
        self.failed: Op | None = None
        self.stuck_states: list[Hashable] = []
        self._best = (-1, -1)
        self._best_stack: list[tuple[int, Hashable, int, int, int]] = []

    def _build_entries(self) -> None:
        """Nodes 1..m are the call/return events in time order; 0 and m+1 are sentinels.

        Events are sorted by time alone, with a stable sort over a list that
        holds every call before every return: at equal times calls come first.
        """
        ops = self.ops
        n = len(ops)
        self.definite = definite = [op.outcome != "unknown" for op in ops]
        calls = sorted(range(n), key=[op.call for op in ops].__getitem__)
        returning = [i for i in range(n) if definite[i]]
        ev_op = calls + returning
        times = [ops[i].call for i in calls] + [ops[i].ret for i in returning]
        order = sorted(range(len(ev_op)), key=times.__getitem__)
        m = len(order)
        self.node_op = [-1, *(ev_op[e] for e in order), -1]
        self.is_call = [False, *(e < n for e in order), False]
        self.match = match = [0] * (m + 2)
        call_node = [0] * n
        for node, e in enumerate(order, 1):
            if e < n:
                call_node[ev_op[e]] = node
            else:
                match[call_node[ev_op[e]]] = node
        self.nxt = [*range(1, m + 2), m + 1]
        self.prv = [0, *range(0, m + 1)]
        self.tail = m + 1
        # definite ops numbered in call order (for base/rel), unknown ops apart (for ulin)
        self.rank = rank = [0] * n
        self.ubit = ubit = [0] * n
        definite_seen = unknown_seen = 0
        for i in calls:
            if definite[i]:
                rank[i] = definite_seen
                definite_seen += 1
            else:
                ubit[i] = 1 << unknown_seen
                unknown_seen += 1

    def run(self, budget: int, deadline: float | None = None) -> bool | None:
        """Search for at most ``budget`` steps: True/False when decided, None if not yet."""
        if self.result is not None:
            return self.result
        if deadline is not None and time.monotonic() > deadline:
            return None
        nxt, prv, match = self.nxt, self.prv, self.match
        is_call, node_op, steppers = self.is_call, self.node_op, self.steppers
        definite, rank, ubit = self.definite, self.rank, self.ubit
        cache, stack = self.cache, self.stack
        entry, state, remaining = self.entry, self.state, self.remaining
        base, rel, ulin = self.base, self.rel, self.ulin
        steps = 0
        while steps < budget:
            steps += 1
            if not steps % _DEADLINE_EVERY and deadline is not None and time.monotonic() > deadline:
                break
            if is_call[entry]:
                i = node_op[entry]
                ok, new_state = steppers[i](state)
                if ok:
                    if definite[i]:
                        n_base, n_rel, n_ulin = base, rel | (1 << (rank[i] - base)), ulin
                        if n_rel & 1:  # strip the run of linearized ops at the bottom
                            ones = (~n_rel & (n_rel + 1)).bit_length() - 1
                            n_base += ones
                            n_rel >>= ones
                    else:
                        n_base, n_rel, n_ulin = base, rel, ulin | ubit[i]
                    key = (n_base, n_rel, n_ulin, new_state)
                    if key not in cache:
                        cache.add(key)
                        stack.append((entry, state, base, rel, ulin))
                        # lift the call and its return out of the list
                        p, q = prv[entry], nxt[entry]
                        nxt[p] = q
                        prv[q] = p
                        r = match[entry]
                        if r:
                            p, q = prv[r], nxt[r]
                            nxt[p] = q
                            prv[q] = p
                        state, base, rel, ulin = new_state, n_base, n_rel, n_ulin
                        if definite[i]:
                            remaining -= 1
                            if not remaining:
                                self._finish(True, stack)
                                break
                        entry = nxt[_HEAD]
                        continue
                entry = nxt[entry]
            else:
                if entry == self.tail:
                    raise AssertionError("search ran off the end with ops left to linearize")
                self._note_stuck(entry, stack, state)
                if not stack:
                    self._finish(False, stack)
                    break
                entry, state, base, rel, ulin = stack.pop()
                # unlift: put the return back, then the call
                r = match[entry]
                if r:
                    p, q = prv[r], nxt[r]
                    nxt[p] = r
                    prv[q] = r
                p, q = prv[entry], nxt[entry]
                nxt[p] = entry
                prv[q] = entry
                if definite[node_op[entry]]:
                    remaining += 1
                entry = nxt[entry]
        self.entry, self.state, self.remaining = entry, state, remaining
        self.base, self.rel, self.ulin = base, rel, ulin
        self.steps += steps
        return self.result

    def progress(self) -> tuple[int, int]:
        """(most ops any partial linearization held, ops that must be linearized)."""
        return max(self.deepest, len(self.stack)), sum(self.definite)

    def _note_stuck(self, entry: int, stack: list[Any], state: Hashable) -> None:
        """Remember the furthest return any linearization reached, that linearization,
        and the states the partial linearizations were stuck in there."""
        depth = len(stack)
        self.deepest = max(self.deepest, depth)
        if entry > self._best[0]:
            self.stuck_states = []
        keep = entry >= self._best[0] and len(self.stuck_states) < MAX_STUCK_STATES
        if keep and state not in self.stuck_states:
            self.stuck_states.append(state)
        if (entry, depth) > self._best:
            self._best = (entry, depth)
            self.failed = self.ops[self.node_op[entry]]
            self._best_stack = stack[:]  # a cheap copy; turned into op ids only if it fails

    def _finish(self, verdict: bool, stack: list[Any]) -> None:
        self.result = verdict
        if verdict:
            self.failed = None
            self.steppers.clear()
        else:
            stack = self._best_stack
        ops, node_op = self.ops, self.node_op
        self.order = [ops[node_op[frame[0]]].id for frame in stack]
        self._best_stack = []
        self.cache.clear()


StepperFactory = Callable[[Op], Stepper]


def stepper_factory(model: Model) -> StepperFactory:
    """How to build one op's stepper: looked up once per model, not once per op.

    The model's own ``stepper`` if it has one, else a memoised ``model.step``.
    """
    compiled = getattr(model, "stepper", None)
    if compiled is not None:
        return compiled
    step = model.step

    def make(op: Op) -> Stepper:
        table: dict[Hashable, tuple[bool, Hashable]] = {}

        def memoised(state: Hashable) -> tuple[bool, Hashable]:
            res = table.get(state)
            if res is None:
                res = table[state] = step(state, op)
            return res

        return memoised

    return make
