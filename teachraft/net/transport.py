"""``Node``: how one teachraft process talks to the others over TCP on loopback.

A node listens on one address (unless ``listen=False``, as for clients) and
keeps ONE persistent, lazily dialled connection per address it talks to. Calls
are pipelined on that connection with request ids, so many may be outstanding
at once; one-way messages share it and arrive in order (unless a fault delays
them). Everything runs as callbacks on the event loop: no task per message.

Failure semantics, chosen to look like a real network to Raft:

- ``call`` raises ``CallTimeout`` when no answer arrives in time (the request or
  the answer may have been lost to a fault), ``Unreachable`` when the peer
  refuses connections (after a short redial effort bounded by the timeout) or
  the connection drops while the call waits, ``RemoteError`` when the peer's
  handler answered with an error, ``ProtocolError`` when the answer is malformed.
- ``send`` never raises: a message to an unreachable peer is dropped and logged
  at debug level, since Raft retries by itself.
- ``close`` is a fail-stop crash: every socket is reset and every call fails.
- ``pause``/``resume`` freeze a node without closing anything: inbound frames
  are held in order and delivered on resume.

Bounds that keep a hostile local process from hurting a node (every refusal
is counted in ``problems`` and logged, at most once a second per kind):

- every connection must prove it knows the cluster ``secret`` within
  ``handshake_timeout`` seconds (``connection`` describes the handshake);
- at most ``max_handshakes`` accepted connections may be mid-handshake (a new
  one evicts the oldest, so a flood cannot lock real peers out) and at most
  ``max_connections`` accepted connections may be open (more are refused);
- a connection that carries nothing for ``idle_timeout`` seconds, with no call
  waiting on it, is closed (it is redialled when next needed);
- per-peer counters exist only for authenticated peers, and those of a peer
  that only dialled us are freed when its last connection goes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from teachraft.net.address import join_address, split_address
from teachraft.net.auth import as_key
from teachraft.net.connection import ONEWAY, Connection, Responder, call_timeout
from teachraft.net.deadlines import CallDeadlines
from teachraft.net.errors import BindError, NetError, ProtocolError, Unreachable
from teachraft.net.faults import FaultFilter
from teachraft.net.framing import DEFAULT_MAX_FRAME
from teachraft.net.stats import LinkTable

__all__ = ["Handler", "Node", "Responder"]

logger = logging.getLogger(__name__)

Handler = Callable[[str, Any, str, "Responder | None"], None]
"""``handler(method, body, peer_name, responder)``; ``responder`` is None for one-way."""

REDIAL_BUDGET = 0.5
"""Longest time spent redialling a refusing address before giving up (seconds)."""
REDIAL_FIRST_PAUSE = 0.01
REDIAL_MAX_PAUSE = 0.1
CONNECT_FLOOR = 0.05
HANDSHAKE_TIMEOUT = 5.0
IDLE_TIMEOUT = 300.0
MAX_CONNECTIONS = 512
MAX_HANDSHAKES = 64

_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, ProtocolError)


class Node:
    """One named endpoint: a listener, outbound connections, a handler, counters."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        schema: Mapping[str, Callable[[Any], Any]] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        faults: FaultFilter | None = None,
        listen: bool = True,
        secret: str | bytes | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        idle_timeout: float | None = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        max_handshakes: int = MAX_HANDSHAKES,
    ) -> None:
        self.name = name
        self.key = as_key(secret)
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_handshakes = max_handshakes
        self.problems: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()
        self._sweeper: asyncio.TimerHandle | None = None
        self.handler = handler
        self.host = host
        self.port = port
        self.schema = dict(schema) if schema is not None else None
        self.max_frame = max_frame
        self.faults = faults
        self.listen = listen
        # set by start(); every method that uses it runs after start
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.deadlines: CallDeadlines | None = None
        self.paused = False
        self.batch: list[Connection] | None = None  # connections to flush after a read
        self.stats = LinkTable()
        self.dials = 0
        self.accepts = 0
        self._server: asyncio.Server | None = None
        self._closed = False
        self._conns: dict[str, Connection] = {}
        self._all: set[Connection] = set()
        self._names: dict[str, str] = {}
        self._accepted: dict[Connection, None] = {}  # accepted connections, oldest first
        self._handshaking: dict[Connection, None] = {}  # accepted, not yet authenticated

    def __repr__(self) -> str:
        where = join_address(self.host, self.port) if self.listen else "client"
        return f"<Node {self.name} {where}>"

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Bind the listener (if any); raise BindError naming the address when in use."""
        self._bind_loop()
        self._closed = False
        if not self.listen:
            return
        try:
            self._server = await self.loop.create_server(self._accept, self.host, self.port)
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise BindError(f"cannot listen on {self.host}:{self.port}: {reason or exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        """The listening address, ``"127.0.0.1:54321"`` (known after ``start``)."""
        if not self.listen:
            raise NetError(f"node {self.name} does not listen (listen=False)")
        return join_address(self.host, self.port)

    async def close(self) -> None:
        """Fail-stop: close the listener and every connection, fail pending calls."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        server = self._server
        self._server = None
        if server is not None:
            server.close()
        for conn in list(self._all):
            conn.close_now(f"node {self.name} closed")
        self._conns.clear()
        if self.deadlines is not None:
            self.deadlines.close()
        if server is not None:
            await server.wait_closed()

    def pause(self) -> None:
        """Hold every inbound frame (in order) until ``resume``; sockets stay open."""
        self.paused = True

    def resume(self) -> None:
        """Deliver the held frames in order, then carry on as usual."""
        if not self.paused:
            return
        self.paused = False
        if self.loop is None:
            return
        for conn in self._all:
            self.loop.call_soon(conn.drain_held)

    # -- talking -------------------------------------------------------------

    async def call(
        self,
        address: str,
        method: str,
        body: Any,
        *,
        timeout: float,
        decode: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Call ``method`` on the node at ``address`` and return its (decoded) result."""
        if self._closed:
            raise Unreachable(f"node {self.name} is closed")
        conn = self._conns.get(address)
        if conn is None or conn.transport is None:
            conn = self._connection(address, min(timeout, REDIAL_BUDGET))
        rid, fut = conn.request(method, body, timeout)
        try:
            result = await fut
        finally:
            self.deadlines.finish()  # type: ignore[union-attr]
            conn.pending.pop(rid, None)
        if decode is None:
            return result
        try:
            return decode(result)
        except Exception as exc:
            raise ProtocolError(
                f"reply to {method} from {address} rejected: {type(exc).__name__}: {exc}"
            ) from exc

    def call_later(
        self,
        address: str,
        method: str,
        body: Any,
        *,
        timeout: float,
        callback: Callable[[Any, BaseException | None], None],
        dial_budget: float = REDIAL_BUDGET,
    ) -> None:
        """Like ``call``, but ``callback(result, error)`` runs when it ends.

        The hot path of a client: no task and no coroutine per request. The
        callback runs on the loop; exactly one of result and error is meaningful.
        ``dial_budget`` bounds the redialling of a refusing address (a caller
        with somewhere else to go gives up on a dead server sooner).
        """
        if self._closed:
            callback(None, Unreachable(f"node {self.name} is closed"))
            return
        conn = self._conns.get(address)
        if conn is None or conn.transport is None:
            conn = self._connection(address, min(timeout, dial_budget))
        try:
            rid, fut = conn.request(method, body, timeout)
        except _ENCODE_ERRORS as exc:  # e.g. over the frame limit: the caller hears it now
            callback(None, exc if isinstance(exc, NetError) else ProtocolError(str(exc)))
            return
        deadlines = self.deadlines

        def done(f: asyncio.Future) -> None:
            deadlines.finish()  # type: ignore[union-attr]
            conn.pending.pop(rid, None)
            if f.cancelled():
                callback(None, Unreachable(f"call to {address} cancelled"))
                return
            exc = f.exception()
            callback(None if exc is not None else f.result(), exc)

        fut.add_done_callback(done)

    def send(self, address: str, method: str, body: Any) -> None:
        """Send a one-way message; never raises (unreachable peers drop it)."""
        if self._closed:
            logger.debug("%s: closed, dropping %s to %s", self.name, method, address)
            return
        try:
            self._connection(address, REDIAL_BUDGET).send_frame([ONEWAY, method, body])
        except _ENCODE_ERRORS as exc:
            logger.error("%s: cannot send %s to %s: %s", self.name, method, address, exc)

    def peer_name(self, address: str) -> str | None:
        """The node name behind ``address``, learned from its hello (None if unknown)."""
        return self._names.get(address)

    @property
    def held(self) -> int:
        """Inbound frames held because the node is (or just was) paused."""
        return sum(conn.held for conn in self._all)

    @property
    def connection_count(self) -> int:
        """Open (or opening) connections, inbound and outbound."""
        return len(self._all)

    # -- connections ---------------------------------------------------------

    def _connection(self, address: str, budget: float) -> Connection:
        conn = self._conns.get(address)
        if conn is None:
            return self._dial(address, budget)
        if conn.transport is None:  # still dialling: let this caller extend the effort
            conn.dial_deadline = max(conn.dial_deadline, conn.loop.time() + budget)
        return conn

    def _dial(self, address: str, budget: float) -> Connection:
        host, port = split_address(address)
        loop = self._bind_loop()
        conn = Connection(self, address)
        conn.dial_deadline = loop.time() + budget
        self._conns[address] = conn
        self._all.add(conn)
        conn.dial_task = loop.create_task(self._connect(conn, host, port))
        return conn

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """Attach to the running loop (on ``start``, or on first use without it)."""
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            if self.deadlines is not None:
                self.deadlines.close()
            self.loop = loop
            self.deadlines = CallDeadlines(loop, call_timeout)
            if self._sweeper is not None:
                self._sweeper.cancel()
            if self.idle_timeout is not None:
                self._sweeper = loop.call_later(self.idle_timeout, self._sweep_idle)
        return loop

    def _sweep_idle(self) -> None:
        """Close connections that carried nothing since the last sweep and wait on nothing."""
        for conn in list(self._all):
            if not conn.heard and not conn.pending and conn.transport is not None:
                conn.close_idle()
            conn.heard = False
        if not self._closed and self.loop is not None and self.idle_timeout is not None:
            self._sweeper = self.loop.call_later(self.idle_timeout, self._sweep_idle)

    def report(self, kind: str, line: str) -> None:
        """Count one refused input of ``kind`` and log ``line`` (at most once a second per kind)."""
        self.problems[kind] += 1
        now = time.monotonic()
        if now - self._logged_at.get(kind, -1e9) < 1.0:
            self._unlogged[kind] += 1
            return
        self._logged_at[kind] = now
        more = self._unlogged.pop(kind, 0)
        logger.warning("%s%s", line, f" (and {more} more like it)" if more else "")

    async def _connect(self, conn: Connection, host: str, port: int) -> None:
        loop = conn.loop
        pause = REDIAL_FIRST_PAUSE
        while True:
            remaining = max(conn.dial_deadline - loop.time(), CONNECT_FLOOR)
            try:
                await asyncio.wait_for(loop.create_connection(lambda: conn, host, port), remaining)
                return
            except (OSError, asyncio.TimeoutError) as exc:
                error = exc
            if conn.closed:
                return
            if loop.time() + pause >= conn.dial_deadline:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, REDIAL_MAX_PAUSE)
        reason = "timed out" if isinstance(error, asyncio.TimeoutError) else str(error)
        logger.debug("%s: cannot connect to %s: %s", self.name, conn.address, reason)
        conn.dial_failed(f"cannot connect to {conn.address}: {reason}")

    def _accept(self) -> Connection:
        return Connection(self, None)

    def _connection_made(self, conn: Connection) -> bool:
        """Admit a new connection (False: refused by the connection cap)."""
        if conn.address is not None:
            self.dials += 1
            return True
        if len(self._accepted) >= self.max_connections:
            self.report(
                "connection cap",
                f"{self.name}: refused a connection from {conn.remote}: "
                f"{self.max_connections} connections are open",
            )
            return False
        if len(self._handshaking) >= self.max_handshakes:
            oldest = next(iter(self._handshaking))
            oldest.refuse(
                "handshake timeout",
                f"closed a connection from {oldest.remote} still unauthenticated when "
                f"{self.max_handshakes} others were waiting",
            )
        self.accepts += 1
        self._all.add(conn)
        self._accepted[conn] = None
        self._handshaking[conn] = None
        return True

    def _hello_received(self, conn: Connection) -> None:
        self._handshaking.pop(conn, None)
        if conn.address is not None and conn.peer is not None:
            self._names[conn.address] = conn.peer

    def _forget(self, conn: Connection) -> None:
        self._all.discard(conn)
        self._accepted.pop(conn, None)
        self._handshaking.pop(conn, None)
        if conn.address is not None and self._conns.get(conn.address) is conn:
            del self._conns[conn.address]
        peer = conn.peer
        if peer is not None and conn.address is None and not self._in_use(peer):
            self.stats.pop((self.name, peer), None)
            self.stats.pop((peer, self.name), None)

    def _in_use(self, peer: str) -> bool:
        """True while we dial ``peer`` or another of its connections is open."""
        if peer in self._names.values():
            return True
        return any(c.peer == peer for c in self._all)
