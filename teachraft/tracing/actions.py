"""The actions a teachraft node records, one dataclass per trace Tag.

The class name is the Tag and the fields are the original KVRaft Go field
names in the original order, because the trace files, ShiViz and every
figure show exactly those names: a student comparing a teachraft trace with a
KVRaft trace must see the same words. ``action_body`` turns an action into the
plain nested dict that the tracer records (bytes stay bytes until a file is
written, where they become base64 as Go's JSON does).

Besides KVRaft's own actions there are six of teachraft's: the fault events
the runtime records so that diagrams can mark injected faults, the restart
pair of a server that comes back under its old identity, and the coord's
failure-detector pair (a heartbeat missed, counted towards LostMsgsThresh,
and the ack that ends a run of misses). Raft mode
(``election="raft"``) adds the election actions, listed in their own section
below and in ``docs/elections.md``, and log compaction (``snapshot_every``)
adds the snapshot actions, in theirs and in ``docs/snapshots.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from teachraft.core.log import EntryKind

CommandKind = EntryKind
"""The ``Kind`` of a log entry's command: the log's one enum of entry kinds."""


# --- nested body shapes -------------------------------------------------------


@dataclass(slots=True)
class ClientInfo:
    """Who sent a command: the client and its op id (dedup key)."""

    ClientId: str
    OpId: int


@dataclass(slots=True)
class Command:
    """A log entry's command (``Kind`` is a CommandKind value)."""

    Kind: int
    Key: str
    Val: str
    ClientInfo: ClientInfo


@dataclass(slots=True)
class LogEntry:
    """One Raft log entry as AppendEntries bodies show it."""

    Term: int
    Command: Command
    Index: int


@dataclass(slots=True)
class ServerInfo:
    """A server's addresses and join token, as LeaderFailOver lists its peers."""

    ServerId: int
    ServerAddr: str
    CoordListenAddr: str
    ServerListenAddr: str
    ClientListenAddr: str
    Token: bytes | None = None


# --- coord and join -----------------------------------------------------------


@dataclass(slots=True)
class CoordStart:
    """The coord started."""


@dataclass(slots=True)
class ServerStart:
    """A server started."""

    ServerId: int


@dataclass(slots=True)
class ServerJoining:
    """A server asks the coord to join."""

    ServerId: int


@dataclass(slots=True)
class ServerJoiningRecvd:
    """The coord received a join request."""

    ServerId: int


@dataclass(slots=True)
class ServerJoined:
    """A server learned it has joined."""

    ServerId: int


@dataclass(slots=True)
class ServerJoinedRecvd:
    """The coord received a server's join acknowledgement."""

    ServerId: int


@dataclass(slots=True)
class AllServersJoined:
    """The coord has every server; the store can serve."""


@dataclass(slots=True)
class BecameLeader:
    """A server became the leader."""

    ServerId: int


@dataclass(slots=True)
class BecameFollower:
    """A server became a follower."""

    ServerId: int


# --- client operations --------------------------------------------------------


@dataclass(slots=True)
class Put:
    """A client issued a Put."""

    ClientId: str
    OpId: int
    Key: str
    Value: str


@dataclass(slots=True)
class PutRecvd:
    """The leader received a Put."""

    ClientId: str
    OpId: int
    Key: str
    Value: str


@dataclass(slots=True)
class PutCommitted:
    """A Put was committed and applied."""

    ClientId: str
    OpId: int
    Key: str
    Value: str


@dataclass(slots=True)
class PutResultRecvd:
    """The client received a Put's result."""

    OpId: int
    Key: str


@dataclass(slots=True)
class Get:
    """A client issued a Get."""

    ClientId: str
    OpId: int
    Key: str


@dataclass(slots=True)
class GetRecvd:
    """The leader received a Get."""

    ClientId: str
    OpId: int
    Key: str


@dataclass(slots=True)
class GetCommitted:
    """A Get went through the log and was answered."""

    ClientId: str
    OpId: int
    Key: str
    Value: str


