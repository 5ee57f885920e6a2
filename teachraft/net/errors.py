"""The exceptions of teachraft's network layer.

They share one base, ``NetError``, so a runtime can catch every network failure
with one clause and still tell the cases apart where the protocol cares: a call
that timed out may still have been executed by the peer, while an unreachable
peer never saw the request.
"""

from __future__ import annotations


class NetError(Exception):
    """Base class of every failure raised by teachraft.net."""


class BindError(NetError):
    """A node could not listen on its address; the message names the address."""


class CallTimeout(NetError):
    """No reply arrived within the call's timeout (the peer may or may not have acted)."""


class Unreachable(NetError):
    """The peer could not be reached, or the connection dropped before it replied."""


class RemoteError(NetError):
    """The peer answered the call with an error string instead of a result."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(NetError):
    """Bytes or values on a connection broke the wire protocol or a schema."""
