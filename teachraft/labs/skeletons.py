"""One skeleton per lab: the reference class with that lab's handlers taken out.

Each removed handler raises ``NotImplementedError`` and its docstring states
the rule to implement, in the words of the Raft paper (or of KVRaft), and the
helpers it may call. A student subclasses the skeleton and writes the
handlers; ``teachraft.labs.grade`` grades the subclass, and
``Cluster(server_class=...)`` runs it live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from teachraft.core.log import Entry
from teachraft.core.messages import AppendEntries, ClientRequest, RequestVote, ServerLogState
from teachraft.labs.api import LabCoord, LabServer, VectorClocks


class AppendEntriesLab(LabServer):
    """Lab 1: the follower's side of AppendEntries."""

    def append_entries(self, ae: AppendEntries) -> None:
        """The AppendEntries receiver (Raft paper, Figure 2). Receiver implementation:

        1. Reply false if term < currentTerm (§5.1).
        2. Reply false if log doesn't contain an entry at prevLogIndex whose term
           matches prevLogTerm (§5.3).
        3. If an existing entry conflicts with a new one (same index but different
           terms), delete the existing entry and all that follow it (§5.3).
        4. Append any new entries not already in the log.
        5. If leaderCommit > commitIndex, set commitIndex =
           min(leaderCommit, index of last new entry).

        And for all servers: if the RPC's term T > currentTerm, set currentTerm = T
        (``self.observe_term(ae.term)``); a server that is still a leader after that
        ignores the message. Remember ``self.leader_id = ae.leader_id``.

        The reply lets the leader walk nextIndex back: on success pass
        ``match_index`` = prevLogIndex + len(entries), the last index known to
        match; on a rule-2 failure pass ``conflict_index``, where the leader
        should retry: ``self.log.last_index + 1`` if the log is too short, else
        the first index of the conflicting term (``self.log.first_index_of_term``).

        Fields: ``ae.term``, ``ae.leader_id``, ``ae.prev_log_index``,
        ``ae.prev_log_term``, ``ae.entries`` (each an ``Entry`` with ``.index`` and
        ``.term``), ``ae.leader_commit``.
        Helpers: ``self.log.term_at(i)`` (None past the end), ``self.log.last_index``,
        ``self.log.replace_suffix(i, entries)`` (delete from i, then append),
        ``self.log.append(e)``, ``self.observe_term(t)``,
        ``self.reply_append(ae, success=..., match_index=..., conflict_index=...)``,
        ``self.commit_to(i)`` (raises commitIndex and applies).
        """
        raise NotImplementedError("append_entries: write Figure 2's receiver rules 1-5")


class CommitLab(LabServer):
    """Lab 2: when a leader may commit, and the No-Op a new leader appends."""

    def advance_commit_index(self) -> None:
        """The leader's commit rule (Raft paper, Figure 2, Rules for Servers, Leaders):

        "If there exists an N such that N > commitIndex, a majority of
        matchIndex[i] >= N, and log[N].term == currentTerm: set commitIndex = N."

        §5.4.2 (Figure 8): "Raft never commits log entries from previous terms by
        counting replicas. Only log entries from the leader's current term are
        committed by counting replicas."

        Called whenever a follower's matchIndex rises. The leader holds its whole
        log. Helpers: ``self.progress`` (follower id -> ``.match_index``),
        ``self.log.last_index``, ``self.log.term_at(n)``, ``self.current_term``,
        ``self.majority`` (servers needed, the leader included), ``self.commit_index``,
        ``self.commit_to(n)``.
        """
        raise NotImplementedError("advance_commit_index: write the leader's commit rule")

    def start_term(self) -> None:
        """A server the coord just made leader starts its term (Raft paper, §8):

        "Raft handles this by having each leader commit a blank no-op entry into
        the log at the start of its term." Without it, entries of earlier terms
        wait until a client happens to send a new one.

        Helper: ``self.append_entry(NOOP)`` appends an entry of the current term
        (``from teachraft.core.log import NOOP``).
        """
        raise NotImplementedError("start_term: append the leader's No-Op")


