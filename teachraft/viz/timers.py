"""The timers figure: the failure detectors at work, one lane per server.

Both ways of replacing a failed leader hang on a timer, and this figure shows
it, over the events of a run (the x axis is the event table's happened-before
order, as in the space-time diagram, so a time cursor lines up with both):

- **raft mode**: each server's election timer. The lane is coloured by the
  server's role; a tick marks each traced AppendEntries (or InstallSnapshot
  chunk) that reset a follower's timer, a green triangle each vote granted
  (which also resets it), a circle each new randomized timeout drawn. A red
  cross is a timeout (the server campaigns: a PreVote round first when PreVote
  is on), an orange one a "time out now"; a diamond marks a split vote (a
  candidate timed out again, and another candidate had campaigned in its term,
  which no one won) and a star an election won. A heartbeat that carries no
  entry and no new commit index is not traced (it would swamp the trace), so
  the live column is where every heartbeat is seen resetting a timer.
- **coord mode**: the coord's count of heartbeats lost in a row to each server,
  climbing towards ``LostMsgsThresh`` (the dashed line) with each miss, back to
  zero when the server answers, and a large cross where the coord declares the
  server failed (``ServerFail``).

A right-hand column shows *now*: live, each server's election timer counting
down (the time left of its randomized timeout) in raft mode, or the coord's last
heartbeat results per server (green answered, red lost) in coord mode;
replayed, the state at the cursor. The figure always has the same traces in
the same order, so a live ``FigureWidget`` is refreshed in place.

:func:`timer_lanes` computes what is drawn from the events alone, so tests and
lessons can read the lanes without a figure.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from teachraft.tracing.events import EventTable
from teachraft.viz.labels import plural
from teachraft.viz.replay import RAFT_TAGS, Replay
from teachraft.viz.sources import events_of, is_cluster, is_running, live_events, name_of
from teachraft.viz.state import ServerView, Snapshot, as_snapshot, server_id
from teachraft.viz.style import (
    CANDIDATE,
    FAILED,
    FOLLOWER,
    FONT,
    LEADER,
    PRE_CANDIDATE,
    ROLE_COLOURS,
    VOTE_COLOUR,
)

LIVE_EVENTS = 600
WINDOW = 400
RING_SHOWN = 20
HISTORY_KEPT = 200
LANE_PX = 70
ROLE_LINES = (FOLLOWER, PRE_CANDIDATE, CANDIDATE, LEADER, FAILED)
ROLE_NAMES = {PRE_CANDIDATE: "pre-candidate (PreVote)", FAILED: "failed (stopped)"}
MISS = "#D55E00"
ACK = "#009E73"
CURSOR = "#D00000"

LEADER_RPCS = {
    "AppendEntriesRequestRecvd": "AppendEntries",
    "InstallSnapshotRequestRecvd": "an InstallSnapshot chunk",
}
"""A follower's receipt of these from its term's leader restarts its election timer."""

# mark kind: (legend name, symbol, colour, size)
MARKS: dict[str, tuple[str, str, str, int]] = {
    "heartbeat": (
        "AppendEntries or InstallSnapshot (traced) received: timer reset",
        "line-ns",
        "#555555",
        10,
    ),
    "vote": ("vote granted: timer reset", "triangle-down", VOTE_COLOUR, 11),
    "reset": ("new random timeout drawn", "circle-open", "#0072B2", 10),
    "timeout": ("election timeout: it campaigns", "x", MISS, 14),
    "timeout-now": ("told to time out now", "x", "#E69F00", 14),
    "split": ("split vote: no one won that term", "diamond", "#CC79A7", 14),
    "won": ("election won", "star", ROLE_COLOURS[LEADER], 18),
    "down": ("stepped down", "triangle-left", "#777777", 11),
    "missed": ("heartbeat lost", "x-thin-open", MISS, 11),
    "acked": ("answered again: count back to 0", "circle", ACK, 10),
    "declared": ("coord declares the server failed", "x", "#B00020", 22),
}


QUIET = frozenset({"heartbeat", "reset", "vote"})
"""Marks that come with every round of heartbeats or votes."""
RAFT_LEVELS = {"heartbeat": 0.15, "vote": 0.15, "reset": 0.15, "split": 0.9}
"""Where a raft mark sits in its lane (0 bottom, 1 top), so marks at one event stay apart."""


@dataclass(slots=True)
class Mark:
    """One thing that happened to a timer: at event ``index``, drawn at ``level``."""

    index: int
    kind: str
    text: str
    level: float = 0.5
    term: int = 0


@dataclass(slots=True)
class Lane:
    """One server's timer over the run."""

    sid: int
    marks: list[Mark] = field(default_factory=list)
    roles: list[tuple[int, str, int]] = field(default_factory=list)
    """Raft mode: ``(index, role, term)`` at every change of role or term."""
    lost: list[tuple[int, int]] = field(default_factory=list)
    """Coord mode: ``(index, heartbeats lost in a row)`` at every change of the count."""

    def kinds(self, kind: str) -> list[Mark]:
        return [m for m in self.marks if m.kind == kind]


