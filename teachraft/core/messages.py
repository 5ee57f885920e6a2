"""Every message the store's nodes exchange, with its wire form and its checks.

Each message is a slotted dataclass whose fields are checked when it arrives:
a body of the wrong shape or with a field of the wrong type raises, and the
transport then closes that one connection. On the wire a message is a msgpack
array of its fields in declaration order (smaller and faster than a map).

Every message between nodes carries ``token``: the vector-clock tracing token
of the sender (``b""`` when tracing is off), as in the original KVRaft.

Names follow the Raft paper and KVRaft: ``AppendEntries``, ``LeaderFailOver``,
``ServerLogState``. ``SCHEMA`` maps each wire method name to its decoder and is
what a transport node is given.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar, cast

from teachraft.core.log import Entry
from teachraft.core.snapshot import Pair, SessionState, check_pairs, check_sessions

Decoder = Callable[[Any], "Message"]


class MessageError(ValueError):
    """A received body does not match its message's shape."""


def _int(v: Any) -> Any:
    if type(v) is not int:
        raise MessageError(f"{type(v).__name__} is not an int")
    return v


def _str(v: Any) -> Any:
    if type(v) is not str:
        raise MessageError(f"{type(v).__name__} is not a str")
    return v


def _bytes(v: Any) -> Any:
    if type(v) is not bytes:
        raise MessageError(f"{type(v).__name__} is not bytes")
    return v


def _bool(v: Any) -> Any:
    if type(v) is not bool:
        raise MessageError(f"{type(v).__name__} is not a bool")
    return v


def _opt_str(v: Any) -> Any:
    if v is not None and type(v) is not str:
        raise MessageError(f"{type(v).__name__} is not a str or nil")
    return v


def _entries(v: Any) -> Any:
    if type(v) is not list:
        raise MessageError("expected a list of entries")
    return [Entry.from_wire(item) for item in v]


def _peers(v: Any) -> Any:
    if type(v) is not list:
        raise MessageError("expected a list of [id, address] pairs")
    out = []
    for p in v:
        if type(p) is not list or len(p) != 2 or type(p[0]) is not int or type(p[1]) is not str:
            raise MessageError("expected a list of [id, address] pairs")
        out.append((p[0], p[1]))
    return out


def _pairs(v: Any) -> Any:
    return check_pairs(v)


def _sessions(v: Any) -> Any:
    return check_sessions(v)


CHECKS: dict[str, Callable[[Any], Any]] = {
    "int": _int,
    "str": _str,
    "bytes": _bytes,
    "bool": _bool,
    "str?": _opt_str,
    "entries": _entries,
    "peers": _peers,
    "pairs": _pairs,
    "sessions": _sessions,
}


class Message:
    """Base of every wire message: declaration-order fields, a method name."""

    __slots__ = ()
    METHOD: ClassVar[str] = ""
    WIRE: ClassVar[tuple[tuple[str, Any], ...]] = ()
    _CHECKS: ClassVar[tuple[Callable[[Any], Any], ...]] = ()
    _FIELDS: ClassVar[Any]  # operator.attrgetter of the fields, in order

    def to_wire(self) -> tuple[Any, ...]:
        """The fields in order; msgpack packs tuples (entries, peers too) as arrays."""
        wire: tuple[Any, ...] = self._FIELDS(self)
        return wire

    @classmethod
    def from_wire(cls, body: Any) -> Message:
        checks = cls._CHECKS
        if type(body) is not list or len(body) != len(checks):
            raise MessageError(f"{cls.__name__}: expected an array of {len(checks)} fields")
        try:
            build: Callable[..., Message] = cls
            return build(*[check(value) for check, value in zip(checks, body, strict=True)])
        except MessageError as exc:
            raise MessageError(f"{cls.__name__}: {exc}") from None
        except ValueError as exc:
            raise MessageError(f"{cls.__name__}: {exc}") from None


_WIRE_KINDS = {"int": "int", "str": "str", "bytes": "bytes", "bool": "bool"}


def _any(v: Any) -> Any:
    return v


M = TypeVar("M", bound=type[Message])