class DedupLab(LabServer):
    """Lab 3: exactly-once ops with client retries and leader failover."""

    def client_request(self, req: ClientRequest, responder: Any) -> None:
        """A Put or Get reaches the leader (KVRaft's duplicate detection).

        A client retries an op with the same (client id, op id) after a timeout or
        a leader change. The op must take effect exactly once, gets included:

        * already applied: answer at once with the cached result
          (``self.kv.cached(req.client_id, req.op_id)`` -> (hit, value));
        * already in the log, not yet applied: wait for that entry
          (``self.pending_ops.get((req.client_id, req.op_id))`` -> index or None);
        * otherwise: append it, then wait for it.

        Helpers: ``self.answer(req, responder, ok=True, value=...)``,
        ``self.wait_for(index, req, responder)``,
        ``entry = self.append_entry(req.kind, req.key, req.value, req)``.
        """
        raise NotImplementedError("client_request: answer duplicates, append new ops")

    def apply_entry(self, entry: Entry) -> str | None:
        """Apply one committed entry to the state machine and return its result.

        Two copies of one op can sit in the log (a retry reached a new leader
        before it knew the first copy): the second must not take effect. Return
        the Get's value (None for a Put or a No-Op).

        Helpers: ``self.kv.is_duplicate(entry)``, ``self.kv.cached(client_id,
        op_id)``, ``self.kv.execute(entry)`` (carry the command out),
        ``self.kv.remember(entry, result)`` (keep the result for retries).
        """
        raise NotImplementedError("apply_entry: apply each op once, remember its result")


class SelectionLab(LabCoord):
    """Lab 4: the coord's leader selection."""

    def log_state(self, msg: ServerLogState) -> None:
        """A server answered the fence (``ServerLogStateRequest``) of this selection.

        The coord raised its term and asked every live server to adopt it: a
        server that did is *fenced* (it rejects the old leader from then on) and
        answers with ``msg.fenced_term == self.term``. Rule: wait until a
        **majority of all servers** is fenced at the new term, then choose the
        one with the most up-to-date log: the highest last term
        (``msg.term``), then the highest last index (``msg.log_idx``). Any
        committed entry sits on a majority, which shares a server with the
        fenced majority, so the chosen log holds every committed entry.

        Ignore an answer to an older round (``self.answers_this_round(msg)`` is
        False). A server fenced at a *higher* term (``msg.fenced_term > self.term``)
        means: set ``self.term`` to it and ``self.restart_selection()``.

        Helpers: ``self.fenced`` (server id -> its ServerLogState, this round),
        ``self.majority``, ``self.choose(server_id)``.
        """
        raise NotImplementedError("log_state: fence a majority, then pick the best log")


class VoteLab(LabServer):
    """Lab 6: the RequestVote receiver, for a cluster that elects its own leaders
    (``Cluster(election="raft", server_class=...)``)."""

    def request_vote(self, rv: RequestVote) -> None:
        """The RequestVote receiver (Raft paper, Figure 2). Receiver implementation:

        1. Reply false if term < currentTerm (§5.1).
        2. If votedFor is null or candidateId, and candidate's log is at least as
           up-to-date as receiver's log, grant vote (§5.2, §5.4).

        And for all servers: if the RPC's term T > currentTerm, set currentTerm = T
        and convert to follower (``self.observe_term(rv.term)``; it also clears
        votedFor for the new term).

        §5.4.1, up-to-date: "If the logs have last entries with different terms,
        then the log with the later term is more up-to-date. If the logs end with
        the same term, then whichever log is longer is more up-to-date."

        Fields: ``rv.term``, ``rv.candidate_id``, ``rv.last_log_index``,
        ``rv.last_log_term``. State: ``self.current_term``, ``self.voted_for``
        (0: none), ``self.log.last_term``, ``self.log.last_index``.
        Helpers: ``self.observe_term(t)``, ``self.grant_vote(rv)`` (records the
        vote durably, then answers), ``self.refuse_vote(rv, reason)``.
        (Pre-votes and the leader lease are handled for you.)
        """
        raise NotImplementedError("request_vote: write Figure 2's RequestVote receiver")


class ClocksLab(VectorClocks):
    """Lab 5: vector clocks (the rules GoVector and every KVRaft trace follow)."""

    def tick(self, clock: dict[str, int], me: str) -> dict[str, int]:
        """A local event: the node's own entry goes up by one. Return the new clock."""
        raise NotImplementedError("tick: add one to the node's own entry")

    def send(self, clock: dict[str, int], me: str) -> dict[str, int]:
        """A send: tick, and return the ticked clock (it travels with the message)."""
        raise NotImplementedError("send: tick, and return the clock to send")

    def receive(
        self, clock: dict[str, int], me: str, received: Mapping[str, int]
    ) -> dict[str, int]:
        """A receive: tick the own entry first, then every entry becomes the maximum
        of the local and the received value (absent means 0). Return the new clock."""
        raise NotImplementedError("receive: tick, then merge by maximum")
