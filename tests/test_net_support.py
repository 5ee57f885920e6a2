"""Helpers shared by the teachraft.net tests (this module holds no tests itself).

Every async test runs under ``asyncio.run`` with an overall time bound, and every
wait is for a condition with a generous bound, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from teachraft.net import Node, Responder

TEST_BOUND = 60.0
WAIT_BOUND = 20.0

T = TypeVar("T")


def run_async(fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Turn an async test into a plain one, bounded by TEST_BOUND seconds."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), TEST_BOUND))

    return wrapper


async def wait_until(predicate: Callable[[], bool], bound: float = WAIT_BOUND) -> None:
    """Poll ``predicate`` (every few ms) until it holds; fail after ``bound`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {bound}s")
        await asyncio.sleep(0.005)


async def within(awaitable: Awaitable[T], bound: float = WAIT_BOUND) -> T:
    """Await with a bound, so a broken test fails instead of hanging."""
    return await asyncio.wait_for(awaitable, bound)


def free_port() -> int:
    """A loopback port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    """A handler that records every message and answers ``echo``/``fail``/``boom``.

    ``hold`` keeps the Responders of ``held`` requests for the test to answer.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, str, bool]] = []
        self.held: list[tuple[Any, Responder]] = []
        self.changed = asyncio.Event()

    def __call__(self, method: str, body: Any, peer: str, responder: Responder | None) -> None:
        self.seen.append((method, body, peer, responder is not None))
        self.changed.set()
        if responder is None:
            return
        if method == "echo":
            responder.ok(body)
        elif method == "fail":
            responder.error(f"refused {body}")
        elif method == "boom":
            raise RuntimeError(f"kaboom {body}")
        elif method == "hold":
            self.held.append((body, responder))

    def bodies(self, method: str) -> list[Any]:
        """Bodies of every ``method`` message seen, in arrival order."""
        return [body for name, body, _, _ in self.seen if name == method]


async def started(*nodes: Node) -> tuple[Node, ...]:
    """Start the nodes and return them."""
    for node in nodes:
        await node.start()
    return nodes


async def close_all(*nodes: Any) -> None:
    """Close nodes (or heartbeat endpoints), ignoring ones already closed."""
    for node in nodes:
        await node.close()


async def raw_handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    name: str,
    secret: bytes | None = None,
) -> None:
    """Authenticate a raw socket (that dialled a Node) as ``name``, with ``secret``.

    ``secret`` defaults to this process's secret, the one of Nodes built without one.
    """
    from teachraft.net.auth import as_key, hello_proof, new_nonce
    from teachraft.net.framing import HEADER, decode_body, encode_frame

    nonce = new_nonce()
    writer.write(encode_frame([4, name, nonce]))
    (size,) = HEADER.unpack(await reader.readexactly(4))
    _, node_name, node_nonce = decode_body(await reader.readexactly(size))
    proof = hello_proof(as_key(secret), "dial", name, node_name, node_nonce, nonce)
    writer.write(encode_frame([5, proof]))
    await writer.drain()
    (size,) = HEADER.unpack(await reader.readexactly(4))
    await reader.readexactly(size)  # the node's proof
