"""The history timeline figure: bars per op, the linearization line, the failed op, faults."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import plotly.graph_objects as go
from conftest import REPO

from teachraft.check import History, Op, check, load_history
from teachraft.viz.history import COLOURS, FAILED, FOCUS, history_figure

REFERENCE_HISTORIES = REPO / "tests" / "data" / "reference-histories"
DATA = Path(__file__).parent / "data" / "histories"


def traces(fig: go.Figure, kind: str) -> list[go.Bar | go.Scatter]:
    return [t for t in fig.data if t.type == kind]


def test_figure_of_a_linearizable_history() -> None:
    history = load_history(DATA / "partition-ok.jsonl")
    result = check(history)
    fig = history_figure(history, result, faults=[(0.3, 0.65, "partition")])
    bars = {t.name: t for t in traces(fig, "bar")}
    assert set(bars) == {"ok", "failed", "unknown outcome"}
    assert len(bars["ok"].base) == 4 and len(bars["failed"].base) == 1
    assert bars["ok"].marker.color == COLOURS["ok"]
    unknown = bars["unknown outcome"]
    assert unknown.marker.pattern.shape == "/"
    assert unknown.base[0] + unknown.x[0] > 1.1  # runs past the last return
    assert 'put(k1, "b") ?' in unknown.text
    assert any('get(k1) -> "b+"' in h for h in bars["ok"].hovertext)
    (line,) = [t for t in traces(fig, "scatter") if t.name == "linearization order"]
    assert len(line.x) == len(result.linearization) == 5
    assert list(line.x) == sorted(line.x)
    assert not [t for t in traces(fig, "scatter") if t.name.startswith("cannot")]
    start = history.start()  # no recorded origin: the first call
    x0, x1 = (0.3 - start) * 1000, (0.65 - start) * 1000
    assert any(
        s.type == "rect" and math.isclose(s.x0, x0) and math.isclose(s.x1, x1)
        for s in fig.layout.shapes
    )
    assert any(a.text == "partition" for a in fig.layout.annotations)
    assert fig.layout.xaxis.title.text == "time (ms since the run started)"
    assert min(bars["ok"].base) == 0.0  # the first call is at 0 ms
    assert any("called 0.00 ms" in h for h in bars["ok"].hovertext)
    assert list(fig.layout.yaxis.ticktext) == ["client1", "client2", "client3"]
    assert "linearizable" in fig.layout.title.text


def test_figure_of_a_violation_marks_the_failed_op() -> None:
    history = load_history(REFERENCE_HISTORIES / "jepsen-etcd" / "etcd_000.log")
    result = check(history, timeout=120)
    fig = history_figure(history, result, window=False)
    (line,) = [t for t in traces(fig, "scatter") if t.name == "longest partial linearization"]
    assert len(line.x) == len(result.linearization)
    assert fig.layout.xaxis.title.text == "event position in the file"
    (marker,) = [t for t in traces(fig, "scatter") if t.name.startswith("cannot be linearized")]
    bad = result.failed_op
    assert bad is not None
    assert marker.x == (bad.ret,)
    assert marker.marker.color == FAILED
    outline = [s for s in fig.layout.shapes if s.line.color == FAILED]
    assert len(outline) == 1 and outline[0].x0 == bad.call
    assert "not linearizable" in fig.layout.title.text
    assert "client 0" in fig.layout.yaxis.ticktext


def test_figure_without_a_result_or_ops() -> None:
    history = load_history(DATA / "stale-read.edn")
    fig = history_figure(history)
    assert [t.name for t in fig.data] == ["ok"]
    empty = history_figure(History())
    assert len(empty.data) == 0


def test_overlapping_ops_of_one_client_get_separate_lanes() -> None:
    history = load_history(REFERENCE_HISTORIES / "jepsen-etcd" / "etcd_002.log")
    fig = history_figure(history)
    for bar in traces(fig, "bar"):
        assert all(not math.isinf(b) for b in bar.base)
    spans: dict[float, list[tuple[float, float]]] = {}
    for bar in traces(fig, "bar"):
        for base, width, y in zip(bar.base, bar.x, bar.y, strict=True):
            spans.setdefault(y, []).append((base, base + width))
    for lane in spans.values():
        lane.sort()
        assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(lane))


def test_a_violation_is_drawn_through_its_window_by_default() -> None:
    history = load_history(REFERENCE_HISTORIES / "jepsen-etcd" / "etcd_000.log")
    result = check(history, timeout=120)
    window = result.window()
    assert 1 < len(window) < 10 < len(history)
    fig = history_figure(history, result)
    drawn = sum(len(t.base) for t in traces(fig, "bar"))
    assert drawn == len(window)
    assert f"window: {len(window)} of {len(history)} ops" in fig.layout.title.text
    (line,) = [t for t in traces(fig, "scatter") if t.name == "longest partial linearization"]
    assert len(line.x) == len([op for op in window if op.id in result.linearization])
    bad = result.failed_op
    assert bad is not None and bad in window
    open_ops = [op for op in window if op.id not in result.linearization and op is not bad]
    focus = [s for s in fig.layout.shapes if s.line.color == FOCUS]
    assert len(focus) == len(open_ops)
    assert bool(open_ops) == any(t.name == "still open when it failed" for t in fig.data)


def test_ops_still_open_at_the_failure_are_outlined() -> None:
    ops = [
        Op(0, "a", "put", "x", "1", None, 0.0, 1.0, "ok"),
        Op(1, "b", "get", "x", None, "9", 2.0, 20.0, "ok"),  # never placeable, returns later
        Op(2, "c", "get", "x", None, "3", 3.0, 4.0, "ok"),
    ]
    history = History(ops, origin=0.0)
    result = check(history, "kv")
    assert [op.id for op in result.window()] == [0, 1, 2]
    fig = history_figure(history, result)
    (focus,) = [s for s in fig.layout.shapes if s.line.color == FOCUS]
    assert (focus.x0, focus.x1) == (2000.0, 20000.0)  # op 1, in ms since the run started
    assert any(t.name == "still open when it failed" for t in fig.data)
