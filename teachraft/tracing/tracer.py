"""The tracer: one per node, stamping every action with the node's vector clock.

Each call is exactly one event and ticks the node's own clock entry once,
following the GoVector rules (see ``clock``): ``create_trace`` starts an
activity, ``Trace.record_action`` records an action, ``Trace.generate_token``
makes the token sent with a message, ``Tracer.receive_token`` takes one in.
The record goes synchronously to a sink, so the hot path is a dict increment,
a dict copy and a list append. Every record but a receive (and the tracer's
first) is marked ``step``: its clock is the tracer's previous record's with
the own entry +1, which spares the tracing client and server from sending
and checking the whole clock again.

``NullTracer`` has the same API and records nothing, for runs with tracing off.
A tracer is not thread-safe: use one per node, from that node's thread or loop.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

from teachraft.tracing.actions import action_body, plain
from teachraft.tracing.sinks import MemorySink, Record, Sink, TeeSink
from teachraft.tracing.tokens import TokenError, decode_clock, decode_token, encode_token

__all__ = [
    "NULL_TRACE",
    "MemorySink",
    "NullTrace",
    "NullTracer",
    "Record",
    "Sink",
    "TeeSink",
    "Trace",
    "Tracer",
    "check_identity",
    "check_name",
]

logger = logging.getLogger(__name__)

_BAD_IDENTITY_CHARS = frozenset(' \t\n\r\v\f"\\')


def check_name(name: str, what: str = "tracer identity") -> str:
    """Return ``name`` if ShiViz can show it as a host or tag, else raise ValueError."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {what} must be a non-empty string")
    if any(ch in _BAD_IDENTITY_CHARS or ch.isspace() for ch in name) or not name.isprintable():
        raise ValueError(
            f"{what} {name!r} must not contain whitespace, control characters, '\"' or '\\'"
        )
    return name


def check_identity(identity: str) -> str:
    """Return ``identity`` if ShiViz can use it as a host name, else raise ValueError."""
    return check_name(identity, "tracer identity")


