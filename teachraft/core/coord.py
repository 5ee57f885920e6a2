"""The KVRaft coord as a pure state machine: join, failure decisions, leader selection.

The coord replaces Raft's elections. It admits servers, watches their
heartbeats, and when the leader fails it chooses the next one:

1. **Fence.** It raises the term and sends ``ServerLogStateRequest(term)`` to
   every live server. A server that adopts the new term rejects the old
   leader's AppendEntries from then on.
2. **Read.** Only when a *majority of all servers* answered at the new term does
   it compare their log states (last term, then last index) and pick the most
   up-to-date. Since any committed entry is on a majority, and that majority
   shares a member with the fenced one, the chosen log holds every committed
   entry: this closes the original's hole, where a leader cut off from the
   coord but not from its followers could keep committing entries that the
   next leader then overwrote. ``unsafe_leader_selection`` reopens it, for
   lessons.
3. **Notify.** ``LeaderFailOver`` to the winner, which appends its No-Op; then
   the new leader is pushed to every client (``ChangeLeaderNode``).

The phases and every allowed change between them are in ``TRANSITIONS``;
``Coord._enter`` is the one method that changes the phase. A selection is two
phases: ``FENCING`` (steps 1 and 2) and ``NOTIFYING`` (step 3, ``chosen`` is
the server picked).

Failure detection comes from heartbeat results fed in by the host: a server is
failed after ``lost_msgs_thresh`` consecutive losses, and put back into the
view when it answers again. The coord keeps the last ``BEATS_KEPT`` results
per server (``beats``, stamped with its own tick count) and traces each miss
until it declares the failure (``HeartbeatMissed``) and the ack that ends a run
of misses (``HeartbeatAcked``), so the timers figure can show the failure
detector at work, live and replayed. With fewer than a majority alive the coord is in
an explicit no-quorum state that clients see as a clear error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

from teachraft.core.effects import Effect, Reply, Send, Watch
from teachraft.core.machine import NotServed
from teachraft.core.messages import (
    ClusterView,
    FailOverDone,
    GetLeader,
    JoinResponse,
    LeaderFailOver,
    LeaderInfo,
    Message,
    ServerJoin,
    ServerJoined,
    ServerLogState,
    ServerLogStateRequest,
)
from teachraft.core.server import server_name
from teachraft.core.tracelike import TracerLike
from teachraft.tracing import actions as A

BEATS_KEPT = 64
"""Heartbeat results kept per server for the figures (a ring: memory stays bounded)."""


class Phase(str, Enum):
    """The coord's phase; a ``str`` so that status views and tests read it as text."""

    JOINING = "joining"
    """Servers are joining; the lowest id leads term 1 once all of them did."""
    SERVING = "serving"
    """A leader serves clients."""
    FENCING = "fencing"
    """Selection steps 1 and 2: the term is raised, live servers are fenced and read."""
    NOTIFYING = "notifying"
    """Selection step 3: ``LeaderFailOver`` to the chosen server, until it confirms."""
    NO_QUORUM = "no quorum"
    """Fewer than a majority of servers are alive; clients get a clear error."""


JOINING, SERVING, FENCING, NOTIFYING, NO_QUORUM = (
    Phase.JOINING,
    Phase.SERVING,
    Phase.FENCING,
    Phase.NOTIFYING,
    Phase.NO_QUORUM,
)
SELECTING = frozenset({FENCING, NOTIFYING})
"""The two phases of a leader selection."""

TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    JOINING: frozenset({SERVING}),
    SERVING: frozenset({FENCING, NO_QUORUM}),
    FENCING: frozenset({FENCING, NOTIFYING, NO_QUORUM}),
    NOTIFYING: frozenset({FENCING, SERVING, NO_QUORUM}),
    NO_QUORUM: frozenset({SERVING, FENCING}),
}
"""Every phase change the coord may make; ``Coord._enter`` refuses any other.

FENCING to FENCING is a selection that starts over (a stall, a fenced term
above the coord's); NOTIFYING to FENCING is the chosen server dying before it
confirmed; SERVING to NO_QUORUM is a new leader taking over after too many
servers failed.
"""


class CoordStateError(RuntimeError):
    """A phase change outside ``TRANSITIONS``: a bug in the coord, never a user error."""


class CoordConfigError(ValueError):
    """NumServers or LostMsgsThresh is not what KVRaft allows."""