@dataclass(slots=True)
class GetResultRecvd:
    """The client received a Get's result."""

    OpId: int
    Key: str
    Value: str


@dataclass(slots=True)
class KvslibStart:
    """A client library session started."""

    ClientId: str


@dataclass(slots=True)
class KvslibStop:
    """A client library session stopped."""

    ClientId: str


@dataclass(slots=True)
class LeaderReq:
    """A client asks the coord who the leader is."""

    ClientId: str


@dataclass(slots=True)
class LeaderReqRecvd:
    """The coord received a leader request."""

    ClientId: str


@dataclass(slots=True)
class LeaderRes:
    """The coord answers a leader request."""

    ClientId: str
    ServerId: int


@dataclass(slots=True)
class LeaderResRecvd:
    """The client received the leader's id."""

    ClientId: str
    ServerId: int


@dataclass(slots=True)
class LeaderNodeUpdateRecvd:
    """The client was told of a new leader."""

    ClientId: str
    ServerId: int


# --- failures and leader selection --------------------------------------------


@dataclass(slots=True)
class ServerFail:
    """The coord detected a failed server."""

    ServerId: int


@dataclass(slots=True)
class ServerFailRecvd:
    """A server learned that another server failed."""

    FailedServerId: int


@dataclass(slots=True)
class NewClusterView:
    """The coord's view of live servers changed (``View`` is one byte per id)."""

    View: bytes


@dataclass(slots=True)
class ServerLogStateRequest:
    """The coord asks a server for its last log term and index."""

    ServerId: int
    Token: bytes | None = None


@dataclass(slots=True)
class ServerLogState:
    """A server's last log term and index, for leader selection."""

    ServerId: int
    Term: int
    LogIdx: int
    Token: bytes | None = None


@dataclass(slots=True)
class LeaderFailOver:
    """The coord tells the chosen server to take over as leader."""

    ServerId: int
    FailedLeaderId: int
    Peers: list[ServerInfo] | None
    Term: int
    Token: bytes | None = None


@dataclass(slots=True)
class LeaderReconfigDone:
    """The new leader is in place."""

    ServerId: int


@dataclass(slots=True)
class NoOpRequest:
    """A new leader appends a No-Op entry in its term."""


@dataclass(slots=True)
class LeaderSelectionFailed:
    """No quorum is left: the coord cannot choose a leader."""

    Msg: str


# --- replication ---------------------------------------------------------------


@dataclass(slots=True)
class AppendEntriesRequestSent:
    """The leader sent AppendEntries (``Entries`` None for a heartbeat)."""

    Term: int
    LeaderId: int
    PrevLogIndex: int
    PrevLogTerm: int
    Entries: list[LogEntry] | None
    LeaderCommit: int
    Token: bytes | None = None


@dataclass(slots=True)
class AppendEntriesRequestRecvd:
    """A follower received AppendEntries."""

    Term: int
    LeaderId: int
    PrevLogIndex: int
    PrevLogTerm: int
    Entries: list[LogEntry] | None
    LeaderCommit: int
    Token: bytes | None = None


@dataclass(slots=True)
class AppendEntriesResponseSent:
    """A follower answered AppendEntries."""

    Term: int
    Success: bool
    Token: bytes | None = None


@dataclass(slots=True)
class AppendEntriesResponseRecvd:
    """The leader received an AppendEntries answer."""

    Term: int
    Success: bool
    Token: bytes | None = None


@dataclass(slots=True)
class ForceFollowerLog:
    """The leader walks a follower's nextIndex back to where logs match."""

    ServerIndex: int
    NextIndex: int
    MatchIndex: int


# --- snapshots and log compaction (Raft paper section 7) -------------------------
#
# KVRaft never compacts its log, so the original has none of these. A server
# with ``snapshot_every`` set replaces the applied prefix of its log with a
# snapshot of the key-value store and its duplicate table (SnapshotTaken). A
# leader whose follower needs an entry it compacted sends InstallSnapshot in
# chunks of key/value pairs; ``Offset`` counts pairs, as the paper's counts bytes.