@dataclass(slots=True)
class Lanes:
    """Every server's lane; ``mode`` is ``"raft"`` or ``"coord"``."""

    mode: str
    lanes: dict[int, Lane]
    thresh: int = 0
    last: int = -1


@dataclass(slots=True)
class TimerHistory:
    """The last ``span`` seconds of each server's election timer, as a live panel saw it.

    A panel records the snapshot it draws at each refresh, so this is sampled,
    not traced: between two refreshes a timer may have been reset many times.
    In slow motion (timers stretched, refreshes not) the samples draw each
    timer's countdown and its resets.
    """

    span: float = 10.0
    samples: deque[tuple[float, dict[int, float]]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_KEPT)
    )

    def record(self, snap: Snapshot, now: float) -> None:
        """Keep each follower's and candidate's share of its timeout left at ``now``."""
        left = {
            v.sid: max(v.timeout - v.elapsed, 0) / v.timeout
            for v in snap.servers.values()
            if v.timeout and v.role not in (FAILED, LEADER)
        }
        self.samples.append((now, left))


def timer_lanes(table: EventTable, servers: list[int] | None = None) -> Lanes:
    """The timer lanes of every server, from the events alone."""
    mode = "raft" if any(e.tag in RAFT_TAGS for e in table) else "coord"
    lanes: dict[int, Lane] = {sid: Lane(sid) for sid in servers or ()}
    state: dict[int, tuple[str, int]] = {}
    thresh = 0
    for event in table:
        sid = server_id(event.host)
        body = event.body
        if sid is not None and sid not in lanes:
            lanes[sid] = Lane(sid)
        if mode == "raft" and event.tag in ("FaultInjected", "FaultHealed"):
            _raft_fault(lanes, state, event.index, event.tag, body)
        elif mode == "raft" and sid is not None:
            _raft_event(lanes[sid], state, event.index, event.tag, body)
        elif event.host == "coord":
            thresh = _coord_event(lanes, event.index, event.tag, body, thresh)
    for lane in lanes.values():
        if mode == "raft" and not lane.roles:
            lane.roles.append((-1, FOLLOWER, 0))
    _keep_split_votes(lanes)
    return Lanes(mode, dict(sorted(lanes.items())), thresh, len(table) - 1)


def _keep_split_votes(lanes: dict[int, Lane]) -> None:
    """A candidate that times out again lost its term; it was a *split vote* only if
    no one won that term and another server was a candidate in it too (a candidate
    alone, cut off from the others, split nothing)."""
    running: dict[int, set[int]] = {}
    won = {m.term for lane in lanes.values() for m in lane.kinds("won")}
    for lane in lanes.values():
        for _, role, term in lane.roles:
            if role == CANDIDATE:
                running.setdefault(term, set()).add(lane.sid)
    for lane in lanes.values():
        lane.marks = [
            m
            for m in lane.marks
            if m.kind != "split" or (m.term not in won and len(running.get(m.term, ())) > 1)
        ]


