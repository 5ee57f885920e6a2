"""A history drawn as a timeline: what each client did, and why it is (not) linearizable.

One row per client, one bar per op from its call to its return. Bars are
coloured by outcome with a colour-blind-safe palette (Okabe-Ito); an op whose
outcome is unknown has no return, so it runs to the end of the history,
faded and hatched. When a :class:`~teachraft.check.linearizability.CheckResult`
is given, a line joins the linearization points in linearization order (the
partial order when the history is not linearizable) and the op at which the
search failed is outlined in red. Fault periods (a partition, a crashed
leader) are shaded so a student can see which ops they overlapped.

A violation is drawn through its window by default: only the few concurrent
ops around the failure (``CheckResult.window()``), with the ops still open
when it happened outlined, instead of a smear of thousands of bars; pass
``window=False`` for the whole history. Times are milliseconds since the run
started (event positions for files without times), as in ``explain()``.

The figure reads only the recorded history and the checker's result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import plotly.graph_objects as go

from teachraft.check.history import History, Op, client_label
from teachraft.check.linearizability import CheckResult
from teachraft.check.models import Model, make_model

COLOURS = {"ok": "#0072B2", "fail": "#E69F00", "unknown": "#999999"}
LABELS = {"ok": "ok", "fail": "failed", "unknown": "unknown outcome"}
FAILED = "#D00000"
FOCUS = "#000000"
ORDER_LINE = "#222222"
FAULT_FILL = "#CC79A7"
LANE = 1.0
BAR = 0.7
POINT_OFFSET = 0.25  # linearization points sit above the bar's centre, clear of its label
MAX_TEXT_OPS = 80


def history_figure(
    history: History,
    result: CheckResult | None = None,
    faults: Sequence[tuple[float, float, str]] = (),
    window: bool = True,
) -> go.Figure:
    """Build the timeline figure (render with ``fig.show()`` or ``fig.write_image``).

    ``faults`` are (start, end, label) on the history's clock. With a
    violation and ``window`` True, only the failure's window is drawn.
    """
    model = result.model if result is not None and result.model is not None else None
    model = model or make_model(None, history)
    whole = history
    focus: set[int] = set()
    if window and result is not None and result.failed_op is not None:
        ops = result.window()
        placed = set(result.linearization)
        focus = {op.id for op in ops if op.id not in placed and op is not result.failed_op}
        history = replace(history, ops=ops)
    clock = _Clock(whole)
    start, end = _span(history)
    lanes, labels = _lanes(history, end)
    fig = go.Figure()
    for outcome in ("ok", "fail", "unknown"):
        _add_bars(fig, history, outcome, lanes, model, end, start, clock)
    _add_focus(fig, history, focus, lanes, end, clock)
    if result is not None:
        _add_order(fig, result, lanes, model, clock)
        _add_failed(fig, result, lanes, model, end, clock)
    for n, (t0, t1, label) in enumerate(faults):
        _add_fault(fig, clock(t0), clock(t1), label, first=n == 0)
    _layout(fig, history, whole, result, labels, clock(start), clock(end))
    return fig


class _Clock:
    """History times as drawn: ms since the whole run started, or event positions."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.start = history.start()

    def __call__(self, t: float) -> float:
        return self.history.shown(t, self.start)

    def text(self, t: float) -> str:
        return self.history.fmt_time(t, self.start)

    def title(self) -> str:
        if self.history.clock == "events":
            return "event position in the file"
        return "time (ms since the run started)"


def _span(history: History) -> tuple[float, float]:
    """First call and a little past the last finite time (where unknown bars stop)."""
    times = [t for op in history.ops for t in (op.call, op.ret) if not math.isinf(t)]
    if not times:
        return 0.0, 1.0
    lo, hi = min(times), max(times)
    return lo, hi + max(hi - lo, 1e-9) * 0.04


def _lanes(history: History, end: float) -> tuple[dict[int, float], dict[str, float]]:
    """A y position per op: each client gets as many lanes as its ops overlap."""
    lanes: dict[int, float] = {}
    labels: dict[str, float] = {}
    base = 0.0
    for client in history.clients():
        ends: list[float] = []
        for op in sorted((o for o in history.ops if o.client == client), key=lambda o: o.call):
            lane = next((n for n, e in enumerate(ends) if e <= op.call), len(ends))
            stop = end if math.isinf(op.ret) else op.ret
            if lane == len(ends):
                ends.append(stop)
            ends[lane] = stop
            lanes[op.id] = base + lane * LANE
        labels[client] = base + (len(ends) - 1) * LANE / 2
        base += max(len(ends), 1) * LANE + 0.5
    return lanes, labels


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _add_bars(
    fig: go.Figure,
    history: History,
    outcome: str,
    lanes: dict[int, float],
    model: Model,
    end: float,
    start: float,
    clock: _Clock,
) -> None:
    ops = [op for op in history.ops if op.outcome == outcome]
    if not ops:
        return
    minimum = (clock(end) - clock(start)) * 0.002
    stops = [clock(end if math.isinf(op.ret) else op.ret) for op in ops]
    show_text = len(history) <= MAX_TEXT_OPS
    fig.add_trace(
        go.Bar(
            orientation="h",
            base=[clock(op.call) for op in ops],
            x=[max(stop - clock(op.call), minimum) for op, stop in zip(ops, stops, strict=True)],
            y=[lanes[op.id] for op in ops],
            width=BAR,
            name=LABELS[outcome],
            marker={
                "color": COLOURS[outcome],
                "opacity": 0.45 if outcome == "unknown" else 0.9,
                "pattern": {"shape": "/" if outcome == "unknown" else ""},
                "line": {"width": 0.5, "color": "white"},  # keeps back-to-back ops apart
            },
            text=[model.describe(op) for op in ops] if show_text else None,
            textposition="inside",
            insidetextanchor="start",
            textfont={"size": 10, "color": "white" if outcome != "unknown" else "black"},
            hovertext=[_hover(op, model, clock) for op in ops],
            hoverinfo="text",
        )
    )