@dataclass(slots=True)
class SnapshotTaken:
    """A server compacted its log: everything up to LastIncludedIndex is in its snapshot."""

    ServerId: int
    LastIncludedIndex: int
    LastIncludedTerm: int


@dataclass(slots=True)
class InstallSnapshotRequestSent:
    """The leader sent one chunk of its snapshot (``Done`` on the last one)."""

    Term: int
    LeaderId: int
    LastIncludedIndex: int
    LastIncludedTerm: int
    Offset: int
    Done: bool
    Token: bytes | None = None


@dataclass(slots=True)
class InstallSnapshotRequestRecvd:
    """A follower received one chunk of the leader's snapshot."""

    Term: int
    LeaderId: int
    LastIncludedIndex: int
    LastIncludedTerm: int
    Offset: int
    Done: bool
    Token: bytes | None = None


@dataclass(slots=True)
class InstallSnapshotResponseSent:
    """A follower answered a chunk: ``Offset`` is the next pair it expects."""

    Term: int
    Offset: int
    Token: bytes | None = None


@dataclass(slots=True)
class InstallSnapshotResponseRecvd:
    """The leader received a follower's answer to a snapshot chunk."""

    Term: int
    Offset: int
    Token: bytes | None = None


@dataclass(slots=True)
class SnapshotInstalled:
    """A follower replaced its state with the leader's snapshot (and kept any later entries)."""

    ServerId: int
    LastIncludedIndex: int
    LastIncludedTerm: int


# --- Raft elections (teachraft's election="raft" mode, no coord) -------------------
#
# KVRaft has no elections, so the original has none of these. They are recorded
# only in raft mode, beside the original's BecameLeader and BecameFollower (which
# raft mode records too, so every figure that reads roles works in both modes).
# The RPC actions pair up like AppendEntries': ...Sent on the sender with a
# token, ...Recvd on the receiver, then ResponseSent and ResponseRecvd.


@dataclass(slots=True)
class ElectionTimeout:
    """A server's election timer fired after ``Elapsed`` of its ``Timeout`` ticks.

    ``Elapsed`` below ``Timeout`` means it was told to time out now (a button,
    or a leadership transfer's TimeoutNow).
    """

    ServerId: int
    Term: int
    Elapsed: int
    Timeout: int


@dataclass(slots=True)
class ElectionTimerReset:
    """A server drew a new randomized election timeout (ticks) and restarted its timer.

    Recorded when the role or the term changes and when a vote is granted; the
    silent resets by each heartbeat of a known leader are not recorded.
    """

    ServerId: int
    Term: int
    Timeout: int


@dataclass(slots=True)
class BecamePreCandidate:
    """A server starts a PreVote round for ``Term`` + 1, keeping its own ``Term``."""

    ServerId: int
    Term: int


@dataclass(slots=True)
class BecameCandidate:
    """A server raised its term to ``Term``, voted for itself and asks for votes."""

    ServerId: int
    Term: int


@dataclass(slots=True)
class LeaderElected:
    """A candidate won ``Term`` with the votes of ``Votes`` (server ids, itself included)."""

    ServerId: int
    Term: int
    Votes: list[int]


@dataclass(slots=True)
class SteppedDown:
    """A leader or candidate became a follower at ``Term``, and why.

    ``Reason`` is one of ``higher term``, ``check quorum``, ``leader found``,
    ``pre-vote lost``, ``election lost``.
    """

    ServerId: int
    Term: int
    Reason: str


@dataclass(slots=True)
class RequestVoteRequestSent:
    """A candidate (or pre-candidate) asks one server for its vote."""

    Term: int
    CandidateId: int
    LastLogIndex: int
    LastLogTerm: int
    PreVote: bool
    Transfer: bool
    Token: bytes | None