def _role_change(
    lane: Lane, state: dict[int, tuple[str, int]], i: int, role: str, term: int
) -> None:
    if state.get(lane.sid) != (role, term):
        state[lane.sid] = (role, term)
        lane.roles.append((i, role, term))


def _raft_event(
    lane: Lane, state: dict[int, tuple[str, int]], i: int, tag: str, body: dict[str, Any]
) -> None:
    """Advance one server's raft lane by one of its own events."""
    role, term = state.get(lane.sid, (FOLLOWER, 0))
    new_term = _num(body.get("Term"), term)
    if tag in LEADER_RPCS and new_term >= term and role != LEADER:
        text = f"{LEADER_RPCS[tag]} from the leader, term {new_term}"
        lane.marks.append(Mark(i, "heartbeat", text))
        _role_change(lane, state, i, FOLLOWER, new_term)
    elif tag == "RequestVoteResponseSent" and body.get("VoteGranted") and not body.get("PreVote"):
        lane.marks.append(Mark(i, "vote", f"granted its vote in term {new_term}"))
        _role_change(lane, state, i, FOLLOWER, max(term, new_term))
    elif tag == "ElectionTimerReset":
        timeout = _num(body.get("Timeout"), 0)
        lane.marks.append(Mark(i, "reset", f"new timeout: {timeout} ticks, term {new_term}"))
    elif tag == "ElectionTimeout":
        elapsed, timeout = _num(body.get("Elapsed"), 0), _num(body.get("Timeout"), 0)
        if role == CANDIDATE and elapsed >= timeout:  # pre-votes never split: any may grant
            text = f"term {term}: no majority for it before its timer ran out"
            lane.marks.append(Mark(i, "split", text, term=term))
        kind = "timeout" if elapsed >= timeout else "timeout-now"
        what = "timer ran out" if kind == "timeout" else "told to time out now"
        lane.marks.append(Mark(i, kind, f"{what} after {elapsed} of {timeout} ticks, term {term}"))
    elif tag in ("BecameCandidate", "BecamePreCandidate"):
        now = CANDIDATE if tag == "BecameCandidate" else PRE_CANDIDATE
        _role_change(lane, state, i, now, new_term)
    elif tag == "LeaderElected":
        votes = ", ".join(f"server{v}" for v in body.get("Votes") or ())
        text = f"won term {new_term} with the votes of {votes}"
        lane.marks.append(Mark(i, "won", text, term=new_term))
        _role_change(lane, state, i, LEADER, new_term)
    elif tag in ("SteppedDown", "CheckQuorumFailed", "BecameFollower") and role != FOLLOWER:
        reason = body.get("Reason") or ("check quorum" if tag == "CheckQuorumFailed" else tag)
        lane.marks.append(Mark(i, "down", f"stepped down in term {new_term}: {reason}"))
        _role_change(lane, state, i, FOLLOWER, new_term)
    elif tag == "ServerRestart":
        _role_change(lane, state, i, FOLLOWER, term)


def _raft_fault(
    lanes: dict[int, Lane],
    state: dict[int, tuple[str, int]],
    i: int,
    tag: str,
    body: dict[str, Any],
) -> None:
    """A server failed (its lane goes grey) or came back (a follower again)."""
    kind = body.get("Kind")
    for node in body.get("Nodes") or ():
        sid = server_id(str(node))
        if sid is None:
            continue
        lane = lanes.setdefault(sid, Lane(sid))
        _, term = state.get(sid, (FOLLOWER, 0))
        if tag == "FaultInjected" and kind == "fail":
            _role_change(lane, state, i, FAILED, term)
        elif tag == "FaultHealed" and kind in ("fail", "restart"):
            _role_change(lane, state, i, FOLLOWER, term)