@dataclass(slots=True)
class CoordOptions:
    """Tunables of the coord, counted in ticks of the host's heartbeat interval."""

    num_servers: int = 5
    lost_msgs_thresh: int = 3
    selection_timeout_ticks: int = 10
    unsafe_leader_selection: bool = False


@dataclass(slots=True)
class Heartbeat:
    """A local input: one heartbeat result from the host's failure detector."""

    server_id: int
    ok: bool


@dataclass(slots=True)
class ServerRecord:
    """What the coord knows about one server."""

    server_id: int
    server_addr: str
    heartbeat_addr: str
    client_addr: str
    lost: int = 0
    alive: bool = True


@dataclass
class Coord:
    """The coord. ``tracer`` is a teachraft Tracer or NullTracer."""

    tracer: TracerLike
    options: CoordOptions = field(default_factory=CoordOptions)

    def __post_init__(self) -> None:
        n = self.options.num_servers
        if n % 2 == 0 or not 3 <= n <= 7:
            raise CoordConfigError(f"NumServers must be odd and between 3 and 7, not {n}")
        if self.options.lost_msgs_thresh < 1:
            raise CoordConfigError("LostMsgsThresh must be at least 1")
        self.tracing = self.tracer.enabled
        self.phase: Phase = JOINING
        self.term = 0
        self.leader = 0
        self.leader_term = 0
        """The term in which ``leader`` confirmed it leads; below ``term`` once a
        selection began, which may have fenced the leader itself."""
        self.servers: dict[int, ServerRecord] = {}
        self.join_waiters: dict[int, tuple[Any, Any]] = {}
        self.joined_acks: set[int] = set()
        self.leader_waiters: list[tuple[Any, GetLeader, Any]] = []
        self.clients: dict[str, str] = {}
        self.fenced: dict[int, ServerLogState] = {}
        self.chosen = 0
        self.failed_leader = 0
        self.selection_ticks = 0
        self.outbox: list[Effect] = []
        self.history: list[tuple[str, dict[str, Any]]] = []
        self.ticks = 0
        """Ticks since start: the clock the heartbeat ring is stamped with."""
        self.beats: dict[int, deque[tuple[int, bool, int]]] = {}
        """Per server, its last heartbeat results as ``(tick, ok, lost after it)``."""
        self._steps: dict[type, Callable[[Any], None]] = {
            ServerJoined: self.server_joined,
            ServerLogState: self.log_state,
            FailOverDone: self.failover_done,
        }

    def step(self, msg: Message | Heartbeat, responder: Any = None) -> None:
        """Feed one input in: a message (a request with its ``responder``) or a Heartbeat."""
        if isinstance(msg, Heartbeat):
            self.heartbeat(msg.server_id, msg.ok)
        elif isinstance(msg, ServerJoin):
            if responder is not None:
                self.server_join(msg, responder)
        elif isinstance(msg, GetLeader):
            if responder is not None:
                self.get_leader(msg, responder)
        else:
            handler = self._steps.get(type(msg))
            if handler is None:
                raise NotServed(f"the coord does not serve {type(msg).__name__}")
            handler(msg)

    def flush(self) -> None:
        """Nothing is batched in the coord; here so that every machine drains alike."""

    def start(self) -> None:
        """CoordStart: the host calls this once its sockets are bound."""
        trace = self.tracer.create_trace()
        if self.tracing:
            trace.record_action(A.CoordStart())

    def _trace(self, token: bytes) -> Any:
        """The trace a message continues: its token's, or a fresh one when it has none."""
        return self.tracer.receive_token(token) if token else self.tracer.create_trace()

    def take(self) -> list[Effect]:
        out, self.outbox = self.outbox, []
        return out

    def _enter(self, phase: Phase) -> None:
        """The one place the phase changes, checked against ``TRANSITIONS``."""
        if phase not in TRANSITIONS[self.phase]:
            raise CoordStateError(f"coord: no transition from {self.phase.value} to {phase.value}")
        self.phase = phase

    # ------------------------------------------------------------------ views
    @property
    def majority(self) -> int:
        return self.options.num_servers // 2 + 1

    @property
    def view(self) -> list[int]:
        """The cluster view: ids of servers believed alive, ascending."""
        return sorted(s.server_id for s in self.servers.values() if s.alive)

    def _peers(self) -> list[tuple[int, str]]:
        return [(s.server_id, s.server_addr) for s in sorted(self.servers.values(), key=_by_id)]

    def _note(self, kind: str, **details: Any) -> None:
        """Keep a small history of decisions for status() and the figures."""
        self.history.append((kind, details))

    # ------------------------------------------------------------------- join
    def server_join(self, req: ServerJoin, responder: Any) -> None:
        """RequestServerJoin: queue until NumServers arrived; answer late joiners at once."""
        trace = self._trace(req.token)
        if self.tracing:
            trace.record_action(A.ServerJoiningRecvd(ServerId=req.server_id))
        rec = ServerRecord(req.server_id, req.server_addr, req.heartbeat_addr, req.client_addr)
        known = req.server_id in self.servers
        if not known and len(self.servers) >= self.options.num_servers:
            self.outbox.append(Reply(responder, _refusal(req.server_id, trace)))
            return
        self.servers[req.server_id] = rec
        self.outbox.append(Watch(req.server_id, req.heartbeat_addr))
        if self.phase == JOINING:
            self.join_waiters[req.server_id] = (responder, trace)
            if len(self.servers) == self.options.num_servers:
                self._complete_join()
            return
        # A restarted server rejoins a running cluster. It counts as alive again only
        # once its heartbeats are answered; a restarted leader is a failed leader.
        rec.alive = False
        self._note("restart", server=req.server_id)
        leader = self.leader
        if req.server_id == self.leader or self.phase != SERVING:
            leader = 0
        resp = JoinResponse(req.server_id, leader, self._peers(), self.term, trace.generate_token())
        self.outbox.append(Reply(responder, resp))
        if req.server_id == self.leader and self.phase == SERVING:
            self._start_selection(req.server_id)

    def _complete_join(self) -> None:
        """All servers are here: the lowest id leads term 1."""
        self.term = 1
        self.leader = min(self.servers)
        self.leader_term = 1
        peers = self._peers()
        for sid in sorted(self.join_waiters):
            responder, trace = self.join_waiters[sid]
            token = trace.generate_token()
            self.outbox.append(Reply(responder, JoinResponse(sid, self.leader, peers, 1, token)))
        self.join_waiters.clear()
        self._note("joined", leader=self.leader, term=1)

    def server_joined(self, msg: ServerJoined) -> None:
        """A server applied its JoinResponse; after the last one, AllServersJoined."""
        trace = self._trace(msg.token)
        if self.tracing:
            trace.record_action(A.ServerJoinedRecvd(ServerId=msg.server_id))
        if self.phase != JOINING:
            return
        self.joined_acks.add(msg.server_id)
        if len(self.joined_acks) == self.options.num_servers:
            self._enter(SERVING)
            if self.tracing:
                trace.record_action(A.AllServersJoined())
            self._answer_leader_waiters()

    # ---------------------------------------------------------------- clients
    def get_leader(self, req: GetLeader, responder: Any) -> None:
        """GetLeaderNode: answer with the leader, or wait until the join/selection is done."""
        trace = self._trace(req.token)
        if self.tracing:
            trace.record_action(A.LeaderReqRecvd(ClientId=req.client_id))
        if req.client_addr:
            self.clients[req.client_id] = req.client_addr
        if self.phase == JOINING or self.phase in SELECTING:
            self.leader_waiters.append((responder, req, trace))
            return
        self.outbox.append(Reply(responder, self._leader_info(req.client_id, trace)))

    def _leader_info(self, client_id: str, trace: Any) -> LeaderInfo:
        if self.phase == NO_QUORUM:
            alive = len(self.view)
            error = (
                f"no quorum: {alive} of {self.options.num_servers} servers are alive, "
                f"{self.majority} are needed"
            )
            return LeaderInfo(0, None, self.term, error, trace.generate_token())
        if self.tracing:
            trace.record_action(A.LeaderRes(ClientId=client_id, ServerId=self.leader))
        addr = self.servers[self.leader].client_addr
        return LeaderInfo(self.leader, addr, self.term, "", trace.generate_token())

    def _answer_leader_waiters(self) -> None:
        waiters, self.leader_waiters = self.leader_waiters, []
        for responder, req, trace in waiters:
            self.outbox.append(Reply(responder, self._leader_info(req.client_id, trace)))

    def _push_leader(self) -> None:
        """ChangeLeaderNode: tell every known client who leads now (or that no quorum is left)."""
        for client_id, addr in self.clients.items():
            if not addr:
                continue
            trace = self.tracer.create_trace()
            self._send(f"client:{addr}", self._leader_info(client_id, trace))

    def _send(self, dest: str, msg: Any) -> None:
        self.outbox.append(Send(dest, msg))

    # ------------------------------------------------------- failure detection
    def heartbeat(self, server_id: int, ok: bool) -> None:
        """One heartbeat result from the failure detector."""
        rec = self.servers.get(server_id)
        if rec is None or self.phase == JOINING:
            return
        if ok:
            if rec.lost and rec.alive:
                self._trace_beat(A.HeartbeatAcked(ServerId=server_id, Lost=rec.lost))
            rec.lost = 0
            self._keep_beat(server_id, True, 0)
            if not rec.alive:
                self._rejoin(rec)
            return
        rec.lost += 1
        self._keep_beat(server_id, False, rec.lost)
        if rec.alive:
            thresh = self.options.lost_msgs_thresh
            self._trace_beat(
                A.HeartbeatMissed(ServerId=server_id, Lost=rec.lost, LostMsgsThresh=thresh)
            )
            if rec.lost >= thresh:
                self._fail(rec)

    def _keep_beat(self, server_id: int, ok: bool, lost: int) -> None:
        ring = self.beats.get(server_id)
        if ring is None:
            ring = self.beats[server_id] = deque(maxlen=BEATS_KEPT)
        ring.append((self.ticks, ok, lost))

    def _trace_beat(self, action: object) -> None:
        """Trace a miss or a recovery: only while a server is alive, so a dead one
        adds at most ``lost_msgs_thresh`` events."""
        if self.tracing:
            self.tracer.create_trace().record_action(action)

    def _fail(self, rec: ServerRecord) -> None:
        rec.alive = False
        trace = self.tracer.create_trace()
        if self.tracing:
            trace.record_action(A.ServerFail(ServerId=rec.server_id))
            trace.record_action(A.NewClusterView(View=bytes(self.view)))
        self._note("fail", server=rec.server_id, view=self.view)
        if rec.server_id == self.leader and self.phase == SERVING:
            self._start_selection(rec.server_id)
        elif rec.server_id == self.chosen and self.phase == NOTIFYING:
            self._start_selection(self.failed_leader)
        elif len(self.view) < self.majority and (self.phase == SERVING or self.phase in SELECTING):
            self._lose_quorum(trace)

    def _rejoin(self, rec: ServerRecord) -> None:
        rec.alive = True
        trace = self.tracer.create_trace()
        if self.tracing:
            trace.record_action(A.NewClusterView(View=bytes(self.view)))
        self._note("rejoin", server=rec.server_id, view=self.view)
        if self.phase == NO_QUORUM:
            if len(self.view) >= self.majority:
                leader_unfenced = self.leader_term == self.term
                if (
                    leader_unfenced
                    and self.servers[self.leader].alive
                    and self.leader != rec.server_id
                ):
                    self._enter(SERVING)
                    self._note("quorum", view=self.view)
                    self._push_leader()
                else:
                    self._start_selection(self.leader)
            return
        if self.leader and self.phase == SERVING:
            peers = self._peers()
            for sid in self.view:
                view = ClusterView(self.term, self.leader, peers, trace.generate_token())
                self._send(server_name(sid), view)

    def _lose_quorum(self, trace: Any) -> None:
        self._enter(NO_QUORUM)
        msg = (
            f"no quorum: {len(self.view)} of {self.options.num_servers} servers are alive, "
            f"{self.majority} are needed"
        )
        if self.tracing:
            trace.record_action(A.LeaderSelectionFailed(Msg=msg))
        self._note("no quorum", view=self.view)
        self._answer_leader_waiters()
        self._push_leader()

    # --------------------------------------------------------- leader selection
    def _start_selection(self, failed_leader: int) -> None:
        """Step 1: raise the term and fence every live server at it."""
        trace = self.tracer.create_trace()
        if len(self.view) < self.majority:
            self._lose_quorum(trace)
            return
        self._enter(FENCING)
        self.term += 1
        self.failed_leader = failed_leader
        self.fenced.clear()
        self.chosen = 0
        self.selection_ticks = 0
        self._note("select", term=self.term, failed=failed_leader)
        self._fence(trace)

    def _fence(self, trace: Any) -> None:
        """Send the fence to every live server that has not answered at this term."""
        for sid in self.view:
            if sid in self.fenced:
                continue
            if self.tracing:
                trace.record_action(A.ServerLogStateRequest(ServerId=sid, Token=None))
            fence = not self.options.unsafe_leader_selection
            req = ServerLogStateRequest(self.term, fence, trace.generate_token())
            self._send(server_name(sid), req)

    def log_state(self, msg: ServerLogState) -> None:
        """Step 2: once a majority is fenced at this term, pick the most up-to-date log."""
        trace = self._trace(msg.token)
        if self.tracing:
            trace.record_action(
                A.ServerLogState(
                    ServerId=msg.server_id, Term=msg.term, LogIdx=msg.log_idx, Token=msg.token
                )
            )
        if self.phase != FENCING or msg.request_term != self.term:
            return
        unsafe = self.options.unsafe_leader_selection
        if msg.fenced_term > self.term:  # a server saw a later term: fence above it
            self.term = msg.fenced_term
            self._start_selection(self.failed_leader)
            return
        if msg.fenced_term != self.term and not unsafe:
            return
        self.fenced[msg.server_id] = msg
        # The original takes whichever server answers, fencing none; teachraft
        # waits for a fenced majority of all servers.
        enough = 1 if unsafe else self.majority
        if len(self.fenced) >= enough:
            self._choose(trace)

    def _choose(self, trace: Any) -> None:
        """Step 3: the highest (last term, last index) wins; ties go to the lowest id."""
        best = max(self.fenced.values(), key=lambda s: (s.term, s.log_idx, -s.server_id))
        self._enter(NOTIFYING)
        self.chosen = best.server_id
        self.selection_ticks = 0
        self._note("chosen", server=best.server_id, term=self.term)
        self._notify_chosen(trace)

    def _notify_chosen(self, trace: Any) -> None:
        """LeaderFailOver to the chosen server (resent each tick until it confirms)."""
        peers = self._peers()
        if self.tracing:
            trace.record_action(
                A.LeaderFailOver(
                    ServerId=self.chosen,
                    FailedLeaderId=self.failed_leader,
                    Peers=cast(Any, [{"ServerId": i, "ServerAddr": a} for i, a in peers]),
                    Term=self.term,
                    Token=b"",
                )
            )
        msg = LeaderFailOver(
            server_id=self.chosen,
            failed_leader_id=self.failed_leader,
            peers=peers,
            term=self.term,
            token=trace.generate_token(),
        )
        self._send(server_name(self.chosen), msg)

    def failover_done(self, msg: FailOverDone) -> None:
        """The new leader appended its No-Op: reconfiguration is done; tell the clients."""
        trace = self._trace(msg.token)
        if self.phase != NOTIFYING or msg.server_id != self.chosen or msg.term != self.term:
            return
        if self.tracing:
            trace.record_action(A.LeaderReconfigDone(ServerId=msg.server_id))
        self.leader = msg.server_id
        self.leader_term = self.term
        self._enter(SERVING)
        self.chosen = 0
        self._note("leader", server=self.leader, term=self.term)
        if len(self.view) < self.majority:  # servers failed while it took over
            self._lose_quorum(trace)
            return
        self._answer_leader_waiters()
        self._push_leader()

    def tick(self) -> None:
        """A selection that stalls (the chosen server died, replies were lost) starts over."""
        self.ticks += 1
        if self.phase not in SELECTING:
            return
        self.selection_ticks += 1
        if self.selection_ticks >= self.options.selection_timeout_ticks:
            self._start_selection(self.failed_leader)
            return
        trace = self.tracer.create_trace()
        if self.phase == NOTIFYING:
            self._notify_chosen(trace)
        else:
            self._fence(trace)

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "term": self.term,
            "leader": self.leader if self.phase == SERVING else 0,
            "view": self.view,
            "ticks": self.ticks,
            "lost_msgs_thresh": self.options.lost_msgs_thresh,
            "heartbeats": {sid: [list(b) for b in ring] for sid, ring in self.beats.items()},
        }


def _by_id(rec: ServerRecord) -> int:
    return rec.server_id


def _refusal(server_id: int, trace: Any) -> JoinResponse:
    """A join beyond NumServers gets term 0, which the server reports as an error."""
    return JoinResponse(server_id, 0, [], 0, trace.generate_token())
