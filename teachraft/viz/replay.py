"""Rebuild snapshots of a run from its trace events, at any event index.

A trace records what happened, not the state, so the state is replayed:

- roles from ``BecameLeader`` / ``BecameFollower``, failures from the coord's
  ``ServerFail`` (the Go original's only record of a crash) or from teachraft's
  ``FaultInjected{Kind:"fail"}``, restarts from ``ServerRestart``;
- each server's log from the ``Entries`` of ``AppendEntriesRequestSent`` (the
  leader) and ``AppendEntriesRequestRecvd`` (a follower, with Raft's consistency
  check and conflict rule), commit indexes from ``LeaderCommit`` and from
  ``PutCommitted`` / ``GetCommitted``;
- compaction from ``SnapshotTaken`` (the entries up to LastIncludedIndex leave
  that server's log) and ``SnapshotInstalled`` (a follower keeps the entries
  after LastIncludedIndex only if it held that index in LastIncludedTerm, else
  its whole log goes; its commit index becomes at least LastIncludedIndex);
  a server's log is its kept entries, addressed by their Raft indexes;
- terms from AppendEntries and InstallSnapshot terms and ``LeaderFailOver``;
- in raft mode, candidates from ``BecamePreCandidate`` / ``BecameCandidate``,
  leaders and their votes from ``LeaderElected``, votes a candidate holds from
  ``RequestVoteResponseRecvd``, step-downs from ``SteppedDown``, election
  timeouts from ``ElectionTimerReset`` / ``ElectionTimeout``;
- the coord's lost-heartbeat counts from ``HeartbeatMissed`` / ``HeartbeatAcked``;
- link faults by replaying ``FaultInjected`` / ``FaultHealed`` into a
  :class:`~teachraft.net.faults.FaultFilter`, and message counts from the
  token pairs of the event table.

The trace does not record applies, so a replayed ``last_applied`` equals the
commit index. ``Replay`` keeps a checkpoint every few hundred events, so a time
cursor can jump anywhere in a 20,000-event run without replaying it all.
"""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from teachraft.core.log import Entry
from teachraft.net.faults import FaultFilter
from teachraft.tracing.events import RECEIVE, Event, EventTable
from teachraft.viz.labels import as_dict, summary
from teachraft.viz.state import (
    LinkView,
    ServerView,
    Snapshot,
    mark_partitioned,
    raft_leader,
    server_id,
)
from teachraft.viz.style import (
    CANDIDATE,
    FAILED,
    FOLLOWER,
    LEADER,
    PAUSED,
    PRE_CANDIDATE,
)

log = logging.getLogger(__name__)
CHECKPOINT_EVERY = 256
NETWORK_FAULTS = ("partition", "cut", "uncut", "drop", "delay")
RAFT_TAGS = frozenset(
    {
        "BecamePreCandidate",
        "BecameCandidate",
        "LeaderElected",
        "ElectionTimeout",
        "ElectionTimerReset",
        "RequestVoteRequestSent",
    }
)
"""Tags only raft mode records: a trace holding one is a run without a coord."""


