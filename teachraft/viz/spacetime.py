"""The space-time diagram: one lane per host, every event, every message.

The picture ShiViz draws, inside the notebook and from the same events: hosts
in ShiViz's default order (most events first), time flowing left to right in
the event table's happened-before order, and a line from each
``GenerateTokenTrace`` to the ``ReceiveTokenTrace`` that took its token, ending
in a right-pointing triangle (messages always go forward in that order).
Events are coloured by what they are about (client ops, replication, commits,
leadership, membership, faults); hovering one shows its tag, body, vector clock
and trace id. Faults and leader changes are marked across all lanes.

``highlight`` shows one Put's whole causal path: the client's trace, the token
hops to the leader and back, and the AppendEntries rounds that carried that op
to the followers. Everything is drawn with WebGL (``Scattergl``), with one trace
per event group, so 20,000 events build in well under two seconds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import plotly.graph_objects as go

from teachraft.tracing.events import RECEIVE, Event, EventTable
from teachraft.viz.labels import as_dict, event_hover, plural
from teachraft.viz.replay import parse_detail
from teachraft.viz.sources import events_of, name_of
from teachraft.viz.style import (
    EVENT_GROUPS,
    FAULT_TAGS,
    FONT,
    GROUP_STYLE,
    event_group,
)

GROUPS = (*EVENT_GROUPS, "other")
WINDOW = 800
LABEL_LIMIT = 80  # below this many events, every point is labelled with its tag
MAX_MARKS = 40
LANE_PX = 52
ARROW = "#A8A8A8"
HIGHLIGHT = "#111111"
CURSOR = "#D00000"


def spacetime_figure(
    source: Any,
    hosts: Collection[str] | None = None,
    tags: Collection[str] | None = None,
    trace_ids: Collection[int] | None = None,
    highlight: int | None = None,
    cursor: int | None = None,
    window: int | None = WINDOW,
    title: str | None = None,
) -> go.Figure:
    """Draw the events of ``source`` (a cluster, a trace file or folder, or an EventTable).

    ``hosts``, ``tags`` and ``trace_ids`` keep only matching events;
    ``highlight`` is a trace id (see :func:`put_trace_id`) whose causal path is
    drawn bold while everything else fades; ``cursor`` draws a time line after
    that event index; ``window`` is how many events the first view spans.
    """
    table = events_of(source)
    events = table.filter(hosts, tags, trace_ids)
    lanes = {host: i for i, host in enumerate(h for h in table.hosts() if _keep(h, hosts))}
    path = set(causal_path(table, highlight)) if highlight is not None else set()
    first_range = _first_range(events, cursor, window, path)
    fig = go.Figure()
    _add_arrows(fig, table, events, lanes, path)
    labels = len(events) <= LABEL_LIMIT
    for group in GROUPS:
        fig.add_trace(_group_trace(table, events, lanes, group, bool(path), labels))
    fig.add_trace(_highlight_trace(table, lanes, path))
    fig.add_trace(cursor_trace(cursor, len(lanes)))
    marks = _marks(events, lanes)
    heading = title or spacetime_title(table, events, lanes, highlight, name_of(source))
    _layout(fig, events, lanes, marks, heading, first_range)
    return fig


def _keep(host: str, hosts: Collection[str] | None) -> bool:
    return hosts is None or host in hosts


# --- causal paths ------------------------------------------------------------------------


def put_trace_id(
    source: Any, key: str, value: str | None = None, client: str | None = None, nth: int = 0
) -> int:
    """The trace id of a client's ``Put(key, value)`` (the ``nth`` match, 0 first)."""
    table = events_of(source)
    matches = [
        e.trace_id
        for e in table
        if e.tag == "Put"
        and e.body.get("Key") == key
        and (value is None or e.body.get("Value") == value)
        and (client is None or e.host == client)
    ]
    if len(matches) <= nth:
        raise LookupError(f"no Put of key {key!r} in this trace")
    return matches[nth]


def causal_path(table: EventTable, trace_id: int) -> list[int]:
    """The events of a trace, its token hops, and the replication rounds of its op.

    A Put's own trace runs client -> leader -> client; the AppendEntries that
    carried its entry to the followers are separate traces, found here by the
    op's (ClientId, OpId) in their ``Entries``.
    """
    indices = set(table.causal_path(trace_id))
    ops = {
        (str(e.body.get("ClientId", "")), e.body.get("OpId"))
        for e in (table[i] for i in indices)
        if "OpId" in e.body and e.body.get("ClientId") is not None
    }
    if ops:
        for e in table:
            if e.tag == "AppendEntriesRequestSent" and _carries(e, ops):
                indices.update(table.causal_path(e.trace_id))
    return sorted(indices)