def _coord_event(
    lanes: dict[int, Lane], i: int, tag: str, body: dict[str, Any], thresh: int
) -> int:
    """Advance the coord's counts by one of its events; returns LostMsgsThresh as known."""
    sid = _num(body.get("ServerId"), 0)
    if not sid:
        return thresh
    lane = lanes.setdefault(sid, Lane(sid))
    if tag == "HeartbeatMissed":
        thresh = _num(body.get("LostMsgsThresh"), thresh)
        lost = _num(body.get("Lost"), 0)
        lane.lost.append((i, lost))
        text = f"heartbeat lost: {lost} in a row of {thresh} allowed"
        lane.marks.append(Mark(i, "missed", text, lost / max(thresh, 1)))
    elif tag == "HeartbeatAcked":
        lane.lost.append((i, 0))
        text = f"answered after {plural(_num(body.get('Lost'), 0), 'lost heartbeat')}"
        lane.marks.append(Mark(i, "acked", text, 0.0))
    elif tag == "ServerFail":
        last = lane.lost[-1][1] if lane.lost else thresh
        text = f"ServerFail: declared failed after {plural(last, 'lost heartbeat')}"
        lane.marks.append(Mark(i, "declared", text, 1.0))
    return thresh


def _num(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


# --- the figure --------------------------------------------------------------------------


def timers_figure(
    source: Any,
    at: int | None = None,
    window: int | None = WINDOW,
    title: str | None = None,
    snapshot: Snapshot | None = None,
    history: TimerHistory | None = None,
) -> go.Figure:
    """Draw the timer lanes of ``source`` (a cluster, trace, table or replay).

    ``at`` puts a cursor after that event and shows the state there in the
    right-hand column; a running cluster without ``at`` shows its last
    ``LIVE_EVENTS`` events and its live timers, with the recent samples of
    ``history`` (a live panel's) behind them.
    """
    live = is_cluster(source) and is_running(source) and at is None
    table = live_events(source, last=LIVE_EVENTS) if live else events_of(source)
    if snapshot is None:
        if live:
            snapshot = as_snapshot(source.snapshot())
        else:
            snapshot = Replay(table, name=name_of(source)).at(at)
    lanes = timer_lanes(table, sorted(snapshot.servers))
    if live and snapshot.election == "raft":
        lanes.mode = "raft"
    return draw_lanes(lanes, snapshot, at, window, title, live, history if live else None)


def draw_lanes(
    lanes: Lanes,
    snap: Snapshot,
    at: int | None,
    window: int | None,
    title: str | None,
    live: bool,
    history: TimerHistory | None = None,
) -> go.Figure:
    """The figure of ``lanes``, with ``snap`` (the state at the cursor) in the right column."""
    rows = list(lanes.lanes)
    row_of = {sid: n for n, sid in enumerate(rows)}
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.8, 0.2], shared_yaxes=True, horizontal_spacing=0.02
    )
    fig.add_trace(_baselines(lanes, row_of), row=1, col=1)
    for role in ROLE_LINES:
        fig.add_trace(_role_trace(lanes, row_of, role), row=1, col=1)
    fig.add_trace(_lost_trace(lanes, row_of), row=1, col=1)
    fig.add_trace(_thresh_trace(lanes, row_of), row=1, col=1)
    for kind in MARKS:
        fig.add_trace(_mark_trace(lanes, row_of, kind), row=1, col=1)
    fig.add_trace(cursor_trace(at, len(rows)), row=1, col=1)
    for trace in now_traces(lanes, snap, row_of, live):
        fig.add_trace(trace, row=1, col=2)
    fig.add_trace(history_trace(history, row_of), row=1, col=2)
    _layout(fig, lanes, rows, at, window, title or _title(lanes, snap, live))
    if history is not None and lanes.mode == "raft":
        span = f"{history.span:.0f}"
        fig.update_xaxes(title={"text": f"now (lines: the last {span} s, sampled)"}, row=1, col=2)
    return fig