def _hover(op: Op, model: Model, clock: _Clock) -> str:
    ret = "never (unknown)" if math.isinf(op.ret) else clock.text(op.ret)
    return (
        f"op {op.id}, {client_label(op.client)}<br>{model.describe(op)}"
        f"<br>{op.outcome}: called {clock.text(op.call)}, returned {ret}"
    )


def _add_focus(
    fig: go.Figure,
    history: History,
    focus: set[int],
    lanes: dict[int, float],
    end: float,
    clock: _Clock,
) -> None:
    """Outline the other ops still open (not placed) when the failing op returned."""
    for op in (o for o in history.ops if o.id in focus):
        y = lanes[op.id]
        fig.add_shape(
            type="rect",
            x0=clock(op.call),
            x1=clock(end if math.isinf(op.ret) else op.ret),
            y0=y - BAR / 2 - 0.04,
            y1=y + BAR / 2 + 0.04,
            line={"color": FOCUS, "width": 2, "dash": "dot"},
        )
    if focus:  # a legend entry for the outline
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line={"color": FOCUS, "width": 2, "dash": "dot"},
                name="still open when it failed",
            )
        )


def _add_order(
    fig: go.Figure, result: CheckResult, lanes: dict[int, float], model: Model, clock: _Clock
) -> None:
    order = [i for i in result.linearization if i in lanes]
    if not order:
        return
    points = result.points
    name = "linearization order" if result.ok else "longest partial linearization"
    fig.add_trace(
        go.Scatter(
            x=[clock(points[i]) for i in order],
            y=[lanes[i] - POINT_OFFSET for i in order],
            mode="lines+markers",
            line={"color": ORDER_LINE, "width": 1.5},
            marker={"color": ORDER_LINE, "size": 6, "symbol": "circle"},
            name=name,
            hovertext=[
                f"#{n} in order: {model.describe(result.ops[i])}" for n, i in enumerate(order, 1)
            ],
            hoverinfo="text",
        )
    )


def _add_failed(
    fig: go.Figure,
    result: CheckResult,
    lanes: dict[int, float],
    model: Model,
    end: float,
    clock: _Clock,
) -> None:
    op = result.failed_op
    if op is None or op.id not in lanes:
        return
    y = lanes[op.id]
    stop = clock(end if math.isinf(op.ret) else op.ret)
    fig.add_shape(
        type="rect",
        x0=clock(op.call),
        x1=stop,
        y0=y - BAR / 2 - 0.08,
        y1=y + BAR / 2 + 0.08,
        line={"color": FAILED, "width": 3},
    )
    fig.add_trace(
        go.Scatter(
            x=[stop],
            y=[y],
            mode="markers",
            marker={"color": FAILED, "size": 14, "symbol": "x"},
            name=f"cannot be linearized: {model.describe(op)}",
            hovertext=[f"no linearization can include this op<br>{_hover(op, model, clock)}"],
            hoverinfo="text",
        )
    )


def _add_fault(fig: go.Figure, t0: float, t1: float, label: str, first: bool) -> None:
    fig.add_vrect(
        x0=t0,
        x1=t1,
        fillcolor=FAULT_FILL,
        opacity=0.18,
        line_width=0,
        layer="below",
        annotation_text=label,
        annotation_position="top left",
        annotation_font={"size": 12, "color": "#7A3B63"},
    )
    if first:  # a legend entry for the shading
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"color": FAULT_FILL, "size": 12, "symbol": "square", "opacity": 0.5},
                name="fault period",
            )
        )


def _layout(
    fig: go.Figure,
    history: History,
    whole: History,
    result: CheckResult | None,
    labels: dict[str, float],
    start: float,
    end: float,
) -> None:
    rows = max(labels.values(), default=0.0) + 1
    verdict = "" if result is None else f": {result.verdict}"
    if result is not None and result.failed_op is not None:
        verdict += f" (op {result.failed_op.id} by {client_label(result.failed_op.client)})"
    ops = _plural(len(history), "op")
    if len(history) < len(whole):
        ops = f"the failure's window: {len(history)} of {_plural(len(whole), 'op')}"
    who = f"{ops} by {_plural(len(labels), 'client')}"
    fig.update_layout(
        title={
            "text": f"History of {who}{verdict}",
            "x": 0.01,
            "y": 0.98,
            "yanchor": "top",
        },
        xaxis={
            "title": {"text": _Clock(whole).title()},
            "range": [start - (end - start) * 0.01, end],
        },
        yaxis={
            "tickvals": list(labels.values()),
            "ticktext": [client_label(c) for c in labels],
            "autorange": "reversed",
            "zeroline": False,
            "showgrid": False,
        },
        barmode="overlay",
        bargap=0,
        uniformtext={"minsize": 9, "mode": "hide"},
        height=int(min(2400, max(360, 160 + 34 * rows))),
        width=1100,
        template="plotly_white",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        margin={"l": 90, "r": 20, "t": 100, "b": 60},
        hoverlabel={"align": "left"},
    )
