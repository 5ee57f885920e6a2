"""What a core machine needs of a tracer, as a protocol.

The core records its actions through a tracer it is given, but never imports
the tracing runtime (``teachraft.tracing.tracer`` pulls in msgpack and
logging): a ``Tracer`` or a ``NullTracer`` fits this protocol. ``enabled`` is
false for a tracer that records nothing, so that a machine can skip building
action bodies no one will read.
"""

from __future__ import annotations

from typing import Protocol


class TraceLike(Protocol):
    """One activity of a node: its actions and the tokens it sends."""

    def record_action(self, action: object) -> None: ...

    def generate_token(self) -> bytes: ...


class TracerLike(Protocol):
    """A node's tracer: starts activities and continues received ones."""

    @property
    def enabled(self) -> bool: ...

    def create_trace(self) -> TraceLike: ...

    def receive_token(self, token: bytes | None) -> TraceLike: ...
