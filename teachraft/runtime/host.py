"""The asyncio shell around a pure core machine: one inbox, one timer, real sockets.

A host owns a transport ``Node``, feeds every decoded message to its core
machine, and carries out the effects the core produced. Effects are drained
once per event-loop iteration (``call_soon``), not once per message: client
requests that arrive together leave in one AppendEntries, and their replies in
one write. Persist effects run before any send of the same batch.

Time enters the core only as ``tick()`` calls, every ``tick_interval`` seconds
(stretched by the cluster's slow-motion factor).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from teachraft.core.effects import Persist, Reply, Send
from teachraft.core.machine import Machine
from teachraft.net.transport import Node

log = logging.getLogger(__name__)
_DETACHED: set[asyncio.Task[Any]] = set()


class Host:
    """Common machinery of the server, coord and client hosts."""

    def __init__(self, name: str, core: Machine, tick_interval: float) -> None:
        self.name = name
        self.core: Any = core  # the concrete machine; each host narrows it
        self.tick_interval = tick_interval
        self.node: Node | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.storage: Any = None
        self.paused = False
        self.stopped = False
        self._flush_pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.observers: list[Callable[[str, Any], None]] = []
        self.failure = ""
        """Why a plugged-in machine was stopped (``fail_stop_on_error``); empty while it runs."""
        # A machine that is not the core's own (a student's lab class, a lesson's bug) stops
        # with a message on its first exception instead of running on half-updated.
        self.fail_stop_on_error = not type(core).__module__.startswith("teachraft.core.")

    # ------------------------------------------------------------ scheduling
    def kick(self) -> None:
        """Ask for the core's effects to be drained at the end of this loop iteration."""
        if not self._flush_pending and not self.stopped:
            self._flush_pending = True
            assert self.loop is not None
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self.stopped:
            return
        if not self.fail_stop_on_error:
            self.core.flush()
            self.execute(self.core.take())
            return
        try:
            self.core.flush()
            self.execute(self.core.take())
        except Exception as exc:
            self.fail_stop(exc, "flush")

    def fail_stop(self, exc: BaseException, where: str) -> None:
        """A plugged-in machine raised: stop this node and say why in ``status()["problems"]``."""
        if self.failure:
            return
        self.failure = f"{self.name} stopped: {where} raised {type(exc).__name__}: {exc}"
        log.error("%s", self.failure, exc_info=exc)
        self.notify("failed", self.failure)
        if self.loop is not None and not self.stopped:
            self.spawn_detached(self.stop())

    def spawn_detached(self, coro: Any) -> None:
        """Run ``coro`` on the loop, outside this host's tasks (which ``stop`` cancels)."""
        assert self.loop is not None
        task = self.loop.create_task(coro)
        _DETACHED.add(task)
        task.add_done_callback(_DETACHED.discard)

    def start_ticking(self) -> None:
        assert self.loop is not None
        self._timer = self.loop.call_later(self.tick_interval, self._on_tick)

    def _on_tick(self) -> None:
        if self.stopped:
            return
        if not self.paused:
            try:
                self.core.tick()
            except Exception as exc:  # a bug in a handler must not stop the timer
                if self.fail_stop_on_error:
                    self.fail_stop(exc, "tick")
                    return
                log.exception("%s: tick failed", self.name)
            self.kick()
        assert self.loop is not None
        self._timer = self.loop.call_later(self.tick_interval, self._on_tick)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a background coroutine that ends with the host."""
        assert self.loop is not None
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --------------------------------------------------------------- effects
    def execute(self, effects: list[Any]) -> None:
        """Carry out effects: persist first, then messages and replies, in order."""
        if not effects:
            return
        if self.storage is not None:
            persists = [e for e in effects if type(e) is Persist]
            if persists:
                self.storage.write(persists)
        for effect in effects:
            kind = type(effect)
            if kind is Send:
                address = self.resolve(effect.dest)
                node = self.node_for(effect.dest)
                if address and node is not None:
                    node.send(address, effect.msg.METHOD, effect.msg.to_wire())
            elif kind is Reply:
                effect.responder.ok(effect.msg.to_wire())
            elif kind is not Persist:
                self.other_effect(effect)

    def node_for(self, dest: str) -> Node | None:
        """The transport node that sends to ``dest`` (hosts with two listeners override)."""
        return self.node

    def resolve(self, dest: str) -> str | None:
        """The address of a node name; hosts override this."""
        return None

    def other_effect(self, effect: Any) -> None:
        """Host-specific effects (Watch, SendRequest, Deliver, ...)."""
        log.debug("%s: ignoring effect %r", self.name, effect)

    def notify(self, kind: str, data: Any) -> None:
        for fn in self.observers:
            fn(kind, data)

    # --------------------------------------------------------------- control
    def feed(self, msg: Any, responder: Any = None) -> None:
        """Step the core with one input, then schedule the drain."""
        if self.stopped:
            return
        if not self.fail_stop_on_error:
            self.core.step(msg, responder)
        else:
            try:
                self.core.step(msg, responder)
            except Exception as exc:
                handler = getattr(self.core, "_steps", {}).get(type(msg))
                where = getattr(handler, "__name__", "step").removeprefix("_traced_")
                if type(msg).__name__ == "ClientRequest":
                    where = "client_request"
                self.fail_stop(exc, f"{where}({type(msg).__name__})")
                return
        self.kick()

    async def stop(self) -> None:
        """Fail-stop: timers end, tasks are cancelled, sockets close."""
        self.stopped = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for node in self.nodes():
            await node.close()
        if self.storage is not None:
            self.storage.close()

    def nodes(self) -> list[Node]:
        """Every transport node of this host (one, or two with a separate client API)."""
        return [self.node] if self.node is not None else []

    def pause(self) -> None:
        self.paused = True
        for node in self.nodes():
            node.pause()

    def resume(self) -> None:
        self.paused = False
        for node in self.nodes():
            node.resume()
