"""One TCP connection between two teachraft nodes: the wire protocol's state machine.

Every frame is a msgpack array whose first item is a small integer tag:

==========  ==========================  ==========================================
tag         frame                       meaning
==========  ==========================  ==========================================
``HELLO``   ``[4, name, nonce]``        first frame each way: who claims to be there
``PROOF``   ``[5, mac]``                second frame each way: proof of the secret
``REQUEST`` ``[0, id, method, body]``   a call; the peer answers with OK or ERROR
``OK``      ``[1, id, result]``         the call ``id`` succeeded
``ERROR``   ``[2, id, message]``        the call ``id`` failed with a message
``ONEWAY``  ``[3, method, body]``       a message that expects no answer
==========  ==========================  ==========================================

Rules this module keeps:

- Both sides send HELLO (a claimed name and a fresh nonce) at once, then a
  PROOF: an HMAC with the cluster secret over both names, both nonces and the
  sender's side of the connection (``auth.hello_proof``). A peer is known by
  its name only once its PROOF checks out; until then a frame may be at most
  ``HANDSHAKE_MAX_FRAME`` bytes, nothing reaches the handler, no per-peer state
  exists, and the connection is closed after ``handshake_timeout`` seconds. A
  peer that fails the proof is refused with one logged line. Frames we send
  before the peer is authenticated are queued (we need its name to ask the
  fault filter) and released in order.
- Outgoing frames are encoded at once (so encoding errors surface in the caller),
  passed through the fault filter, buffered, and written once per event-loop
  iteration, so a burst of frames costs one ``write`` system call. Frames
  produced while handling a read are written as soon as that read is handled.
- Anything that breaks the protocol (bytes that are not frames, an oversized
  frame, a frame of the wrong shape, an unknown method or a body the schema
  rejects) closes this one connection and is logged at warning level with the
  peer and the reason. The node keeps serving every other connection.
- While the node is paused, inbound frames are held in order and dispatched on
  resume; the socket stays open.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

import msgpack

from teachraft.net.auth import NONCE_BYTES, check, good_name, hello_proof, new_nonce
from teachraft.net.errors import CallTimeout, NetError, ProtocolError, RemoteError, Unreachable
from teachraft.net.framing import HEADER, FrameDecoder, FrameError
from teachraft.net.stats import LinkStats

if TYPE_CHECKING:
    from teachraft.net.transport import Node

logger = logging.getLogger(__name__)

REQUEST, OK, ERROR, ONEWAY, HELLO, PROOF = 0, 1, 2, 3, 4, 5

HANDSHAKE_MAX_FRAME = 512
"""Largest frame accepted before the peer is authenticated (a HELLO or a PROOF)."""

MIN_READ = 16384
"""Smallest free space offered to a socket read."""

_pack = msgpack.Packer(use_bin_type=True).pack
_pack_header = HEADER.pack
_ENCODE_ERRORS = (TypeError, ValueError, OverflowError)


class Responder:
    """The way to answer one request, exactly once, now or later.

    A handler may keep it and answer from a later callback (e.g. once a log entry
    commits). Answering after the connection closed is a silent no-op.
    """

    __slots__ = ("_conn", "_id", "answered")

    def __init__(self, conn: Connection, request_id: int) -> None:
        self._conn = conn
        self._id = request_id
        self.answered = False

    def ok(self, result: Any) -> None:
        """Send ``result`` as the call's return value."""
        conn = self._conn
        if self.answered or conn.closed:
            self._refuse()
            return
        self.answered = True
        try:
            conn.send_frame([OK, self._id, result])
        except (*_ENCODE_ERRORS, ProtocolError) as exc:
            logger.error("%s: cannot encode the result of a call: %s", conn.me, exc)
            conn.send_frame([ERROR, self._id, f"cannot encode the result: {exc}"])

    def error(self, message: str) -> None:
        """Make the caller's ``call`` raise ``RemoteError(message)``."""
        if self.answered or self._conn.closed:
            self._refuse()
            return
        self.answered = True
        self._conn.send_frame([ERROR, self._id, str(message)])

    def _refuse(self) -> None:
        if self.answered:
            logger.warning("%s: request %d answered twice; ignored", self._conn.me, self._id)
        self.answered = True


def call_timeout(method: str, peer: str, timeout: float) -> CallTimeout:
    """The error of a call that got no answer in time."""
    return CallTimeout(f"call {method} to {peer} timed out after {timeout:g}s")


