"""The small API a student's lab code sees: ``LabServer``, ``LabCoord`` and ``VectorClocks``.

A lab class is a subclass of the core's machine. The handlers a lab asks for
are plain methods with the paper's names; everything else (tracing, sockets,
the simulator) stays out of sight. From a handler a student may use:

* the server's state, read as Figure 2 names it: ``self.current_term``,
  ``self.log`` (``term_at(i)``, ``last_index``, ``last_term``, ``slice(a, b)``,
  ``append(e)``, ``truncate_from(i)``, ``replace_suffix(i, entries)``),
  ``self.commit_index``, ``self.last_applied``, ``self.progress`` (the
  leader's ``next_index`` and ``match_index`` per follower), ``self.majority``,
  ``self.kv`` (the state machine and its duplicate table);
* the helpers below, each one line of Figure 2 or KVRaft: ``observe_term``,
  ``reply_append``, ``commit_to``, ``apply_committed``, ``append_entry``,
  ``answer``, ``wait_for``, ``grant_vote``, ``refuse_vote``, ``send``.

Every helper records the trace actions the core records, so a student's
server is drawn, replayed and exported to ShiViz like the core's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from teachraft.core.coord import FENCING, NOTIFYING, Coord
from teachraft.core.effects import Reply
from teachraft.core.kv import KVStore
from teachraft.core.log import GET, NOOP, PUT, Entry
from teachraft.core.messages import AppendEntries, ClientRequest, RequestVote, ServerLogState
from teachraft.core.server import LEADER, Server, Waiter
from teachraft.limits import MAX_ENTRY_BYTES, put_problem
from teachraft.tracing import actions as A

__all__ = ["LabCoord", "LabKV", "LabServer", "VectorClocks"]


class LabServer(Server):
    """The core ``Server`` with the lab handlers routed through public methods.

    The reference behaviour of every routed method is the core's own, so a
    ``LabServer`` is exactly the core server until a lab removes a handler.
    """

    # ------------------------------------------------------ routing (hidden)
    def __post_init__(self) -> None:
        super().__post_init__()
        self.kv: LabKV = LabKV()
        self._steps[AppendEntries] = self._traced_append_entries
        self._steps[RequestVote] = self._traced_request_vote
        self._ae_trace: Any = None
        self._req_trace: Any = None
        self._rv_trace: Any = None

    def step(self, msg: Any, responder: Any = None) -> None:
        if type(msg) is ClientRequest:
            if responder is not None:
                self._traced_client_request(msg, responder)
            return
        super().step(msg, responder)

    def _traced_client_request(self, req: ClientRequest, responder: Any) -> None:
        """Record the receive; refuse what is not the lab's business; then ``client_request``."""
        trace = self._trace(req.token)
        if self.tracing:
            self._record_recvd(trace, req)
        waiter = Waiter(responder, req.op_id, trace)
        if self.role != LEADER:
            self.outbox.append(Reply(responder, self._not_leader(req.op_id, trace)))
            return
        too_large = put_problem(req.key, req.value, MAX_ENTRY_BYTES)
        if too_large is not None:
            self._answer(waiter, ok=False, value=None, error=too_large)
            return
        self._req_trace = trace
        try:
            self.client_request(req, responder)
        finally:
            self._req_trace = None

    def _traced_append_entries(self, ae: AppendEntries) -> None:
        """Record the receive, then hand the message to the student's ``append_entries``."""
        trace = self.tracer.receive_token(ae.token) if ae.token else None
        if trace is not None and self.tracing:
            trace.record_action(self._ae_action(A.AppendEntriesRequestRecvd, ae))
        self._ae_trace = trace
        if self.raft and ae.term >= self.current_term:
            # Raft mode's timer bookkeeping, so that the lab's handler is the same in both modes.
            self.observe_term(ae.term)
            self._heard_from_leader(ae.leader_id, trace)
        try:
            self.append_entries(ae)
        finally:
            self._ae_trace = None

    def _traced_request_vote(self, rv: RequestVote) -> None:
        """Pre-votes and the leader lease stay the core's; a real vote goes to ``request_vote``."""
        if rv.pre_vote or (rv.term > self.current_term and self._in_lease(rv)):
            Server.request_vote(self, rv)
            return
        self._rv_trace = self._vote_request_received(rv)
        try:
            self.request_vote(rv)
        finally:
            self._rv_trace = None

    def _maybe_commit(self) -> None:
        self.advance_commit_index()

    def _become_leader(self, trace: Any, noop: bool) -> None:
        super()._become_leader(trace, noop=False)
        if noop:
            self.start_term()

    def _apply(self) -> None:
        self.apply_committed()

    # ---------------------------------------------------- lab handlers
    def append_entries(self, ae: AppendEntries) -> None:
        """Lab 1: the AppendEntries receiver (Figure 2, rules 1-5)."""
        if ae.term < self.current_term:  # rule 1
            self.reply_append(ae, success=False)
            return
        self.observe_term(ae.term)
        if self.role != "follower":
            return
        self.leader_id = ae.leader_id
        if self.log.term_at(ae.prev_log_index) != ae.prev_log_term:  # rule 2
            hint = self._conflict_index(ae.prev_log_index)
            self.reply_append(ae, success=False, conflict_index=hint)
            return
        self._merge(ae.entries)  # rules 3 and 4
        last_new = ae.prev_log_index + len(ae.entries)
        if ae.leader_commit > self.commit_index:  # rule 5
            self.commit_to(min(ae.leader_commit, last_new))
        self.reply_append(ae, success=True, match_index=last_new)

    def advance_commit_index(self) -> None:
        """Lab 2: commit the highest index a majority holds, if it is of the current term."""
        Server._maybe_commit(self)

    def start_term(self) -> None:
        """Lab 2: a leader the coord just chose appends a No-Op in its own term."""
        self.append_entry(NOOP)

    def client_request(self, req: ClientRequest, responder: Any) -> None:
        """Lab 3: a Put or Get reaches the leader (duplicate detection, then append)."""
        hit, value = self.kv.cached(req.client_id, req.op_id)
        if hit:
            self.answer(req, responder, ok=True, value=value)
            return
        index = self.pending_ops.get((req.client_id, req.op_id))
        if index is not None:
            self.wait_for(index, req, responder)
            return
        entry = self.append_entry(req.kind, req.key, req.value, req)
        self.wait_for(entry.index, req, responder)

    def apply_entry(self, entry: Entry) -> str | None:
        """Lab 3: apply one committed entry to ``self.kv`` and return its result."""
        if self.kv.is_duplicate(entry):
            return self.kv.cached(entry.client_id, entry.op_id)[1]
        result = self.kv.execute(entry)
        self.kv.remember(entry, result)
        return result

    def request_vote(self, rv: RequestVote) -> None:
        """Lab 6: the RequestVote receiver (Figure 2), in raft mode."""
        if rv.term < self.current_term:
            self.refuse_vote(rv, "stale term")
            return
        self.observe_term(rv.term)
        mine = (self.log.last_term, self.log.last_index)
        up_to_date = (rv.last_log_term, rv.last_log_index) >= mine
        if self.voted_for not in (0, rv.candidate_id):
            self.refuse_vote(rv, f"already voted for server{self.voted_for}")
        elif not up_to_date:
            self.refuse_vote(rv, "log not up to date")
        else:
            self.grant_vote(rv)

    # ----------------------------------------------------- helpers (public)
    def observe_term(self, term: int) -> None:
        """Figure 2, all servers: if ``term`` > currentTerm, adopt it (a leader steps down;
        in raft mode the vote of the old term is forgotten)."""
        trace = self._ae_trace or self._rv_trace or self.tracer.create_trace()
        self._see_term(term, trace)

    def grant_vote(self, rv: RequestVote) -> None:
        """Vote for ``rv``'s candidate in the current term (votedFor is made durable first)."""
        self.voted_for = rv.candidate_id
        self._persist()
        self.election_elapsed = 0
        self._answer_vote(rv, self._rv_trace or self.tracer.create_trace(), True, "")

    def refuse_vote(self, rv: RequestVote, reason: str = "") -> None:
        """Answer ``rv`` with voteGranted = false (``reason`` shows in the trace)."""
        self._answer_vote(rv, self._rv_trace or self.tracer.create_trace(), False, reason)

    def reply_append(
        self,
        ae: AppendEntries,
        *,
        success: bool,
        match_index: int = 0,
        conflict_index: int = 0,
    ) -> None:
        """Answer ``ae``'s leader: ``success`` with the last index now known to match
        (``match_index``), or a failure with ``conflict_index``, the index from which
        the leader should retry (its nextIndex for this follower)."""
        self._reply_append(ae, self._ae_trace, success, match_index, conflict_index)

    def commit_to(self, index: int) -> None:
        """Raise commitIndex to ``index`` (never lower it) and apply what is now committed."""
        if index > self.commit_index:
            self.commit_index = min(index, self.log.last_index)
            self._apply()

    def apply_committed(self) -> None:
        """Apply entries lastApplied+1 .. commitIndex in order with ``apply_entry``; a leader
        answers the clients that wait on them."""
        while self.last_applied < self.commit_index:
            self.last_applied += 1
            entry = self.log[self.last_applied]
            result = self.apply_entry(entry)
            if self.keep_applied:
                self.applied.append((entry, result))
            if self.role == "leader" and entry.kind != NOOP:
                self.pending_ops.pop((entry.client_id, entry.op_id), None)
                waiters = self.waiting.pop(entry.index, None)
                if waiters:
                    self._committed(entry, result, waiters)

    def append_entry(
        self, kind: int, key: str = "", value: str = "", req: ClientRequest | None = None
    ) -> Entry:
        """Leader: append a new entry of the current term at the end of the log."""
        client_id, op_id, acked = (req.client_id, req.op_id, req.acked_below) if req else ("", 0, 0)
        entry = Entry(
            self.current_term, self.log.last_index + 1, kind, key, value, client_id, op_id, acked
        )
        if kind == NOOP and self.tracing:
            self.tracer.create_trace().record_action(A.NoOpRequest())
        self._append(entry)
        return entry

    def answer(
        self,
        req: ClientRequest,
        responder: Any,
        *,
        ok: bool,
        value: str | None = None,
        error: str = "",
    ) -> None:
        """Answer a client request now (a duplicate answered from the cache, or an error)."""
        if ok:
            self.duplicates_answered += 1
        self._answer(self._waiter(req, responder), ok=ok, value=value, error=error)

    def wait_for(self, index: int, req: ClientRequest, responder: Any) -> None:
        """Answer ``req`` once the entry at ``index`` is applied (its own, or a pending retry's)."""
        self.waiting.setdefault(index, []).append(self._waiter(req, responder))
        self.pending_ops[(req.client_id, req.op_id)] = index

    def _waiter(self, req: ClientRequest, responder: Any) -> Waiter:
        return Waiter(responder, req.op_id, self._req_trace or self._trace(req.token))

    def send(self, dest: str, msg: Any) -> None:
        """Send one message to ``dest`` (``server2``, ``coord``)."""
        self._send(dest, msg)


