"""A KVRaft server as a pure state machine: replication, commit, apply, dedup, No-Op.

Read this next to Figure 2 of the Raft paper. In coord mode (the default,
KVRaft's design) leaders are not elected here: the coord chooses them, so there
is no RequestVote and no election timer. In raft mode (``options.election ==
"raft"``) the servers elect their leaders themselves: randomized election
timeouts, RequestVote with the election restriction, PreVote, CheckQuorum and
leadership transfer, in the "Raft elections" section at the end of the class
(see ``docs/elections.md``). Everything else is Raft's log replication:

* ``append_entries`` keeps the five AppendEntries receiver rules.
* The leader walks ``next_index`` back on a rejection and repairs the follower's
  log (recorded as ``ForceFollowerLog``), batches several entries into one
  AppendEntries and pipelines them (it does not wait for one reply before
  sending the next batch).
* An entry commits when a majority holds it, and only entries of the current
  term are counted (Figure 8). Committed entries are applied in order.
* Gets go through the log, like puts, so reads are linearizable.
* Duplicate detection: a retried op id that was applied is answered from the
  cache; one still in the log waits for its entry; nothing is applied twice.
* A leader chosen by the coord appends a No-Op in its term, so that every entry
  before it commits.
* The coord fences a server at a new term (``ServerLogStateRequest``) before it
  picks a leader; a fenced server rejects the old leader's AppendEntries.

Every message carries the sender's tracing token, except the idle heartbeat:
an AppendEntries with no entries and no news of the commit index is sent
untraced, so that a trace shows what happened rather than the clock ticking
(the original sent one every 10 s; teachraft sends one every 50 ms).

Inputs are method calls (messages and ``tick``); outputs are effects in
``outbox``. The host calls ``flush`` once per batch of inputs so that entries
appended together leave in one AppendEntries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from teachraft.core.effects import Effect, Persist, Reply, Send
from teachraft.core.kv import KVStore
from teachraft.core.log import GET, NOOP, PUT, Entry, Log
from teachraft.core.machine import NotServed
from teachraft.core.messages import (
    AppendEntries,
    AppendEntriesReply,
    ClientReply,
    ClientRequest,
    ClusterView,
    FailOverDone,
    InstallSnapshot,
    InstallSnapshotReply,
    JoinResponse,
    LeaderFailOver,
    Message,
    RequestVote,
    RequestVoteReply,
    ServerJoin,
    ServerJoined,
    ServerLogState,
    ServerLogStateRequest,
    TimeoutNow,
)
from teachraft.core.snapshot import Snapshot, SnapshotBuilder
from teachraft.core.tracelike import TracerLike
from teachraft.limits import MAX_BATCH_BYTES, MAX_ENTRY_BYTES, put_problem, within_bytes
from teachraft.tracing import actions as A

FOLLOWER, LEADER = "follower", "leader"
PRECANDIDATE, CANDIDATE = "precandidate", "candidate"
"""The two roles only raft mode has (``election="raft"``): see ``docs/elections.md``."""
NOT_LEADER = "not leader"
NO_QUORUM = "no quorum"
COORD, RAFT = "coord", "raft"
ELECTIONS = (COORD, RAFT)


def server_name(server_id: int) -> str:
    """The node and tracing identity of a server: ``server3``."""
    return f"server{server_id}"


def server_id_of(name: str) -> int | None:
    """The id in a server's node name (``server3`` is 3); None for any other name."""
    digits = name.removeprefix("server")
    if digits == name or not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)


@dataclass(slots=True)
class ServerOptions:
    """Tunables of replication; the defaults favour throughput and fast repair."""

    max_batch: int = 512
    max_batch_bytes: int = MAX_BATCH_BYTES  # security: batches below the frame limit
    max_in_flight: int = 8192
    resend_ticks: int = 2
    persist: bool = False
    election: str = COORD
    """``coord``: the coord chooses leaders (KVRaft); ``raft``: Raft's own elections."""
    election_ticks_min: int = 15
    election_ticks_max: int = 30
    """Raft mode: each election timeout is drawn from this range of ticks, inclusive."""
    heartbeat_ticks: int = 1
    """Ticks between a leader's heartbeats (coord mode: every tick)."""
    pre_vote: bool = True
    check_quorum: bool = True
    snapshot_every: int = 0
    """Compact the log into a snapshot after this many applied entries (0: never; §7)."""
    snapshot_chunk_bytes: int = MAX_BATCH_BYTES
    """About how many bytes of key/value pairs one InstallSnapshot chunk carries."""


@dataclass(slots=True)
class Configure:
    """A local input, raft mode: every server's id, server address and client address.

    Raft mode has no coord to join, so the deployment (a configuration file in a
    real one) tells each server where its peers listen, again after a restart.
    """

    peers: list[tuple[int, str, str]]


@dataclass(slots=True)
class TransferLeader:
    """A local input, raft mode: the leader hands leadership to ``to`` (TimeoutNow)."""

    to: int


@dataclass(slots=True)
class ElectNow:
    """A local input, raft mode: the election timer fires now (RaftScope's "time out")."""


LocalInput = Configure | TransferLeader | ElectNow
"""Raft mode's local inputs: what the deployment, a lesson or a panel feeds a server."""


@dataclass(slots=True)
class Waiter:
    """A client request waiting for its entry to be applied."""

    responder: Any
    op_id: int
    trace: Any


@dataclass(slots=True)
class FollowerProgress:
    """The leader's view of one follower: Figure 2's nextIndex and matchIndex."""

    next_index: int
    match_index: int = 0
    idle_ticks: int = 0
    sent_this_tick: bool = False
    sent_commit: int = 0
    snapshot: Snapshot | None = None
    """The snapshot being sent to this follower (InstallSnapshot), if any."""
    snapshot_offset: int = 0
    """The next item of ``snapshot`` the follower expects."""


