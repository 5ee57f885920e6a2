"""Why a verdict is what it is, in words a student can follow.

A violation is told through its smallest window. The search got furthest
when op X returned: every op that returned earlier is in the longest partial
linearization, and the ops still open at that moment (called, not placed)
are the only ones whose order was still in play. The window runs from the
earliest call among those open ops (X included) to X's return; it holds them
and every op that overlaps that span, so a reader sees a handful of
concurrent ops instead of thousands. Then come the states every partial
linearization was left in at X's return, and why X is illegal in each.

Times are milliseconds since the run started (``History.fmt_time``), or
event positions for files that carry no times.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from teachraft.check.history import History, Op, client_label
from teachraft.check.models import why

if TYPE_CHECKING:
    from teachraft.check.linearizability import CheckResult

EXPLAIN_TAIL = 8
MAX_WINDOW_ROWS = 30
_ROW_LEAD = 2 + 4 + 5 + 5 + 1 + 8 + 2 + 40  # the width of a row before its " =>"


def explain(result: CheckResult) -> str:
    """The verdict, then what supports it."""
    skipped = _skipped(result)
    if result.verdict == "linearizable":
        return (
            f"linearizable: {len(result.ops)} ops in {result.partitions} key(s), "
            f"checked in {result.elapsed:.3f} s{skipped}"
        )
    if result.verdict == "unknown":
        return _explain_unknown(result) + skipped
    return "\n".join(_explain_violation(result)) + skipped


def _skipped(result: CheckResult) -> str:
    return "\n" + skipped_note(result) if result.skipped else ""


def skipped_note(result: CheckResult) -> str:
    """How many events of non-client processes (the nemesis) the reader left out."""
    parts = ", ".join(f"{n} of {p}" for p, n in sorted(result.skipped.items()))
    total = sum(result.skipped.values())
    return f"skipped {total} events of non-client processes ({parts}): they are not operations"


def _explain_unknown(result: CheckResult) -> str:
    limit = "" if result.timeout is None else f" ({result.timeout:g} s)"
    text = f"unknown: the search did not finish within the time limit{limit}; no verdict"
    p = result.progress
    if p is not None:
        where = "" if p.key is None else f" on key {p.key!r}"
        text += (
            f"\nhow far it got: {p.decided} of {p.keys} key(s) decided (no violation in them); "
            f"the furthest partial linearization{where} held {p.linearized} of the "
            f"{p.total} ops that must be placed, after {p.steps:,} search steps"
        )
    return text


def _t(history: History | None, t: float) -> str:
    if history is None:
        return "never" if math.isinf(t) else f"{t:.6g}"
    return history.fmt_time(t)


def violation_window(result: CheckResult) -> list[Op]:
    """The ops of the failing key that overlap the failure's window, in call order."""
    bad, model = result.failed_op, result.model
    if bad is None or model is None:
        return []
    placed = set(result.linearization)
    same_key = [op for op in result.ops.values() if op.key == bad.key and model.relevant(op)]
    open_ops = [op for op in same_key if op.id not in placed and op.call <= bad.ret]
    t0 = min((op.call for op in open_ops if not math.isinf(op.ret)), default=bad.call)
    window = [op for op in same_key if op.call <= bad.ret and op.ret >= t0]
    if len(window) > 1:  # an op with unknown outcome called long before is not shown
        window = [op for op in window if not math.isinf(op.ret) or op.call >= t0 or op is bad]
    last = [i for i in result.linearization if result.ops[i].ret < t0][-1:]
    window += [result.ops[i] for i in last]
    return sorted({op.id: op for op in window}.values(), key=lambda op: (op.call, op.id))


def _explain_violation(result: CheckResult) -> list[str]:
    assert result.failed_op is not None and result.model is not None
    model, bad, h = result.model, result.failed_op, result.history
    where = "" if result.key is None else f" on key {result.key!r}"
    lines = [
        f"not linearizable{where}: no order of the ops can include "
        f"op {bad.id} by {client_label(bad.client)}: {model.describe(bad)} "
        f"[called {_t(h, bad.call)}, returned {_t(h, bad.ret)}]"
    ]
    lines += _window_lines(result)
    lines += _order_lines(result)
    lines += _why_lines(result)
    return lines


def _window_lines(result: CheckResult) -> list[str]:
    assert result.failed_op is not None and result.model is not None
    model, bad, h = result.model, result.failed_op, result.history
    window = violation_window(result)
    placed = {op_id: n for n, op_id in enumerate(result.linearization, 1)}
    t0 = min(op.call for op in window)
    lines = [
        f"the window of concurrent ops ({len(window)}), from {_t(h, t0)} to op {bad.id}'s "
        f"return at {_t(h, bad.ret)}:"
    ]
    for op in window[:MAX_WINDOW_ROWS]:
        if op is bad:
            role = "<- cannot be linearized"
        elif op.id in placed:
            role = f"placed #{placed[op.id]}"
        else:
            role = "open, not placed"
        span = f"{_t(h, op.call)} .. {_t(h, op.ret)}"
        lines.append(
            f"  op {op.id:<5} {op.client:>8}  {_clip(model.describe(op)):<40} {span:<24} {role}"
        )
    if len(window) > MAX_WINDOW_ROWS:
        lines.append(f"  ... {len(window) - MAX_WINDOW_ROWS} more ...")
    return lines


def _order_lines(result: CheckResult) -> list[str]:
    model = result.model
    assert model is not None
    lines = [
        f"longest partial linearization ({len(result.linearization)} ops), "
        f"with the state after each:"
    ]
    state = model.init()
    start = " " * 8 + "(initial state)"
    rows = [f"{start:<{_ROW_LEAD}} => {_clip(model.describe_state(state))}"]
    for n, op_id in enumerate(result.linearization, 1):
        op = result.ops[op_id]
        state = model.step(state, op)[1]
        rows.append(
            f"  {n:>4}. op {op.id:<5} {op.client:>8}  {_clip(model.describe(op)):<40} "
            f"=> {_clip(model.describe_state(state))}"
        )
    if len(rows) > EXPLAIN_TAIL + 1:
        lines.append(rows[0])
        lines.append(f"  ... {len(rows) - 1 - EXPLAIN_TAIL} earlier ops ...")
        rows = rows[-EXPLAIN_TAIL:]
    return lines + rows


def _why_lines(result: CheckResult) -> list[str]:
    assert result.failed_op is not None and result.model is not None
    model, bad, h = result.model, result.failed_op, result.history
    states = result.stuck_states
    shown = ", ".join(_clip(model.describe_state(s)) for s in states) or "(none)"
    lines = [
        f"when op {bad.id} returned at {_t(h, bad.ret)}, every partial linearization was "
        f"left in one of these states: {shown}"
    ]
    for s in states:
        ok, _ = model.step(s, bad)
        if ok:
            reason = "it is legal there, but no order of the other open ops can follow it"
        else:
            reason = why(model, s, bad)
        lines.append(f"  in {_clip(model.describe_state(s))}: {reason}")
    lines.append(
        f"so op {bad.id} ({model.describe(bad)}) cannot be linearized: "
        f"it returned at {_t(h, bad.ret)} but is illegal in every state reachable by then"
    )
    return lines


def _clip(text: str, width: int = 40) -> str:
    """Long values shortened in the middle, so rows stay on one line."""
    if len(text) <= width:
        return text
    half = (width - 3) // 2
    return f"{text[:half]}...{text[-half:]}"
