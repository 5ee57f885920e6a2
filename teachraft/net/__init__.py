"""teachraft.net: how teachraft nodes talk to each other.

Length-prefixed msgpack frames over TCP on loopback (``Node``), a seeded fault
filter that every sender consults (``FaultFilter``), and a UDP heartbeat failure
detector for the coord (``HeartbeatMonitor``, ``HeartbeatResponder``).
"""

from __future__ import annotations

from teachraft.net.errors import (
    BindError,
    CallTimeout,
    NetError,
    ProtocolError,
    RemoteError,
    Unreachable,
)
from teachraft.net.faults import FaultFilter
from teachraft.net.fcheck import HeartbeatMonitor, HeartbeatResponder
from teachraft.net.stats import LinkStats
from teachraft.net.transport import Handler, Node, Responder

__all__ = [
    "BindError",
    "CallTimeout",
    "FaultFilter",
    "Handler",
    "HeartbeatMonitor",
    "HeartbeatResponder",
    "LinkStats",
    "NetError",
    "Node",
    "ProtocolError",
    "RemoteError",
    "Responder",
    "Unreachable",
]
