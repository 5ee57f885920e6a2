"""The bridge between a caller and the cluster's own event-loop thread.

Why a thread of its own: a notebook kernel already runs an event loop, and a
cluster on that loop would stop replicating whenever a student's cell blocks.
The cluster's loop lives in a daemon thread instead, and every Cluster method
reaches it through this bridge, under one contract:

* ``call`` (the sync methods) runs work on the loop and blocks the caller until
  it is done. It refuses the loop's own thread, where waiting would deadlock,
  and names the async twin to use there.
* ``acall`` (the async twins) awaits the same work from any event loop; on the
  cluster's own loop it simply awaits it. From a foreign loop (the notebook's)
  the hand-offs are batched by ``Handoff``: one wake-up of each loop per batch,
  not one per op, so 64 ops in flight cost two self-pipe writes, not 128.
* Once closed, both raise ``ClusterError(CLOSED)`` before any coroutine is
  made, so a late call never leaves a "coroutine was never awaited" warning.

Nothing is printed from the loop's thread; the cluster logs through ``logging``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import weakref
from collections import deque
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
        self._handoff: Handoff | None = None

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
        if running is None:
            return await asyncio.wrap_future(self.submit(work, *args))
        if self._handoff is None:
            self._handoff = Handoff(self.ensure_loop())
        return await self._handoff.run(running, work, *args)

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


class Handoff:
    """Batched hand-offs from foreign loops to the cluster's loop and back.

    ``run_coroutine_threadsafe`` wakes the cluster's loop once per op and the
    caller's loop once more per result; at 64 ops in flight those wake-ups (a
    self-pipe write each) cost more than the ops. Here each direction has one
    queue and one pending wake-up: the first op of a batch wakes the loop, the
    rest ride along, and one drain per loop turn starts them all. Results go
    back the same way, each to the future of the caller that awaits it, so an
    error reaches exactly the caller whose op raised. Cancelling the caller's
    await cancels the op on the cluster's loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._inbox: deque[tuple[Any, tuple[Any, ...], _Reply]] = deque()
        self._inbox_woken = False
        self._outboxes: dict[asyncio.AbstractEventLoop, deque[_Reply]] = {}

    async def run(self, caller: asyncio.AbstractEventLoop, work: Work[T], *args: Any) -> T:
        reply = _Reply(caller, caller.create_future())
        with self._lock:
            self._inbox.append((work, args, reply))
            wake, self._inbox_woken = not self._inbox_woken, True
        if wake:
            try:
                self.loop.call_soon_threadsafe(self._start_batch)
            except RuntimeError:
                with self._lock:
                    self._inbox_woken = False
                raise ClusterError(CLOSED) from None
        try:
            return await reply.future  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            reply.cancel_task()
            raise

    def _start_batch(self) -> None:
        """On the cluster's loop: start every queued op (one drain per wake-up)."""
        with self._lock:
            batch = list(self._inbox)
            self._inbox.clear()
            self._inbox_woken = False
        for work, args, reply in batch:
            if reply.future.cancelled():
                continue
            try:
                task = self.loop.create_task(work(*args))
            except Exception as exc:  # the work could not even start: its caller hears why
                reply.outcome = exc
                self._send_back(reply)
                continue
            reply.task = task
            task.add_done_callback(functools.partial(self._finished, reply=reply))

    def _finished(self, task: asyncio.Task[Any], reply: _Reply) -> None:
        if task.cancelled():
            reply.outcome = asyncio.CancelledError()
        else:
            exc = task.exception()
            reply.outcome = exc if exc is not None else _Result(task.result())
        self._send_back(reply)

    def _send_back(self, reply: _Reply) -> None:
        caller = reply.caller
        with self._lock:
            outbox = self._outboxes.get(caller)
            wake = outbox is None
            if outbox is None:
                outbox = self._outboxes[caller] = deque()
            outbox.append(reply)
        if wake:
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone: nobody waits
                caller.call_soon_threadsafe(self._deliver, caller)

    def _deliver(self, caller: asyncio.AbstractEventLoop) -> None:
        """On the caller's loop: settle every future whose op finished (one per wake-up)."""
        with self._lock:
            outbox = self._outboxes.pop(caller, deque())
        for reply in outbox:
            reply.settle()


class _Result:
    """A finished op's value (apart from exceptions, which are settled as such)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Reply:
    """Where one op's outcome goes: the caller's loop and the future it awaits."""

    __slots__ = ("caller", "future", "outcome", "task")

    def __init__(self, caller: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.caller = caller
        self.future = future
        self.task: asyncio.Task[Any] | None = None
        self.outcome: _Result | BaseException | None = None

    def settle(self) -> None:
        if self.future.done():
            return
        if isinstance(self.outcome, _Result):
            self.future.set_result(self.outcome.value)
        elif isinstance(self.outcome, asyncio.CancelledError):
            self.future.cancel()
        elif self.outcome is not None:
            self.future.set_exception(self.outcome)

    def cancel_task(self) -> None:
        task = self.task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):
                task.get_loop().call_soon_threadsafe(task.cancel)


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