@dataclass(slots=True)
class _Server:
    role: str = FOLLOWER
    term: int = 0
    leader: int = 0
    commit: int = 0
    log: list[Entry] = field(default_factory=list)
    """The kept entries: ``log[k]`` has Raft index ``snapshot_index + 1 + k``."""
    snapshot_index: int = 0
    snapshot_term: int = 0
    stopped: bool = False
    paused: bool = False
    votes: frozenset[int] = frozenset()
    pre_votes: frozenset[int] = frozenset()
    timeout: int = 0

    @property
    def last_index(self) -> int:
        return self.snapshot_index + len(self.log)

    def term_at(self, index: int) -> int | None:
        """The term at Raft ``index``: the snapshot's at its last index, None if unknown."""
        if index == self.snapshot_index:
            return self.snapshot_term
        pos = index - self.snapshot_index - 1
        return self.log[pos].term if 0 <= pos < len(self.log) else None

    def matches(self, index: int, term: int) -> bool:
        """AppendEntries' consistency check: does the log hold ``index`` in ``term``?

        An index inside the snapshot matches: only committed entries are
        compacted, and a committed entry is the same on every log.
        """
        if index <= self.snapshot_index:
            return True
        return self.term_at(index) == term

    def merge(self, entries: list[Entry]) -> None:
        """Raft's AppendEntries rules 3 and 4: drop a conflicting suffix, append what is new."""
        for entry in entries:
            if entry.index <= self.snapshot_index:
                continue  # already in the snapshot
            pos = entry.index - self.snapshot_index - 1
            if pos > len(self.log):
                return  # a gap: the earlier entries are not in this trace
            if pos < len(self.log):
                if self.log[pos].term == entry.term:
                    continue
                del self.log[pos:]
            self.log.append(entry)

    def compact(self, index: int, term: int) -> None:
        """SnapshotTaken: the entries up to and including ``index`` leave the log."""
        if index <= self.snapshot_index:
            return
        del self.log[: index - self.snapshot_index]
        self.snapshot_index, self.snapshot_term = index, term
        self.commit = max(self.commit, index)

    def install(self, index: int, term: int) -> None:
        """SnapshotInstalled: keep the entries after ``index`` only if the log agrees there."""
        if index <= self.snapshot_index:
            return
        if self.term_at(index) == term:
            del self.log[: index - self.snapshot_index]
        else:
            self.log.clear()
        self.snapshot_index, self.snapshot_term = index, term
        self.commit = max(self.commit, index)


@dataclass(slots=True)
class _State:
    """The replayed state after some prefix of the events."""

    servers: dict[int, _Server] = field(default_factory=dict)
    nodes: dict[str, None] = field(default_factory=dict)
    faults: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    coord_term: int = 0
    coord_leader: int = 0
    selecting: bool = False
    traced_faults: bool = False
    raft: bool = False
    coord_failed: bool = False
    lost: dict[int, int] = field(default_factory=dict)
    lost_msgs_thresh: int = 0

    def server(self, sid: int) -> _Server:
        srv = self.servers.get(sid)
        if srv is None:
            srv = self.servers[sid] = _Server()
            self.nodes.setdefault(f"server{sid}", None)
        return srv

    def clone(self) -> _State:
        twin = copy.copy(self)
        twin.servers = {sid: _clone_server(s) for sid, s in self.servers.items()}
        twin.nodes = dict(self.nodes)
        twin.faults = list(self.faults)
        twin.counts = Counter(self.counts)
        twin.lost = dict(self.lost)
        return twin


def _clone_server(srv: _Server) -> _Server:
    twin = copy.copy(srv)
    twin.log = list(srv.log)
    return twin


