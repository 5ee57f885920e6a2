"""What a core machine asks its host to do: the output half of the pure core.

This module is the one list of them, for the server, the coord and the client
session alike. A machine never touches a socket, a clock or a disk. It appends effects to its
outbox and the host carries them out in order, persisting first: a ``Persist``
is written and fsynced before any message of the same batch leaves, which is
the rule that makes crash-restart safe (Raft's "respond after stable storage").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teachraft.core.log import Entry
from teachraft.core.messages import ClientRequest, Message
from teachraft.core.snapshot import Snapshot


@dataclass(slots=True)
class Send:
    """Send ``msg`` one-way to the node named ``dest`` (``server3``, ``coord``, ``client1``)."""

    dest: str
    msg: Message


@dataclass(slots=True)
class Reply:
    """Answer a request the host handed in; ``responder`` is opaque to the core."""

    responder: Any
    msg: Message


@dataclass(slots=True)
class Persist:
    """Make the term and a log suffix durable: truncate from ``truncate_from``, then append.

    ``voted_for`` (raft mode only; None in coord mode) is Raft's votedFor in ``term``.
    With ``snapshot`` set the log was compacted (§7): the durable state becomes
    the snapshot followed by ``entries``, every entry after it.
    """

    term: int
    truncate_from: int | None
    entries: list[Entry]
    voted_for: int | None = None
    snapshot: Snapshot | None = None


@dataclass(slots=True)
class Watch:
    """Coord only: start watching a server's heartbeats at ``address``."""

    server_id: int
    address: str


@dataclass(slots=True)
class SendRequest:
    """Effect: send ``request`` to the leader at ``address`` and report the outcome.

    ``attempt`` lets a late outcome of an earlier attempt be told apart and ignored.
    """

    op_id: int
    attempt: int
    address: str
    request: ClientRequest


@dataclass(slots=True)
class AskLeader:
    """Effect: ask the coord for the leader (GetLeaderNode)."""

    token: bytes


@dataclass(slots=True)
class Deliver:
    """Effect: an op's result, in op order. ``sent`` tells whether it may have taken effect."""

    op_id: int
    kind: int
    key: str
    ok: bool
    value: str | None
    error: str
    sent: bool


Effect = Send | Reply | Persist | Watch | SendRequest | AskLeader | Deliver
"""Every effect any machine produces; the hosts and the simulator carry them out."""