class LabKV(KVStore):
    """The key-value store with its two halves apart: executing a command, and the
    per-client table of results that duplicate detection reads."""

    def is_duplicate(self, entry: Entry) -> bool:
        """True if this entry's op (client id, op id) was applied already, or acknowledged."""
        if entry.kind == NOOP:
            return False
        s = self.sessions.get(entry.client_id)
        return s is not None and (entry.op_id in s.results or entry.op_id < s.acked_below)

    def execute(self, entry: Entry) -> str | None:
        """Carry out the command, no questions asked: a Put writes, a Get reads."""
        if entry.kind == PUT:
            self.data[entry.key] = entry.value
            self.applied_ops += 1
            return None
        if entry.kind == GET:
            self.applied_ops += 1
            return self.data.get(entry.key)
        return None

    def remember(self, entry: Entry, result: str | None) -> None:
        """Keep the op's result for retries (and forget what the client acknowledged)."""
        if entry.kind == NOOP:
            return
        s = self.session(entry.client_id)
        s.results[entry.op_id] = result
        s.last_op_id = max(s.last_op_id, entry.op_id)
        s.forget_below(entry.acked_below)

    def apply(self, entry: Entry) -> str | None:
        if self.is_duplicate(entry):
            self.duplicates += 1
            return self.cached(entry.client_id, entry.op_id)[1]
        result = self.execute(entry)
        self.remember(entry, result)
        return result


