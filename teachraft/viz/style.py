"""Colours, symbols and tag groups shared by every teachraft figure.

One place decides what a leader, a failed server or a commit looks like, so a
student who learns the colours in one figure can read all of them. Colours come
from the Okabe-Ito palette, which stays distinguishable for colour-blind
readers; roles also differ by marker symbol, so nothing depends on colour alone.
"""

from __future__ import annotations

# --- roles (topology nodes, log row labels) ----------------------------------
LEADER = "leader"
CANDIDATE = "candidate"
PRE_CANDIDATE = "pre-candidate"
FOLLOWER = "follower"
FAILED = "failed"
PAUSED = "paused"
PARTITIONED = "partitioned"

ROLE_COLOURS: dict[str, str] = {
    LEADER: "#E69F00",
    CANDIDATE: "#D55E00",
    PRE_CANDIDATE: "#F0B080",
    FOLLOWER: "#0072B2",
    FAILED: "#4D4D4D",
    PAUSED: "#BBBBBB",
    PARTITIONED: "#CC79A7",
}
ROLE_SYMBOLS: dict[str, str] = {
    LEADER: "star",
    CANDIDATE: "triangle-up",
    PRE_CANDIDATE: "triangle-up-open",
    FOLLOWER: "circle",
    FAILED: "x",
    PAUSED: "circle-open",
    PARTITIONED: "circle-x",
}
ROLE_LABELS: dict[str, str] = {
    LEADER: "leader",
    CANDIDATE: "candidate (asks for votes)",
    PRE_CANDIDATE: "pre-candidate (PreVote)",
    FOLLOWER: "follower",
    FAILED: "failed (stopped)",
    PAUSED: "paused",
    PARTITIONED: "partitioned away",
}
ROLE_ORDER = (LEADER, CANDIDATE, PRE_CANDIDATE, FOLLOWER, PARTITIONED, PAUSED, FAILED)
CAMPAIGNING = frozenset({CANDIDATE, PRE_CANDIDATE})
VOTE_COLOUR = "#009E73"
"""Votes granted in the current term (topology edges, timer marks)."""

# --- other nodes -----------------------------------------------------------------
COORD_COLOUR = "#009E73"
CLIENT_COLOUR = "#56B4E9"
TRACING_COLOUR = "#999999"

# --- links ---------------------------------------------------------------------
LINK_UP = "#B0B0B0"
LINK_CUT = "#D55E00"
LINK_ONE_WAY = "#D55E00"
LINK_DEGRADED = "#E69F00"

# --- log terms: a qualitative palette, cycled for long runs -------------------------
TERM_COLOURS = (
    "#56B4E9",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#0072B2",
    "#D55E00",
    "#F0E442",
    "#999999",
)
DIFFERS = "#D00000"
SNAPSHOT_COLOUR = "#D9D9D9"
SNAPSHOT_EDGE = "#8C8C8C"
"""A compacted prefix: grey, since its entries' terms are gone with them."""
UNCOMMITTED_OPACITY = 0.45


def term_colour(term: int) -> str:
    """The colour of a log entry of ``term`` (term 1 is the first colour)."""
    return TERM_COLOURS[(max(term, 1) - 1) % len(TERM_COLOURS)]


# --- trace events: one group per idea, each with a colour and a symbol ---------------
EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "client op": (
        "Put",
        "Get",
        "PutResultRecvd",
        "GetResultRecvd",
        "PutRecvd",
        "GetRecvd",
        "KvslibStart",
        "KvslibStop",
        "LeaderReq",
        "LeaderReqRecvd",
        "LeaderRes",
        "LeaderResRecvd",
        "LeaderNodeUpdateRecvd",
    ),
    "replication": (
        "AppendEntriesRequestSent",
        "AppendEntriesRequestRecvd",
        "AppendEntriesResponseSent",
        "AppendEntriesResponseRecvd",
        "ForceFollowerLog",
    ),
    "election": (
        "RequestVoteRequestSent",
        "RequestVoteRequestRecvd",
        "RequestVoteResponseSent",
        "RequestVoteResponseRecvd",
        "ElectionTimerReset",
        "TimeoutNowSent",
        "TimeoutNowRecvd",
    ),
    "snapshot": (
        "SnapshotTaken",
        "InstallSnapshotRequestSent",
        "InstallSnapshotRequestRecvd",
        "InstallSnapshotResponseSent",
        "InstallSnapshotResponseRecvd",
        "SnapshotInstalled",
    ),
    "commit": ("PutCommitted", "GetCommitted"),
    "leadership": (
        "BecameLeader",
        "BecameCandidate",
        "BecamePreCandidate",
        "LeaderElected",
        "SteppedDown",
        "ElectionTimeout",
        "LeaderTransferStarted",
        "LeaderTransferAborted",
        "CheckQuorumFailed",
        "BecameFollower",
        "LeaderFailOver",
        "LeaderReconfigDone",
        "NoOpRequest",
        "ServerLogStateRequest",
        "ServerLogState",
        "LeaderSelectionFailed",
    ),
    "membership": (
        "CoordStart",
        "ServerStart",
        "ServerJoining",
        "ServerJoiningRecvd",
        "ServerJoined",
        "ServerJoinedRecvd",
        "AllServersJoined",
        "NewClusterView",
        "ServerFailRecvd",
        "HeartbeatMissed",
        "HeartbeatAcked",
    ),
    "fault": ("FaultInjected", "FaultHealed", "ServerFail", "ServerRestart"),
    "message": ("GenerateTokenTrace", "ReceiveTokenTrace"),
    "trace start": ("CreateTrace",),
}
GROUP_STYLE: dict[str, tuple[str, str, int]] = {
    # group: (colour, symbol, size)
    "client op": ("#0072B2", "diamond", 9),
    "replication": ("#009E73", "circle", 7),
    "snapshot": ("#7F7F7F", "square", 9),
    "commit": ("#E69F00", "star", 12),
    "leadership": ("#CC79A7", "square", 10),
    "election": ("#D55E00", "triangle-up", 8),
    "membership": ("#8C6D31", "triangle-up", 8),
    "fault": ("#D55E00", "x", 13),
    "message": ("#9A9A9A", "circle", 5),
    "trace start": ("#C8C8C8", "circle-open", 5),
    "other": ("#222222", "circle", 7),
}
_GROUP_OF = {tag: group for group, tags in EVENT_GROUPS.items() for tag in tags}


def event_group(tag: str) -> str:
    """The group a trace Tag belongs to (``"other"`` for tags teachraft does not know)."""
    return _GROUP_OF.get(tag, "other")


FAULT_TAGS = frozenset(EVENT_GROUPS["fault"])
LEADER_TAGS = frozenset({"BecameLeader", "LeaderReconfigDone"})
FONT = "Arial, Helvetica, sans-serif"
