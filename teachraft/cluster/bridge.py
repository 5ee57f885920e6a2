"""The bridge between a caller and the cluster's own event-loop thread.

Why a thread of its own: a notebook kernel already runs an event loop, and a
cluster on that loop would stop replicating whenever a student's cell blocks.
The cluster's loop lives in a daemon thread instead, and every Cluster method
reaches it through this bridge, under one contract:

* ``call`` (the sync methods) runs work on the loop and blocks the caller until
  it is done. It refuses the loop's own thread, where waiting would deadlock,
  and names the async twin to use there.
* ``acall`` (the async twins) awaits the same work from any event loop; on the
  cluster's own loop it simply awaits it.
* Once closed, both raise ``ClusterError(CLOSED)`` before any coroutine is
  made, so a late call never leaves a "coroutine was never awaited" warning.

Nothing is printed from the loop's thread; the cluster logs through ``logging``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from teachraft.errors import ClusterError

T = TypeVar("T")
Work = Callable[..., Coroutine[Any, Any, T]]

CLOSED = "this cluster is closed; start a new one with Cluster(...)"


class LoopBridge:
    """One event loop in one daemon thread, started on first use.

    ``owner`` names the cluster class in the own-thread refusal, ``closed_message``
    is what a call after close raises, and ``on_stop`` (which must not hold the
    cluster) runs before the loop stops, on close and when a forgotten cluster is
    collected: an ``EtcdCluster`` kills its member processes there.
    """

    def __init__(
        self,
        *,
        thread_name: str = "teachraft-cluster",
        owner: str = "Cluster",
        closed_message: str = CLOSED,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.closed = False
        self.thread_name = thread_name
        self.owner = owner
        self.closed_message = closed_message
        self._on_stop = on_stop
        self._finalizer = weakref.finalize(self, stop_all, on_stop, None, None)

    # ------------------------------------------------------------ lifecycle
    def ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self.thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
            self.thread.start()
            ready.wait()
            self.loop = loop
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, stop_all, self._on_stop, loop, self.thread)
        return self.loop

    def stop(self) -> None:
        """Stop the loop and its thread (idempotent)."""
        self.closed = True
        self._finalizer()

    async def astop(self) -> None:
        self.closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._finalizer)

    # -------------------------------------------------------------- contract
    def check_open(self) -> None:
        if self.closed:
            raise ClusterError(self.closed_message)

    def in_loop_thread(self) -> bool:
        return self.thread is not None and threading.current_thread() is self.thread

    def call(self, work: Work[T], *args: Any, timeout: float | None = None, twin: str = "") -> T:
        """Run ``work(*args)`` on the loop and wait for it (the sync methods)."""
        self.check_open()
        if self.in_loop_thread():
            hint = f"await cluster.{twin}(...)" if twin else "the async twin"
            raise ClusterError(
                f"a sync {self.owner} method was called from the cluster's own thread; use {hint}"
            )
        fut = self.submit(work, *args)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    async def acall(self, work: Work[T], *args: Any) -> T:
        """Await ``work(*args)`` on the loop from any loop (the async twins)."""
        self.check_open()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self.loop:
            return await work(*args)
        return await asyncio.wrap_future(self.submit(work, *args))

    def submit(self, work: Work[T], *args: Any) -> Future[T]:
        """Start ``work(*args)`` on the loop; the caller holds the future."""
        self.check_open()
        loop = self.ensure_loop()
        return asyncio.run_coroutine_threadsafe(work(*args), loop)

    def read(self, fn: Callable[[], T], timeout: float = 10, twin: str = "") -> T:
        """Run a plain function on the loop's thread: a consistent look at live state."""

        async def wrapper() -> T:
            return fn()

        return self.call(wrapper, timeout=timeout, twin=twin)

    async def aread(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return await self.acall(wrapper)

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine the caller already made (``Cluster.run``)."""
        if (self.closed or self.in_loop_thread()) and asyncio.iscoroutine(coro):
            coro.close()  # refused below: close it so that no "never awaited" warning shows

        async def wrapper() -> T:
            return await coro

        return self.call(wrapper, timeout=timeout)

    async def arun(self, coro: Awaitable[T]) -> T:
        """Await a coroutine the caller already made, from any loop (``run``'s async twin)."""
        if self.closed and asyncio.iscoroutine(coro):
            coro.close()  # refused below: close it so that no "never awaited" warning shows

        async def wrapper() -> T:
            return await coro

        return await self.acall(wrapper)


async def poll_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition on the running loop, bounded in time (the one polling helper)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise ClusterError(f"{what} within {timeout:.1f} s")
        await asyncio.sleep(0.005)


def stop_all(
    on_stop: Callable[[], None] | None,
    loop: asyncio.AbstractEventLoop | None,
    thread: threading.Thread | None,
) -> None:
    """Run the owner's last cleanup, then stop the loop thread (the finalizer's work)."""
    if on_stop is not None:
        on_stop()
    stop_loop(loop, thread)


def stop_loop(loop: asyncio.AbstractEventLoop | None, thread: threading.Thread | None) -> None:
    """Stop a cluster's loop thread (also run by the finalizer of a forgotten cluster)."""
    if loop is None or loop.is_closed():
        return
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(loop.stop)
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=10)
    if not loop.is_running():
        with contextlib.suppress(Exception):
            loop.close()