class Replay:
    """Snapshots of a traced run at any event index (``at(i)``: after event ``i``)."""

    def __init__(self, table: EventTable, name: str = "", every: int = CHECKPOINT_EVERY) -> None:
        self.table = table
        self.name = name
        self.every = max(1, every)
        self._checkpoints: list[_State] = [_State()]  # state before event k * every

    def __len__(self) -> int:
        return len(self.table)

    def at(self, index: int | None = None) -> Snapshot:
        """The snapshot after event ``index`` (the last event when None; -1: before any)."""
        last = len(self.table) - 1
        index = last if index is None else max(-1, min(index, last))
        state = self._state_before(index + 1)
        return self._snapshot(state, index)

    def _state_before(self, stop: int) -> _State:
        """The state after events [0, stop), from the nearest checkpoint."""
        self._extend_checkpoints(stop)
        slot = min(stop // self.every, len(self._checkpoints) - 1)
        state = self._checkpoints[slot].clone()
        for i in range(slot * self.every, stop):
            apply_event(state, self.table[i], self.table)
        return state

    def _extend_checkpoints(self, stop: int) -> None:
        want = min(stop, len(self.table)) // self.every
        while len(self._checkpoints) <= want:
            start = (len(self._checkpoints) - 1) * self.every
            state = self._checkpoints[-1].clone()
            for i in range(start, start + self.every):
                apply_event(state, self.table[i], self.table)
            self._checkpoints.append(state)

    def _snapshot(self, state: _State, index: int) -> Snapshot:
        servers = {
            sid: ServerView(
                sid=sid,
                role=_role(srv),
                term=srv.term,
                leader=srv.leader,
                commit_index=min(srv.commit, srv.last_index),
                last_applied=min(srv.commit, srv.last_index),
                log=list(srv.log),
                snapshot_index=srv.snapshot_index,
                snapshot_term=srv.snapshot_term,
                votes=sorted(srv.votes),
                pre_votes=sorted(srv.pre_votes),
                timeout=srv.timeout,
            )
            for sid, srv in sorted(state.servers.items())
        }
        nodes = _node_order(state.nodes, coord=not state.raft or "coord" in state.nodes)
        snap = Snapshot(
            servers=servers,
            nodes=nodes,
            links=_links(state, nodes),
            leader=state.coord_leader,
            term=state.coord_term,
            source="trace",
            at=index,
            event=summary(self.table[index]) if index >= 0 else "before the first event",
            name=self.name,
            election="raft" if state.raft else "coord",
            lost=dict(state.lost),
            lost_msgs_thresh=state.lost_msgs_thresh,
            coord_failed=state.coord_failed,
        )
        if state.raft:
            raft_leader(snap)
        mark_partitioned(snap)
        return snap


def _role(srv: _Server) -> str:
    if srv.stopped:
        return FAILED
    if srv.paused:
        return PAUSED
    return srv.role


def _node_order(nodes: dict[str, None], coord: bool = True) -> list[str]:
    """The deployment's nodes in drawing order (no coord in a raft-mode run)."""
    servers = sorted(
        (n for n in nodes if server_id(n) is not None), key=lambda n: server_id(n) or 0
    )
    clients = sorted(n for n in nodes if n.startswith("client"))
    rest = [n for n in nodes if n not in servers and n not in clients and n != "coord"]
    return ["tracing", *(["coord"] if coord else []), *servers, *clients, *sorted(rest)]


def _links(state: _State, nodes: list[str]) -> dict[tuple[str, str], LinkView]:
    faults = FaultFilter()
    for kind, details in state.faults:
        _apply_fault(faults, kind, details)
    links: dict[tuple[str, str], LinkView] = {}
    for (src, dst), n in state.counts.items():
        links[(src, dst)] = LinkView(sent=n, received=n)
    if faults.active:
        for a in nodes:
            for b in nodes:
                if a != b and (st := faults.link_state(a, b)) != "up":
                    links.setdefault((a, b), LinkView()).state = st
    return links


def _apply_fault(faults: FaultFilter, kind: str, details: dict[str, Any]) -> None:
    """Replay one recorded network fault on a FaultFilter (bad details are skipped)."""
    try:
        if kind == "partition":
            faults.partition(*details.get("groups", []))
        elif kind in ("cut", "uncut"):
            method = faults.cut if kind == "cut" else faults.uncut
            method(str(details["a"]), str(details["b"]), bool(details.get("one_way")))
        elif kind == "drop":
            faults.drop(str(details["a"]), str(details["b"]), float(details["p"]))
        elif kind == "delay":
            faults.delay(
                str(details["a"]),
                str(details["b"]),
                float(details["mean"]),
                float(details["jitter"]),
            )
        elif kind == "heal":
            faults.heal()
    except (KeyError, TypeError, ValueError) as exc:
        log.debug("skipping a fault that cannot be replayed (%s %r): %s", kind, details, exc)


def parse_detail(text: Any) -> dict[str, Any]:
    """The details dict of a ``FaultInjected`` (its ``Detail`` is a JSON object)."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.startswith("{"):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- applying one event ------------------------------------------------------------


def apply_event(state: _State, event: Event, table: EventTable) -> None:
    """Advance the replayed state by one event."""
    host = event.host
    if host != "cluster":
        state.nodes.setdefault(host, None)
    sid = server_id(host)
    if sid is not None:
        state.server(sid)
    handler = _HANDLERS.get(event.tag)
    if event.tag in RAFT_TAGS:
        state.raft = True
    if handler is not None:
        try:
            handler(state, event, sid)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            log.debug("event #%d (%s) has an unexpected body: %s", event.index, event.tag, exc)
    if event.tag == RECEIVE and event.partner is not None and 0 <= event.partner < len(table):
        sender = table[event.partner].host
        state.counts[(sender, host)] += 1


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"not a number: {value!r}")
    return int(value)


def _entries(body: dict[str, Any]) -> list[Entry]:
    out = []
    for item in body.get("Entries") or ():
        item = as_dict(item)
        command = as_dict(item.get("Command"))
        info = as_dict(command.get("ClientInfo"))
        out.append(
            Entry(
                term=_int(item.get("Term", 0)),
                index=_int(item.get("Index", 0)),
                kind=_int(command.get("Kind", 0)),
                key=str(command.get("Key", "")),
                value=str(command.get("Val", "")),
                client_id=str(info.get("ClientId", "")),
                op_id=_int(info.get("OpId", 0)),
            )
        )
    return out


def _ae_sent(state: _State, event: Event, sid: int | None) -> None:
    if sid is None:
        return
    srv = state.server(sid)
    body = event.body
    srv.term = max(srv.term, _int(body.get("Term", 0)))
    srv.leader = sid
    srv.merge(_entries(body))
    srv.commit = max(srv.commit, min(_int(body.get("LeaderCommit", 0)), srv.last_index))


def _ae_recvd(state: _State, event: Event, sid: int | None) -> None:
    if sid is None:
        return
    srv = state.server(sid)
    body = event.body
    term = _int(body.get("Term", 0))
    if term < srv.term:
        return
    srv.term = term
    srv.leader = _int(body.get("LeaderId", srv.leader))
    prev = _int(body.get("PrevLogIndex", 0))
    if prev > srv.last_index or not srv.matches(prev, _int(body.get("PrevLogTerm", 0))):
        return  # the follower rejects this AppendEntries
    entries = _entries(body)
    srv.merge(entries)
    last_new = prev + len(entries)
    srv.commit = max(srv.commit, min(_int(body.get("LeaderCommit", 0)), last_new, srv.last_index))


# --- snapshots and log compaction (Raft paper section 7) ------------------------------


def _snapshot_taken(state: _State, event: Event, sid: int | None) -> None:
    body = event.body
    srv = state.server(_int(body.get("ServerId", sid or 0)))
    srv.compact(_int(body.get("LastIncludedIndex", 0)), _int(body.get("LastIncludedTerm", 0)))


def _snapshot_installed(state: _State, event: Event, sid: int | None) -> None:
    body = event.body
    srv = state.server(_int(body.get("ServerId", sid or 0)))
    srv.install(_int(body.get("LastIncludedIndex", 0)), _int(body.get("LastIncludedTerm", 0)))


def _install_sent(state: _State, event: Event, sid: int | None) -> None:
    if sid is not None:
        srv = state.server(sid)
        srv.term = max(srv.term, _int(event.body.get("Term", 0)))
        srv.leader = sid


def _install_recvd(state: _State, event: Event, sid: int | None) -> None:
    if sid is None:
        return
    srv = state.server(sid)
    term = _int(event.body.get("Term", 0))
    if term >= srv.term:
        srv.term = term
        srv.leader = _int(event.body.get("LeaderId", srv.leader))


def _committed(state: _State, event: Event, sid: int | None) -> None:
    if sid is None:
        return
    srv = state.server(sid)
    client, op = str(event.body.get("ClientId", "")), _int(event.body.get("OpId", 0))
    for entry in reversed(srv.log):
        if entry.client_id == client and entry.op_id == op:
            srv.commit = max(srv.commit, entry.index)
            return


def _became_leader(state: _State, event: Event, sid: int | None) -> None:
    sid = _int(event.body.get("ServerId", sid or 0))
    srv = state.server(sid)
    srv.role = LEADER
    srv.leader = sid
    if state.raft:  # the term came with LeaderElected; no coord's term to follow
        if srv.term >= state.coord_term:
            state.coord_term, state.coord_leader = srv.term, sid
        return
    state.coord_term = max(state.coord_term, 1)
    srv.term = max(srv.term, state.coord_term)
    if not state.selecting:
        state.coord_leader = sid


def _became_follower(state: _State, event: Event, sid: int | None) -> None:
    sid = _int(event.body.get("ServerId", sid or 0))
    srv = state.server(sid)
    srv.role = FOLLOWER
    srv.votes = srv.pre_votes = frozenset()
    if state.raft and state.coord_leader == sid:
        state.coord_leader = 0


# --- raft mode: elections --------------------------------------------------------------


def _campaign(role: str) -> Any:
    def handler(state: _State, event: Event, sid: int | None) -> None:
        srv = state.server(_int(event.body.get("ServerId", sid or 0)))
        srv.role = role
        srv.term = max(srv.term, _int(event.body.get("Term", 0)))
        own = server_id(event.host)
        mine = frozenset({own}) if own is not None else frozenset()
        srv.votes = mine if role == CANDIDATE else frozenset()
        srv.pre_votes = mine if role == PRE_CANDIDATE else frozenset()
        if state.coord_leader == own:
            state.coord_leader = 0

    return handler


def _elected(state: _State, event: Event, sid: int | None) -> None:
    leader = _int(event.body.get("ServerId", sid or 0))
    srv = state.server(leader)
    term = _int(event.body.get("Term", 0))
    srv.role = LEADER
    srv.leader = leader
    srv.term = max(srv.term, term)
    srv.votes = frozenset(_int(v) for v in event.body.get("Votes") or ())
    if term >= state.coord_term:
        state.coord_term = term
        state.coord_leader = leader


def _vote_recvd(state: _State, event: Event, sid: int | None) -> None:
    body = event.body
    if sid is None or not body.get("VoteGranted"):
        return
    srv = state.server(sid)
    voter = _int(body.get("VoterId", 0))
    if body.get("PreVote"):  # granted for the term after the pre-candidate's own
        if srv.role == PRE_CANDIDATE and _int(body.get("Term", 0)) == srv.term + 1:
            srv.pre_votes = srv.pre_votes | {voter}
    elif srv.role == CANDIDATE and _int(body.get("Term", 0)) == srv.term:
        srv.votes = srv.votes | {voter}


def _vote_sent(state: _State, event: Event, sid: int | None) -> None:
    if sid is not None and not event.body.get("PreVote"):
        srv = state.server(sid)
        srv.term = max(srv.term, _int(event.body.get("Term", 0)))


def _stepped_down(state: _State, event: Event, sid: int | None) -> None:
    down = _int(event.body.get("ServerId", sid or 0))
    srv = state.server(down)
    srv.role = FOLLOWER
    srv.votes = srv.pre_votes = frozenset()
    srv.term = max(srv.term, _int(event.body.get("Term", 0)))
    if state.coord_leader == down:
        state.coord_leader = 0


def _timer(state: _State, event: Event, sid: int | None) -> None:
    srv = state.server(_int(event.body.get("ServerId", sid or 0)))
    srv.term = max(srv.term, _int(event.body.get("Term", 0)))
    srv.timeout = _int(event.body.get("Timeout", srv.timeout))


# --- coord mode: the failure detector ------------------------------------------------


def _missed(state: _State, event: Event, sid: int | None) -> None:
    state.lost[_int(event.body.get("ServerId", 0))] = _int(event.body.get("Lost", 0))
    state.lost_msgs_thresh = _int(event.body.get("LostMsgsThresh", state.lost_msgs_thresh))


def _acked(state: _State, event: Event, sid: int | None) -> None:
    state.lost[_int(event.body.get("ServerId", 0))] = 0


def _server_fail(state: _State, event: Event, sid: int | None) -> None:
    failed = _int(event.body.get("ServerId", 0))
    if failed == state.coord_leader:
        state.coord_leader = 0
    if not state.traced_faults:  # the Go original records a crash only this way
        state.server(failed).stopped = True


def _failover(state: _State, event: Event, sid: int | None) -> None:
    term = event.body.get("Term")
    state.coord_term = _int(term) if term is not None else state.coord_term + 1
    state.coord_leader = 0
    state.selecting = True


def _reconfig_done(state: _State, event: Event, sid: int | None) -> None:
    state.coord_leader = _int(event.body.get("ServerId", 0))
    state.selecting = False


def _leader_res(state: _State, event: Event, sid: int | None) -> None:
    leader = _int(event.body.get("ServerId", 0))
    if leader and not state.selecting:
        state.coord_leader = leader


def _server_log_state(state: _State, event: Event, sid: int | None) -> None:
    srv = state.server(_int(event.body.get("ServerId", sid or 0)))
    srv.term = max(srv.term, _int(event.body.get("Term", 0)))


def _restart(state: _State, event: Event, sid: int | None) -> None:
    srv = state.server(_int(event.body.get("ServerId", sid or 0)))
    srv.stopped = False
    srv.paused = False
    srv.role = FOLLOWER


def _fault(state: _State, event: Event, sid: int | None) -> None:
    state.traced_faults = True
    kind = str(event.body.get("Kind", ""))
    nodes = [str(n) for n in event.body.get("Nodes") or ()]
    for node in nodes:
        state.nodes.setdefault(node, None)
    if kind in NETWORK_FAULTS:
        state.faults.append((kind, parse_detail(event.body.get("Detail"))))
        return
    for node in nodes:
        node_sid = server_id(node)
        if node == "coord" and kind == "fail":
            state.coord_failed = True
        if node_sid is None:
            continue
        srv = state.server(node_sid)
        if kind in ("fail", "crash", "stop"):
            srv.stopped = True
        elif kind == "pause":
            srv.paused = True
        elif kind in ("resume", "restart"):
            srv.paused = False
            srv.stopped = srv.stopped and kind != "restart"


def _healed(state: _State, event: Event, sid: int | None) -> None:
    state.traced_faults = True
    kind = str(event.body.get("Kind", ""))
    if kind == "heal":
        state.faults.append(("heal", {}))
        return
    for node in event.body.get("Nodes") or ():
        node_sid = server_id(str(node))
        if node_sid is not None:
            srv = state.server(node_sid)
            srv.paused = False
            if kind in ("fail", "restart"):
                srv.stopped = False


_HANDLERS: dict[str, Any] = {
    "AppendEntriesRequestSent": _ae_sent,
    "AppendEntriesRequestRecvd": _ae_recvd,
    "PutCommitted": _committed,
    "GetCommitted": _committed,
    "BecameLeader": _became_leader,
    "BecameFollower": _became_follower,
    "ServerFail": _server_fail,
    "LeaderFailOver": _failover,
    "LeaderReconfigDone": _reconfig_done,
    "LeaderRes": _leader_res,
    "ServerLogState": _server_log_state,
    "ServerRestart": _restart,
    "FaultInjected": _fault,
    "FaultHealed": _healed,
    "BecamePreCandidate": _campaign(PRE_CANDIDATE),
    "BecameCandidate": _campaign(CANDIDATE),
    "LeaderElected": _elected,
    "RequestVoteResponseRecvd": _vote_recvd,
    "RequestVoteResponseSent": _vote_sent,
    "SteppedDown": _stepped_down,
    "ElectionTimerReset": _timer,
    "ElectionTimeout": _timer,
    "HeartbeatMissed": _missed,
    "HeartbeatAcked": _acked,
    "SnapshotTaken": _snapshot_taken,
    "SnapshotInstalled": _snapshot_installed,
    "InstallSnapshotRequestSent": _install_sent,
    "InstallSnapshotRequestRecvd": _install_recvd,
}
