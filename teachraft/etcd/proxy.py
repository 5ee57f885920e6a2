"""TCP proxies between etcd members' peer ports, ruled by teachraft's own fault filter.

Each member advertises its proxy's address as its peer URL, so every Raft
message to member i crosses proxy i. etcd gives no other way to tell who sent a
connection's bytes than its own header: every peer request (``POST /raft``,
``GET /raft/stream/...``, snapshots) carries ``X-Server-From: <member id>``,
and a connection is only ever used by the member that opened it. The proxy
reads that header once, then asks :meth:`FaultFilter.route` about each chunk,
per direction, exactly as a teachraft node asks about each frame.

TCP is a byte stream, so losing one chunk and passing the next would corrupt
it (and etcd's stream encoding has no checksum). Hence:

- a cut or partition *black-holes* a direction: from the first lost chunk on,
  nothing more is forwarded that way, and the connection is closed when the
  fault is healed, so etcd reconnects cleanly (as after a real outage);
- a random ``drop`` resets the connection (what loss does to TCP that a
  retransmission cannot hide); etcd redials and retries;
- a ``delay`` holds each chunk, in order, as TCP never reorders.

A request needs its answer: over TCP a one-way cut a->b also breaks the b->a
requests whose replies travel a->b. Connections with no ``X-Server-From``
(etcd's ``/version`` and probing checks) count as coming from nobody, so only
faults on the direction *towards* them apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from teachraft.net.faults import FaultFilter

log = logging.getLogger(__name__)
CHUNK = 64 * 1024
HEADER_LIMIT = 16 * 1024
UNKNOWN = "?"


class Pipe:
    """One direction of one proxied connection."""

    def __init__(self, src: str, dst: str, writer: asyncio.StreamWriter) -> None:
        self.src = src
        self.dst = dst
        self.writer = writer
        self.blocked = False
        self.queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        self.queued = 0
        self.last_due = 0.0


class ProxiedConnection:
    """A member's connection to another member's peer port, through the fault filter."""

    def __init__(
        self, proxy: PeerProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        self.proxy = proxy
        self.client_reader = reader
        self.client_writer = writer
        self.tasks: list[asyncio.Task[None]] = []
        self.pipes: list[Pipe] = []
        self.closed = False

    async def run(self) -> None:
        """Learn the sender, connect to the member, and pump both ways until either ends."""
        try:
            first = await self._read_head()
            if not first:
                return
            src = self.proxy.sender_of(first)
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.proxy.target_port
            )
        except (OSError, asyncio.IncompleteReadError):
            self.close()
            return
        dst = self.proxy.name
        forward = Pipe(src, dst, up_writer)
        backward = Pipe(dst, src, self.client_writer)
        self.pipes = [forward, backward]
        self.proxy.connections.add(self)
        self._offer(forward, first)
        self.tasks = [
            asyncio.ensure_future(self._pump(self.client_reader, forward)),
            asyncio.ensure_future(self._pump(up_reader, backward)),
            asyncio.ensure_future(self._deliver(forward)),
            asyncio.ensure_future(self._deliver(backward)),
        ]
        try:
            await asyncio.wait(self.tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.close()

    async def _read_head(self) -> bytes:
        """The first bytes, up to the end of the HTTP request head (or what came)."""
        data = b""
        while b"\r\n\r\n" not in data and len(data) < HEADER_LIMIT:
            chunk = await self.client_reader.read(CHUNK)
            if not chunk:
                break
            data += chunk
        return data

    async def _pump(self, reader: asyncio.StreamReader, pipe: Pipe) -> None:
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                await pipe.queue.put(None)
                return
            self._offer(pipe, chunk)
            if pipe.writer.transport.get_write_buffer_size() > 4 * CHUNK:
                await pipe.writer.drain()  # the receiver is slow: stop reading for a while

    def _offer(self, pipe: Pipe, chunk: bytes) -> None:
        """Ask the fault filter about one chunk: forward it, black-hole it, or reset."""
        counts = self.proxy.counts.setdefault((pipe.src, pipe.dst), [0, 0])
        if pipe.blocked:
            counts[1] += 1
            return
        faults = self.proxy.faults
        wait = faults.route(pipe.src, pipe.dst)
        if wait is None:
            counts[1] += 1
            if faults.link_state(pipe.src, pipe.dst) == "lossy":
                self.close()  # a random loss: reset, as TCP would after giving up
            else:
                pipe.blocked = True  # cut or partition: silence until healed
            return
        counts[0] += 1
        if wait == 0.0 and pipe.queued == 0:  # no delay and nothing ahead of it: pass it on
            pipe.writer.write(chunk)
            return
        due = max(time.monotonic() + wait, pipe.last_due)
        pipe.last_due = due
        pipe.queued += 1
        pipe.queue.put_nowait((due, chunk))

    async def _deliver(self, pipe: Pipe) -> None:
        while True:
            item = await pipe.queue.get()
            if item is None:
                with contextlib.suppress(OSError, RuntimeError):
                    if pipe.writer.can_write_eof():
                        pipe.writer.write_eof()
                return
            due, chunk = item
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            pipe.writer.write(chunk)
            pipe.queued -= 1
            await pipe.writer.drain()

    def reopen_if_blocked(self) -> None:
        """After a fault change: a black-holed direction that would pass now is closed."""
        for pipe in self.pipes:
            if pipe.blocked and self.proxy.faults.route(pipe.src, pipe.dst) is not None:
                self.close()
                return

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy.connections.discard(self)
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for writer in (self.client_writer, *(p.writer for p in self.pipes)):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class PeerProxy:
    """Listens where member ``name`` says its peers can reach it; forwards to its peer port."""

    def __init__(
        self, name: str, target_port: int, faults: FaultFilter, names: Callable[[str], str | None]
    ) -> None:
        self.name = name
        self.target_port = target_port
        self.faults = faults
        self.names = names
        self.connections: set[ProxiedConnection] = set()
        self.counts: dict[tuple[str, str], list[int]] = {}
        """Per direction (src, dst): chunks forwarded and chunks lost."""
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1 (an ephemeral port unless one is given)."""
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        self.faults.subscribe(self._faults_changed)
        return self.port

    def sender_of(self, head: bytes) -> str:
        """The member name in the request's ``X-Server-From`` header, or ``?``."""
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"x-server-from":
                return self.names(value.strip().decode("ascii", "replace")) or UNKNOWN
        return UNKNOWN

    def reset(self) -> None:
        """Close every proxied connection (the member behind it died or restarted)."""
        for conn in list(self.connections):
            conn.close()

    async def close(self) -> None:
        self.faults.unsubscribe(self._faults_changed)
        if self.server is not None:
            self.server.close()
        self.reset()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ProxiedConnection(self, reader, writer)
        try:
            await conn.run()
        except Exception:  # a proxy must never take the loop down
            log.exception("proxy %s: connection failed", self.name)
            conn.close()

    def _faults_changed(self, kind: str, details: dict) -> None:
        for conn in list(self.connections):
            conn.reopen_if_blocked()