def _carries(event: Event, ops: set[tuple[str, Any]]) -> bool:
    for item in event.body.get("Entries") or ():
        info = as_dict(as_dict(as_dict(item).get("Command")).get("ClientInfo"))
        if (str(info.get("ClientId", "")), info.get("OpId")) in ops:
            return True
    return False


# --- traces ------------------------------------------------------------------------------


def _partner(table: EventTable, event: Event) -> Event | None:
    p = event.partner
    return table[p] if p is not None and 0 <= p < len(table) else None


def _group_trace(
    table: EventTable,
    events: Sequence[Event],
    lanes: dict[str, int],
    group: str,
    dim: bool,
    labels: bool,
) -> go.Scattergl:
    mine = [e for e in events if e.host in lanes and event_group(e.tag) == group]
    colour, symbol, size = GROUP_STYLE[group]
    symbols: str | list[str] = symbol
    if group == "message":
        symbols = ["triangle-right" if e.tag == RECEIVE else "circle" for e in mine]
    return go.Scattergl(
        x=[e.index for e in mine],
        y=[lanes[e.host] for e in mine],
        mode="markers+text" if labels else "markers",
        text=[e.tag for e in mine] if labels else None,
        textposition=[("top center", "bottom center")[n % 2] for n in range(len(mine))],
        textfont={"size": 9, "color": "#333333"},
        marker={
            "color": colour,
            "symbol": symbols,
            "size": size,
            "line": {"width": 0.5, "color": "#FFFFFF"},
        },
        opacity=0.25 if dim else 1.0,
        hovertext=[event_hover(e, _partner(table, e)) for e in mine],
        hoverinfo="text",
        name=group,
        legendgroup=group,
    )


def _add_arrows(
    fig: go.Figure,
    table: EventTable,
    events: Sequence[Event],
    lanes: dict[str, int],
    path: set[int],
) -> None:
    visible = {e.index for e in events if e.host in lanes}
    xs: list[float | None] = []
    ys: list[float | None] = []
    hx: list[float | None] = []
    hy: list[float | None] = []
    for e in events:
        if e.tag != RECEIVE or e.index not in visible:
            continue
        send = _partner(table, e)
        if send is None or send.index not in visible:
            continue
        bold = e.index in path and send.index in path
        tx, ty = (hx, hy) if bold else (xs, ys)
        tx += [send.index, e.index, None]
        ty += [lanes[send.host], lanes[e.host], None]
    for name, x, y, colour, width in (
        ("messages", xs, ys, ARROW, 1.2),
        ("highlighted messages", hx, hy, HIGHLIGHT, 2.6),
    ):
        fig.add_trace(
            go.Scattergl(
                x=x,
                y=y,
                mode="lines",
                line={"color": colour, "width": width},
                opacity=0.35 if path and name == "messages" else 1.0,
                hoverinfo="skip",
                name=name,
                showlegend=name == "messages" or bool(x),
            )
        )


def _highlight_trace(table: EventTable, lanes: dict[str, int], path: set[int]) -> go.Scattergl:
    shown = [table[i] for i in sorted(path) if table[i].host in lanes]
    return go.Scattergl(
        x=[e.index for e in shown],
        y=[lanes[e.host] for e in shown],
        mode="markers",
        marker={
            "color": [GROUP_STYLE[event_group(e.tag)][0] for e in shown],
            "size": 13,
            "line": {"width": 2, "color": HIGHLIGHT},
            "symbol": "circle",
        },
        hovertext=[event_hover(e, _partner(table, e)) for e in shown],
        hoverinfo="text",
        name="highlighted trace",
        showlegend=bool(shown),
    )


def cursor_trace(cursor: int | None, lanes: int) -> go.Scatter:
    """The time cursor: a red line just after event ``cursor`` (empty when None)."""
    x = [] if cursor is None else [cursor + 0.5, cursor + 0.5]
    y = [] if cursor is None else [-0.6, max(lanes, 1) - 0.4]
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        line={"color": CURSOR, "width": 2.5},
        name="time cursor",
        hoverinfo="skip",
        showlegend=cursor is not None,
    )


# --- marks for faults and leader changes --------------------------------------------------


