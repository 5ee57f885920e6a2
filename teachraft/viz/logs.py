"""The logs figure: every server's log side by side, one row per server.

Each cell is one log entry, coloured by its term, so a new leader's No-Op and
everything after it stand out as a new colour. Committed entries are solid and
entries not yet committed are faded; a thick bar marks each row's commit index
and a small triangle its last applied index. An entry that differs from the
leader's entry at the same index (a follower's stale suffix, or the symptom of
a bug) is outlined in red. Hovering a cell gives ``Put(k13,val13)``, its term,
index and client op.

A server that compacted its log (Raft §7) no longer holds the entries up to its
snapshot index: its row starts with one grey block, ``snapshot ≤ N (term T)``,
standing for them, and its kept entries follow at their real indexes.

Long logs stay readable: the figure opens on the newest ``window`` entries and
can be dragged or zoomed back to index 1; cell labels are drawn only when the
grid is small enough to hold them.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from teachraft.core.log import Entry
from teachraft.viz.labels import entry_hover, plural, short_entry, snapshot_hover
from teachraft.viz.sources import snapshot_of
from teachraft.viz.state import ServerView, Snapshot
from teachraft.viz.style import (
    DIFFERS,
    FONT,
    LEADER,
    ROLE_COLOURS,
    ROLE_LABELS,
    SNAPSHOT_COLOUR,
    SNAPSHOT_EDGE,
    UNCOMMITTED_OPACITY,
    term_colour,
)

WINDOW = 40
MAX_TEXT_CELLS = 6000
ROW_PX = 64


def logs_figure(
    source: Any, at: int | None = None, window: int = WINDOW, title: str | None = None
) -> go.Figure:
    """Draw every server's log (``window``: how many of the newest entries to show first)."""
    snap = snapshot_of(source, at)
    views = list(snap.servers.values())
    rows = [_row_label(v, snap) for v in views]
    width = max((v.last_index for v in views), default=0)
    columns = range(min((v.snapshot_index + 1 for v in views), default=1), width + 1)
    reference = leader_view(snap)
    fig = go.Figure()
    for committed in (True, False):
        fig.add_trace(_cells(views, rows, columns, committed, reference))
    fig.add_trace(_snapshot_trace(views))
    fig.add_trace(_differs_trace(views, reference))
    fig.add_trace(_marker_trace(views, "commit"))
    fig.add_trace(_marker_trace(views, "applied"))
    fig.add_trace(_faded_key())
    _layout(fig, snap, rows, width, window, title)
    return fig


def leader_view(snap: Snapshot) -> ServerView | None:
    """The row other rows are compared with: the coord's leader, else any leader."""
    view = snap.servers.get(snap.leader)
    if view is None:
        view = next((v for v in snap.servers.values() if v.role == LEADER), None)
    return view


def differs(entry: Entry, leader: ServerView | None) -> bool:
    """True when the leader has another entry (or none) at this entry's index.

    An index the leader compacted is compared only at its snapshot's last
    index, whose term the snapshot keeps; the entries before it are gone, and
    were committed, so there is nothing left to compare them with.
    """
    if leader is None:
        return False
    if entry.index <= leader.snapshot_index:
        return entry.index == leader.snapshot_index and entry.term != leader.snapshot_term
    return leader.entry_at(entry.index) != entry


def compacted(snap: Snapshot) -> int:
    """The highest snapshot index of any server (0: no server compacted its log)."""
    return max((v.snapshot_index for v in snap.servers.values()), default=0)


def _row_label(view: ServerView, snap: Snapshot) -> str:
    role = view.shown_role
    mark = {"leader": " ★", "failed": " ✕"}.get(role, "")
    text = f"<b>{view.name}</b>{mark}"
    if role != "follower":
        colour = ROLE_COLOURS[role] if role != "paused" else "#777777"
        text += f"<br><span style='color:{colour}'>{ROLE_LABELS[role]}</span>"
    if view.snapshot_index:
        text += f"<br><span style='color:#666666'>snapshot ≤ {view.snapshot_index}</span>"
    return text