@dataclass
class Server:
    """One KVRaft server. ``tracer`` is a teachraft Tracer or NullTracer."""

    server_id: int
    tracer: TracerLike
    options: ServerOptions = field(default_factory=ServerOptions)
    leader_id: int = 0
    joined: bool = False
    randint: Callable[[int, int], int] | None = None
    """Raft mode: draws election timeouts (``random.Random(seed).randint``, seeded by
    whoever builds the server, so that a run replays). Without one, each server's
    timeout is fixed by its id, which is deterministic but never re-drawn."""

    def __post_init__(self) -> None:
        self.name = server_name(self.server_id)
        # Raft's persistent currentTerm and the role are the machine's own: they
        # change only through the handlers below, never from a constructor or a caller.
        self._term = 0
        self._role = FOLLOWER
        self.tracing = self.tracer.enabled
        self.log = Log()
        self.kv = KVStore()
        self.commit_index = 0
        self.last_applied = 0
        self.peers: dict[int, str] = {}
        """Every other server's address (never this server's own)."""
        self.progress: dict[int, FollowerProgress] = {}
        self.waiting: dict[int, list[Waiter]] = {}
        self.pending_ops: dict[tuple[str, int], int] = {}
        self.outbox: list[Effect] = []
        self.applied: list[tuple[Entry, str | None]] = []
        self.keep_applied = False
        self.duplicates_answered = 0
        self.restarted = False
        self.snapshot: Snapshot | None = None
        """The latest snapshot, taken here or installed from a leader (§7)."""
        self._incoming: SnapshotBuilder | None = None
        self.snapshots_installed = 0
        self._steps: dict[type, Callable[[Any], None]] = {
            AppendEntries: self.append_entries,
            AppendEntriesReply: self.append_entries_reply,
            ServerLogStateRequest: self.log_state_request,
            LeaderFailOver: self.leader_failover,
            ClusterView: self.cluster_view,
            JoinResponse: self.join_response,
            InstallSnapshot: self.install_snapshot,
            InstallSnapshotReply: self.install_snapshot_reply,
        }
        self.raft = self.options.election == RAFT
        if self.options.election not in ELECTIONS:
            raise ValueError(f"election must be one of {ELECTIONS}, not {self.options.election!r}")
        if self.raft:
            self._init_election()

    # ------------------------------------------------------------------ inputs
    def step(self, msg: Message | LocalInput, responder: Any = None) -> None:
        """Feed one message in; ``responder`` is where a client request's answer goes."""
        if type(msg) is ClientRequest:
            if responder is not None:
                self.client_request(msg, responder)
            return
        handler = self._steps.get(type(msg))
        if handler is None:
            raise NotServed(f"{self.name} does not serve {type(msg).__name__}")
        handler(msg)

    @property
    def current_term(self) -> int:
        """Raft's currentTerm: the latest term this server has seen."""
        return self._term

    @property
    def role(self) -> str:
        """``leader`` or ``follower`` (the coord, not an election, makes a leader)."""
        return self._role

    # ------------------------------------------------------------------ helpers
    def take(self) -> list[Effect]:
        """Hand the host every effect produced since the last call."""
        out, self.outbox = self.outbox, []
        return out

    @property
    def majority(self) -> int:
        return (len(self.peers) + 1) // 2 + 1

    def _send(self, dest: str, msg: Any) -> None:
        self.outbox.append(Send(dest, msg))

    def _persist(
        self, truncate_from: int | None = None, entries: list[Entry] | None = None
    ) -> None:
        if self.options.persist:
            vote = self.voted_for if self.raft else None
            self.outbox.append(Persist(self.current_term, truncate_from, entries or [], vote))

    def _trace(self, token: bytes | None) -> Any:
        """The trace a message continues: its token's, or a fresh one when it has none."""
        if token:
            return self.tracer.receive_token(token)
        return self.tracer.create_trace()

    def restore(
        self,
        term: int,
        entries: list[Entry],
        voted_for: int = 0,
        snapshot: Snapshot | None = None,
    ) -> None:
        """Load state kept on disk by a previous life of this server (crash-restart).

        With a snapshot, the store and the duplicate table start from it and the
        log holds only the entries after it (older ones, left by a crash between
        writing the snapshot and rewriting the log, are dropped here).
        """
        first = entries[0].index if entries else 1
        for i, e in enumerate(entries, start=first):
            if e.index != i:
                raise ValueError(f"{self.name}: stored log has index {e.index} at position {i}")
        self._term = term
        if snapshot is None:
            if first != 1:
                raise ValueError(f"{self.name}: stored log starts at {first} with no snapshot")
            self.log = Log(entries)
        else:
            lii, lit = snapshot.last_included_index, snapshot.last_included_term
            if first > lii + 1:
                raise ValueError(f"{self.name}: stored log starts at {first}, after a gap")
            if first == lii + 1:
                self.log = Log(entries, lii, lit)
            else:
                self.log = Log(entries, first - 1)
                self.log.compact(lii, lit)
            self.kv.restore(snapshot)
            self.snapshot = snapshot
            self.commit_index = self.last_applied = lii
        self.restarted = True
        if self.raft:
            self.voted_for = voted_for

    # --------------------------------------------------------------------- join
    def start(self, server_addr: str, heartbeat_addr: str, client_addr: str = "") -> None:
        """Record ServerStart and ServerJoining and ask the coord to join."""
        trace = self.tracer.create_trace()
        if self.tracing:
            trace.record_action(A.ServerStart(ServerId=self.server_id))
            if self.restarted:
                trace.record_action(A.ServerRestart(ServerId=self.server_id))
            if not self.raft:
                trace.record_action(A.ServerJoining(ServerId=self.server_id))
        if self.raft:  # no coord to join: the deployment sends Configure
            return
        token = trace.generate_token()
        self._send(
            "coord",
            ServerJoin(
                self.server_id, server_addr, heartbeat_addr, client_addr or server_addr, token
            ),
        )

    def join_response(self, resp: JoinResponse) -> None:
        """The coord admitted this server: learn peers, term and leader."""
        trace = self._trace(resp.token)
        self.peers = {sid: addr for sid, addr in resp.peers if sid != self.server_id}
        self.joined = True
        if self.tracing:
            trace.record_action(A.ServerJoined(ServerId=self.server_id))
        if resp.term > self.current_term:
            self._term = resp.term
            self._persist()
        if resp.leader == self.server_id and resp.term >= self.current_term:
            self._become_leader(trace, noop=False)
        else:
            self.leader_id = resp.leader
            self._become_follower(trace)
        self._send("coord", ServerJoined(self.server_id, trace.generate_token()))

    # ---------------------------------------------------------------- roles
    def _become_follower(self, trace: Any) -> None:
        was_leader = self.role == LEADER
        self._role = FOLLOWER
        self.progress.clear()
        if self.tracing:
            trace.record_action(A.BecameFollower(ServerId=self.server_id))
        if was_leader:
            self._fail_waiters()

    def _become_leader(self, trace: Any, noop: bool) -> None:
        self._role = LEADER
        self.leader_id = self.server_id
        nxt = self.log.last_index + 1
        self.progress = {p: FollowerProgress(next_index=nxt) for p in self.peers}
        self.pending_ops = {
            (e.client_id, e.op_id): e.index
            for e in self.log.slice(self.commit_index + 1)
            if e.kind != NOOP
        }
        if noop:
            if self.tracing:
                trace.record_action(A.NoOpRequest())
            self._append(Entry(self.current_term, self.log.last_index + 1, NOOP))
        if self.tracing:
            trace.record_action(A.BecameLeader(ServerId=self.server_id))

    def _fail_waiters(self) -> None:
        """A leader that steps down tells waiting clients to retry elsewhere."""
        for waiters in self.waiting.values():
            for w in waiters:
                self._answer(w, ok=False, value=None, error=NOT_LEADER)
        self.waiting.clear()
        self.pending_ops.clear()

    def _see_term(self, term: int, trace: Any) -> None:
        """Adopt a higher term; a leader that sees one steps down (Figure 2, all servers)."""
        if self.raft:
            if term > self.current_term:
                self._follow(term, 0, trace, "higher term")
            return
        if term > self.current_term:
            self._term = term
            self._persist()
            if self.role == LEADER:
                self.leader_id = 0
                self._become_follower(trace)

    # ----------------------------------------------------------- client requests
    def client_request(self, req: ClientRequest, responder: Any) -> None:
        """A Put or Get from a client: dedup, then append to the log."""
        trace = self._trace(req.token)
        if self.tracing:
            self._record_recvd(trace, req)
        if self.role != LEADER or (self.raft and self.transferee):
            self.outbox.append(Reply(responder, self._not_leader(req.op_id, trace)))
            return
        waiter = Waiter(responder, req.op_id, trace)
        hit, value = self.kv.cached(req.client_id, req.op_id)
        if hit:  # "received and resolved duplicate put/get"
            self.duplicates_answered += 1
            self._answer(waiter, ok=True, value=value, error="")
            return
        index = self.pending_ops.get((req.client_id, req.op_id))
        if index is not None:
            self.waiting.setdefault(index, []).append(waiter)
            return
        if req.op_id < self.kv.session(req.client_id).acked_below:
            self._answer(waiter, ok=False, value=None, error=f"op {req.op_id} already acknowledged")
            return
        too_large = put_problem(req.key, req.value, MAX_ENTRY_BYTES)  # security: (limits)
        if too_large is not None:
            self._answer(waiter, ok=False, value=None, error=too_large)
            return
        index = self.log.last_index + 1
        self._append(
            Entry(
                self.current_term,
                index,
                req.kind,
                req.key,
                req.value,
                req.client_id,
                req.op_id,
                req.acked_below,
            )
        )
        self.pending_ops[(req.client_id, req.op_id)] = index
        self.waiting[index] = [waiter]

    def _record_recvd(self, trace: Any, req: ClientRequest) -> None:
        if req.kind == PUT:
            trace.record_action(
                A.PutRecvd(ClientId=req.client_id, OpId=req.op_id, Key=req.key, Value=req.value)
            )
        else:
            trace.record_action(A.GetRecvd(ClientId=req.client_id, OpId=req.op_id, Key=req.key))

    def _not_leader(self, op_id: int, trace: Any) -> ClientReply:
        if self.raft:
            return self._not_leader_raft(op_id, trace)
        # The hint names the leader; the client asks the coord for its client address.
        if self.leader_id and self.leader_id != self.server_id:
            error = f"{NOT_LEADER}: {self.name} is a follower; the leader is server{self.leader_id}"
        else:
            error = f"{NOT_LEADER}: {self.name} does not know the leader yet; ask the coord"
        return ClientReply(op_id, False, None, error, self.leader_id, None, trace.generate_token())

    def _answer(self, w: Waiter, *, ok: bool, value: str | None, error: str) -> None:
        token = w.trace.generate_token()
        self.outbox.append(
            Reply(w.responder, ClientReply(w.op_id, ok, value, error, self.leader_id, None, token))
        )

    def _append(self, entry: Entry) -> None:
        self.log.append(entry)
        self._persist(None, [entry])

    # --------------------------------------------------------------- replication
    def flush(self) -> None:
        """Leader: send every follower the entries it does not have yet (batched, pipelined)."""
        if self.role != LEADER:
            return
        if not self.peers:
            self._maybe_commit()
            return
        last = self.log.last_index
        for peer, pr in self.progress.items():
            if (
                pr.next_index <= last
                and pr.next_index - pr.match_index <= self.options.max_in_flight
                and pr.snapshot is None
            ):
                self._send_append(peer, pr)

    def _send_append(self, peer: int, pr: FollowerProgress) -> None:
        if pr.next_index <= self.log.snapshot_index:  # §7: those entries are compacted
            self._send_snapshot(peer, pr)
            return
        prev = pr.next_index - 1
        entries = self.log.slice(pr.next_index, pr.next_index + self.options.max_batch)
        if len(entries) > 1:  # security: cut by bytes too (limits)
            entries = within_bytes(entries, self.options.max_batch_bytes)
        term = self.log.term_at(prev)
        traced = self.tracing and (entries or pr.sent_commit != self.commit_index)
        token = b""
        if traced:
            trace = self.tracer.create_trace()
            trace.record_action(
                A.AppendEntriesRequestSent(
                    Term=self.current_term,
                    LeaderId=self.server_id,
                    PrevLogIndex=prev,
                    PrevLogTerm=term or 0,
                    Entries=_bodies(entries),
                    LeaderCommit=self.commit_index,
                    Token=b"",
                )
            )
            token = trace.generate_token()
        msg = AppendEntries(
            self.current_term, self.server_id, prev, term or 0, entries, self.commit_index, token
        )
        self._send(server_name(peer), msg)
        pr.next_index += len(entries)
        pr.sent_this_tick = True
        pr.sent_commit = self.commit_index

    def append_entries(self, ae: AppendEntries) -> None:
        """Follower side of AppendEntries: the five receiver rules of Figure 2."""
        trace = self.tracer.receive_token(ae.token) if ae.token else None
        if trace is not None and self.tracing:
            trace.record_action(self._ae_action(A.AppendEntriesRequestRecvd, ae))
        if ae.term < self.current_term:  # rule 1
            self._reply_append(ae, trace, False, 0, 0)
            return
        if ae.term > self.current_term:
            self._see_term(ae.term, trace or self.tracer.create_trace())
        if self.raft:
            self._heard_from_leader(ae.leader_id, trace)
        if self.role == LEADER:  # a second leader in one term cannot happen; be safe
            return
        self.leader_id = ae.leader_id
        log = self.log
        if ae.prev_log_index < log.snapshot_index:
            ae = self._past_snapshot(ae)
        if log.term_at(ae.prev_log_index) != ae.prev_log_term:  # rule 2
            self._reply_append(ae, trace, False, 0, self._conflict_index(ae.prev_log_index))
            return
        self._merge(ae.entries)  # rules 3 and 4
        last_new = ae.prev_log_index + len(ae.entries)
        if ae.leader_commit > self.commit_index and last_new > self.commit_index:  # rule 5
            self.commit_index = min(ae.leader_commit, last_new)
            self._apply()
        self._reply_append(ae, trace, True, last_new, 0)

    def _past_snapshot(self, ae: AppendEntries) -> AppendEntries:
        """The part of ``ae`` after this server's snapshot, which holds committed entries only.

        Committed entries match the leader's (Log Matching), so the snapshot's
        last entry stands in for ``prev_log_index`` and earlier entries are dropped.
        """
        base = self.log.snapshot_index
        if ae.prev_log_index + len(ae.entries) <= base:  # all of it is in the snapshot
            return AppendEntries(
                ae.term, ae.leader_id, base, self.log.snapshot_term, [], ae.leader_commit, ae.token
            )
        skip = base - ae.prev_log_index
        return AppendEntries(
            ae.term,
            ae.leader_id,
            base,
            ae.entries[skip - 1].term,
            ae.entries[skip:],
            ae.leader_commit,
            ae.token,
        )

    def _conflict_index(self, prev_log_index: int) -> int:
        """§5.3's optimisation: where the leader should retry, skipping a whole term.

        A log too short to hold ``prev_log_index`` asks for its own next index; a
        log whose entry there has another term asks for the first index of that
        term, so that one retry skips every entry of the conflicting term.
        """
        if prev_log_index > self.log.last_index:
            return self.log.last_index + 1
        return self.log.first_index_of_term(prev_log_index)

    def _merge(self, entries: list[Entry]) -> None:
        """Delete a conflicting suffix, then append what is new; never truncate on a match."""
        log = self.log
        for i, e in enumerate(entries):
            have = log.term_at(e.index)
            if have == e.term:
                continue
            new = entries[i:]
            log.replace_suffix(e.index, new)
            self._persist(None if have is None else e.index, new)
            return

    def _ae_action(self, cls: type, ae: AppendEntries) -> Any:
        return cls(
            Term=ae.term,
            LeaderId=ae.leader_id,
            PrevLogIndex=ae.prev_log_index,
            PrevLogTerm=ae.prev_log_term,
            Entries=_bodies(ae.entries),
            LeaderCommit=ae.leader_commit,
            Token=ae.token,
        )

    def _reply_append(
        self, ae: AppendEntries, trace: Any, success: bool, match: int, hint: int
    ) -> None:
        token = b""
        if trace is not None:
            if self.tracing:
                trace.record_action(
                    A.AppendEntriesResponseSent(Term=self.current_term, Success=success, Token=None)
                )
            token = trace.generate_token()
        reply = AppendEntriesReply(self.current_term, self.server_id, success, match, hint, token)
        self._send(server_name(ae.leader_id), reply)

    def append_entries_reply(self, r: AppendEntriesReply) -> None:
        """Leader side: advance match_index and commit, or walk next_index back and repair."""
        trace = self.tracer.receive_token(r.token) if r.token else None
        if trace is not None and self.tracing:
            trace.record_action(
                A.AppendEntriesResponseRecvd(Term=r.term, Success=r.success, Token=r.token)
            )
        if self.raft:  # CheckQuorum counts the followers that answer AppendEntries
            self._heard(r.server_id)
            self.recent_active.add(r.server_id)
        if r.term > self.current_term:
            self._see_term(r.term, trace or self.tracer.create_trace())
            return
        pr = self.progress.get(r.server_id)
        if self.role != LEADER or r.term < self.current_term or pr is None:
            return
        pr.idle_ticks = 0
        if r.success:
            if r.match_index > pr.match_index:
                pr.match_index = r.match_index
                self._maybe_commit()
            pr.next_index = max(pr.next_index, pr.match_index + 1)
            if pr.snapshot is not None and pr.match_index >= pr.snapshot.last_included_index:
                pr.snapshot = None
            if self.raft and r.server_id == self.transferee:
                self._maybe_timeout_now()
            return
        # §5.3: retry from the follower's conflict index, never below what it matched.
        conflict_index = max(pr.match_index + 1, min(r.conflict_index, self.log.last_index + 1))
        if conflict_index < pr.next_index:
            pr.next_index = conflict_index
            if self.tracing:
                (trace or self.tracer.create_trace()).record_action(
                    A.ForceFollowerLog(
                        ServerIndex=r.server_id, NextIndex=conflict_index, MatchIndex=pr.match_index
                    )
                )
            self._send_append(r.server_id, pr)

    def _maybe_commit(self) -> None:
        """Commit the highest index a majority holds, if it is of the current term (Fig. 8)."""
        matches = [pr.match_index for pr in self.progress.values()]
        matches.append(self.log.last_index)  # the leader holds its whole log
        matches.sort(reverse=True)
        n = matches[self.majority - 1]
        if n > self.commit_index and self.log.term_at(n) == self.current_term:
            self.commit_index = n
            self._apply()

    def _apply(self) -> None:
        """Apply committed entries in order; a leader answers the clients waiting on them."""
        log, kv = self.log, self.kv
        while self.last_applied < self.commit_index:
            self.last_applied += 1
            entry = log[self.last_applied]
            result = kv.apply(entry)
            if self.keep_applied:
                self.applied.append((entry, result))
            if self.role == LEADER and entry.kind != NOOP:
                self.pending_ops.pop((entry.client_id, entry.op_id), None)
                waiters = self.waiting.pop(entry.index, None)
                if waiters:
                    self._committed(entry, result, waiters)
        every = self.options.snapshot_every
        if every and self.last_applied - self.log.snapshot_index >= every:
            self._take_snapshot()

    def _committed(self, entry: Entry, result: str | None, waiters: list[Waiter]) -> None:
        for w in waiters:
            if self.tracing:
                if entry.kind == PUT:
                    w.trace.record_action(
                        A.PutCommitted(
                            ClientId=entry.client_id,
                            OpId=entry.op_id,
                            Key=entry.key,
                            Value=entry.value,
                        )
                    )
                elif entry.kind == GET:
                    w.trace.record_action(
                        A.GetCommitted(
                            ClientId=entry.client_id,
                            OpId=entry.op_id,
                            Key=entry.key,
                            Value=result or "",
                        )
                    )
            self._answer(w, ok=True, value=result, error="")

    # ------------------------------------------------------------------ timers
    def tick(self) -> None:
        """One heartbeat interval: heartbeats, and resending what a follower did not ack.

        In raft mode a tick is the election timer's unit; the leader's heartbeat
        and resend work below runs every ``heartbeat_ticks`` of them.
        """
        if self.raft and not self._election_tick():
            return
        if self.role != LEADER:
            return
        last = self.log.last_index
        for peer, pr in self.progress.items():
            if pr.snapshot is not None:  # InstallSnapshot is stop-and-wait: resend when idle
                pr.idle_ticks += 1
                if pr.idle_ticks >= self.options.resend_ticks:
                    self._send_snapshot(peer, pr)
                continue
            if pr.match_index < last:
                pr.idle_ticks += 1
                if pr.idle_ticks >= self.options.resend_ticks:
                    pr.idle_ticks = 0
                    pr.next_index = pr.match_index + 1
            if not pr.sent_this_tick or pr.next_index <= last:
                self._send_append(peer, pr)
            pr.sent_this_tick = False

    # ----------------------------------------------------------- coord messages
    def log_state_request(self, req: ServerLogStateRequest) -> None:
        """The coord fences this server at a new term, then learns its log state."""
        trace = self._trace(req.token)
        if self.tracing:
            trace.record_action(A.ServerLogStateRequest(ServerId=self.server_id, Token=req.token))
        if req.fence and req.term > self.current_term:
            self._see_term(req.term, trace)
            self.leader_id = 0
        if self.tracing:
            trace.record_action(
                A.ServerLogState(
                    ServerId=self.server_id,
                    Term=self.log.last_term,
                    LogIdx=self.log.last_index,
                    Token=None,
                )
            )
        state = ServerLogState(
            self.server_id,
            req.term,
            self.current_term,
            self.log.last_term,
            self.log.last_index,
            trace.generate_token(),
        )
        self._send("coord", state)

    def leader_failover(self, msg: LeaderFailOver) -> None:
        """The coord made this server the leader of ``msg.term``: append a No-Op and lead."""
        trace = self._trace(msg.token)
        if msg.term < self.current_term:
            return
        if msg.term == self.current_term and self.role == LEADER:  # a resent notice
            done = FailOverDone(self.server_id, self.current_term, trace.generate_token())
            self._send("coord", done)
            return
        if self.tracing:
            trace.record_action(A.ServerFailRecvd(FailedServerId=msg.failed_leader_id))
        if msg.term > self.current_term:
            self._term = msg.term
            self._persist()
        if msg.peers:
            self.peers.update((sid, a) for sid, a in msg.peers if sid != self.server_id)
        self._become_leader(trace, noop=True)
        self._send("coord", FailOverDone(self.server_id, self.current_term, trace.generate_token()))

    def cluster_view(self, msg: ClusterView) -> None:
        """The coord's view after a rejoin: current leader and term, and every address."""
        trace = self._trace(msg.token)
        self._update_peers(dict(msg.peers))
        self._see_term(msg.term, trace)
        if msg.term >= self.current_term and msg.leader != self.server_id:
            self.leader_id = msg.leader
            if self.role == LEADER:
                self._become_follower(trace)

    def _update_peers(self, peers: dict[int, str]) -> None:
        """A peer at a new address is a new incarnation: forget what it was known to hold."""
        for sid, addr in peers.items():
            if self.peers.get(sid) != addr and sid != self.server_id:
                self.peers[sid] = addr
                if self.role == LEADER:
                    self.progress[sid] = FollowerProgress(next_index=self.log.last_index + 1)

    # ----------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """What a notebook shows about this server."""
        row = {
            "role": self.role,
            "term": self.current_term,
            "leader": self.leader_id,
            "commit_index": self.commit_index,
            "last_applied": self.last_applied,
            "log_length": self.log.last_index,
            "snapshot_index": self.log.snapshot_index,
            "snapshot_term": self.log.snapshot_term,
            "snapshots_installed": self.snapshots_installed,
        }
        if self.raft:
            row.update(self._election_status())
        return row

    # ============================================== snapshots and log compaction
    # Raft §7. Off unless ``options.snapshot_every`` is set; see docs/snapshots.md.

    def _take_snapshot(self) -> None:
        """Replace the applied prefix of the log with a snapshot of the store."""
        index = self.last_applied
        term = self.log.term_at(index)
        assert term is not None  # applied entries are in the log or in the last snapshot
        self.snapshot = self.kv.snapshot(index, term)
        self.log.compact(index, term)
        self._persist_snapshot()
        if self.tracing:
            self.tracer.create_trace().record_action(
                A.SnapshotTaken(
                    ServerId=self.server_id, LastIncludedIndex=index, LastIncludedTerm=term
                )
            )

    def _persist_snapshot(self) -> None:
        if self.options.persist:
            vote = self.voted_for if self.raft else None
            entries = self.log.user_entries()
            self.outbox.append(Persist(self.current_term, None, entries, vote, self.snapshot))

    def _send_snapshot(self, peer: int, pr: FollowerProgress) -> None:
        """Leader: send the chunk of its snapshot that ``peer`` expects next (stop-and-wait)."""
        if pr.snapshot is None:
            pr.snapshot, pr.snapshot_offset = self.snapshot, 0
        snap = pr.snapshot
        assert snap is not None  # a compacted log always has its snapshot
        offset = pr.snapshot_offset
        pairs, sessions = snap.chunk(offset, self.options.snapshot_chunk_bytes)
        done = offset + len(pairs) + len(sessions) >= snap.size
        lii, lit = snap.last_included_index, snap.last_included_term
        token = b""
        if self.tracing:
            trace = self.tracer.create_trace()
            trace.record_action(
                A.InstallSnapshotRequestSent(
                    Term=self.current_term,
                    LeaderId=self.server_id,
                    LastIncludedIndex=lii,
                    LastIncludedTerm=lit,
                    Offset=offset,
                    Done=done,
                    Token=b"",
                )
            )
            token = trace.generate_token()
        msg = InstallSnapshot(
            self.current_term, self.server_id, lii, lit, offset, pairs, sessions, done, token
        )
        self._send(server_name(peer), msg)
        pr.sent_this_tick = True
        pr.idle_ticks = 0

    def install_snapshot(self, msg: InstallSnapshot) -> None:
        """Follower side of InstallSnapshot: gather the chunks in order, then install (§7)."""
        trace = self.tracer.receive_token(msg.token) if msg.token else None
        if trace is not None and self.tracing:
            trace.record_action(
                A.InstallSnapshotRequestRecvd(
                    Term=msg.term,
                    LeaderId=msg.leader_id,
                    LastIncludedIndex=msg.last_included_index,
                    LastIncludedTerm=msg.last_included_term,
                    Offset=msg.offset,
                    Done=msg.done,
                    Token=msg.token,
                )
            )
        if msg.term < self.current_term:
            self._reply_snapshot(msg, trace, 0, installed=False)
            return
        if msg.term > self.current_term:
            self._see_term(msg.term, trace or self.tracer.create_trace())
        if self.raft:
            self._heard_from_leader(msg.leader_id, trace)
        if self.role == LEADER:
            return
        self.leader_id = msg.leader_id
        lii, lit = msg.last_included_index, msg.last_included_term
        if lii <= self.commit_index:  # this server already holds that state
            self._incoming = None
            self._reply_snapshot(msg, trace, msg.offset, installed=True)
            return
        builder = self._incoming
        if msg.offset == 0 and (builder is None or not builder.matches(lii, lit)):
            builder = self._incoming = SnapshotBuilder(lii, lit)
        if builder is None or not builder.matches(lii, lit) or msg.offset != builder.offset:
            expected = builder.offset if builder is not None and builder.matches(lii, lit) else 0
            self._reply_snapshot(msg, trace, expected, installed=False)
            return
        builder.add(msg.pairs, msg.sessions)
        if msg.done:
            self._install(builder.build(), trace)
        self._reply_snapshot(msg, trace, builder.offset, installed=msg.done)

    def _install(self, snap: Snapshot, trace: Any) -> None:
        """Become the snapshot's state; keep log entries after it only if they agree with it."""
        self._incoming = None
        self.snapshot = snap
        self.snapshots_installed += 1
        self.kv.restore(snap)
        self.log.compact(snap.last_included_index, snap.last_included_term)
        self.commit_index = self.last_applied = snap.last_included_index
        self._persist_snapshot()
        if self.tracing:
            (trace or self.tracer.create_trace()).record_action(
                A.SnapshotInstalled(
                    ServerId=self.server_id,
                    LastIncludedIndex=snap.last_included_index,
                    LastIncludedTerm=snap.last_included_term,
                )
            )

    def _reply_snapshot(
        self, msg: InstallSnapshot, trace: Any, offset: int, *, installed: bool
    ) -> None:
        token = b""
        if trace is not None:
            if self.tracing:
                trace.record_action(
                    A.InstallSnapshotResponseSent(Term=self.current_term, Offset=offset, Token=None)
                )
            token = trace.generate_token()
        reply = InstallSnapshotReply(
            self.current_term, self.server_id, msg.last_included_index, offset, installed, token
        )
        self._send(server_name(msg.leader_id), reply)

    def install_snapshot_reply(self, r: InstallSnapshotReply) -> None:
        """Leader side: send the next chunk, or resume AppendEntries once installed."""
        trace = self.tracer.receive_token(r.token) if r.token else None
        if trace is not None and self.tracing:
            trace.record_action(
                A.InstallSnapshotResponseRecvd(Term=r.term, Offset=r.offset, Token=r.token)
            )
        if self.raft:
            self._heard(r.server_id)
            self.recent_active.add(r.server_id)
        if r.term > self.current_term:
            self._see_term(r.term, trace or self.tracer.create_trace())
            return
        pr = self.progress.get(r.server_id)
        if self.role != LEADER or r.term < self.current_term or pr is None:
            return
        pr.idle_ticks = 0
        snap = pr.snapshot
        if r.installed:
            if r.last_included_index > pr.match_index:
                pr.match_index = r.last_included_index
                self._maybe_commit()
            pr.next_index = max(pr.next_index, pr.match_index + 1)
            if snap is not None and pr.match_index >= snap.last_included_index:
                pr.snapshot = None
                if pr.next_index <= self.log.last_index:
                    self._send_append(r.server_id, pr)
                if self.raft and r.server_id == self.transferee:
                    self._maybe_timeout_now()
            return
        if snap is None or r.last_included_index != snap.last_included_index:
            return  # an answer about a snapshot this leader no longer sends
        pr.snapshot_offset = min(max(r.offset, 0), snap.size)
        self._send_snapshot(r.server_id, pr)

    # ======================================================= Raft elections
    # Raft mode only (``options.election == "raft"``); see docs/elections.md.
    # PreVote and CheckQuorum follow etcd-raft's design.

    def _init_election(self) -> None:
        self._steps.update(
            {
                RequestVote: self.request_vote,
                RequestVoteReply: self.request_vote_reply,
                TimeoutNow: self.timeout_now,
                Configure: self.configure,
                TransferLeader: self.transfer_leader,
                ElectNow: self.elect_now,
            }
        )
        self.voted_for = 0
        self.votes: set[int] = set()
        self.refusals: set[int] = set()
        self.client_addrs: dict[int, str] = {}
        self.now = 0
        self.election_elapsed = 0
        self.election_timeout = self._draw_timeout()
        self.heartbeat_elapsed = 0
        self.transferee = 0
        self.recent_active: set[int] = set()
        self.heard_at: dict[int, int] = {}

    def _draw_timeout(self) -> int:
        low = self.options.election_ticks_min
        high = max(low, self.options.election_ticks_max)
        if self.randint is None:
            return low + (self.server_id * 7) % (high - low + 1)
        return self.randint(low, high)

    def _reset_timer(self, trace: Any) -> None:
        """Restart the election timer with a newly drawn randomized timeout."""
        self.election_elapsed = 0
        self.election_timeout = self._draw_timeout()
        if self.tracing:
            trace.record_action(
                A.ElectionTimerReset(
                    ServerId=self.server_id, Term=self.current_term, Timeout=self.election_timeout
                )
            )

    def _heard(self, peer: int) -> None:
        """Any message from a peer: the no-quorum hint to clients remembers it."""
        self.heard_at[peer] = self.now

    # ----------------------------------------------------------- configuration
    def configure(self, msg: Configure) -> None:
        """Learn (or re-learn after a restart) where every server listens."""
        self._update_peers({sid: addr for sid, addr, _ in msg.peers})
        self.client_addrs = {sid: caddr for sid, _, caddr in msg.peers}
        self.joined = True

    # ------------------------------------------------------------------ timer
    def _election_tick(self) -> bool:
        """Advance the election timer; True when a leader's heartbeat is due this tick."""
        self.now += 1
        if not self.joined:
            return False
        if self.role == LEADER:
            return self._leader_tick()
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self._time_out(self.tracer.create_trace())
        return False

    def _leader_tick(self) -> bool:
        """CheckQuorum once per minimum election timeout; a heartbeat every heartbeat_ticks."""
        self.election_elapsed += 1
        if self.election_elapsed >= self.options.election_ticks_min:
            self.election_elapsed = 0
            trace = self.tracer.create_trace()
            if self.transferee:
                if self.tracing:
                    trace.record_action(
                        A.LeaderTransferAborted(
                            ServerId=self.server_id,
                            Term=self.current_term,
                            Transferee=self.transferee,
                        )
                    )
                self.transferee = 0
            active = self.recent_active | {self.server_id}
            self.recent_active = set()
            if self.options.check_quorum and len(active) < self.majority:
                if self.tracing:
                    trace.record_action(
                        A.CheckQuorumFailed(
                            ServerId=self.server_id, Term=self.current_term, Active=sorted(active)
                        )
                    )
                self._follow(self.current_term, 0, trace, "check quorum")
                return False
        self.heartbeat_elapsed += 1
        if self.heartbeat_elapsed >= self.options.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            return True
        return False

    def elect_now(self, _: ElectNow) -> None:
        """The timer fires now, whatever it shows (a leader ignores this)."""
        if self.role != LEADER and self.joined:
            self._time_out(self.tracer.create_trace())

    def _time_out(self, trace: Any) -> None:
        if self.tracing:
            trace.record_action(
                A.ElectionTimeout(
                    ServerId=self.server_id,
                    Term=self.current_term,
                    Elapsed=self.election_elapsed,
                    Timeout=self.election_timeout,
                )
            )
        if self.options.pre_vote:
            self._become_precandidate(trace)
        else:
            self._become_candidate(trace, transfer=False)

    # --------------------------------------------------------------- campaign
    def _become_precandidate(self, trace: Any) -> None:
        """PreVote: ask whether we would win at term + 1, changing no one's term."""
        self._leave_leadership(trace)
        self._role = PRECANDIDATE
        self.leader_id = 0
        self.votes, self.refusals = {self.server_id}, set()
        if self.tracing:
            trace.record_action(
                A.BecamePreCandidate(ServerId=self.server_id, Term=self.current_term)
            )
        self._reset_timer(trace)
        self._ask_votes(self.current_term + 1, pre_vote=True, transfer=False)
        self._count_votes(trace)

    def _become_candidate(self, trace: Any, transfer: bool) -> None:
        """Raise the term, vote for ourselves (durably), and ask every peer."""
        self._leave_leadership(trace)
        self._term += 1
        self._role = CANDIDATE
        self.leader_id = 0
        self.voted_for = self.server_id
        self.votes, self.refusals = {self.server_id}, set()
        self._persist()
        if self.tracing:
            trace.record_action(A.BecameCandidate(ServerId=self.server_id, Term=self.current_term))
        self._reset_timer(trace)
        self._ask_votes(self.current_term, pre_vote=False, transfer=transfer)
        self._count_votes(trace)

    def _leave_leadership(self, trace: Any) -> None:
        if self.role == LEADER:
            self._become_follower(trace)
        self.transferee = 0

    def _ask_votes(self, term: int, pre_vote: bool, transfer: bool) -> None:
        last_index, last_term = self.log.last_index, self.log.last_term
        for peer in sorted(self.peers):
            token = b""
            if self.tracing:
                t = self.tracer.create_trace()
                t.record_action(
                    A.RequestVoteRequestSent(
                        Term=term,
                        CandidateId=self.server_id,
                        LastLogIndex=last_index,
                        LastLogTerm=last_term,
                        PreVote=pre_vote,
                        Transfer=transfer,
                        Token=b"",
                    )
                )
                token = t.generate_token()
            msg = RequestVote(
                term, self.server_id, last_index, last_term, pre_vote, transfer, token
            )
            self._send(server_name(peer), msg)

    def _count_votes(self, trace: Any) -> None:
        """Win with a majority of grants; give up with a majority of refusals."""
        if len(self.votes) >= self.majority:
            if self.role == PRECANDIDATE:
                self._become_candidate(trace, transfer=False)
            elif self.role == CANDIDATE:
                self._win(trace)
        elif len(self.refusals) >= self.majority:
            lost = "pre-vote lost" if self.role == PRECANDIDATE else "election lost"
            self._follow(self.current_term, 0, trace, lost)

    def _win(self, trace: Any) -> None:
        if self.tracing:
            trace.record_action(
                A.LeaderElected(
                    ServerId=self.server_id, Term=self.current_term, Votes=sorted(self.votes)
                )
            )
        self._become_leader(trace, noop=True)
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.recent_active = set()
        self.transferee = 0

    def _follow(self, term: int, leader: int, trace: Any, reason: str) -> None:
        """Become (or stay) a follower of ``leader`` (0: unknown) at ``term``."""
        if term > self.current_term:
            self._term = term
            self.voted_for = 0
            self._persist()
        was = self.role
        self.leader_id = leader
        self.transferee = 0
        self.votes, self.refusals = set(), set()
        if was != FOLLOWER:
            if self.tracing:
                trace.record_action(
                    A.SteppedDown(ServerId=self.server_id, Term=self.current_term, Reason=reason)
                )
            if was == LEADER:
                self._become_follower(trace)
            else:
                self._role = FOLLOWER
                if self.tracing:
                    trace.record_action(A.BecameFollower(ServerId=self.server_id))
        self._reset_timer(trace)

    def _heard_from_leader(self, leader: int, trace: Any) -> None:
        """An AppendEntries of our term: its sender leads; the timer starts over."""
        self._heard(leader)
        if self.role == LEADER:
            return
        if self.role != FOLLOWER or self.leader_id != leader:
            self._follow(
                self.current_term, leader, trace or self.tracer.create_trace(), "leader found"
            )
        else:
            self.election_elapsed = 0

    # ------------------------------------------------------------------ votes
    def request_vote(self, rv: RequestVote) -> None:
        """Figure 2's RequestVote receiver, with PreVote and the leader lease of etcd-raft."""
        trace = self._vote_request_received(rv)
        if rv.term < self.current_term:
            self._answer_vote(rv, trace, False, "stale term")
            return
        if rv.term > self.current_term:
            if self._in_lease(rv):
                self._answer_vote(rv, trace, False, "leader lease")
                return
            if not rv.pre_vote:
                self._follow(rv.term, 0, trace, "higher term")
        reason = self._vote_refusal(rv)
        if reason:
            self._answer_vote(rv, trace, False, reason)
            return
        if not rv.pre_vote:
            self.voted_for = rv.candidate_id
            self._persist()  # written and fsynced before the vote leaves
            self.election_elapsed = 0
        self._answer_vote(rv, trace, True, "")

    def _vote_request_received(self, rv: RequestVote) -> Any:
        """Take in a (pre-)vote request: its trace, its traced receipt, the sender heard."""
        trace = self._trace(rv.token)
        if self.tracing:
            trace.record_action(
                A.RequestVoteRequestRecvd(
                    Term=rv.term,
                    CandidateId=rv.candidate_id,
                    LastLogIndex=rv.last_log_index,
                    LastLogTerm=rv.last_log_term,
                    PreVote=rv.pre_vote,
                    Transfer=rv.transfer,
                    Token=rv.token,
                )
            )
        self._heard(rv.candidate_id)
        return trace

    def _in_lease(self, rv: RequestVote) -> bool:
        """CheckQuorum's leader lease: a follower that heard its leader lately refuses
        a higher-term request, unless a leadership transfer sent it."""
        return (
            self.options.check_quorum
            and self.leader_id != 0
            and self.election_elapsed < self.options.election_ticks_min
            and not rv.transfer
        )

    def _vote_refusal(self, rv: RequestVote) -> str:
        """Why this server will not vote for ``rv`` (empty: it will)."""
        can_vote = (
            self.voted_for == rv.candidate_id
            or (self.voted_for == 0 and self.leader_id == 0)
            or (rv.pre_vote and rv.term > self.current_term)
        )
        if not can_vote:
            if self.voted_for:
                return f"already voted for server{self.voted_for}"
            return f"follows server{self.leader_id}" if self.leader_id else "not a follower"
        mine = (self.log.last_term, self.log.last_index)
        if (rv.last_log_term, rv.last_log_index) < mine:  # §5.4.1
            return "log not up to date"
        return ""

    def _answer_vote(self, rv: RequestVote, trace: Any, granted: bool, reason: str) -> None:
        term = rv.term if granted and rv.pre_vote else self.current_term
        if self.tracing:
            trace.record_action(
                A.RequestVoteResponseSent(
                    Term=term,
                    VoterId=self.server_id,
                    VoteGranted=granted,
                    PreVote=rv.pre_vote,
                    Reason=reason,
                    Token=None,
                )
            )
        reply = RequestVoteReply(term, self.server_id, granted, rv.pre_vote, trace.generate_token())
        self._send(server_name(rv.candidate_id), reply)

    def request_vote_reply(self, r: RequestVoteReply) -> None:
        """Count a (pre-)vote; a refusal from a later term makes us a follower of it."""
        trace = self._trace(r.token)
        if self.tracing:
            trace.record_action(
                A.RequestVoteResponseRecvd(
                    Term=r.term,
                    VoterId=r.voter_id,
                    VoteGranted=r.vote_granted,
                    PreVote=r.pre_vote,
                    Token=r.token,
                )
            )
        self._heard(r.voter_id)
        if r.term > self.current_term and not (r.pre_vote and r.vote_granted):
            self._follow(r.term, 0, trace, "higher term")
            return
        if r.pre_vote:
            if self.role != PRECANDIDATE or (r.vote_granted and r.term != self.current_term + 1):
                return
        elif self.role != CANDIDATE or r.term != self.current_term:
            return
        (self.votes if r.vote_granted else self.refusals).add(r.voter_id)
        self._count_votes(trace)

    # ------------------------------------------------------- leadership transfer
    def transfer_leader(self, msg: TransferLeader) -> None:
        """Stop taking requests, bring ``to`` up to date, then tell it to campaign now."""
        if self.role != LEADER or msg.to == self.server_id or msg.to not in self.peers:
            return
        self.transferee = msg.to
        self.election_elapsed = 0  # the transfer is aborted after one election timeout
        if self.tracing:
            self.tracer.create_trace().record_action(
                A.LeaderTransferStarted(
                    ServerId=self.server_id, Term=self.current_term, Transferee=msg.to
                )
            )
        pr = self.progress[msg.to]
        if pr.match_index < self.log.last_index and pr.next_index > self.log.last_index:
            pr.next_index = pr.match_index + 1  # resend what it lacks now
        self._maybe_timeout_now()

    def _maybe_timeout_now(self) -> None:
        pr = self.progress.get(self.transferee)
        if pr is None:
            return
        if pr.match_index < self.log.last_index:
            if pr.next_index <= self.log.last_index:
                self._send_append(self.transferee, pr)
            return
        token = b""
        if self.tracing:
            t = self.tracer.create_trace()
            t.record_action(
                A.TimeoutNowSent(
                    Term=self.current_term,
                    LeaderId=self.server_id,
                    ServerId=self.transferee,
                    Token=b"",
                )
            )
            token = t.generate_token()
        self._send(
            server_name(self.transferee), TimeoutNow(self.current_term, self.server_id, token)
        )

    def timeout_now(self, msg: TimeoutNow) -> None:
        """The leader asks us to campaign at once: no PreVote, past every lease."""
        trace = self._trace(msg.token)
        if self.tracing:
            trace.record_action(
                A.TimeoutNowRecvd(Term=msg.term, LeaderId=msg.leader_id, Token=msg.token)
            )
        if msg.term < self.current_term or self.role == LEADER:
            return
        if self.tracing:
            trace.record_action(
                A.ElectionTimeout(
                    ServerId=self.server_id,
                    Term=self.current_term,
                    Elapsed=self.election_elapsed,
                    Timeout=self.election_timeout,
                )
            )
        self._become_candidate(trace, transfer=True)

    # ---------------------------------------------------------------- clients
    def _not_leader_raft(self, op_id: int, trace: Any) -> ClientReply:
        """Not the leader: name the one we follow, or say why none is known."""
        leader = self.transferee if self.role == LEADER else self.leader_id
        if self.role == LEADER:
            error = f"{NOT_LEADER}: {self.name} is handing leadership to server{leader}"
        elif leader:
            error = f"{NOT_LEADER}: {self.name} is a follower; the leader is server{leader}"
        else:
            error = self._no_leader_error()
        addr = self.client_addrs.get(leader) if leader else None
        return ClientReply(op_id, False, None, error, leader, addr, trace.generate_token())

    def _no_leader_error(self) -> str:
        """No known leader: an election is under way, or this server cannot reach a majority."""
        window = 2 * self.options.election_ticks_max
        heard = 1 + sum(1 for p in self.peers if self.now - self.heard_at.get(p, -window) < window)
        if heard < self.majority and self.now >= window:
            return (
                f"{NO_QUORUM}: {self.name} heard from {heard} of {len(self.peers) + 1} servers "
                f"(itself included) in its last {window} ticks, {self.majority} are needed"
            )
        return (
            f"{NOT_LEADER}: {self.name} knows no leader in term {self.current_term} "
            "(an election is under way)"
        )

    def _election_status(self) -> dict[str, Any]:
        campaigning = self.role in (CANDIDATE, LEADER)
        return {
            "voted_for": self.voted_for,
            "votes": sorted(self.votes) if campaigning else [],
            "pre_votes": sorted(self.votes) if self.role == PRECANDIDATE else [],
            "election_timeout": self.election_timeout,
            "election_elapsed": self.election_elapsed,
            "heartbeat_ticks": self.options.heartbeat_ticks,
            "pre_vote": self.options.pre_vote,
            "check_quorum": self.options.check_quorum,
            "transferee": self.transferee,
        }


def _bodies(entries: list[Entry]) -> Any:
    """Entries as the trace shows them (Go field names); None for a heartbeat."""
    return [e.go_body() for e in entries] or None
