"""A catalogue of named bugs, each a small override composed onto the core's classes.

A lesson switches bugs on by name: ``Cluster(bugs={"apply_before_commit"})``,
``SimCluster(bugs=[...])``. Each bug is one mixin that overrides one or two
methods of ``Server``, ``KVStore`` or ``Coord``; ``compose`` stacks the mixins
onto the classes it is given (the core's by default), so the core itself
carries no bug flags. The grader (``teachraft.labs.grade``) catches every one of
them; ``tests/test_labs_bugs.py`` proves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from teachraft.core.coord import Coord
from teachraft.core.kv import KVStore
from teachraft.core.log import GET, PUT, Entry
from teachraft.core.messages import AppendEntries, AppendEntriesReply, ClientRequest
from teachraft.core.server import LEADER, Server

__all__ = ["BUGS", "Bug", "compose"]


@dataclass(frozen=True, slots=True)
class Bug:
    """One named bug: what it breaks, in a sentence, and the mixin that breaks it."""

    name: str
    title: str
    rule: str
    """The rule of the paper or of KVRaft that the bug breaks."""
    lab: int
    """The lab whose handlers the bug lives in (a student's mistake there looks like it)."""
    server: type | None = None
    coord: type | None = None


# ------------------------------------------------------------------ the mixins
class _CommitPriorTerm(Server):
    """commit_prior_term: the leader's commit rule without the current-term test."""

    def _maybe_commit(self) -> None:
        """Figure 8's mistake: commit whatever a majority holds, of any term."""
        matches = sorted([*(p.match_index for p in self.progress.values()), self.log.last_index])
        n = matches[::-1][self.majority - 1]
        if n > self.commit_index:
            self.commit_index = n
            self._apply()


class _SkipPrevCheck(Server):
    """skip_prev_check: the AppendEntries receiver without rule 2."""

    def append_entries(self, ae: AppendEntries) -> None:
        """Rule 2 left out: entries are taken whether or not the logs match at prevLogIndex."""
        trace = self.tracer.receive_token(ae.token) if ae.token else None
        if ae.term < self.current_term:
            self._reply_append(ae, trace, False, 0, 0)
            return
        if ae.term > self.current_term:
            self._see_term(ae.term, trace or self.tracer.create_trace())
        if self.role == LEADER:
            return
        self.leader_id = ae.leader_id
        if ae.entries:
            start = min(ae.entries[0].index, self.log.last_index + 1)
            self.log.replace_suffix(start, list(ae.entries))
        last_new = self.log.last_index
        if ae.leader_commit > self.commit_index:
            self.commit_index = min(ae.leader_commit, last_new)
            self._apply()
        self._reply_append(ae, trace, True, ae.prev_log_index + len(ae.entries), 0)


class _TruncateOnMatch(Server):
    """truncate_on_match: rule 3 truncates even where the entries match."""

    def _merge(self, entries: list[Entry]) -> None:
        """Rule 3 broken: the log is cut at the first new entry even when it matches."""
        if entries:
            self.log.replace_suffix(entries[0].index, list(entries))
            self._persist(entries[0].index, list(entries))


class _KeepConflicts(Server):
    """keep_conflicts: rule 3 never deletes a conflicting entry."""

    def _merge(self, entries: list[Entry]) -> None:
        """Rule 3 skipped: a conflicting entry stays; only entries past the end are appended."""
        new = [e for e in entries if e.index > self.log.last_index]
        for e in new:
            self.log.append(e)
        if new:
            self._persist(None, new)


class _ApplyBeforeCommit(Server):
    """apply_before_commit: entries reach the state machine before they commit."""

    def _apply(self) -> None:
        """Entries are applied as soon as they are in the log, not once committed."""
        commit = self.commit_index
        self.commit_index = max(commit, self.log.last_index)
        try:
            Server._apply(self)
        finally:
            self.commit_index = commit


class _NoDedupKV(KVStore):
    """A state machine without the duplicate table (except for ``dedup_kinds``)."""

    dedup_kinds: tuple[int, ...] = ()

    def apply(self, entry: Entry) -> str | None:
        """Apply the entry even if its op was applied before (except ``dedup_kinds``)."""
        if entry.kind in self.dedup_kinds:
            return KVStore.apply(self, entry)
        if entry.kind not in (PUT, GET):
            return None
        if entry.kind == PUT:
            self.data[entry.key] = entry.value
            result = None
        else:
            result = self.data.get(entry.key)
        self.applied_ops += 1
        return result


class _PutsOnlyKV(_NoDedupKV):
    """A state machine that deduplicates puts only."""

    dedup_kinds = (PUT,)


class _NoDedup(Server):
    """no_dedup: neither the leader nor the state machine detects a retried op."""

    kv_class: type[KVStore] = _NoDedupKV
    dedup_kinds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        """The state machine applies every copy of an op (``kv_class``)."""
        super().__post_init__()
        self.kv = self.kv_class()

    def client_request(self, req: ClientRequest, responder: Any) -> None:
        """A retried op is appended and applied again, as if it were new."""
        if req.kind not in self.dedup_kinds:
            self.pending_ops.pop((req.client_id, req.op_id), None)
            session = self.kv.sessions.get(req.client_id)
            if session is not None:
                session.results.pop(req.op_id, None)
        Server.client_request(self, req, responder)


class _DedupPutsOnly(_NoDedup):
    """dedup_puts_only: retried gets are appended and executed again."""

    kv_class = _PutsOnlyKV
    dedup_kinds = (PUT,)


class _NextIndexOffByOne(Server):
    """next_index_off_by_one: the leader's bookkeeping runs one entry ahead."""

    def append_entries_reply(self, r: AppendEntriesReply) -> None:
        """After a success the leader counts one entry too many: matchIndex = reply + 1."""
        pr = self.progress.get(r.server_id)
        if r.success and pr is not None and r.term == self.current_term and r.match_index:
            r = AppendEntriesReply(
                r.term, r.server_id, True, r.match_index + 1, r.conflict_index, r.token
            )
        Server.append_entries_reply(self, r)


class _UnfencedSelection(Coord):
    """unfenced_selection: the original's selection, no fence and the first answer wins."""

    def __post_init__(self) -> None:
        """The original's selection: nobody is fenced, and the first answer wins."""
        super().__post_init__()
        self.options.unsafe_leader_selection = True


BUGS: dict[str, Bug] = {
    b.name: b
    for b in (
        Bug(
            "commit_prior_term",
            "commit a prior-term entry by counting replicas",
            "Figure 8: a leader commits only entries of its current term by counting replicas",
            2,
            server=_CommitPriorTerm,
        ),
        Bug(
            "skip_prev_check",
            "skip the prevLogIndex/prevLogTerm check",
            "AppendEntries rule 2: reply false if the log has no entry at prevLogIndex "
            "whose term matches prevLogTerm",
            1,
            server=_SkipPrevCheck,
        ),
        Bug(
            "truncate_on_match",
            "truncate the log on an entry that matches",
            "AppendEntries rule 3: delete the existing entry and all that follow it only "
            "if it conflicts with a new one (same index, different terms)",
            1,
            server=_TruncateOnMatch,
        ),
        Bug(
            "keep_conflicts",
            "keep conflicting entries",
            "AppendEntries rule 3: an existing entry that conflicts with a new one is deleted, "
            "with all that follow it",
            1,
            server=_KeepConflicts,
        ),
        Bug(
            "apply_before_commit",
            "apply entries before they are committed",
            "All servers: apply log[lastApplied] only while commitIndex > lastApplied",
            1,
            server=_ApplyBeforeCommit,
        ),
        Bug(
            "no_dedup",
            "no duplicate detection",
            "KVRaft: a retried op (same client id and op id) takes effect exactly once",
            3,
            server=_NoDedup,
        ),
        Bug(
            "dedup_puts_only",
            "duplicate detection for puts only",
            "KVRaft: gets go through the log and are deduplicated like puts",
            3,
            server=_DedupPutsOnly,
        ),
        Bug(
            "unfenced_selection",
            "the unfenced leader selection (the original's unsafe_leader_selection)",
            "The coord fences a majority at the new term before it picks the most "
            "up-to-date log among them",
            4,
            coord=_UnfencedSelection,
        ),
        Bug(
            "next_index_off_by_one",
            "an off-by-one in nextIndex",
            "Figure 2, leader: after a success, nextIndex and matchIndex follow exactly "
            "the entries the follower acknowledged",
            2,
            server=_NextIndexOffByOne,
        ),
    )
}
"""Every bug a lesson can switch on, by name."""


def compose(
    names: Iterable[str], server_class: type[Server] = Server, coord_class: type[Coord] = Coord
) -> tuple[type[Server], type[Coord]]:
    """``server_class`` and ``coord_class`` with the named bugs' mixins stacked on top."""
    bugs = []
    for name in names:
        if name not in BUGS:
            raise ValueError(f"no bug named {name!r}; the catalogue has: {', '.join(BUGS)}")
        bugs.append(BUGS[name])
    server_mixins = tuple(b.server for b in bugs if b.server is not None)
    coord_mixins = tuple(b.coord for b in bugs if b.coord is not None)
    if server_mixins:
        tag = "+".join(b.name for b in bugs if b.server is not None)
        server_class = type(f"Server[{tag}]", (*server_mixins, server_class), {})
    if coord_mixins:
        tag = "+".join(b.name for b in bugs if b.coord is not None)
        coord_class = type(f"Coord[{tag}]", (*coord_mixins, coord_class), {})
    return server_class, coord_class