def mark_text(event: Event) -> str:
    """A short label for a fault or leader change: ``fail server1``, ``server2 leads``."""
    body = event.body
    if event.tag == "FaultInjected":
        kind = str(body.get("Kind", "fault"))
        nodes = body.get("Nodes") or []
        if kind == "partition":
            groups = parse_detail(body.get("Detail")).get("groups") or []
            return "partition " + " | ".join(",".join(map(_short, g)) for g in groups)
        return f"{kind} {', '.join(map(str, nodes))}".strip()
    if event.tag == "FaultHealed":
        return str(body.get("Kind", "heal"))
    if event.tag == "ServerFail":
        return f"coord: server{body.get('ServerId', '?')} failed"
    if event.tag == "ServerRestart":
        return f"server{body.get('ServerId', '?')} restarts"
    if event.tag == "BecameLeader":
        return f"server{body.get('ServerId', '?')} leads"
    return event.tag


def _short(name: Any) -> str:
    text = str(name)
    return text.replace("server", "s") if text.startswith("server") else text


def _marks(events: Sequence[Event], lanes: dict[str, int]) -> list[Event]:
    marks = [e for e in events if e.tag in FAULT_TAGS or e.tag == "BecameLeader"]
    return marks[:MAX_MARKS]


def _mark_layout(marks: list[Event], lanes: int) -> tuple[list[dict], list[dict]]:
    shapes, notes = [], []
    for n, e in enumerate(marks):
        fault = e.tag in FAULT_TAGS
        colour = "#D55E00" if fault else "#B07A00"
        shapes.append(
            {
                "type": "line",
                "x0": e.index,
                "x1": e.index,
                "y0": -0.5,
                "y1": lanes - 0.5,
                "line": {"color": colour, "width": 1.5, "dash": "dash" if fault else "dot"},
                "layer": "below",
            }
        )
        notes.append(
            {
                "x": e.index,
                "y": -0.55 - 0.38 * (n % 2),
                "text": mark_text(e),
                "showarrow": False,
                "font": {"size": 11, "color": colour},
                "xanchor": "left",
                "yanchor": "bottom",
                "bgcolor": "rgba(255,255,255,0.85)",
            }
        )
    return shapes, notes


# --- layout ------------------------------------------------------------------------------


def spacetime_title(
    table: EventTable,
    events: Sequence[Event],
    lanes: dict[str, int],
    highlight: int | None,
    name: str,
) -> str:
    text = f"Space-time diagram · {plural(len(events), 'event')} · {plural(len(lanes), 'host')}"
    if name:
        text = f"{name}: {text}"
    if highlight is not None:
        first = next((table[i] for i in table.causal_path(highlight)), None)
        what = f"{first.tag} {first.body_json}" if first is not None else ""
        for i in table.causal_path(highlight):
            if table[i].tag in ("Put", "Get"):
                what = _op_text(table[i])
                break
        text += f"<br><sup>highlighting the causal path of {what} (trace {highlight})</sup>"
    return text


def _op_text(event: Event) -> str:
    body = event.body
    if event.tag == "Put":
        return f"Put({body.get('Key')},{body.get('Value')}) by {event.host}"
    return f"Get({body.get('Key')}) by {event.host}"


def _first_range(
    events: Sequence[Event], cursor: int | None, window: int | None, path: set[int]
) -> list[float]:
    if not events:
        return [-0.5, 0.5]
    if path:
        return [min(path) - 12, max(path) + 12]
    lo, hi = events[0].index - 3, events[-1].index + 3
    if window is None or hi - lo <= window:
        return [lo, hi]
    if cursor is not None:
        start = min(max(lo, cursor - window // 2), hi - window)
        return [start, start + window]
    return [hi - window, hi]


def _layout(
    fig: go.Figure,
    events: Sequence[Event],
    lanes: dict[str, int],
    marks: list[Event],
    title: str,
    x_range: list[float],
) -> None:
    n = max(len(lanes), 1)
    shapes, notes = _mark_layout(marks, n)
    labels = [f"{h} (faults)" if h == "cluster" else h for h in lanes]
    fig.update_layout(
        title={"text": title, "x": 0.02},
        autosize=True,
        height=230 + LANE_PX * n,
        template="plotly_white",
        font={"family": FONT},
        xaxis={
            "title": {"text": "event order (happened-before, earliest left)"},
            "range": x_range,
            "zeroline": False,
            "showgrid": False,
        },
        yaxis={
            "tickvals": list(range(n)),
            "ticktext": labels,
            "range": [n - 0.4, -1.45],
            "zeroline": False,
            "gridcolor": "#E6E6E6",
            "fixedrange": True,
        },
        shapes=shapes,
        annotations=notes,
        legend={"orientation": "h", "yanchor": "top", "y": -0.18 - 1.2 / (n + 4), "x": 0},
        margin={"l": 110, "r": 20, "t": 70, "b": 40},
        hoverlabel={"align": "left"},
        dragmode="pan",
        uirevision="spacetime",
        meta={"events": len(events), "hosts": list(lanes)},
    )