class Connection(asyncio.BufferedProtocol):
    """A framed, pipelined, fault-filtered connection owned by one ``Node``."""

    def __init__(self, node: Node, address: str | None) -> None:
        self.node = node
        self.address = address  # the address we dialled; None when accepted
        self.me = node.name
        self.loop = node.loop
        self.faults = node.faults
        self.handler = node.handler
        self.schema = node.schema
        self.max_frame = node.max_frame
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.remote = address or "?"
        self.closed = False
        self.pending: dict[int, asyncio.Future] = {}
        self.next_id = 1
        self.dial_deadline = 0.0
        self.dial_task: asyncio.Task | None = None
        self.heard = False  # traffic since the node's last idle sweep
        self._decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)
        self._decoder.single = True
        self._nonce = new_nonce()
        self._claim: str | None = None
        self._peer_nonce = b""
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []
        self._flush_pending = False
        self._early: list[bytes] = []
        self._held: list[Any] = []
        self._out_stats: LinkStats | None = None
        self._in_stats: LinkStats | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.me}->{self.peer or self.remote}>"

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.closed:
            transport.abort()
            return
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peername = transport.get_extra_info("peername")
        if self.address is None and peername:
            self.remote = f"{peername[0]}:{peername[1]}"
        if not self.node._connection_made(self):
            self.closed = True
            transport.abort()
            return
        self._handshake_timer = self.loop.call_later(
            self.node.handshake_timeout, self._handshake_expired
        )
        self._send_now([HELLO, self.me, self._nonce])

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._decoder.get_buffer(max(sizehint, MIN_READ))

    def buffer_updated(self, nbytes: int) -> None:
        self.heard = True
        try:
            frames = self._decoder.commit(nbytes)
            if self.peer is None:
                frames = self._handshake(frames)
        except FrameError as exc:
            self.abort(str(exc))
            return
        if not frames or self.closed:
            return
        node = self.node
        if self._held or node.paused:
            self._held.extend(frames)
            return
        # Frames produced while dispatching (replies, forwarded messages) are
        # written once, right after this read, instead of one iteration later.
        batch: list[Connection] = []
        node.batch = batch
        try:
            self._dispatch_all(frames)
        finally:
            node.batch = None
            for conn in batch:
                conn._flush()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost does the rest

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self._shutdown(
            Unreachable, f"connection {self.me}->{self.peer or self.remote} lost{reason}"
        )

    # -- sending -------------------------------------------------------------

    def send_frame(self, frame: list) -> None:
        """Encode one frame now and send it (after the hello, through the faults)."""
        data = _pack(frame)
        if len(data) > self.max_frame:
            raise ProtocolError(f"frame of {len(data)} bytes exceeds the limit of {self.max_frame}")
        if self.peer is None:
            self._early.append(data)
        elif self.faults is not None and self.faults.active:
            self._route(data)
        else:
            self._write(data)

    def _route(self, data: bytes) -> None:
        """Send one frame through the fault filter: drop, delay or write it."""
        delay = self.faults.route(self.me, self.peer)  # type: ignore[union-attr,arg-type]
        if delay is None:
            self._out_stats.dropped += 1  # type: ignore[union-attr]
        elif delay > 0.0:
            self.loop.call_later(delay, self._write, data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self.closed:
            return
        self._out_stats.sent += 1  # type: ignore[union-attr]
        out = self._out
        out.append(_pack_header(len(data)))
        out.append(data)
        if not self._flush_pending:
            self._schedule_flush()

    def _send_now(self, frame: list) -> None:
        """Write a handshake frame at once: no fault filter, no queue."""
        data = _pack(frame)
        self._out += (_pack_header(len(data)), data)
        if not self._flush_pending:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        self._flush_pending = True
        batch = self.node.batch
        if batch is None:
            self.loop.call_soon(self._flush)
        else:
            batch.append(self)

    def _flush(self) -> None:
        self._flush_pending = False
        out = self._out
        if out and not self.closed and self.transport is not None:
            self.transport.write(b"".join(out))
            self.heard = True  # traffic either way keeps a connection from being idle
        out.clear()

    # -- calls ---------------------------------------------------------------

    def request(self, method: str, body: Any, timeout: float) -> tuple[int, asyncio.Future]:
        """Send a request; return its id and the future of its answer.

        The future fails with CallTimeout after ``timeout`` seconds. The caller
        must call ``node.deadlines.finish()`` and ``pending.pop(id)`` when done.
        """
        fut = self.loop.create_future()
        rid = self.next_id
        self.next_id = rid + 1
        self.send_frame([REQUEST, rid, method, body])
        self.pending[rid] = fut
        self.node.deadlines.add(fut, timeout, (method, self.remote, timeout))  # type: ignore[union-attr]
        return rid, fut

    # -- receiving -----------------------------------------------------------

    def _dispatch_all(self, frames: list[Any]) -> None:
        node = self.node
        dispatch = self._dispatch
        remaining = iter(frames)
        for frame in remaining:
            if node.paused:  # a handler paused the node: hold the rest, in order
                self._held.append(frame)
                self._held.extend(remaining)
                return
            if self.closed:
                return
            dispatch(frame)

    @property
    def held(self) -> int:
        """Inbound frames waiting for the node to resume."""
        return len(self._held)

    def drain_held(self) -> None:
        """Dispatch the frames held while the node was paused, in order."""
        frames = self._held
        self._held = []
        if frames and not self.closed:
            self._dispatch_all(frames)

    def _dispatch(self, frame: Any) -> None:
        if type(frame) is not list or not frame:
            self.abort(f"frame of the wrong shape: {_preview(frame)}")
            return
        kind = frame[0]
        size = len(frame)
        self._in_stats.received += 1  # type: ignore[union-attr]
        if kind == OK and size == 3 and type(frame[1]) is int:
            fut = self.pending.pop(frame[1], None)
            if fut is not None and not fut.done():
                fut.set_result(frame[2])
        elif kind == REQUEST and size == 4:
            self._receive_request(frame[1], frame[2], frame[3])
        elif kind == ONEWAY and size == 3:
            self._receive_oneway(frame[1], frame[2])
        elif kind == ERROR and size == 3 and type(frame[2]) is str:
            self._resolve(frame[1], frame[2], True)
        else:
            self.abort(f"frame of the wrong shape: {_preview(frame)}")

    # -- handshake -----------------------------------------------------------

    def _handshake(self, frames: list[Any]) -> list[Any]:
        """Run the handshake on frames decoded one at a time; return those after it."""
        decoder = self._decoder
        while frames:
            self._handshake_frame(frames[0])
            if self.closed:
                return []
            if self.peer is not None:
                return decoder.commit(0)  # what followed the proof, at the full frame limit
            frames = decoder.commit(0)
        return []

    def _handshake_frame(self, frame: Any) -> None:
        if self._claim is None:
            self._receive_hello(frame)
        else:
            self._receive_proof(frame)

    def _receive_hello(self, frame: Any) -> None:
        if (
            type(frame) is not list
            or len(frame) != 3
            or frame[0] != HELLO
            or not good_name(frame[1])
            or type(frame[2]) is not bytes
            or len(frame[2]) != NONCE_BYTES
        ):
            self.abort(f"expected a hello frame first, got {_preview(frame)}")
            return
        self._claim = frame[1]
        self._peer_nonce = frame[2]
        role = "accept" if self.address is None else "dial"
        proof = hello_proof(self.node.key, role, self.me, self._claim, frame[2], self._nonce)
        self._send_now([PROOF, proof])

    def _receive_proof(self, frame: Any) -> None:
        claim = self._claim
        assert claim is not None
        peer_role = "dial" if self.address is None else "accept"
        expected = hello_proof(
            self.node.key, peer_role, claim, self.me, self._nonce, self._peer_nonce
        )
        if type(frame) is not list or len(frame) != 2 or frame[0] != PROOF:
            self.abort(f"expected a proof frame after the hello, got {_preview(frame)}")
            return
        if not check(expected, frame[1]):
            self.refuse(
                "auth",
                f"refused a connection from {self.remote} claiming to be {claim!r}: "
                "it does not know the cluster secret",
            )
            return
        self._authenticated(claim)

    def _authenticated(self, name: str) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self._decoder.max_frame = self.max_frame
        self._decoder.single = False
        self.peer = name
        links = self.node.stats
        self._out_stats = links.link(self.me, name)
        self._in_stats = links.link(name, self.me)
        self.node._hello_received(self)
        early = self._early
        self._early = []
        for data in early:
            if self.faults is not None and self.faults.active:
                self._route(data)
            else:
                self._write(data)

    def _handshake_expired(self) -> None:
        self._handshake_timer = None
        if self.peer is None and not self.closed:
            self.refuse(
                "handshake timeout",
                f"closed a connection from {self.remote} that did not authenticate within "
                f"{self.node.handshake_timeout:g}s",
            )

    def _resolve(self, rid: Any, value: Any, failed: bool) -> None:
        if type(rid) is not int:
            self.abort(f"reply with a non-integer id: {_preview(rid)}")
            return
        fut = self.pending.pop(rid, None)
        if fut is None or fut.done():
            return  # the call timed out or was cancelled; a late answer is normal
        if failed:
            fut.set_exception(RemoteError(value))
        else:
            fut.set_result(value)

    def _receive_request(self, rid: Any, method: Any, body: Any) -> None:
        if type(rid) is not int or type(method) is not str:
            self.abort(f"request with a bad id or method: {_preview([rid, method])}")
            return
        if self.schema is not None:
            body = self._check_body(method, body)
            if body is _REJECTED:
                return
        responder = Responder(self, rid)
        try:
            self.handler(method, body, self.peer, responder)  # type: ignore[arg-type]
        except Exception as exc:
            logger.warning(
                "%s: handler failed on %s from %s", self.me, method, self.peer, exc_info=True
            )
            if not responder.answered:
                responder.error(str(exc) or type(exc).__name__)

    def _receive_oneway(self, method: Any, body: Any) -> None:
        if type(method) is not str:
            self.abort(f"one-way message with a bad method: {_preview(method)}")
            return
        if self.schema is not None:
            body = self._check_body(method, body)
            if body is _REJECTED:
                return
        try:
            self.handler(method, body, self.peer, None)  # type: ignore[arg-type]
        except Exception:
            logger.warning(
                "%s: handler failed on one-way %s from %s",
                self.me,
                method,
                self.peer,
                exc_info=True,
            )

    def _check_body(self, method: str, body: Any) -> Any:
        """Decode ``body`` with the schema, or close the connection and return _REJECTED."""
        decode = self.schema.get(method)  # type: ignore[union-attr]
        if decode is None:
            self.abort(f"unknown method {method!r}")
            return _REJECTED
        try:
            return decode(body)
        except Exception as exc:
            self.abort(f"body of {method!r} rejected: {type(exc).__name__}: {str(exc)[:200]}")
            return _REJECTED

    # -- closing -------------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Close this connection because the peer broke the protocol."""
        if self.closed:
            return
        self.node.report(
            "bad frame",
            f"{self.me}: closing the connection with {self.peer or self.remote}: {reason}",
        )
        self._close(reason)

    def refuse(self, kind: str, line: str) -> None:
        """Close a connection that never authenticated, with one counted, logged line."""
        if self.closed:
            return
        self.node.report(kind, f"{self.me}: {line}")
        self._close(line)

    def close_idle(self) -> None:
        """Close a connection that carried nothing for the node's idle timeout."""
        logger.info("%s: closing the idle connection with %s", self.me, self.peer or self.remote)
        self._close("idle")

    def _close(self, reason: str) -> None:
        self._flush()
        transport = self.transport
        self._shutdown(
            ProtocolError, f"connection with {self.peer or self.remote} closed: {reason}"
        )
        if transport is not None:
            transport.close()

    def close_now(self, message: str) -> None:
        """Fail-stop: drop the socket at once and fail every outstanding call."""
        transport = self.transport
        self._shutdown(Unreachable, message)
        if self.dial_task is not None:
            self.dial_task.cancel()
        if transport is not None:
            transport.abort()

    def dial_failed(self, message: str) -> None:
        """Give up dialling: fail the waiting calls and drop the queued messages."""
        dropped = len(self._early)
        if dropped:
            logger.debug("%s: dropping %d queued frames: %s", self.me, dropped, message)
            self.node.stats.link(
                self.me, self.node.peer_name(self.remote) or self.remote
            ).dropped += dropped
        self._shutdown(Unreachable, message)

    def _shutdown(self, error: type[NetError], message: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self._out.clear()
        self._early.clear()
        self._held.clear()
        pending = self.pending
        self.pending = {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(error(message))
        self.node._forget(self)


class _Rejected:
    """Marker for a body the schema refused (the connection is already closing)."""


_REJECTED: Any = _Rejected()


def _preview(value: Any, limit: int = 80) -> str:
    """A short description of untrusted input: bounded, and never recursive.

    ``repr`` would recurse once per level of nesting (a 1,000-deep frame raises
    RecursionError) and copy all of a huge value first; this walks an explicit
    stack and stops as soon as ``limit`` characters are out.
    """
    out: list[str] = []
    size = 0
    stack: list[Any] = [value]
    while stack and size < limit:
        item = stack.pop()
        if type(item) is _Text:
            text = item.text
        elif type(item) is list or type(item) is tuple:
            text = "["
            stack.append(_Text("]"))
            for i in range(min(len(item), limit) - 1, -1, -1):
                stack.append(item[i])
                if i:
                    stack.append(_Text(", "))
        elif type(item) is dict:
            text = "{"
            stack.append(_Text("}"))
            pairs = list(item.items())[:limit]
            for i in range(len(pairs) - 1, -1, -1):
                stack.append(pairs[i][1])
                stack.append(_Text(": "))
                stack.append(pairs[i][0])
                if i:
                    stack.append(_Text(", "))
        elif isinstance(item, (str, bytes, bytearray)):
            text = repr(item[:limit])
        else:
            text = repr(item)[:limit]
        out.append(text)
        size += len(text)
    text = "".join(out)
    if stack or len(text) > limit:
        return text[: limit - 3] + "..."
    return text


class _Text:
    """Literal punctuation on ``_preview``'s stack."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