def _snapshot_trace(views: list[ServerView]) -> go.Bar:
    """One grey bar per compacted row, from index 1 to its snapshot index.

    Always present (empty when nothing is compacted), so a live figure keeps
    the same traces when the first snapshot is taken.
    """
    shown = [(row, v) for row, v in enumerate(views) if v.snapshot_index > 0]
    return go.Bar(
        orientation="h",
        x=[v.snapshot_index for _, v in shown],
        base=[0.5] * len(shown),
        y=[row for row, _ in shown],
        width=0.78,
        marker={"color": SNAPSHOT_COLOUR, "line": {"color": SNAPSHOT_EDGE, "width": 1.5}},
        text=[f"snapshot ≤ {v.snapshot_index} (term {v.snapshot_term})" for _, v in shown],
        textposition="inside",
        insidetextanchor="end",
        textangle=0,
        textfont={"size": 11, "family": FONT, "color": "#222222"},
        constraintext="none",
        hovertext=[snapshot_hover(v.name, v.snapshot_index, v.snapshot_term) for _, v in shown],
        hoverinfo="text",
        name="snapshot (compacted entries)",
        showlegend=bool(shown),
    )


def _cells(
    views: list[ServerView],
    rows: list[str],
    columns: range,
    committed: bool,
    reference: ServerView | None,
) -> go.Heatmap:
    """The kept entries, one cell each; columns start at the first index any server keeps."""
    z: list[list[int | None]] = []
    text: list[list[str]] = []
    hover: list[list[str]] = []
    first, width = columns.start, len(columns)
    show_text = len(views) * width <= MAX_TEXT_CELLS
    for view in views:
        z_row: list[int | None] = [None] * width
        t_row = [""] * width
        h_row = [""] * width
        for entry in view.log:
            pos = entry.index - first
            if (entry.index <= view.commit_index) != committed or not 0 <= pos < width:
                continue
            z_row[pos] = entry.term
            t_row[pos] = short_entry(entry) if show_text else ""
            h_row[pos] = entry_hover(entry, view.name, committed, differs(entry, reference))
        z.append(z_row)
        text.append(t_row)
        hover.append(h_row)
    top = max((t for v in views for t in (v.snapshot_term, *(e.term for e in v.log))), default=1)
    return go.Heatmap(
        z=z,
        x=list(columns),
        y=list(range(len(rows))),
        text=text,
        texttemplate="%{text}" if show_text else None,
        textfont={"size": 10, "family": FONT, "color": "#111111"},
        customdata=hover,
        hovertemplate="%{customdata}<extra></extra>",
        colorscale=term_scale(top),
        zmin=0.5,
        zmax=top + 0.5,
        showscale=committed,
        colorbar=_colorbar(top),
        xgap=2,
        ygap=8,
        opacity=1.0 if committed else UNCOMMITTED_OPACITY,
        name="committed" if committed else "not committed",
        hoverongaps=False,
    )


def _colorbar(top: int) -> dict[str, Any]:
    step = max(1, top // 10)
    ticks = list(range(1, top + 1, step))
    return {
        "title": {"text": "term"},
        "tickvals": ticks,
        "ticktext": [str(t) for t in ticks],
        "len": 0.9,
        "thickness": 14,
        "x": 1.01,
    }


def term_scale(top: int) -> list[list[Any]]:
    """A stepwise colour scale: each term 1..top gets one flat band."""
    top = max(top, 1)
    scale: list[list[Any]] = []
    for term in range(1, top + 1):
        colour = term_colour(term)
        scale.append([(term - 1) / top, colour])
        scale.append([term / top, colour])
    return scale


def _differs_trace(views: list[ServerView], reference: ServerView | None) -> go.Scatter:
    xs, ys, hover = [], [], []
    for row, view in enumerate(views):
        for entry in view.log:
            if differs(entry, reference):
                xs.append(entry.index)
                ys.append(row)
                hover.append(
                    f"{view.name} index {entry.index}: {entry.describe()} differs from the leader"
                )
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        marker={
            "symbol": "square-open",
            "size": 30,
            "color": DIFFERS,
            "line": {"width": 3, "color": DIFFERS},
        },
        hovertext=hover,
        hoverinfo="text",
        name="differs from the leader",
        showlegend=True,
    )


