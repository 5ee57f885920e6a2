"""Findings 4, 6 and 8: forged HELLOs, resource exhaustion and deep nesting on a node's port.

A node serves only peers that prove they know the cluster secret; before that a
peer can cost it only a few hundred bytes for a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest
from test_net_support import Recorder, close_all, raw_handshake, run_async, started, wait_until

from teachraft.net import Node
from teachraft.net.connection import _preview
from teachraft.net.framing import HEADER, encode_frame

LONG = 30.0
SECRET = b"the cluster secret"


async def dial(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def closed(reader: asyncio.StreamReader, bound: float = 10.0) -> bool:
    """True once the node closes the socket (within ``bound`` seconds)."""

    async def drain() -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass

    await asyncio.wait_for(drain(), bound)
    return True


@run_async
async def test_a_node_without_the_secret_cannot_deliver_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    server = Node("server2", recorder, secret=SECRET)
    forger = Node("coord", Recorder(), listen=False, secret=b"a guess")
    friend = Node("coord", Recorder(), listen=False, secret=SECRET)
    await started(server, forger, friend)
    with caplog.at_level(logging.WARNING, logger="teachraft.net"):
        forger.send(server.address, "leader_failover", [2, 1, [], 5, b""])
        with pytest.raises(Exception):  # noqa: B017 - refused: closed or unreachable
            await forger.call(server.address, "echo", "hi", timeout=2.0)
    assert recorder.seen == []
    assert server.problems["auth"] >= 1
    lines = [r.getMessage() for r in caplog.records if "cluster secret" in r.getMessage()]
    assert lines and "'coord'" in lines[0]
    assert await friend.call(server.address, "echo", "hi", timeout=LONG) == "hi"
    assert recorder.seen[-1][2] == "coord"
    await close_all(server, forger, friend)


@run_async
async def test_a_raw_hello_claiming_a_name_reaches_nothing() -> None:
    recorder = Recorder()
    server = Node("server2", recorder, secret=SECRET)
    await server.start()
    reader, writer = await dial(server.address)
    writer.write(encode_frame([4, "coord"]) + encode_frame([3, "leader_failover", [2]]))
    writer.write(encode_frame([4, "coord", bytes(16)]) + encode_frame([5, bytes(16)]))
    writer.write(encode_frame([3, "leader_failover", [2, 1, [], 5, b""]]))
    assert await closed(reader)
    writer.close()
    assert recorder.seen == []
    assert server.stats == {}
    await server.close()


@run_async
async def test_a_huge_length_prefix_allocates_nothing() -> None:
    server = Node("s1", Recorder(), secret=SECRET)
    await server.start()
    peers = []
    for authenticate in (False, True):
        reader, writer = await dial(server.address)
        if authenticate:
            await raw_handshake(reader, writer, "mallory", SECRET)
        else:
            writer.write(encode_frame([4, "mallory", bytes(16)]))
        writer.write(HEADER.pack(4 * 1024 * 1024 - 1) + b"x" * 100)
        await writer.drain()
        peers.append((reader, writer))
    await asyncio.sleep(0.2)
    held = [c._decoder.allocated for c in server._all]
    assert held and max(held) < 256 * 1024, held
    for _, writer in peers:
        writer.close()
    await server.close()


@run_async
async def test_a_silent_connection_is_closed_after_the_handshake_timeout() -> None:
    server = Node("s1", Recorder(), secret=SECRET, handshake_timeout=0.3)
    await server.start()
    reader, writer = await dial(server.address)
    writer.write(b"\x00")  # a slowloris: one byte of a header, then nothing
    start = time.monotonic()
    assert await closed(reader)
    assert time.monotonic() - start < 5.0
    assert server.problems["handshake timeout"] == 1
    assert server.connection_count == 0
    writer.close()
    await server.close()


@run_async
async def test_an_idle_authenticated_connection_is_closed_and_redialled() -> None:
    server = Node("s1", Recorder(), secret=SECRET, idle_timeout=0.3)
    client = Node("c1", Recorder(), listen=False, secret=SECRET)
    await started(server, client)
    reader, writer = await dial(server.address)
    await raw_handshake(reader, writer, "idler", SECRET)
    assert await closed(reader)
    writer.close()
    assert await client.call(server.address, "echo", 1, timeout=LONG) == 1
    await wait_until(lambda: client.connection_count == 0)  # idle again: closed
    assert await client.call(server.address, "echo", 2, timeout=LONG) == 2
    await close_all(client, server)


@run_async
async def test_a_connect_storm_cannot_lock_out_a_real_peer() -> None:
    server = Node("s1", Recorder(), secret=SECRET, max_handshakes=16, max_connections=40)
    client = Node("c1", Recorder(), listen=False, secret=SECRET)
    await started(server, client)
    storm = [await dial(server.address) for _ in range(200)]
    for _, writer in storm:
        writer.write(b"\x00\x00")
    await asyncio.sleep(0.2)
    assert server.connection_count <= 40
    assert await client.call(server.address, "echo", "through", timeout=LONG) == "through"
    authenticated = []
    for i in range(60):
        reader, writer = await dial(server.address)
        with contextlib.suppress(
            asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError
        ):
            await asyncio.wait_for(raw_handshake(reader, writer, f"peer{i}", SECRET), 2.0)
        authenticated.append(writer)
    assert server.connection_count <= 40
    assert server.problems["connection cap"] > 0
    for _, writer in storm:
        writer.close()
    for writer in authenticated:
        writer.close()
    await close_all(client, server)


@run_async
async def test_per_peer_state_exists_only_for_authenticated_peers_and_goes_with_them() -> None:
    server = Node("s1", Recorder(), secret=SECRET)
    await server.start()
    for i in range(200):
        reader, writer = await dial(server.address)
        writer.write(encode_frame([4, f"name{i}" * 8, bytes(16)]) + encode_frame([5, bytes(16)]))
        assert await closed(reader)
        writer.close()
    assert server.stats == {}
    writers = []
    for i in range(20):
        reader, writer = await dial(server.address)
        await raw_handshake(reader, writer, f"client{i}", SECRET)
        writers.append(writer)
    await wait_until(lambda: len(server.stats) == 40)
    for writer in writers:
        writer.close()
    await wait_until(lambda: server.stats == {})
    await server.close()


def _nested(depth: int) -> bytes:
    """A msgpack value nested ``depth`` arrays deep (bytes built by hand)."""
    return b"\x91" * depth + b"\x00"


@pytest.mark.parametrize("authenticate", [False, True])
@run_async
async def test_deeply_nested_frames_close_the_connection_without_a_traceback(
    authenticate: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server = Node("s1", Recorder(), secret=SECRET)
    client = Node("c1", Recorder(), listen=False, secret=SECRET)
    await started(server, client)
    body = _nested(1000)
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    with caplog.at_level(logging.WARNING):
        reader, writer = await dial(server.address)
        if authenticate:
            await raw_handshake(reader, writer, "mallory", SECRET)
        writer.write(HEADER.pack(len(body)) + body)
        assert await closed(reader)
        writer.close()
    assert errors == []
    assert not [r for r in caplog.records if r.exc_info or "Recursion" in r.getMessage()]
    assert await client.call(server.address, "echo", 1, timeout=LONG) == 1
    await close_all(client, server)


def test_the_preview_of_any_value_is_short_and_never_recursive() -> None:
    value: list = []
    for _ in range(100_000):
        value = [value]
    assert len(_preview(value)) <= 80
    assert len(_preview({"k" * 10**6: b"v" * 10**6})) <= 80
    assert _preview([1, "a", {"b": None}]) == "[1, 'a', {'b': None}]"
