"""The tracing server: collects every node's records and writes the trace files.

It is KVRaft's tracing server made lossless and causally ordered. Nodes send
batches of records over one TCP connection each (``wire`` describes the
messages); the server acknowledges a batch once it holds it, drops records
it already has (a client resends a batch whose ack it lost), holds back a
record until its causal past is written (``ordering``), writes both files
(``writer``) and appends every written record to ``table``, the EventTable
that notebooks draw from while the run goes on.

Only tracers that know the cluster secret are heard: the server opens each
connection with a challenge nonce, and the first message must be an HMAC over
it (``wire.auth_message``); until then a frame may hold at most a few hundred
bytes, a connection silent for ``handshake_timeout`` is closed, and at most
``max_connections`` connections are open at once. Records
are checked before they are held: a name with control or separator
characters, or a clock entry for another host that no received token explains
(``provenance``), is refused. Every refusal is counted in ``problems`` and
logged (at most once a second per kind).

A connection that sends anything malformed is closed with a logged reason;
the others are not disturbed. ``close()`` stops listening, waits a little
for records that held ones depend on (they are usually in flight), then
stops reading everything at once, writes what is still held in a causally
consistent order and closes the files. A record whose causal past has not
arrived after ``hold_timeout`` seconds is written anyway (with a warning), so
that one tracer that died with unsent records cannot freeze the files. A
server started with ``append=True`` on the same files continues them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from teachraft.net.auth import as_key, check, new_nonce
from teachraft.net.framing import DEFAULT_MAX_FRAME, FrameDecoder, FrameError, encode_frame
from teachraft.tracing.config import load_tracing_server_config, parse_address
from teachraft.tracing.events import EventTable
from teachraft.tracing.ordering import CausalOrderer
from teachraft.tracing.provenance import unexplained_entry
from teachraft.tracing.sinks import Record
from teachraft.tracing.wire import (
    ProtocolError,
    ack_message,
    auth_mac,
    challenge_message,
    clock_reply,
    error_message,
    message_type,
    parse_batch,
    parse_clock_request,
    welcome_message,
)
from teachraft.tracing.writer import TraceFileWriter

logger = logging.getLogger(__name__)


class TracingServer:
    """An asyncio tracing service on loopback; see the module docstring."""

    def __init__(
        self,
        bind: str = "127.0.0.1:0",
        output_file: str | Path = "trace_output.log",
        shiviz_output_file: str | Path = "shiviz_output.log",
        *,
        table: EventTable | None = None,
        append: bool = False,
        max_frame: int = DEFAULT_MAX_FRAME,
        drain_timeout: float = 2.0,
        hold_timeout: float | None = 10.0,
        secret: str | bytes | None = None,
        handshake_timeout: float = 5.0,
        max_connections: int = 256,
    ) -> None:
        self.bind = bind
        self.max_connections = max_connections
        self.key = as_key(secret)
        self.handshake_timeout = handshake_timeout
        self.problems: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}
        self._host, self._port = parse_address(bind)
        self.output_file = Path(output_file)
        self.shiviz_output_file = Path(shiviz_output_file)
        self.table = table if table is not None else EventTable()
        self.append = append
        self.max_frame = max_frame
        self.drain_timeout = drain_timeout
        self.hold_timeout = hold_timeout
        self._expirer: asyncio.Task[None] | None = None
        self._orderer = CausalOrderer()
        self._writer: TraceFileWriter | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_TracingProtocol] = set()
        self._closing = False
        self._stopped = False
        self._closed = asyncio.Event()
        self._drained: asyncio.Event | None = None

    @classmethod
    def from_config(
        cls, path: str | Path, *, out_dir: str | Path | None = None, **kwargs: Any
    ) -> TracingServer:
        """A server set up from a tracing_server_config.json (ConfigError if invalid).

        Relative output file names are taken relative to ``out_dir`` when given
        (else to the current directory, as in KVRaft).
        """
        config = load_tracing_server_config(path)
        folder = Path(out_dir) if out_dir is not None else Path()
        kwargs.setdefault("secret", config.Secret)
        return cls(
            config.ServerBind,
            folder / config.OutputFile,
            folder / config.ShivizOutputFile,
            **kwargs,
        )

    # --- life cycle -----------------------------------------------------------

    async def start(self) -> TracingServer:
        """Open the files and start listening; returns self."""
        if self._server is not None:
            raise RuntimeError("the tracing server is already started")
        writer = TraceFileWriter(self.output_file, self.shiviz_output_file, append=self.append)
        self._writer = writer
        self._orderer.restore(writer.existing)
        if writer.existing and len(self.table) == 0:
            self.table.extend(writer.existing)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TracingProtocol(self), self._host, self._port
        )
        self._port = self._server.sockets[0].getsockname()[1]
        if self.hold_timeout is not None:
            self._expirer = loop.create_task(self._expire_held(self.hold_timeout))
        logger.info("tracing server listening on %s", self.address)
        return self

    @property
    def address(self) -> str:
        """``host:port`` the server listens on (the real port once started)."""
        return f"{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def records_written(self) -> int:
        """How many records this server has written to the files."""
        return 0 if self._writer is None else self._writer.written

    @property
    def held(self) -> int:
        """How many records wait for their causal past."""
        return self._orderer.held

    def last_clock(self, identity: str) -> dict[str, int] | None:
        """The latest clock received from ``identity`` (None if never seen)."""
        return self._orderer.last_clock(identity)

    async def serve_forever(self) -> None:
        """Wait until the server is closed (for a tracing-server process)."""
        await self._closed.wait()

    async def close(self) -> None:
        """Stop, write everything still held, flush and close both files."""
        if self._server is None:
            return
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self._server.close()
        if self._expirer is not None:
            self._expirer.cancel()
            await asyncio.gather(self._expirer, return_exceptions=True)
        if self._orderer.held and self._connections:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), self.drain_timeout)
            except asyncio.TimeoutError:
                logger.warning("tracing server closing with %d records held", self._orderer.held)
        self._stopped = True
        for connection in list(self._connections):
            connection.close()
        try:
            await asyncio.wait_for(self._server.wait_closed(), 5.0)
        except asyncio.TimeoutError:
            logger.warning("tracing server connections did not close in time")
        self._write(self._orderer.drain())
        if self._writer is not None:
            self._writer.close()
        self._closed.set()
        logger.info("tracing server on %s closed", self.address)

    async def __aenter__(self) -> TracingServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- handling input -----------------------------------------------------------

    def handle(self, message: Any) -> dict[str, Any] | None:
        """Act on one message; return the reply (ProtocolError if malformed)."""
        kind = message_type(message)
        if kind == "rec":
            seq, records = parse_batch(message)
            self._accept(records)
            return ack_message(seq)
        if kind == "clock":
            identity = parse_clock_request(message)
            return clock_reply(identity, self._orderer.last_clock(identity))
        raise ProtocolError(f"unknown message type {kind!r}")

    def _accept(self, records: list[Record]) -> None:
        orderer = self._orderer
        previous: dict[str, dict[str, int]] = {}
        refused: set[str] = set()  # identities whose latest record in the batch was refused
        kept: list[Record] = []
        for record in records:
            identity = record.identity
            # a step's clock is its kept predecessor's plus its own tick: explained
            if not record.step or identity in refused:
                before = previous.get(identity)
                if before is None:
                    before = orderer.previous_clock(identity)
                problem = unexplained_entry(record, before, orderer.seen)
                if problem is not None:
                    self.report("forged clock", f"tracing server: refused a record: {problem}")
                    refused.add(identity)
                    continue
                refused.discard(identity)
            previous[identity] = record.clock
            kept.append(record)
        self._write(orderer.offer_many(kept, asyncio.get_running_loop().time()))

    def report(self, kind: str, line: str) -> None:
        """Count one refused input of ``kind``; log ``line`` at most once a second per kind."""
        self.problems[kind] += 1
        now = time.monotonic()
        if now - self._logged_at.get(kind, -1e9) >= 1.0:
            self._logged_at[kind] = now
            logger.warning("%s (%d so far)", line, self.problems[kind])

    async def _expire_held(self, timeout: float) -> None:
        """Write records whose causal past has not arrived for ``timeout`` s.

        That past is presumed lost (a tracer died with unsent records); waiting
        longer would freeze the files and the live event table for good.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            expired = self._orderer.expire(loop.time(), timeout)
            if expired:
                logger.warning(
                    "writing %d records whose causal past did not arrive within %.1f s",
                    len(expired),
                    timeout,
                )
                self._write(expired)
                self.flush()

    def _write(self, records: list[Record]) -> None:
        if not records or self._writer is None:
            return
        self._writer.write(records)
        self.table.extend(records)

    def flush(self) -> None:
        """Hand everything written so far to the operating system."""
        if self._writer is not None and not self._closed.is_set():
            self._writer.flush()

    async def aflush(self) -> int:
        """Flush (the same call as a ``TracingProcess``'s); how many records are still held."""
        self.flush()
        return self.held

    def after_input(self) -> None:
        """Called after each read: flush, and end a closing drain once nothing is held."""
        if self._writer is not None:
            self._writer.flush()
        if self._drained is not None and not self._orderer.held:
            self._stopped = True
            self._drained.set()

    @property
    def stopped(self) -> bool:
        return self._stopped