def _marker_trace(views: list[ServerView], which: str) -> go.Scatter:
    if which == "commit":
        xs = [v.commit_index + 0.5 for v in views]
        ys = [float(i) for i in range(len(views))]
        hover = [f"{v.name}: commit index {v.commit_index}" for v in views]
        marker = {"symbol": "line-ns", "size": ROW_PX - 12, "line": {"width": 4, "color": "#111"}}
        name = "commit index"
    else:
        xs = [v.last_applied + 0.5 for v in views]
        ys = [i + 0.4 for i in range(len(views))]
        hover = [f"{v.name}: last applied {v.last_applied}" for v in views]
        marker = {
            "symbol": "triangle-up",
            "size": 11,
            "color": "#111",
            "line": {"width": 1, "color": "white"},
        }
        name = "last applied"
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        marker=marker,
        hovertext=hover,
        hoverinfo="text",
        name=name,
    )


def _faded_key() -> go.Scatter:
    """A legend entry explaining the faded cells (a heatmap has no legend of its own)."""
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        marker={"symbol": "square", "size": 14, "color": "#56B4E9", "opacity": UNCOMMITTED_OPACITY},
        name="faded: not committed yet",
        hoverinfo="skip",
    )


def logs_title(snap: Snapshot, width: int, window: int) -> str:
    leader = f"leader server{snap.leader}" if snap.leader else "no leader"
    text = f"Logs per server · {leader} · term {snap.term} · {plural(width, 'entry')}"
    if snap.name:
        text = f"{snap.name}: {text}"
    if compacted(snap):
        text += f", compacted up to {compacted(snap)}"
    if width > window:
        text += f" (newest {window} shown: drag or zoom out to see more)"
    if snap.at is not None:
        text += f"<br><sup>after event {snap.event}</sup>"
    return text.replace("entrys", "entries")


def _layout(
    fig: go.Figure, snap: Snapshot, rows: list[str], width: int, window: int, title: str | None
) -> None:
    n = max(len(rows), 1)
    lo = max(0.5, width - window + 0.5)
    fig.update_layout(
        title={"text": title or logs_title(snap, width, window), "x": 0.02},
        height=150 + ROW_PX * n,
        autosize=True,
        template="plotly_white",
        font={"family": FONT},
        plot_bgcolor="#F2F2F2",
        xaxis={
            "title": {"text": "log index"},
            "range": [lo, max(width, 1) + 0.9],
            # whole log indices only: a short log would otherwise get ticks at 1.2, 1.4 ...
            "tick0": 1,
            "dtick": max(1, round((max(width, 1) + 0.9 - lo) / 15)),
            "tickformat": "d",
            "showgrid": False,
            "zeroline": False,
        },
        yaxis={
            "range": [n - 0.5, -0.5],
            "tickvals": list(range(n)),
            "ticktext": rows,
            "showgrid": False,
            "zeroline": False,
            "fixedrange": True,
        },
        legend={"orientation": "h", "yanchor": "top", "y": -0.25 - 0.5 / n, "x": 0},
        margin={"l": 130, "r": 60, "t": 80, "b": 60},
        hoverlabel={"align": "left"},
        uirevision="logs",
        dragmode="pan",
        meta={
            "entries": width,
            "leader": snap.leader,
            "snapshots": [v.snapshot_index for v in snap.servers.values()],
        },
    )
