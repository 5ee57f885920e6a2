"""Tracing from plain, non-asyncio code: a TracingClient on its own loop thread.

Scripts, subprocesses and tests sometimes need a tracer without an event
loop of their own. ``connect_tracer`` starts a small background thread that
runs a TracingClient, asks the server for the identity's last clock (so a
restarted process continues its counter), and returns an ordinary Tracer
whose ``close()`` flushes every record before returning.
"""

from __future__ import annotations

import asyncio
import atexit
import random
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from teachraft.tracing.client import TracingClient
from teachraft.tracing.sinks import Record
from teachraft.tracing.tracer import Tracer

T = TypeVar("T")


class ThreadedTracingSink:
    """A TracingClient driven by a private event loop in a daemon thread."""

    def __init__(self, address: str, **client_options: Any) -> None:
        self.address = address
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"tracing-sink {address}", daemon=True
        )
        self._thread.start()
        self._closed = False
        self.client: TracingClient = self.run(_make_client(address, client_options))
        self.emit = self.client.emit  # type: ignore[method-assign]  # the client's own, no hop
        atexit.register(self.close)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the sink's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def emit(self, record: Record) -> None:  # replaced by the client's emit in __init__
        self.client.emit(record)

    def close(self, timeout: float = 10.0) -> int:
        """Flush every record (waiting at most ``timeout`` s) and stop the thread.

        Returns how many records could not be delivered.
        """
        if self._closed:
            return 0
        self._closed = True
        atexit.unregister(self.close)
        try:
            left = self.run(self.client.aclose(timeout), timeout + 5.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5.0)
            if not self._thread.is_alive():
                self._loop.close()
        return left


async def _make_client(address: str, options: dict[str, Any]) -> TracingClient:
    return TracingClient(address, **options)


def fetch_clock_blocking(
    address: str, identity: str, timeout: float = 10.0, secret: str | bytes | None = None
) -> dict[str, int] | None:
    """``TracingClient.fetch_clock`` from plain code, retrying until ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            return asyncio.run(
                TracingClient.fetch_clock(address, identity, min(timeout, 5.0), secret)
            )
        except (OSError, asyncio.TimeoutError):
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def connect_tracer(
    identity: str,
    address: str,
    *,
    rng: random.Random | None = None,
    resume: bool = True,
    timeout: float = 10.0,
    secret: str | bytes | None = None,
) -> Tracer:
    """A Tracer for plain code that sends to the tracing server at ``address``.

    With ``resume`` the tracer continues the clock the server has for
    ``identity`` (a restarted process). ``secret`` is the cluster secret the
    tracing server was given (a server in this process needs none). Call
    ``tracer.close()`` at the end; an atexit hook flushes if you forget.
    """
    clock = fetch_clock_blocking(address, identity, timeout, secret) if resume else None
    return Tracer(identity, ThreadedTracingSink(address, secret=secret), rng=rng, clock=clock)