def message(method: str, **overrides: str) -> Callable[[M], M]:
    """Register a wire message (a slotted dataclass): its method name and field kinds."""

    def wrap(dc: M) -> M:
        wire = []
        for f in fields(cast(Any, dc)):
            kind = overrides.get(f.name, _WIRE_KINDS.get(str(f.type), "any"))
            wire.append((f.name, kind))
        dc.METHOD = method
        dc.WIRE = tuple(wire)
        dc._FIELDS = operator.attrgetter(*(name for name, _ in wire))
        dc._CHECKS = tuple(CHECKS.get(kind, _any) for _, kind in wire)
        return dc

    return wrap


# --- servers and coord: join ---------------------------------------------------


@message("join")
@dataclass(slots=True)
class ServerJoin(Message):
    """RequestServerJoin: a server asks the coord to join (or rejoin after a restart)."""

    server_id: int
    server_addr: str
    heartbeat_addr: str
    client_addr: str
    token: bytes


@message("join_response", peers="peers")
@dataclass(slots=True)
class JoinResponse(Message):
    """The coord's answer once all NumServers have joined: leader, peers, term."""

    server_id: int
    leader: int
    peers: list[tuple[int, str]]
    term: int
    token: bytes


@message("joined")
@dataclass(slots=True)
class ServerJoined(Message):
    """A server's acknowledgement that it applied its JoinResponse."""

    server_id: int
    token: bytes


# --- replication ---------------------------------------------------------------


@message("append_entries", entries="entries")
@dataclass(slots=True)
class AppendEntries(Message):
    """Raft's AppendEntries RPC (Figure 2): replicate entries, or a heartbeat when empty."""

    term: int
    leader_id: int
    prev_log_index: int
    prev_log_term: int
    entries: list[Entry]
    leader_commit: int
    token: bytes


@message("append_entries_reply")
@dataclass(slots=True)
class AppendEntriesReply(Message):
    """A follower's answer; ``match_index`` on success, a ``conflict_index`` hint on failure."""

    term: int
    server_id: int
    success: bool
    match_index: int
    conflict_index: int
    token: bytes


@message("install_snapshot", pairs="pairs", sessions="sessions")
@dataclass(slots=True)
class InstallSnapshot(Message):
    """Raft's InstallSnapshot RPC (§7): one chunk of the leader's snapshot.

    ``offset`` is the first item the chunk carries (pairs first, then the
    duplicate table's sessions); ``done`` marks the last chunk.
    """

    term: int
    leader_id: int
    last_included_index: int
    last_included_term: int
    offset: int
    pairs: list[Pair]
    sessions: list[SessionState]
    done: bool
    token: bytes


@message("install_snapshot_reply")
@dataclass(slots=True)
class InstallSnapshotReply(Message):
    """A follower's answer: the next item it expects, or ``installed`` once it holds the state.

    ``installed`` is also the answer of a follower that already committed past
    the snapshot, so the leader moves on without sending the rest.
    """

    term: int
    server_id: int
    last_included_index: int
    offset: int
    installed: bool
    token: bytes


# --- leader selection ----------------------------------------------------------


@message("log_state_request")
@dataclass(slots=True)
class ServerLogStateRequest(Message):
    """The coord fences a server at ``term`` and asks for its last log term and index.

    With ``fence`` false (the original's unsafe selection, kept for lessons) the
    server only reports its log state and keeps accepting the old leader.
    """

    term: int
    fence: bool
    token: bytes


@message("log_state")
@dataclass(slots=True)
class ServerLogState(Message):
    """A server's log state (``term``, ``log_idx`` of its last entry) for one selection round.

    ``request_term`` echoes the round; ``fenced_term`` is the server's term after
    the fence: it no longer accepts leaders below it.
    """

    server_id: int
    request_term: int
    fenced_term: int
    term: int
    log_idx: int
    token: bytes


@message("leader_failover", peers="peers")
@dataclass(slots=True)
class LeaderFailOver(Message):
    """The coord makes ``server_id`` the leader of ``term`` in place of ``failed_leader_id``."""

    server_id: int
    failed_leader_id: int
    peers: list[tuple[int, str]]
    term: int
    token: bytes