HANDSHAKE_MAX_FRAME = 512
"""Largest frame a tracer may send before it has authenticated."""


class _TracingProtocol(asyncio.Protocol):
    """One tracer connection: frames in, acks and clock replies out."""

    def __init__(self, server: TracingServer) -> None:
        self.server = server
        self.decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)
        self.decoder.single = True
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.failed = False
        self.authenticated = False
        self.nonce = new_nonce()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = str(transport.get_extra_info("peername"))
        if len(self.server._connections) >= self.server.max_connections:
            self.refuse("connection cap", f"{self.server.max_connections} connections are open")
            return
        self.server._connections.add(self)
        transport.write(encode_frame(challenge_message(self.nonce)))
        self._timer = asyncio.get_running_loop().call_later(
            self.server.handshake_timeout, self._handshake_expired
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()

    def _handshake_expired(self) -> None:
        if not self.authenticated and not self.failed:
            self.refuse("handshake timeout", "did not authenticate in time")

    def _authenticate(self, messages: list[Any]) -> list[Any]:
        """Check the first message's proof; return the messages that follow it."""
        message = messages[0]
        if type(message) is not dict or message.get("t") != "auth":
            self.refuse("auth", "sent records before authenticating")
            return []
        expected = auth_mac(self.server.key, self.nonce, message.get("nonce"))
        if not check(expected, message.get("mac")):
            self.refuse("auth", "does not know the cluster secret")
            return []
        self.authenticated = True
        if self._timer is not None:
            self._timer.cancel()
        self.decoder.max_frame = self.server.max_frame
        self.decoder.single = False
        if self.transport is not None:
            self.transport.write(encode_frame(welcome_message()))
        return self.decoder.commit(0)

    def refuse(self, kind: str, reason: str) -> None:
        """Close an unauthenticated connection with one counted line."""
        self.failed = True
        self.server.report(kind, f"tracing server: refused a connection from {self.peer}: {reason}")
        if self.transport is not None:
            self.transport.write(encode_frame(error_message(reason)))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.failed or self.server.stopped:
            return
        replies: list[bytes] = []
        error: str | None = None
        try:
            messages = self.decoder.feed(data)
            if not self.authenticated and messages:
                messages = self._authenticate(messages)
                if self.failed:
                    return
            for message in messages:
                reply = self.server.handle(message)
                if reply is not None:
                    replies.append(encode_frame(reply))
        except (FrameError, ProtocolError) as exc:
            error = str(exc)
        self.server.after_input()
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))
        if error is not None:
            self.fail(error)

    def fail(self, reason: str) -> None:
        """Close this connection because its peer broke the protocol."""
        self.failed = True
        logger.warning("closing tracing connection from %s: %s", self.peer, reason)
        if self.transport is not None:
            self.transport.write(encode_frame(error_message(reason[:500])))
            self.transport.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
