"""The tracing client: a Sink that ships records to the tracing server, losing none.

``emit`` only appends to a buffer, so recording costs the node nothing but a
list append; a background task sends the buffer in batches over one
persistent connection and keeps each batch until the server acknowledges it.
While the server is down the client keeps buffering and redials with bounded
backoff; a resent batch is harmless because the server deduplicates by
(identity, own time). ``aclose`` flushes everything that can be flushed.

The client proves it knows the cluster secret when it connects (``wire``
describes the challenge). A record too large for one frame is not lost
silently: it is sent with its body replaced by a note saying so (its clock
tick stays in the trace), counted in ``oversize`` and logged.

``emit`` may also be called from another thread than the client's loop (the
``connect_tracer`` helper runs the loop in a background thread so that plain
scripts and subprocesses can trace).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from typing import Any

from teachraft.net.auth import as_key, new_nonce
from teachraft.net.framing import DEFAULT_MAX_FRAME, FrameDecoder, FrameError, encode_frame
from teachraft.tracing.config import parse_address
from teachraft.tracing.sinks import Record
from teachraft.tracing.wire import (
    ProtocolError,
    auth_message,
    batch_message,
    clock_request,
    message_type,
    record_to_wire,
)

logger = logging.getLogger(__name__)

_NETWORK_ERRORS = (
    OSError,
    ConnectionError,
    EOFError,
    FrameError,
    ProtocolError,
    asyncio.TimeoutError,
)


class ServerRejected(Exception):
    """The server closed the connection because of what this client sent."""


class AuthRefused(ConnectionError):
    """The server refused our proof of the secret: retried, since no record was at fault."""


class TracingClient:
    """A Sink for asyncio code that delivers records to a TracingServer."""

    def __init__(
        self,
        address: str,
        *,
        batch_size: int = 4096,
        max_backoff: float = 0.5,
        ack_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        linger: float = 0.005,
        secret: str | bytes | None = None,
    ) -> None:
        self.address = address
        self.key = as_key(secret)
        self.oversize = 0
        self.auth_refused = 0
        self.linger = linger
        self._host, self._port = parse_address(address)
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self._buffer: deque[Record] = deque()
        self._inflight: list[Record] = []
        self._seq = 0
        self._signalled = False
        self._closing = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = FrameDecoder(DEFAULT_MAX_FRAME)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._single_until = 0
        self.delivered = 0
        self.dropped = 0
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.start()

    # --- the Sink side ----------------------------------------------------------

    def start(self) -> None:
        """Start the sender task on the running loop (done on creation if one runs)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name=f"tracing-client {self.address}")

    def emit(self, record: Record) -> None:
        """Buffer one record for sending (no I/O here)."""
        self._buffer.append(record)
        if not self._signalled:
            self._signal()

    def _signal(self) -> None:
        if self._task is None:
            self.start()
        self._signalled = True
        assert self._loop is not None and self._wake is not None
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def pending(self) -> int:
        """Records not yet acknowledged by the server."""
        return len(self._buffer) + len(self._inflight)

    async def aclose(self, timeout: float = 10.0) -> int:
        """Send everything buffered (waiting at most ``timeout`` s), then disconnect.

        Returns how many records could not be delivered (0 when all arrived).
        """
        self._closing = True
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        await self._disconnect()
        left = self.pending
        if left:
            logger.warning(
                "tracing client for %s closed with %d records unsent", self.address, left
            )
        return left

    # --- the sender task ----------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.01
        while True:
            if not self._inflight:
                if not self._buffer:
                    if self._closing:
                        return
                    await self._wait_for_records()
                    continue
                self._inflight = self._take_batch()
                if not self._inflight:
                    continue
            try:
                await self._send_inflight()
                backoff = 0.01
            except ServerRejected as exc:
                self._on_rejected(str(exc))
                await self._disconnect()
            except AuthRefused as exc:
                if not self.auth_refused:
                    logger.error("tracing client for %s: %s", self.address, exc)
                self.auth_refused += 1
                await self._disconnect()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except _NETWORK_ERRORS as exc:
                logger.debug("tracing client %s: %s; retrying in %.2fs", self.address, exc, backoff)
                await self._disconnect()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _wait_for_records(self) -> None:
        assert self._wake is not None
        await self._wake.wait()
        if self.linger and not self._closing and len(self._buffer) < self.batch_size:
            # Let a few more records join the batch: one frame, one ack and one
            # file write per batch is what keeps tracing cheap for a busy node.
            await asyncio.sleep(self.linger)
        self._wake.clear()
        self._signalled = False

    def _take_batch(self) -> list[Record]:
        """Move up to batch_size records from the buffer into a batch.

        Records are not checked here: the server refuses a bad one, and the
        client then resends that batch one record at a time (``_on_rejected``).
        """
        self._signalled = False
        size = 1 if self._single_until > self.delivered else self.batch_size
        buffer = self._buffer
        popleft = buffer.popleft
        return [popleft() for _ in range(min(size, len(buffer)))]

    async def _send_inflight(self) -> None:
        if self._writer is None:
            await self._connect()
        assert self._writer is not None
        self._seq += 1
        frame = self._encode(self._seq)
        if frame is None:
            return
        self._writer.write(frame)
        await self._writer.drain()
        await asyncio.wait_for(self._await_ack(self._seq), self.ack_timeout)
        self.delivered += len(self._inflight)
        self._inflight = []

    def _encode(self, seq: int) -> bytes | None:
        """The frame of the in-flight batch, dropping records msgpack cannot encode."""
        frame: bytes | None
        try:
            frame = encode_frame(batch_message(seq, self._inflight))
        except (TypeError, ValueError, OverflowError):
            before = len(self._inflight)
            self._inflight = [r for r in self._inflight if _encodable(r)]
            self.dropped += before - len(self._inflight)
            frame = encode_frame(batch_message(seq, self._inflight)) if self._inflight else None
        if frame is not None and len(frame) - 4 > DEFAULT_MAX_FRAME:
            if len(self._inflight) == 1:
                self._inflight = [self._shrunk(self._inflight[0], len(frame) - 4)]
                return encode_frame(batch_message(seq, self._inflight))
            half = len(self._inflight) // 2
            self._buffer.extendleft(reversed(self._inflight[half:]))
            self._inflight = self._inflight[:half]
            return self._encode(seq)
        return frame

    def _shrunk(self, record: Record, size: int) -> Record:
        """The record with its body replaced by a note: its event stays in the trace."""
        self.oversize += 1
        note = (
            f"the body of this {record.tag} record was {size / 1e6:.1f} MB, over the "
            f"{DEFAULT_MAX_FRAME / 1e6:.1f} MB frame limit, and was left out"
        )
        logger.warning("tracing client: %s (%s)", note, record.identity)
        return Record(record.identity, record.trace_id, record.tag, {"Omitted": note}, record.clock)

    async def _await_ack(self, seq: int) -> None:
        while True:
            for message in await self._read_messages():
                kind = message_type(message)
                if kind == "ack" and message.get("seq") == seq:
                    return
                if kind == "err":
                    raise ServerRejected(str(message.get("msg")))

    async def _read_messages(self) -> list[Any]:
        assert self._reader is not None
        data = await self._reader.read(65536)
        if not data:
            raise ConnectionError("the tracing server closed the connection")
        return self._decoder.feed(data)

    def _on_rejected(self, reason: str) -> None:
        """Resend the batch one record at a time; a record refused alone is dropped."""
        logger.error("the tracing server refused a batch: %s", reason)
        if len(self._inflight) == 1:
            self.dropped += 1
            self._inflight = []
            return
        self._single_until = self.delivered + len(self._inflight)
        self._buffer.extendleft(reversed(self._inflight))
        self._inflight = []

    async def _connect(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port), self.connect_timeout
        )
        self._reader, self._writer = reader, writer
        self._decoder = FrameDecoder(DEFAULT_MAX_FRAME)
        await asyncio.wait_for(
            _authenticate(reader, writer, self._decoder, self.key),
            self.connect_timeout,
        )

    async def _disconnect(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (*_NETWORK_ERRORS, asyncio.CancelledError):
            pass

    # --- restarts -------------------------------------------------------------------

    @staticmethod
    async def fetch_clock(
        address: str, identity: str, timeout: float = 5.0, secret: str | bytes | None = None
    ) -> dict[str, int] | None:
        """The last clock the server at ``address`` has for ``identity`` (None if none).

        A tracer restarted under the same identity starts from this clock so
        that its own times continue instead of starting again at 1.
        """
        host, port = parse_address(address)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        try:
            decoder = FrameDecoder(DEFAULT_MAX_FRAME)
            await asyncio.wait_for(_authenticate(reader, writer, decoder, as_key(secret)), timeout)
            writer.write(encode_frame(clock_request(identity)))
            await writer.drain()
            return await asyncio.wait_for(_read_clock_reply(reader, identity, decoder), timeout)
        finally:
            writer.close()
            with contextlib.suppress(*_NETWORK_ERRORS):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _authenticate(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, decoder: FrameDecoder, key: bytes
) -> None:
    """Answer the server's challenge with the proof that we know the secret; await its word."""
    sent = False
    while True:
        data = await reader.read(4096)
        if not data:
            raise ConnectionError("the tracing server closed the connection")
        for message in decoder.feed(data):
            kind = message_type(message)
            if kind == "err":
                raise AuthRefused(f"the tracing server refused us: {message.get('msg')}")
            if kind == "welcome" and sent:
                return
            nonce = message.get("nonce")
            if kind != "challenge" or type(nonce) is not bytes or sent:
                raise ProtocolError("the tracing server did not open with a challenge")
            writer.write(encode_frame(auth_message(key, nonce, new_nonce())))
            await writer.drain()
            sent = True


async def _read_clock_reply(
    reader: asyncio.StreamReader, identity: str, decoder: FrameDecoder
) -> dict[str, int] | None:
    while True:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("the tracing server closed the connection")
        for message in decoder.feed(data):
            if message_type(message) == "clock" and message.get("id") == identity:
                clock = message.get("clock")
                if clock is None:
                    return None
                if not isinstance(clock, dict):
                    raise ProtocolError("the clock reply is not a map")
                return {str(k): int(v) for k, v in clock.items()}


def _encodable(record: Record) -> bool:
    try:
        encode_frame(record_to_wire(record))
    except (TypeError, ValueError, OverflowError) as exc:
        logger.error("dropping a record msgpack cannot encode (%s): %s", record.tag, exc)
        return False
    return True