class LabCoord(Coord):
    """The core ``Coord`` with the leader-selection step as a handler a student writes."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._steps[ServerLogState] = self._traced_log_state

    def _traced_log_state(self, msg: ServerLogState) -> None:
        trace = self._trace(msg.token)
        if self.tracing:
            trace.record_action(
                A.ServerLogState(
                    ServerId=msg.server_id, Term=msg.term, LogIdx=msg.log_idx, Token=msg.token
                )
            )
        self.log_state(msg)

    def log_state(self, msg: ServerLogState) -> None:
        """Lab 4: a server answered the fence; once a majority is fenced, choose the leader."""
        if not self.answers_this_round(msg):
            return
        if msg.fenced_term > self.term:  # it saw a later term: fence above that
            self.term = msg.fenced_term
            self.restart_selection()
            return
        if msg.fenced_term != self.term:
            return
        self.fenced[msg.server_id] = msg
        if len(self.fenced) >= self.majority:
            best = max(self.fenced.values(), key=lambda s: (s.term, s.log_idx, -s.server_id))
            self.choose(best.server_id)

    def answers_this_round(self, msg: ServerLogState) -> bool:
        """True if ``msg`` answers the fence of the selection under way (not a stale round)."""
        return self.phase == FENCING and msg.request_term == self.term

    # ----------------------------------------------------- helpers (public)
    def fence_all(self) -> None:
        """Send ``ServerLogStateRequest(term, fence=True)`` to every live server not yet heard."""
        self._fence(self.tracer.create_trace())

    def choose(self, server_id: int) -> None:
        """Make ``server_id`` the leader of ``self.term`` (it appends its No-Op)."""
        if server_id not in self.fenced:
            raise ValueError(f"server{server_id} has not answered the fence of term {self.term}")
        trace = self.tracer.create_trace()
        self._enter(NOTIFYING)
        self.chosen = server_id
        self.selection_ticks = 0
        self._note("chosen", server=server_id, term=self.term)
        self._notify_chosen(trace)

    def restart_selection(self) -> None:
        """Start the selection over at a higher term (a server has seen a later one)."""
        self._start_selection(self.failed_leader)


class VectorClocks:
    """Lab 5: the three vector-clock rules, on plain ``dict[str, int]`` clocks.

    ``me`` is this node's name; an absent key means 0. Each method returns the
    new clock (a new dict, or the one passed in, changed).
    """

    def tick(self, clock: dict[str, int], me: str) -> dict[str, int]:
        """A local event: the node's own entry goes up by one."""
        clock = dict(clock)
        clock[me] = clock.get(me, 0) + 1
        return clock

    def send(self, clock: dict[str, int], me: str) -> dict[str, int]:
        """A send: tick, and the ticked clock travels with the message."""
        return self.tick(clock, me)

    def receive(
        self, clock: dict[str, int], me: str, received: Mapping[str, int]
    ) -> dict[str, int]:
        """A receive: tick first, then every entry becomes the max of local and received."""
        clock = self.tick(clock, me)
        for node, value in received.items():
            if value > clock.get(node, 0):
                clock[node] = value
        return clock
