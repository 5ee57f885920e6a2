"""Bad input on a node's port closes only that connection; everyone else is served."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from test_net_support import (
    Recorder,
    close_all,
    raw_handshake,
    run_async,
    started,
    wait_until,
    within,
)

from teachraft.net import Node, ProtocolError
from teachraft.net.auth import hello_proof, new_nonce, process_secret
from teachraft.net.framing import HEADER, decode_body, encode_frame

LONG = 30.0


def put_schema(body: object) -> dict:
    """A decoder that accepts only ``{"key": str}``."""
    if not isinstance(body, dict) or not isinstance(body["key"], str):
        raise ValueError("a put needs a string key")
    return body


SCHEMA = {"echo": lambda body: body, "put": put_schema}

CASES = {
    "random-bytes": (random.Random(1).randbytes(512), "exceeds the limit"),
    "huge-length-prefix": (HEADER.pack(2**31) + b"\x00" * 16, "exceeds the limit"),
    "malformed-body": (HEADER.pack(1) + b"\xc1", "malformed"),
    "not-an-array": (encode_frame({"a": 1}), "wrong shape"),
    "unknown-tag": (encode_frame([9, 1]), "wrong shape"),
    "request-with-string-id": (encode_frame([0, "1", "echo", 1]), "bad id"),
    "no-hello-first": (encode_frame([0, 1, "echo", 1]), "expected a hello"),
    "unknown-method": (encode_frame([0, 1, "drop_tables", {}]), "unknown method"),
    "body-rejected-by-schema": (encode_frame([3, "put", {"key": 5}]), "rejected"),
}
AFTER_HANDSHAKE = {
    "malformed-body",
    "not-an-array",
    "unknown-tag",
    "request-with-string-id",
    "unknown-method",
    "body-rejected-by-schema",
}


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Read until the node closes the socket (EOF or reset)."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionResetError:
        pass
    return True


async def hostile_peer(address: str, payload: bytes, authenticate: bool = False) -> bool:
    """Send ``payload`` (after authenticating as "mallory" if asked); wait for the close."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    if authenticate:
        await raw_handshake(reader, writer, "mallory")
    writer.write(payload)
    try:
        return await within(closed_by_peer(reader))
    finally:
        writer.close()


@pytest.mark.parametrize("case", sorted(CASES))
@run_async
async def test_bad_input_closes_only_that_connection(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload, reason = CASES[case]
    server = Node("s1", Recorder(), schema=SCHEMA, max_frame=1 << 20)
    client = Node("c1", Recorder(), listen=False)
    await started(server, client)
    assert await client.call(server.address, "echo", "before", timeout=LONG) == "before"
    with caplog.at_level(logging.WARNING, logger="teachraft.net"):
        assert await hostile_peer(server.address, payload, case in AFTER_HANDSHAKE)
    assert await client.call(server.address, "echo", "after", timeout=LONG) == "after"
    assert client.dials == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(reason in text and "closing the connection" in text for text in warnings), warnings
    await close_all(client, server)


@run_async
async def test_a_hostile_peer_that_says_hello_is_named_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Node("s1", Recorder(), schema=SCHEMA)
    await server.start()
    with caplog.at_level(logging.WARNING, logger="teachraft.net"):
        await hostile_peer(server.address, encode_frame([0, 1, "nope", 1]), authenticate=True)
    assert any("mallory" in r.getMessage() for r in caplog.records)
    await server.close()


@run_async
async def test_without_a_schema_any_method_reaches_the_handler() -> None:
    recorder = Recorder()
    server = Node("s1", recorder)
    client = Node("c1", Recorder(), listen=False)
    await started(server, client)
    client.send(server.address, "anything_at_all", {"x": 1})
    await wait_until(lambda: len(recorder.seen) == 1)
    assert recorder.seen[0][:2] == ("anything_at_all", {"x": 1})
    await close_all(client, server)


@run_async
async def test_many_random_payloads_never_take_the_node_down() -> None:
    server = Node("s1", Recorder(), schema=SCHEMA, max_frame=4096)
    client = Node("c1", Recorder(), listen=False)
    await started(server, client)
    rng = random.Random(2024)
    for _ in range(30):
        junk = rng.randbytes(rng.randint(1, 64))
        prefix = HEADER.pack(len(junk)) if rng.random() < 0.5 else b""
        host, port = server.address.rsplit(":", 1)
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(prefix + junk)
        await writer.drain()
        writer.close()
        assert await client.call(server.address, "echo", 1, timeout=LONG) == 1
    await close_all(client, server)


@run_async
async def test_a_peer_that_breaks_the_protocol_fails_our_calls_with_protocol_error() -> None:
    async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A peer that knows the secret, then answers with garbage.
        nonce = new_nonce()
        writer.write(encode_frame([4, "liar", nonce]))
        (size,) = HEADER.unpack(await reader.readexactly(4))
        _, name, their_nonce = decode_body(await reader.readexactly(size))
        proof = hello_proof(process_secret(), "accept", "liar", name, their_nonce, nonce)
        writer.write(encode_frame([5, proof]))
        await reader.read(1)
        writer.write(encode_frame(["not", "a", "reply"]))
        await reader.read(65536)
        writer.close()

    fake = await asyncio.start_server(liar, "127.0.0.1", 0)
    port = fake.sockets[0].getsockname()[1]
    client = Node("c1", Recorder(), listen=False)
    await client.start()
    with pytest.raises(ProtocolError, match="wrong shape"):
        await client.call(f"127.0.0.1:{port}", "echo", 1, timeout=LONG)
    await client.close()
    fake.close()