@dataclass(slots=True)
class RequestVoteRequestRecvd:
    """A server received a RequestVote."""

    Term: int
    CandidateId: int
    LastLogIndex: int
    LastLogTerm: int
    PreVote: bool
    Transfer: bool
    Token: bytes | None


@dataclass(slots=True)
class RequestVoteResponseSent:
    """A server answers a RequestVote; ``Reason`` says why a vote was refused."""

    Term: int
    VoterId: int
    VoteGranted: bool
    PreVote: bool
    Reason: str
    Token: bytes | None


@dataclass(slots=True)
class RequestVoteResponseRecvd:
    """A candidate received a vote (or a refusal)."""

    Term: int
    VoterId: int
    VoteGranted: bool
    PreVote: bool
    Token: bytes | None


@dataclass(slots=True)
class LeaderTransferStarted:
    """A leader stops taking client requests until ``Transferee`` caught up and campaigns."""

    ServerId: int
    Term: int
    Transferee: int


@dataclass(slots=True)
class LeaderTransferAborted:
    """A transfer did not finish within an election timeout; the leader serves again."""

    ServerId: int
    Term: int
    Transferee: int


@dataclass(slots=True)
class TimeoutNowSent:
    """The leader tells ``ServerId`` to start an election at once (leadership transfer)."""

    Term: int
    LeaderId: int
    ServerId: int
    Token: bytes | None


@dataclass(slots=True)
class TimeoutNowRecvd:
    """A server was told by its leader to start an election at once."""

    Term: int
    LeaderId: int
    Token: bytes | None


@dataclass(slots=True)
class CheckQuorumFailed:
    """A leader heard from fewer than a majority (``Active``, itself included) in a timeout."""

    ServerId: int
    Term: int
    Active: list[int]


# --- teachraft's own events ----------------------------------------------------


@dataclass(slots=True)
class HeartbeatMissed:
    """The coord's failure detector lost a heartbeat to a server it believes alive.

    ``Lost`` counts consecutive losses; at ``LostMsgsThresh`` the coord records
    ``ServerFail``.
    """

    ServerId: int
    Lost: int
    LostMsgsThresh: int


@dataclass(slots=True)
class HeartbeatAcked:
    """A server answered a heartbeat again after ``Lost`` misses (the count restarts)."""

    ServerId: int
    Lost: int


@dataclass(slots=True)
class FaultInjected:
    """A fault was injected (partition, drop, delay, crash) on some nodes."""

    Kind: str
    Nodes: list[str]
    Detail: str


@dataclass(slots=True)
class FaultHealed:
    """A fault was removed."""

    Kind: str
    Nodes: list[str]


@dataclass(slots=True)
class ServerRestart:
    """A server process came back under its old identity."""

    ServerId: int


@dataclass(slots=True)
class ServerRejoined:
    """A restarted server is part of the cluster again."""

    ServerId: int


ACTION_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        CoordStart,
        ServerStart,
        ServerJoining,
        ServerJoiningRecvd,
        ServerJoined,
        ServerJoinedRecvd,
        AllServersJoined,
        BecameLeader,
        BecameFollower,
        Put,
        PutRecvd,
        PutCommitted,
        PutResultRecvd,
        Get,
        GetRecvd,
        GetCommitted,
        GetResultRecvd,
        KvslibStart,
        KvslibStop,
        LeaderReq,
        LeaderReqRecvd,
        LeaderRes,
        LeaderResRecvd,
        LeaderNodeUpdateRecvd,
        ServerFail,
        ServerFailRecvd,
        NewClusterView,
        ServerLogStateRequest,
        ServerLogState,
        LeaderFailOver,
        LeaderReconfigDone,
        NoOpRequest,
        LeaderSelectionFailed,
        AppendEntriesRequestSent,
        AppendEntriesRequestRecvd,
        AppendEntriesResponseSent,
        AppendEntriesResponseRecvd,
        ForceFollowerLog,
        FaultInjected,
        FaultHealed,
        ServerRestart,
        ServerRejoined,
        HeartbeatMissed,
        HeartbeatAcked,
        ElectionTimeout,
        ElectionTimerReset,
        BecamePreCandidate,
        BecameCandidate,
        LeaderElected,
        SteppedDown,
        RequestVoteRequestSent,
        RequestVoteRequestRecvd,
        RequestVoteResponseSent,
        RequestVoteResponseRecvd,
        LeaderTransferStarted,
        LeaderTransferAborted,
        TimeoutNowSent,
        TimeoutNowRecvd,
        CheckQuorumFailed,
        SnapshotTaken,
        InstallSnapshotRequestSent,
        InstallSnapshotRequestRecvd,
        InstallSnapshotResponseSent,
        InstallSnapshotResponseRecvd,
        SnapshotInstalled,
    )
}
"""Every action class by Tag (the tracer's own tags are not actions)."""

