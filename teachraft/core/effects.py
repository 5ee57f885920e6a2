"""What a core machine asks its host to do: the output half of the pure core.

A machine never touches a socket, a clock or a disk. It appends effects to its
outbox and the host carries them out in order, persisting first: a ``Persist``
is written and fsynced before any message of the same batch leaves, which is
the rule that makes crash-restart safe (Raft's "respond after stable storage").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teachraft.core.log import Entry
from teachraft.core.messages import Message


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
    """Make the term and a log suffix durable: truncate from ``truncate_from``, then append."""

    term: int
    truncate_from: int | None
    entries: list[Entry]


@dataclass(slots=True)
class Watch:
    """Coord only: start watching a server's heartbeats at ``address``."""

    server_id: int
    address: str


Effect = Send | Reply | Persist | Watch
