"""The topology figure: who is in the deployment, who leads, which links are cut.

In raft mode (no coord) candidates are drawn as triangles, every vote a
candidate or leader holds in its current term is a green arrow from the voter,
and each server shows its term.

networkx holds the graph and lays it out (the coord in the middle of a ring of
servers, because it talks to all of them; clients on the left; the tracing
server on the right); plotly draws it. Servers are coloured and shaped by role,
links are drawn as up (thicker with more messages), cut, one-way cut (an arrow
shows the direction that is lost) or degraded, and hovering a link's midpoint
shows its message counts both ways.

The figure always has the same traces in the same order, whatever the state,
so a live ``FigureWidget`` can be refreshed in place
(:func:`teachraft.viz.inplace.update_in_place`) without flicker.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import plotly.graph_objects as go

from teachraft.viz.sources import snapshot_of
from teachraft.viz.state import BLOCKED, Snapshot, server_id
from teachraft.viz.style import (
    CLIENT_COLOUR,
    COORD_COLOUR,
    FAILED,
    FONT,
    LINK_CUT,
    LINK_DEGRADED,
    LINK_ONE_WAY,
    LINK_UP,
    ROLE_COLOURS,
    ROLE_LABELS,
    ROLE_ORDER,
    ROLE_SYMBOLS,
    TRACING_COLOUR,
    VOTE_COLOUR,
)

FAILED_COLOUR = ROLE_COLOURS[FAILED]

EDGE_CLASSES = ("light", "medium", "heavy", "stopped", "degraded", "one-way", "cut")
EDGE_STYLE: dict[str, dict[str, Any]] = {
    "light": {"color": LINK_UP, "width": 1.5, "dash": "solid"},
    "medium": {"color": "#8C8C8C", "width": 3, "dash": "solid"},
    "heavy": {"color": "#5A5A5A", "width": 4.5, "dash": "solid"},
    "stopped": {"color": "#D0D0D0", "width": 1.5, "dash": "dot"},
    "degraded": {"color": LINK_DEGRADED, "width": 2.5, "dash": "dot"},
    "one-way": {"color": LINK_ONE_WAY, "width": 2.5, "dash": "dash"},
    "cut": {"color": LINK_CUT, "width": 2.5, "dash": "dot"},
}
EDGE_NAMES = {
    "light": "link (few messages)",
    "medium": "link (more messages)",
    "heavy": "link (most messages)",
    "stopped": "link to a stopped server",
    "degraded": "lossy or slow link",
    "one-way": "one-way cut (arrow: lost direction)",
    "cut": "cut link",
}
OTHER_KINDS = ("coord", "client", "tracing")
OTHER_STYLE = {
    "coord": (COORD_COLOUR, "square", "coord"),
    "client": (CLIENT_COLOUR, "diamond", "client"),
    "tracing": (TRACING_COLOUR, "hexagon", "tracing server"),
}
VOTES = "vote granted (this term)"
PRE_VOTES = "pre-vote granted"
ALWAYS_IN_LEGEND = frozenset({"leader", "follower", "partitioned", "paused", "failed"})
NODE_SIZE = 34
WIDTH, HEIGHT = 820, 560


def topology_figure(source: Any, at: int | None = None, title: str | None = None) -> go.Figure:
    """Draw the deployment of ``source`` (a cluster, trace, table, replay or snapshot)."""
    snap = snapshot_of(source, at)
    graph = build_graph(snap)
    pos = layout(graph)
    fig = go.Figure()
    _add_edges(fig, graph, pos, snap)
    _add_votes(fig, pos, snap)
    _add_nodes(fig, graph, pos, snap)
    arrows = _one_way_arrows(graph, pos, snap) + _vote_arrows(pos, snap)
    _layout(fig, snap, title, arrows)
    return fig


# --- graph and layout ---------------------------------------------------------------


def node_kind(name: str) -> str:
    if server_id(name) is not None:
        return "server"
    if name.startswith("client"):
        return "client"
    return name if name in ("coord", "tracing") else "other"


def build_graph(snap: Snapshot) -> nx.Graph:
    """Nodes of the deployment; an edge wherever messages went or a fault sits."""
    graph = nx.Graph()
    for name in snap.nodes:
        graph.add_node(name, kind=node_kind(name))
    names = set(snap.nodes)
    for a, b in snap.links:
        if a in names and b in names and a != b and "tracing" not in (a, b):
            graph.add_edge(a, b)
    if "coord" not in names:  # etcd: the members elect their leader, no coord
        return graph
    servers = [n for n in snap.nodes if node_kind(n) == "server"]
    for name in servers:
        graph.add_edge("coord", name)
    for name in snap.nodes:
        if node_kind(name) == "client":
            graph.add_edge("coord", name)
    return graph


def layout(graph: nx.Graph) -> dict[str, tuple[float, float]]:
    """Coord at the centre of the server ring; clients left, tracing server right."""
    servers = sorted(
        (n for n in graph if node_kind(n) == "server"), key=lambda n: server_id(n) or 0
    )
    shells = [["coord"], servers] if servers else [["coord"]]
    if "coord" not in graph and servers:  # etcd's members, with no coord among them
        shells = [servers]
    ring = nx.shell_layout(graph.subgraph([n for s in shells for n in s]), nlist=shells, rotate=0)
    radius = max((math.hypot(*ring[n]) for n in servers), default=1.0) or 1.0
    # networkx starts at 3 o'clock and turns anticlockwise; swapping x and y puts
    # server1 at 12 o'clock with the others following clockwise.
    pos = {name: (float(xy[1]) / radius, float(xy[0]) / radius) for name, xy in ring.items()}
    clients = sorted(n for n in graph if node_kind(n) == "client")
    for i, name in enumerate(clients):
        pos[name] = (-2.25, _spread(i, len(clients)))
    others = [n for n in graph if n not in pos]
    for i, name in enumerate(sorted(others, key=lambda n: n != "tracing")):
        pos[name] = (2.25, _spread(i, len(others)))
    return pos


def _spread(i: int, n: int) -> float:
    if n <= 1:
        return 0.0
    return 0.9 - 1.8 * i / (n - 1)


def text_position(xy: tuple[float, float]) -> str:
    """Put a label outside the ring: above the top nodes, below the bottom ones."""
    x, y = xy
    if y > 0.35:
        return "top center"
    if y < -0.35:
        return "bottom center"
    return "middle right" if x >= 0 else "middle left"


# --- edges -------------------------------------------------------------------------


def edge_class(snap: Snapshot, a: str, b: str, top: int) -> str:
    """Which of ``EDGE_CLASSES`` draws the a-b edge."""
    ab, ba = snap.link(a, b), snap.link(b, a)
    blocked = (ab.state in BLOCKED, ba.state in BLOCKED)
    if all(blocked):
        return "cut"
    if any(blocked):
        return "one-way"
    if {ab.state, ba.state} & {"lossy", "slow"}:
        return "degraded"
    if _stopped(snap, a) or _stopped(snap, b):
        return "stopped"
    total = ab.sent + ba.sent
    if top <= 0 or total <= top / 8:
        return "light"
    return "medium" if total <= top / 2 else "heavy"


def _stopped(snap: Snapshot, name: str) -> bool:
    sid = server_id(name)
    view = snap.servers.get(sid) if sid is not None else None
    return view is not None and view.role == FAILED


def _edge_hover(snap: Snapshot, a: str, b: str) -> str:
    lines = [f"<b>{a} ↔ {b}</b>"]
    for src, dst in ((a, b), (b, a)):
        link = snap.link(src, dst)
        counts = f"sent {link.sent}, received {link.received}"
        if link.dropped:
            counts += f", dropped {link.dropped}"
        state = "" if link.state == "up" else f" — <b>{link.state}</b>"
        lines.append(f"{src} → {dst}: {counts}{state}")
    if snap.source == "trace":
        lines.append("(counts are traced messages)")
    return "<br>".join(lines)


def _add_edges(fig: go.Figure, graph: nx.Graph, pos: dict, snap: Snapshot) -> None:
    top = max((snap.link(a, b).sent + snap.link(b, a).sent for a, b in graph.edges), default=0)
    segments: dict[str, tuple[list, list]] = {c: ([], []) for c in EDGE_CLASSES}
    mid_x, mid_y, mid_text = [], [], []
    for a, b in graph.edges:
        xs, ys = segments[edge_class(snap, a, b, top)]
        (x0, y0), (x1, y1) = pos[a], pos[b]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        mid_text.append(_edge_hover(snap, a, b))
    for cls in EDGE_CLASSES:
        xs, ys = segments[cls]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line=EDGE_STYLE[cls],
                name=EDGE_NAMES[cls],
                hoverinfo="skip",
                legendgroup="links",
                legendgrouptitle={"text": "links"},
                showlegend=cls in ("light", "one-way", "cut") or bool(xs),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=mid_x,
            y=mid_y,
            mode="markers",
            marker={"size": 12, "color": "rgba(0,0,0,0)"},
            hovertext=mid_text,
            hoverinfo="text",
            name="link counts",
            showlegend=False,
        )
    )


def _one_way_arrows(graph: nx.Graph, pos: dict, snap: Snapshot) -> list[dict[str, Any]]:
    """An arrow along each one-way cut, pointing in the direction that is lost."""
    arrows = []
    for a, b in graph.edges:
        for src, dst in ((a, b), (b, a)):
            if snap.link(src, dst).state in BLOCKED and snap.link(dst, src).state not in BLOCKED:
                hover = f"{src} → {dst} is lost"
                arrows.append(
                    _arrow(pos[src], pos[dst], (0.38, 0.62), 1.4, 2.5, LINK_ONE_WAY, hover)
                )
    return arrows


def _arrow(
    start: Any,
    end: Any,
    span: tuple[float, float],
    size: float,
    width: float,
    colour: str,
    hover: str,
) -> dict[str, Any]:
    """An arrow annotation on the line from ``start`` to ``end``, over the ``span`` fractions."""
    (x0, y0), (x1, y1) = start, end
    tail, head = span
    return {
        "x": x0 + (x1 - x0) * head,
        "y": y0 + (y1 - y0) * head,
        "ax": x0 + (x1 - x0) * tail,
        "ay": y0 + (y1 - y0) * tail,
        "xref": "x",
        "yref": "y",
        "axref": "x",
        "ayref": "y",
        "showarrow": True,
        "arrowhead": 2,
        "arrowsize": size,
        "arrowwidth": width,
        "arrowcolor": colour,
        "text": "",
        "hovertext": hover,
    }


# --- votes (raft mode) ---------------------------------------------------------------


def _vote_pairs(pos: dict, snap: Snapshot, pre: bool = False) -> list[tuple[str, str]]:
    pairs = [(f"server{v}", f"server{c}") for v, c in snap.votes_granted(pre)]
    return [(v, c) for v, c in pairs if v in pos and c in pos]


def _add_votes(fig: go.Figure, pos: dict, snap: Snapshot) -> None:
    """One green segment per vote a candidate or leader holds in its current term
    (solid), and per pre-vote a pre-candidate holds (dotted)."""
    for pre in (False, True):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for voter, candidate in _vote_pairs(pos, snap, pre):
            (x0, y0), (x1, y1) = pos[voter], pos[candidate]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"color": VOTE_COLOUR, "width": 4, "dash": "dot" if pre else "solid"},
                name=PRE_VOTES if pre else VOTES,
                hoverinfo="skip",
                legendgroup="links",
                showlegend=(snap.election == "raft" and not pre) or bool(xs),
            )
        )


def _vote_arrows(pos: dict, snap: Snapshot) -> list[dict[str, Any]]:
    """An arrowhead on each vote, pointing at the candidate that holds it."""
    arrows = []
    pairs = [(*p, "voted for") for p in _vote_pairs(pos, snap)]
    pairs += [(*p, "would vote (PreVote) for") for p in _vote_pairs(pos, snap, pre=True)]
    for voter, candidate, verb in pairs:
        term = snap.servers[server_id(candidate) or 0].term
        hover = f"{voter} {verb} {candidate} in term {term}"
        arrows.append(_arrow(pos[voter], pos[candidate], (0.5, 0.7), 1.3, 3, VOTE_COLOUR, hover))
    return arrows


# --- nodes -------------------------------------------------------------------------


def _server_hover(snap: Snapshot, name: str) -> str:
    view = snap.servers[server_id(name) or 0]
    lines = [
        f"<b>{name}</b>: {ROLE_LABELS[view.shown_role]}",
        f"term {view.term}, believes leader is "
        + (f"server{view.leader}" if view.leader else "unknown"),
        f"log length {view.last_index}, commit index {view.commit_index}, "
        f"last applied {view.last_applied}",
    ]
    if view.snapshot_index:
        lines.append(
            f"entries up to {view.snapshot_index} compacted into a snapshot "
            f"(term {view.snapshot_term})"
        )
    if view.partitioned and view.role != FAILED:
        lines.append("cut off from the coord or the leader")
    if snap.election == "raft":
        lines += _raft_hover(view)
    elif view.sid in snap.lost and snap.lost_msgs_thresh:
        lines.append(
            f"coord: {snap.lost[view.sid]} heartbeats lost in a row "
            f"(declared failed at {snap.lost_msgs_thresh})"
        )
    return "<br>".join(lines)


def _raft_hover(view: Any) -> list[str]:
    lines = []
    if view.voted_for:
        lines.append(f"voted for server{view.voted_for} in term {view.term}")
    if view.votes and view.role in ("candidate", "leader"):
        lines.append("holds votes of " + ", ".join(f"server{v}" for v in view.votes))
    if view.pre_votes and view.role == "pre-candidate":
        lines.append("holds pre-votes of " + ", ".join(f"server{v}" for v in view.pre_votes))
    if view.timeout and view.role != "leader":
        lines.append(f"election timer: {view.elapsed} of {view.timeout} ticks elapsed")
    return lines


def _server_label(snap: Snapshot, name: str) -> str:
    view = snap.servers[server_id(name) or 0]
    role = view.shown_role
    word = {"partitioned": "partitioned", "failed": "failed"}.get(role, role)
    text = f"<b>{name}</b><br>{word}"
    if view.term and (role != FAILED or snap.election == "raft"):
        text += f" · T{view.term}"
    held = view.votes if role == "candidate" else view.pre_votes if role == "pre-candidate" else []
    if held:
        text += f"<br>{len(held)} of {len(snap.servers)} votes"
    return text


def _add_nodes(fig: go.Figure, graph: nx.Graph, pos: dict, snap: Snapshot) -> None:
    by_role: dict[str, list[str]] = {role: [] for role in ROLE_ORDER}
    for name in graph:
        sid = server_id(name)
        if sid is not None and sid in snap.servers:
            by_role[snap.servers[sid].shown_role].append(name)
    for role in ROLE_ORDER:
        names = by_role[role]
        fig.add_trace(
            go.Scatter(
                x=[pos[n][0] for n in names],
                y=[pos[n][1] for n in names],
                mode="markers+text",
                marker={
                    "size": NODE_SIZE + (8 if role == "leader" else 0),
                    "color": ROLE_COLOURS[role],
                    "symbol": ROLE_SYMBOLS[role],
                    "line": {"color": "#222222", "width": 1.5},
                },
                text=[_server_label(snap, n) for n in names],
                textposition=[text_position(pos[n]) for n in names],
                textfont={"size": 13, "family": FONT},
                hovertext=[_server_hover(snap, n) for n in names],
                hoverinfo="text",
                name=ROLE_LABELS[role],
                showlegend=role in ALWAYS_IN_LEGEND or bool(names) or snap.election == "raft",
                legendgroup="servers",
                legendgrouptitle={"text": "servers"},
            )
        )
    for kind in OTHER_KINDS:
        _add_other_nodes(fig, graph, pos, snap, kind)


def _add_other_nodes(fig: go.Figure, graph: nx.Graph, pos: dict, snap: Snapshot, kind: str) -> None:
    names = [n for n in graph if node_kind(n) == kind]
    colour, symbol, label = OTHER_STYLE[kind]
    coord_hover = (
        "<b>coord</b>: watches the servers, picks the leader<br>"
        + f"term {snap.term}, leader "
        + (f"server{snap.leader}" if snap.leader else "none")
    )
    if kind == "coord" and snap.coord_failed:
        colour, label = FAILED_COLOUR, "coord (failed)"
        coord_hover = (
            "<b>coord: failed</b><br>no one detects a failed server or picks a new "
            "leader: the cluster serves until its leader fails"
        )
    hover = {
        "coord": coord_hover,
        "tracing": "<b>tracing server</b>: every node sends it trace records",
    }
    fig.add_trace(
        go.Scatter(
            x=[pos[n][0] for n in names],
            y=[pos[n][1] for n in names],
            mode="markers+text",
            marker={
                "size": NODE_SIZE - 4,
                "color": colour,
                "symbol": symbol,
                "line": {"color": "#222222", "width": 1.5},
            },
            text=[
                f"<b>{n}</b>" + (" ✕ failed" if n == "coord" and snap.coord_failed else "")
                for n in names
            ],
            textposition="top center" if kind == "coord" else "bottom center",
            textfont={"size": 13, "family": FONT},
            hovertext=[hover.get(kind, f"<b>{n}</b>: a kvslib client") for n in names],
            hoverinfo="text",
            name=label,
            legendgroup="others",
            legendgrouptitle={"text": "other nodes"},
        )
    )


# --- title and axes ------------------------------------------------------------------


def topology_title(snap: Snapshot) -> str:
    """``term 2 · leader server2 · 1 failed``, plus the run name and cursor."""
    parts = []
    if snap.name:
        parts.append(snap.name)
    if snap.election == "raft":
        parts.append("raft elections")
    parts.append(f"term {snap.term}")
    parts.append(f"leader server{snap.leader}" if snap.leader else "no leader")
    if snap.coord_failed:
        parts.append("coord failed")
    failed = snap.failed
    if failed:
        parts.append(f"{len(failed)} failed")
    majority = len(snap.servers) // 2 + 1
    if snap.servers and len(snap.servers) - len(failed) < majority:
        parts.append("no quorum")
    text = " · ".join(parts)
    if snap.at is not None:
        text += f"<br><sup>after event {snap.event}</sup>"
    return text


def _layout(fig: go.Figure, snap: Snapshot, title: str | None, arrows: list[dict]) -> None:
    n = len(snap.servers)
    fig.update_layout(
        title={"text": title or topology_title(snap), "x": 0.02, "font": {"size": 18}},
        width=WIDTH,
        height=HEIGHT,
        template="plotly_white",
        font={"family": FONT},
        xaxis={"visible": False, "range": [-2.7, 2.7]},
        yaxis={"visible": False, "range": [-1.6, 1.6], "scaleanchor": "x"},
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
        legend={"x": 1.0, "xanchor": "left", "y": 1.0, "font": {"size": 12}},
        annotations=arrows,
        hoverlabel={"align": "left"},
        uirevision="topology",
        meta={"servers": n, "leader": snap.leader, "term": snap.term},
    )