# --- bodies --------------------------------------------------------------------

_SCALARS: frozenset[type] = frozenset({str, int, bool, bytes, float, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """The dataclass field names of ``cls`` in declaration order (cached)."""
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass; actions must be dataclasses")
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def action_body(action: object) -> dict[str, Any]:
    """The action's fields as a plain dict in declaration order.

    Nested dataclasses become dicts, tuples become lists, int/str subclasses
    (enums) become plain ints/strs; bytes, None, bool, int, str stay as they are.
    The tracer calls this for every event, so plain values are kept inline and
    each other type's conversion is looked up once (``_converter``).
    """
    cls = type(action)
    names = _FIELDS.get(cls)
    if names is None:
        names = field_names(cls)
    scalars = _SCALARS
    body: dict[str, Any] = {}
    for name in names:
        value = getattr(action, name)
        body[name] = value if type(value) in scalars else plain(value)
    return body


def plain(value: Any) -> Any:
    """Convert one body value to dict/list/str/int/bool/float/bytes/None."""
    kind = type(value)
    scalars = _SCALARS
    if kind is dict:
        return {
            key if type(key) is str else str(key): item if type(item) in scalars else plain(item)
            for key, item in value.items()
        }
    if kind is list or kind is tuple:
        return [item if type(item) in scalars else plain(item) for item in value]
    if kind in scalars:
        return value
    convert = _CONVERT.get(kind)
    if convert is None:
        convert = _converter(kind)
    return convert(value)


_CONVERT: dict[type, Callable[[Any], Any]] = {}
_BASES: tuple[tuple[type | tuple[type, ...], Callable[[Any], Any]], ...] = (
    (bool, bool),
    (int, int),
    (str, str),
    ((bytes, bytearray, memoryview), bytes),
    (float, float),
)


def _converter(kind: type) -> Callable[[Any], Any]:
    """How a value of a type that is not plain becomes plain (cached per type).

    Dict subclasses and nested dataclasses become dicts, other sequences lists,
    subclasses of the scalar types (enums) their base type.
    """
    convert: Callable[[Any], Any]
    if issubclass(kind, dict):
        convert = _plain_dict
    elif dataclasses.is_dataclass(kind):
        convert = action_body
    elif issubclass(kind, (list, tuple)):
        convert = _plain_list
    else:
        for bases, base in _BASES:
            if issubclass(kind, bases):
                convert = base
                break
        else:
            raise TypeError(f"cannot record a value of type {kind.__name__} in a trace body")
    if len(_CONVERT) < 1000:
        _CONVERT[kind] = convert
    return convert


def _plain_dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(key): plain(item) for key, item in value.items()}


def _plain_list(value: Any) -> list[Any]:
    return [plain(item) for item in value]


def make_action(tag: str, body: dict[str, Any]) -> object | None:
    """Rebuild a flat action from a recorded body (nested values stay dicts).

    Returns None for tags that are not actions (CreateTrace, token events,
    tags of other programs) or bodies whose fields do not fit the class.
    """
    cls = ACTION_TYPES.get(tag)
    if cls is None:
        return None
    try:
        return cls(**body)
    except TypeError:
        return None