@message("failover_done")
@dataclass(slots=True)
class FailOverDone(Message):
    """The new leader confirms it leads ``term`` (its No-Op is in the log)."""

    server_id: int
    term: int
    token: bytes


@message("cluster_view", peers="peers")
@dataclass(slots=True)
class ClusterView(Message):
    """The coord tells servers who leads which term and where every server listens.

    Sent when a server rejoins the view: the rejoined server learns the leader,
    and the leader learns the address of a restarted server.
    """

    term: int
    leader: int
    peers: list[tuple[int, str]]
    token: bytes


# --- clients -------------------------------------------------------------------


@message("get_leader")
@dataclass(slots=True)
class GetLeader(Message):
    """GetLeaderNode: a client asks the coord for the leader (blocks until join completes)."""

    client_id: str
    client_addr: str
    token: bytes


@message("leader_info", leader_addr="str?")
@dataclass(slots=True)
class LeaderInfo(Message):
    """The coord's answer to GetLeader, and its ChangeLeaderNode push to clients.

    ``leader`` is 0 and ``error`` explains why when the store has no quorum.
    """

    leader: int
    leader_addr: str | None
    term: int
    error: str
    token: bytes


@message("client_request")
@dataclass(slots=True)
class ClientRequest(Message):
    """A Put or Get from kvslib; ``op_id`` is kept across retries for duplicate detection.

    ``acked_below`` tells the servers that the client has every result below it,
    so their duplicate tables can forget those ops.
    """

    client_id: str
    op_id: int
    kind: int
    key: str
    value: str
    acked_below: int
    token: bytes


@message("client_reply", value="str?", leader_addr="str?")
@dataclass(slots=True)
class ClientReply(Message):
    """The server's answer: ``ok`` with the value, or an error and a leader hint."""

    op_id: int
    ok: bool
    value: str | None
    error: str
    leader: int
    leader_addr: str | None
    token: bytes


# --- Raft elections (election="raft": no coord) -------------------------------


@message("request_vote")
@dataclass(slots=True)
class RequestVote(Message):
    """Raft's RequestVote RPC (Figure 2, §5.2, §5.4.1), or etcd-raft's PreVote.

    With ``pre_vote`` the candidate asks whether it *would* win at ``term``
    (its current term + 1) without raising its own term or any voter's.
    ``transfer`` marks a campaign started by TimeoutNow: voters grant it even
    while they hear from a leader (the leader itself asked for it).
    """

    term: int
    candidate_id: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool
    transfer: bool
    token: bytes


@message("request_vote_reply")
@dataclass(slots=True)
class RequestVoteReply(Message):
    """A voter's answer; ``term`` is the voter's term, or the asked term for a granted PreVote."""

    term: int
    voter_id: int
    vote_granted: bool
    pre_vote: bool
    token: bytes


@message("timeout_now")
@dataclass(slots=True)
class TimeoutNow(Message):
    """Leadership transfer (Raft thesis §3.10): the leader asks the receiver to campaign now."""

    term: int
    leader_id: int
    token: bytes


MESSAGES: tuple[type[Message], ...] = (
    ServerJoin,
    JoinResponse,
    ServerJoined,
    AppendEntries,
    AppendEntriesReply,
    InstallSnapshot,
    InstallSnapshotReply,
    ServerLogStateRequest,
    ServerLogState,
    LeaderFailOver,
    FailOverDone,
    ClusterView,
    GetLeader,
    LeaderInfo,
    ClientRequest,
    ClientReply,
    RequestVote,
    RequestVoteReply,
    TimeoutNow,
)

SCHEMA: dict[str, Decoder] = {m.METHOD: m.from_wire for m in MESSAGES}


def decode(method: str, body: Any) -> Message:
    """Decode a body for ``method``; raises MessageError for unknown methods or bad shapes."""
    try:
        return SCHEMA[method](body)
    except KeyError:
        raise MessageError(f"unknown message type {method!r}") from None