def _level_y(row: int, level: float) -> float:
    """A level of 0..1 inside lane ``row`` (rows grow downwards; 1 is the top of a lane)."""
    return row + 0.3 - 0.6 * max(0.0, min(level, 1.0))


def _baselines(lanes: Lanes, row_of: dict[int, int]) -> go.Scatter:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for row in row_of.values():
        xs += [-1, max(lanes.last, 0), None]
        ys += [_level_y(row, 0), _level_y(row, 0), None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": "#DDDDDD", "width": 1},
        hoverinfo="skip",
        showlegend=False,
        name="lanes",
    )


def _role_trace(lanes: Lanes, row_of: dict[int, int], role: str) -> go.Scatter:
    """Raft mode: the stretches of the run in which a server had ``role``."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    texts: list[str | None] = []
    for sid, lane in lanes.lanes.items():
        changes = [*lane.roles, (lanes.last, "", 0)]
        for (start, now, term), (end, _, _) in pairwise(changes):
            if now == role and end >= start:
                y = _level_y(row_of[sid], 0)
                xs += [start, end, None]
                ys += [y, y, None]
                texts += [f"server{sid}: {role}, term {term}", "", None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={
            "color": ROLE_COLOURS[role],
            "width": 7 if role not in (FOLLOWER, FAILED) else 4,
            "dash": "dot" if role == FAILED else "solid",
        },
        hovertext=texts,
        hoverinfo="text",
        name=ROLE_NAMES.get(role, role),
        legendgroup="roles",
        legendgrouptitle={"text": "role (raft)"},
        showlegend=bool(xs),
    )


def _lost_trace(lanes: Lanes, row_of: dict[int, int]) -> go.Scatter:
    """Coord mode: heartbeats lost in a row, as a step line inside each lane."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    thresh = max(lanes.thresh, 1)
    for sid, lane in lanes.lanes.items():
        if not lane.lost:
            continue
        xs.append(-1)
        ys.append(_level_y(row_of[sid], 0))
        for index, lost in lane.lost:
            xs.append(index)
            ys.append(_level_y(row_of[sid], lost / thresh))
        xs += [lanes.last, None]
        ys += [ys[-1], None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": MISS, "width": 2, "shape": "hv"},
        hoverinfo="skip",
        name="heartbeats lost in a row",
        showlegend=bool(xs),
    )


def _thresh_trace(lanes: Lanes, row_of: dict[int, int]) -> go.Scatter:
    xs: list[float | None] = []
    ys: list[float | None] = []
    if lanes.mode == "coord" and lanes.thresh:
        for row in row_of.values():
            xs += [-1, max(lanes.last, 0), None]
            ys += [_level_y(row, 1), _level_y(row, 1), None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": "#B00020", "width": 1, "dash": "dash"},
        hoverinfo="skip",
        name=f"LostMsgsThresh ({lanes.thresh})",
        showlegend=bool(xs),
    )


def _mark_trace(lanes: Lanes, row_of: dict[int, int], kind: str) -> go.Scatter:
    name, symbol, colour, size = MARKS[kind]
    xs, ys, texts = [], [], []
    for sid, lane in lanes.lanes.items():
        for mark in lane.kinds(kind):
            xs.append(mark.index)
            level = mark.level if lanes.mode == "coord" else RAFT_LEVELS.get(kind, 0.5)
            ys.append(_level_y(row_of[sid], level))
            texts.append(f"<b>server{sid}</b> · event #{mark.index}<br>{mark.text}")
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        marker={
            "symbol": symbol,
            "color": colour,
            "size": size,
            "line": {"width": 2, "color": colour},
        },
        hovertext=texts,
        hoverinfo="text",
        name=name,
        legendgroup="marks",
        legendgrouptitle={"text": "what happened"},
        showlegend=bool(xs),
    )


