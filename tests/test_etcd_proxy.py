"""The peer proxy alone: teachraft's fault filter applied to a TCP byte stream.

No etcd is needed: an echo server stands where a member's peer port would be,
and the test speaks the one thing the proxy reads, an HTTP request head with
etcd's ``X-Server-From`` header.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from teachraft.etcd.proxy import UNKNOWN, PeerProxy
from teachraft.net.faults import FaultFilter

HEAD = b"POST /raft HTTP/1.1\r\nHost: x\r\nX-Server-From: 2a\r\n\r\n"


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _setup(faults: FaultFilter) -> tuple[asyncio.base_events.Server, PeerProxy]:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = echo.sockets[0].getsockname()[1]
    proxy = PeerProxy("server1", port, faults, {"2a": "server2"}.get)
    await proxy.start()
    return echo, proxy


async def _connect(proxy: PeerProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(HEAD)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(len(HEAD)), 5) == HEAD
    return reader, writer


async def _teardown(echo: asyncio.base_events.Server, proxy: PeerProxy) -> None:
    await proxy.close()
    echo.close()


def test_the_sender_is_named_by_its_x_server_from_header() -> None:
    async def main() -> None:
        faults = FaultFilter(seed=1)
        echo, proxy = await _setup(faults)
        reader, writer = await _connect(proxy)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        assert proxy.counts[("server2", "server1")][0] >= 2
        assert proxy.counts[("server1", "server2")][0] >= 2
        assert proxy.sender_of(b"GET /version HTTP/1.1\r\n\r\n") == UNKNOWN
        writer.close()
        await _teardown(echo, proxy)

    asyncio.run(main())


def test_a_partition_black_holes_the_stream_and_heal_closes_it() -> None:
    async def main() -> None:
        faults = FaultFilter(seed=1)
        echo, proxy = await _setup(faults)
        reader, writer = await _connect(proxy)
        faults.partition(["server1"], ["server2"])
        writer.write(b"lost")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(4), 0.5)
        assert proxy.counts[("server2", "server1")][1] >= 1
        faults.heal()  # a stream with a hole in it must never carry bytes again
        assert await asyncio.wait_for(reader.read(4), 5) == b""
        writer.close()
        await _teardown(echo, proxy)

    asyncio.run(main())


def test_a_random_drop_resets_the_connection() -> None:
    async def main() -> None:
        faults = FaultFilter(seed=1)
        echo, proxy = await _setup(faults)
        reader, writer = await _connect(proxy)
        faults.drop("server2", "server1", 1.0)
        writer.write(b"gone")
        data = b"x"
        try:
            data = await asyncio.wait_for(reader.read(4), 5)
        except ConnectionResetError:
            data = b""
        assert data == b""
        writer.close()
        await _teardown(echo, proxy)

    asyncio.run(main())


def test_a_delay_holds_chunks_in_order() -> None:
    async def main() -> None:
        faults = FaultFilter(seed=1)
        echo, proxy = await _setup(faults)
        reader, writer = await _connect(proxy)
        faults.delay("server2", "server1", 0.2, 0.1)
        start = time.monotonic()
        for n in range(5):
            writer.write(b"%d" % n)
            await writer.drain()
            await asyncio.sleep(0.02)
        got = await asyncio.wait_for(reader.readexactly(5), 5)
        assert got == b"01234"  # TCP never reorders, whatever each chunk's draw
        assert time.monotonic() - start >= 0.1
        writer.close()
        await _teardown(echo, proxy)

    asyncio.run(main())
