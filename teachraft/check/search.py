"""The Wing & Gong / Lowe search for a linearization of one partition.

This is the algorithm Porcupine and Knossos's "linear" checker use. The
history becomes a time-ordered list of call and return entries (calls before
returns at equal times, so touching ops count as concurrent). A depth-first
search walks the list: at a call it tries to linearize that op next (the model
step must be legal), lifting its call and return out of the list; at a return
of an op not yet linearized it is stuck and backtracks. Each (set of
linearized ops as a bitset, model state) is explored at most once: reaching a
pair already seen cannot lead anywhere new.

An op with unknown outcome has no return entry: it may be linearized at any
point after its call, or never. The search succeeds as soon as every op with
a known outcome is linearized.

The search is resumable: :meth:`Search.run` does a bounded number of steps and
keeps its place, so the checker can share time fairly between partitions.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from teachraft.check.history import Op
from teachraft.check.models import Model, Stepper

_HEAD = 0
_DEADLINE_EVERY = 1024


class Search:
    """A resumable linearizability search over the ops of one key.

    After :meth:`run` returns True, ``order`` is a valid linearization (op
    ids). After it returns False, ``failed`` is the op whose return no
    linearization could get past, and ``order`` is the longest partial
    linearization that reached that point.
    """

    def __init__(self, ops: list[Op], model: Model) -> None:
        self.ops = ops
        self.model = model
        self._build_entries()
        self.state: Hashable = model.init()
        self.lin = 0
        self.stack: list[tuple[int, Hashable, int]] = []
        self.cache: set[tuple[int, Hashable]] = set()
        self.steppers = [_stepper(model, op) for op in ops]
        self.remaining = sum(self.definite)
        self.entry = self.nxt[_HEAD]
        self.steps = 0
        self.result: bool | None = True if self.remaining == 0 else None
        self.order: list[int] = []
        self.failed: Op | None = None
        self._best = (-1, -1)

    def _build_entries(self) -> None:
        """Nodes 1..m are the call/return events in time order; 0 and m+1 are sentinels."""
        events: list[tuple[float, int, int]] = []
        for i, op in enumerate(self.ops):
            events.append((op.call, 0, i))
            if op.outcome != "unknown":
                events.append((op.ret, 1, i))
        events.sort()
        m = len(events)
        self.node_op = [-1] + [i for _, _, i in events] + [-1]
        self.is_call = [False] + [kind == 0 for _, kind, _ in events] + [False]
        self.match = [0] * (m + 2)
        call_node = {}
        for node, (_, kind, i) in enumerate(events, 1):
            if kind == 0:
                call_node[i] = node
            else:
                self.match[call_node[i]] = node
        self.nxt = [*range(1, m + 2), m + 1]
        self.prv = [0, *range(0, m + 1)]
        self.tail = m + 1
        self.definite = [op.outcome != "unknown" for op in self.ops]
        self.bits = [1 << i for i in range(len(self.ops))]

    def run(self, budget: int, deadline: float | None = None) -> bool | None:
        """Search for at most ``budget`` steps: True/False when decided, None if not yet."""
        if self.result is not None:
            return self.result
        if deadline is not None and time.monotonic() > deadline:
            return None
        nxt, prv, match = self.nxt, self.prv, self.match
        is_call, node_op, steppers, bits = self.is_call, self.node_op, self.steppers, self.bits
        definite, cache, stack = self.definite, self.cache, self.stack
        entry, state, lin, remaining = self.entry, self.state, self.lin, self.remaining
        steps = 0
        while steps < budget:
            steps += 1
            if not steps % _DEADLINE_EVERY and deadline is not None and time.monotonic() > deadline:
                break
            if is_call[entry]:
                i = node_op[entry]
                res = steppers[i](state)
                if res[0]:
                    new_lin = lin | bits[i]
                    key = (new_lin, res[1])
                    if key not in cache:
                        cache.add(key)
                        stack.append((entry, state, lin))
                        # lift the call and its return out of the list
                        p, q = prv[entry], nxt[entry]
                        nxt[p] = q
                        prv[q] = p
                        r = match[entry]
                        if r:
                            p, q = prv[r], nxt[r]
                            nxt[p] = q
                            prv[q] = p
                        state, lin = res[1], new_lin
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
                self._note_stuck(entry, stack)
                if not stack:
                    self._finish(False, stack)
                    break
                entry, state, lin = stack.pop()
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
        self.entry, self.state, self.lin, self.remaining = entry, state, lin, remaining
        self.steps += steps
        return self.result

    def _note_stuck(self, entry: int, stack: list[tuple[int, Hashable, int]]) -> None:
        """Remember the furthest return any linearization reached, and that linearization."""
        depth = len(stack)
        if (entry, depth) > self._best:
            self._best = (entry, depth)
            self.failed = self.ops[self.node_op[entry]]
            self.order = [self.ops[self.node_op[e]].id for e, _, _ in stack]

    def _finish(self, verdict: bool, stack: list[tuple[int, Hashable, int]]) -> None:
        self.result = verdict
        if verdict:
            self.order = [self.ops[self.node_op[e]].id for e, _, _ in stack]
            self.failed = None
            self.cache.clear()
            self.steppers.clear()
        else:
            self.cache.clear()


def _stepper(model: Model, op: Op) -> Stepper:
    """The model's own fast step for ``op`` if it has one, else a memoised ``model.step``."""
    compiled = getattr(model, "stepper", None)
    if compiled is not None:
        return compiled(op)
    table: dict[Hashable, tuple[bool, Hashable]] = {}
    step = model.step

    def memoised(state: Hashable) -> tuple[bool, Hashable]:
        res = table.get(state)
        if res is None:
            res = table[state] = step(state, op)
        return res

    return memoised