def cursor_trace(at: int | None, rows: int) -> go.Scatter:
    """A vertical line just after event ``at`` (nothing when there is no cursor)."""
    x = [] if at is None else [at + 0.5, at + 0.5]
    return go.Scatter(
        x=x,
        y=[-0.5, rows - 0.5] if x else [],
        mode="lines",
        line={"color": CURSOR, "width": 2},
        hoverinfo="skip",
        name="cursor",
        showlegend=bool(x),
    )


# --- the right-hand column: now ---------------------------------------------------------------


def now_traces(
    lanes: Lanes, snap: Snapshot, row_of: dict[int, int], live: bool
) -> list[go.Scatter | go.Bar]:
    """Bar, labels and heartbeat ring of the right column (always these three traces)."""
    bars_x, bars_y, bar_colours, labels_x, labels_y, labels = [], [], [], [], [], []
    ring_x, ring_y, ring_colours, ring_text = [], [], [], []
    thresh = max(snap.lost_msgs_thresh or lanes.thresh, 1)
    for sid, row in row_of.items():
        view = snap.servers.get(sid) or ServerView(sid)  # a trace of the coord alone
        fraction, text, colour = _now(lanes.mode, view, snap, thresh, live)
        bars_x.append(fraction)
        bars_y.append(row + 0.08)
        bar_colours.append(colour)
        labels_x.append(0.02)
        labels_y.append(row + 0.33)
        labels.append(text)
        ring = snap.beats.get(sid, [])[-RING_SHOWN:]
        for k, (tick, ok, lost) in enumerate(ring):
            ring_x.append(1 - (len(ring) - k) / RING_SHOWN)
            ring_y.append(row - 0.3)
            ring_colours.append(ACK if ok else MISS)
            ring_text.append(
                f"coord tick {tick}: " + ("answered" if ok else f"lost ({lost} in a row)")
            )
    bar = go.Bar(
        x=bars_x,
        y=bars_y,
        orientation="h",
        marker={"color": bar_colours},
        width=0.22,
        hoverinfo="skip",
        name="now",
        showlegend=False,
    )
    text = go.Scatter(
        x=labels_x,
        y=labels_y,
        mode="text",
        text=labels,
        textposition="middle right",
        textfont={"size": 11, "family": FONT},
        hoverinfo="skip",
        showlegend=False,
        name="now (text)",
    )
    ring = go.Scatter(
        x=ring_x,
        y=ring_y,
        mode="markers",
        marker={"symbol": "square", "size": 7, "color": ring_colours},
        hovertext=ring_text,
        hoverinfo="text",
        showlegend=False,
        name="last heartbeats",
    )
    return [bar, text, ring]