class Tracer:
    """Records one node's events with its vector clock; see the module docstring."""

    __slots__ = ("_clock", "_emit", "_rng", "_stepping", "_warned_empty", "identity", "sink")
    enabled = True

    def __init__(
        self,
        identity: str,
        sink: Sink,
        *,
        rng: random.Random | None = None,
        clock: Mapping[str, int] | None = None,
    ) -> None:
        self.identity: str = check_identity(identity)
        self.sink: Sink = sink
        self._emit = sink.emit
        self._rng = rng if rng is not None else random.Random()
        self._clock: dict[str, int] = {k: v for k, v in (clock or {}).items() if v > 0}
        self._clock.setdefault(identity, 0)
        self._warned_empty = False
        self._stepping = False
        """False until this tracer's first record: that one steps from no record of its own."""

    @property
    def clock(self) -> dict[str, int]:
        """A copy of the current vector clock (entries above zero)."""
        return {k: v for k, v in self._clock.items() if v > 0}

    @property
    def own_time(self) -> int:
        """This node's own clock entry: how many events it has recorded."""
        return self._clock[self.identity]

    def _local(self, trace_id: int, tag: str, body: dict[str, Any]) -> dict[str, int]:
        """Tick the own entry and record a local event (a step from the previous record)."""
        clock = self._clock
        clock[self.identity] += 1
        snapshot = clock.copy()
        self._emit(Record(self.identity, trace_id, tag, body, snapshot, self._stepping))
        self._stepping = True
        return snapshot

    def new_trace_id(self) -> int:
        """A fresh random non-negative 63-bit trace id from the tracer's rng."""
        return self._rng.getrandbits(63)

    def create_trace(self) -> Trace:
        """Start a new trace (one activity); records ``CreateTrace {}``."""
        trace_id = self._rng.getrandbits(63)
        self._local(trace_id, "CreateTrace", {})
        return Trace(self, trace_id)

    def receive_token(self, token: bytes | None) -> Trace:
        """Take in a token from another node; records ``ReceiveTokenTrace``.

        Own entry +1 first, then max-merge with the token's clock. The returned
        trace has the id carried by the token. A token that is empty (from a
        peer with tracing off) or malformed (a hostile or broken peer) starts a
        new trace instead, with a warning: a bad token must not crash a node.
        """
        received: dict[str, int] | None
        fast = decode_clock(token) if token else None
        if fast is not None:
            trace_id, received = fast
        else:
            try:
                _, trace_id, received = decode_token(token) if token else (None, 0, None)
            except TokenError as exc:
                logger.warning(
                    "%s received a malformed token (%s); starting a new trace", self.identity, exc
                )
                return self.create_trace()
        if received is None:
            if not self._warned_empty:
                self._warned_empty = True
                logger.warning("%s received an empty token; starting a new trace", self.identity)
            return self.create_trace()
        clock = self._clock
        clock[self.identity] += 1
        for key, value in received.items():
            if value > clock.get(key, 0):
                clock[key] = value
        self._emit(
            Record(self.identity, trace_id, "ReceiveTokenTrace", {"Token": token}, clock.copy())
        )
        self._stepping = True
        return Trace(self, trace_id)

    def generate_token(self, trace_id: int) -> bytes:
        """Make a token in trace ``trace_id``; records ``GenerateTokenTrace``."""
        clock = self._clock
        clock[self.identity] += 1
        snapshot = clock.copy()
        token = encode_token(self.identity, trace_id, snapshot)
        self._emit(
            Record(
                self.identity,
                trace_id,
                "GenerateTokenTrace",
                {"Token": token},
                snapshot,
                self._stepping,
            )
        )
        self._stepping = True
        return token

    def record(self, trace_id: int, action: object) -> None:
        """Record ``action`` (a dataclass; its class name is the Tag) in a trace."""
        body = action_body(action)
        self._local(trace_id, type(action).__name__, body)

    def record_event(self, trace_id: int, tag: str, body: dict[str, Any]) -> None:
        """Record an event given as Tag and body (for tags without an action class)."""
        check_name(tag, "tag")
        self._local(trace_id, tag, plain(body))

    def close(self) -> None:
        """Flush and close the sink, if it can be (a no-op for a MemorySink)."""
        for name in ("flush", "close"):
            method = getattr(self.sink, name, None)
            if method is not None:
                method()

    async def aclose(self) -> None:
        """Close an asynchronous sink (a TracingClient), else the same as close()."""
        aclose = getattr(self.sink, "aclose", None)
        if aclose is not None:
            await aclose()
        else:
            self.close()

    def __repr__(self) -> str:
        return f"Tracer({self.identity!r}, own_time={self.own_time})"


class Trace:
    """A trace id bound to a tracer: the handle a node passes along one activity."""

    __slots__ = ("trace_id", "tracer")

    def __init__(self, tracer: Tracer, trace_id: int) -> None:
        self.tracer = tracer
        self.trace_id = trace_id

    def record_action(self, action: object) -> None:
        """Record ``action`` in this trace."""
        self.tracer.record(self.trace_id, action)

    def generate_token(self) -> bytes:
        """Make the token to send with a message of this trace."""
        return self.tracer.generate_token(self.trace_id)

    def __repr__(self) -> str:
        return f"Trace({self.tracer.identity!r}, {self.trace_id})"


class NullTracer:
    """A tracer that records nothing: tracing off, at almost no cost."""

    __slots__ = ("identity",)
    enabled = False

    def __init__(self, identity: str = "", *args: Any, **kwargs: Any) -> None:
        self.identity = identity

    @property
    def clock(self) -> dict[str, int]:
        return {}

    @property
    def own_time(self) -> int:
        return 0

    def create_trace(self) -> NullTrace:
        return NULL_TRACE

    def receive_token(self, token: bytes | None) -> NullTrace:
        return NULL_TRACE

    def generate_token(self, trace_id: int) -> bytes:
        return b""

    def new_trace_id(self) -> int:
        return 0

    def record(self, trace_id: int, action: object) -> None:
        return None

    def record_event(self, trace_id: int, tag: str, body: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class NullTrace:
    """The trace of a NullTracer: records nothing, tokens are empty."""

    __slots__ = ()
    trace_id: int = 0
    tracer: NullTracer = NullTracer("null")

    def record_action(self, action: object) -> None:
        return None

    def generate_token(self) -> bytes:
        return b""


NULL_TRACE = NullTrace()