def history_trace(history: TimerHistory | None, row_of: dict[int, int]) -> go.Scatter:
    """The sampled countdowns of the last ``history.span`` seconds, above each bar."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    texts: list[str | None] = []
    if history is not None and history.samples:
        end = history.samples[-1][0]
        for sid, row in row_of.items():
            for t, left in history.samples:
                ago = end - t
                if sid not in left or ago > history.span:
                    xs.append(None)  # a leader or a stopped server has no countdown
                    ys.append(None)
                    texts.append(None)
                    continue
                xs.append(1 - ago / history.span)
                ys.append(row - 0.12 - 0.28 * left[sid])
                texts.append(f"server{sid}, {ago:.1f} s ago: {left[sid]:.0%} of its timeout left")
            xs.append(None)
            ys.append(None)
            texts.append(None)
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": ROLE_COLOURS[FOLLOWER], "width": 1.5},
        hovertext=texts,
        hoverinfo="text",
        connectgaps=False,
        showlegend=False,
        name="timer left (sampled)",
    )


def _now(mode: str, view: Any, snap: Snapshot, thresh: int, live: bool) -> tuple[float, str, str]:
    """(bar length 0..1, label, colour) of one server in the right column."""
    if mode == "coord":  # the coord's belief, which lags a crash by up to thresh beats
        lost = snap.lost.get(view.sid, 0)
        text = f"lost {lost} of {thresh}" + (" (stopped)" if view.role == FAILED else "")
        return lost / thresh, text, MISS if lost else ACK
    if view.role == FAILED:
        return 0.0, "failed", "#BBBBBB"
    role = view.shown_role
    colour = ROLE_COLOURS.get(role, ROLE_COLOURS[FOLLOWER])
    if role == LEADER:
        return 1.0, f"leader T{view.term}: no election timer", colour
    if live and view.timeout:
        left = max(view.timeout - view.elapsed, 0)
        if view.tick_ms:
            ms = f"{left * view.tick_ms:.0f} of {view.timeout * view.tick_ms:.0f} ms left"
        else:
            ms = f"{left} of {view.timeout} ticks left"
        return left / view.timeout, f"{role} T{view.term}: {ms}", colour
    if view.timeout:
        return 1.0, f"{role} T{view.term}, timeout {view.timeout} ticks", colour
    return 1.0, f"{role} T{view.term}", colour


# --- layout ---------------------------------------------------------------------------------


def moments_signature(lanes: Lanes) -> str:
    """What changes the figure's story: roles, terms and every mark but the frequent
    timer resets, without event indices (a live window renumbers them). A panel that
    must replace a changed figure with a new widget (Voila) replaces this one only
    when the signature changes, not at every heartbeat."""
    parts = [lanes.mode, str(lanes.thresh)]
    for sid, lane in lanes.lanes.items():
        parts.append(f"{sid}:" + ",".join(f"{role}{term}" for _, role, term in lane.roles))
        parts += [f"{sid}:{m.kind}:{m.text}" for m in lane.marks if m.kind not in QUIET]
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def _title(lanes: Lanes, snap: Snapshot, live: bool) -> str:
    if lanes.mode == "raft":
        text = "Election timers (raft mode): reset by the leader's AppendEntries and by votes"
    else:
        thresh = snap.lost_msgs_thresh or lanes.thresh or "LostMsgsThresh"
        text = f"The coord's failure detector: heartbeats lost in a row, failed at {thresh}"
    if snap.name:
        text = f"{snap.name}: {text}"
    if snap.at is not None:
        text += f"<br><sup>after event {snap.event}</sup>"
    elif live:
        text += "<br><sup>the last events; right: now</sup>"
    return text


def _layout(
    fig: go.Figure, lanes: Lanes, rows: list[int], at: int | None, window: int | None, title: str
) -> None:
    n = max(len(rows), 1)
    last = max(lanes.last, 0)
    lo = -1.0
    if window is not None and last + 1 > window:
        centre = last if at is None else at
        lo = float(min(max(-1, centre - window // 2), last + 1 - window))
    hi = lo + window if window is not None and last + 1 > window else last + 1.0
    hi += (hi - lo) * 0.02  # room for a mark on the last event
    fig.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 16}},
        height=230 + LANE_PX * n,
        autosize=True,
        template="plotly_white",
        font={"family": FONT},
        margin={"l": 90, "r": 20, "t": 80, "b": 60},
        legend={"orientation": "h", "yanchor": "top", "y": -70 / (LANE_PX * n + 20), "x": 0},
        hoverlabel={"align": "left"},
        uirevision="timers",
        dragmode="pan",
        bargap=0.5,
        meta={"mode": lanes.mode, "servers": rows, "signature": moments_signature(lanes)},
    )
    fig.update_xaxes(
        title={"text": "event (happened-before order)"},
        range=[lo, hi],
        showgrid=False,
        zeroline=False,
        row=1,
        col=1,
    )
    fig.update_xaxes(
        title={"text": "now" if at is None else "at the cursor"},
        range=[0, 1.0],
        visible=True,
        showticklabels=False,
        showgrid=False,
        zeroline=False,
        fixedrange=True,
        row=1,
        col=2,
    )
    fig.update_yaxes(
        range=[n - 0.5, -0.5],
        tickvals=list(range(n)),
        ticktext=[f"<b>server{sid}</b>" for sid in rows],
        showgrid=False,
        zeroline=False,
        fixedrange=True,
        row=1,
        col=1,
    )
