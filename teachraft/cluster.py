"""``Cluster``: a whole KVRaft deployment in one process, on its own event-loop thread.

A tracing server, the coord, N servers and C clients run as asyncio tasks that
talk over real TCP sockets on 127.0.0.1, every port ephemeral, so that many
clusters and test runs can share one machine.

Why a thread of its own (``../shared/specs/notebooks.md``): a notebook kernel
already runs an event loop, and a cluster on that loop would stop replicating
whenever a student's cell blocks. Here the cluster's loop lives in a daemon
thread; sync methods (``put``, ``fail_leader``, ...) submit coroutines to it
with ``run_coroutine_threadsafe`` and wait, and async twins (``aput``, ...)
await the same coroutines from any loop via ``wrap_future``. Nothing is ever
printed from the cluster's thread; it logs through ``logging``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import random
import tempfile
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from teachraft.core.client import ClientSession
from teachraft.core.coord import SERVING, Coord, CoordOptions
from teachraft.core.log import Entry
from teachraft.core.server import Server, ServerOptions, server_name
from teachraft.errors import ClusterError
from teachraft.limits import MAX_VALUE_BYTES
from teachraft.net.auth import new_secret
from teachraft.net.faults import FaultFilter
from teachraft.problems import collect as collect_problems
from teachraft.runtime.client_host import KVClient
from teachraft.runtime.coord_host import CoordHost
from teachraft.runtime.server_host import ServerHost
from teachraft.runtime.storage import Storage
from teachraft.tracing import actions as A
from teachraft.tracing.tracer import NullTracer, Tracer

log = logging.getLogger(__name__)
T = TypeVar("T")

GC_THRESHOLD = (20_000, 50, 50)
"""Collector thresholds while a cluster runs (CPython's default is 700, 10, 10).

A cluster allocates a few short-lived objects per message; with the default
first threshold the collector runs every few hundred messages and its full
passes over a growing log stall the loop. Raising the first threshold keeps
memory bounded and gives back about a third of the throughput. The previous
thresholds come back when the last cluster closes.
"""

_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, ...] | None = None


def _tune_gc(enter: bool) -> None:
    """Raise the collector's thresholds while any cluster runs; restore after the last."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if enter:
            if _gc_users == 0:
                _gc_saved = gc.get_threshold()
                if _gc_saved[0] < GC_THRESHOLD[0]:
                    gc.set_threshold(*GC_THRESHOLD)
            _gc_users += 1
        else:
            _gc_users = max(0, _gc_users - 1)
            if _gc_users == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
                _gc_saved = None


@dataclass(slots=True)
class Timing:
    """Every timer of a cluster, in seconds, before the slow-motion factor.

    The defaults make failover fast: a dead leader is noticed after
    ``lost_msgs_thresh`` lost heartbeats (about 0.15 s), and clients retry
    at once with the same op id instead of sleeping.
    """

    heartbeat_interval: float = 0.05
    server_tick: float = 0.05
    coord_tick: float = 0.05
    client_tick: float = 0.05
    call_timeout: float = 1.0
    op_timeout: float = 10.0
    start_timeout: float = 15.0

    def scaled(self, factor: float) -> Timing:
        return Timing(*(getattr(self, f) * factor for f in self.__slots__))


class Cluster:
    """An in-process KVRaft cluster over TCP on loopback.

    >>> with Cluster(servers=3) as c:       # doctest: +SKIP
    ...     c.put("k1", "v1")
    ...     c.get("k1")
    'v1'
    """

    def __init__(
        self,
        servers: int = 5,
        clients: int = 1,
        tracing: bool = True,
        slow_motion: float = 1.0,
        *,
        out_dir: str | Path | None = None,
        seed: int | None = None,
        lost_msgs_thresh: int = 3,
        ch_capacity: int = 1024,
        max_in_flight: int = 64,
        unsafe_leader_selection: bool = False,
        timing: Timing | None = None,
        history: bool = True,
        persist: bool = False,
        data_dir: str | Path | None = None,
        fsync: bool = True,
        tune_gc: bool = True,
        max_value_bytes: int = MAX_VALUE_BYTES,  # security: the largest Put (limits)
    ) -> None:
        if servers % 2 == 0 or not 3 <= servers <= 7:
            raise ClusterError(f"servers must be odd and between 3 and 7, not {servers}")
        if clients < 0:
            raise ClusterError("clients must be >= 0")
        if slow_motion <= 0:
            raise ClusterError("slow_motion must be > 0")
        self.num_servers = servers
        self.num_clients = clients
        self.tracing = tracing
        self.slow_motion = slow_motion
        self.seed = random.randrange(2**31) if seed is None else seed
        self.lost_msgs_thresh = lost_msgs_thresh
        self.ch_capacity = ch_capacity
        self.max_in_flight = max_in_flight
        self.unsafe_leader_selection = unsafe_leader_selection
        self.base_timing = timing or Timing()
        self.timing = self.base_timing.scaled(slow_motion)
        self._own_dir = (
            None if out_dir is not None else tempfile.TemporaryDirectory(prefix="teachraft-")
        )
        self.out_dir = Path(out_dir) if out_dir is not None else Path(self._own_dir.name)
        self.tune_gc = tune_gc
        self._gc_tuned = False
        self.persist = persist or data_dir is not None
        self.data_dir = Path(data_dir) if data_dir is not None else self.out_dir / "data"
        self.fsync = fsync
        self.faults = FaultFilter(seed=self.seed)
        self.secret = new_secret()  # security: authenticates this cluster's nodes (net.auth)
        self.torn_tails: list[str] = []  # security: torn tails dropped from data files
        self.max_value_bytes = max_value_bytes  # security: the largest Put (limits)
        self.fault_log: list[tuple[float, float, str]] = []
        self._open_faults: dict[str, tuple[float, str]] = {}
        self.recorder: Any = None
        if history:
            from teachraft.check.history import HistoryRecorder

            self.recorder = HistoryRecorder()
        self.coord: CoordHost | None = None
        self.servers: dict[int, ServerHost] = {}
        self.clients: dict[int, KVClient] = {}
        self.failed: set[int] = set()
        self.tracing_server: Any = None
        self._sinks: list[Any] = []
        self._fault_tracer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self._closed = False
        self._finalizer = weakref.finalize(self, _stop_loop, None, None)

    # ================================================================ thread
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=run, name="teachraft-cluster", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _stop_loop, loop, self._thread)
        return self._loop

    def _submit(self, coro: Awaitable[T]) -> Future[T]:
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop)  # type: ignore[arg-type]

    def _run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine on the cluster's loop and wait; refuses to deadlock."""
        if threading.current_thread() is self._thread:
            if asyncio.iscoroutine(coro):
                coro.close()
            raise ClusterError(
                "a sync Cluster method was called from the cluster's own thread; "
                "use the async twin (aput, aget, ...) there"
            )
        fut = self._submit(coro)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    async def _await(self, coro: Awaitable[T]) -> T:
        """Await a cluster coroutine from any loop (the async twins)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            return await coro
        return await asyncio.wrap_future(self._submit(coro))

    def call_in_loop(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the cluster's thread (a consistent snapshot)."""

        async def wrapper() -> T:
            return fn()

        if threading.current_thread() is self._thread:
            return fn()
        return self._run(wrapper(), timeout=10)

    # ============================================================ lifecycle
    def start(self) -> Cluster:
        """Start every node and wait until the servers joined and clients found the leader."""
        self._run(self.astart_inner(), timeout=self.timing.start_timeout + 5)
        return self

    async def astart(self) -> Cluster:
        await self._await(self.astart_inner())
        return self

    async def astart_inner(self) -> None:
        if self._closed:
            raise ClusterError("this cluster was closed; create a new one")
        if self._started:
            return
        self._started = True
        if self.tune_gc and not self._gc_tuned:
            self._gc_tuned = True
            _tune_gc(True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.tracing:
            await self._start_tracing()
        self.faults.subscribe(self._fault_changed)
        coord = Coord(
            self._tracer("coord"),
            CoordOptions(
                num_servers=self.num_servers,
                lost_msgs_thresh=self.lost_msgs_thresh,
                selection_timeout_ticks=max(4, int(1.0 / self.base_timing.coord_tick)),
                unsafe_leader_selection=self.unsafe_leader_selection,
            ),
        )
        self.coord = CoordHost(
            coord,
            tick_interval=self.timing.coord_tick,
            heartbeat_interval=self.timing.heartbeat_interval,
            faults=self.faults,
            secret=self.secret,  # security: the cluster secret
        )
        await self.coord.start()
        for sid in range(1, self.num_servers + 1):
            await self._start_server(sid)
        await self._wait(
            lambda: self.coord is not None and self.coord.core.phase == SERVING,
            self.timing.start_timeout,
            "the servers did not all join",
        )
        for cid in range(1, self.num_clients + 1):
            await self._start_client(cid)

    async def _start_tracing(self) -> None:
        from teachraft.tracing.server import TracingServer

        self.tracing_server = TracingServer(
            "127.0.0.1:0",
            self.out_dir / "trace_output.log",
            self.out_dir / "shiviz_output.log",
            secret=self.secret,  # security: the cluster secret
        )
        await self.tracing_server.start()

    def _tracer(self, identity: str, clock: dict[str, int] | None = None) -> Any:
        if not self.tracing:
            return NullTracer()
        from teachraft.tracing.client import TracingClient

        sink = TracingClient(self.tracing_server.address, secret=self.secret)  # security
        self._sinks.append(sink)
        rng = random.Random(f"{self.seed}:{identity}")
        return Tracer(identity, sink, rng=rng, clock=clock)

    async def _start_server(self, sid: int, clock: dict[str, int] | None = None) -> ServerHost:
        assert self.coord is not None
        core = Server(
            sid, self._tracer(server_name(sid), clock), ServerOptions(persist=self.persist)
        )
        storage = None
        if self.persist:
            path = self.data_dir / f"{server_name(sid)}.log"
            saved = Storage.recover(path)  # security: checked records; torn tail reported
            if saved is not None:
                if saved.torn is not None:
                    self.torn_tails.append(saved.torn)
                core.restore(saved.term, saved.entries)
            storage = Storage(path, fsync=self.fsync)
        host = ServerHost(
            core,
            self.coord.address,
            tick_interval=self.timing.server_tick,
            faults=self.faults,
            storage=storage,
            secret=self.secret,  # security: the cluster secret
        )
        await host.start()
        self.servers[sid] = host
        return host

    async def _start_client(self, cid: int) -> KVClient:
        assert self.coord is not None
        core = ClientSession(
            str(cid),
            self._tracer(f"client{cid}"),
            ch_capacity=self.ch_capacity,
            max_in_flight=self.max_in_flight,
            op_timeout_ticks=max(
                1, round(self.base_timing.op_timeout / self.base_timing.client_tick)
            ),
        )
        client = KVClient(
            core,
            self.coord.address,
            tick_interval=self.timing.client_tick,
            call_timeout=self.timing.call_timeout,
            faults=self.faults,
            history=self.recorder,
            secret=self.secret,  # security: the cluster secret
            max_value_bytes=self.max_value_bytes,  # security: the largest Put
        )
        await client.start()
        self.clients[cid] = client
        return client

    async def _wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll a condition on the cluster's loop, bounded in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred():
            if loop.time() > deadline:
                raise ClusterError(f"{what} within {timeout:.1f} s")
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Stop every node, flush the trace files, stop the thread and free the ports."""
        if self._closed:
            return
        if self._loop is not None and self._started:
            try:
                self._run(self._aclose_inner(), timeout=30)
            except Exception:
                log.exception("closing the cluster failed")
        self._closed = True
        self._untune_gc()
        self._finalizer()

    def _untune_gc(self) -> None:
        if self._gc_tuned:
            self._gc_tuned = False
            _tune_gc(False)

    async def aclose(self) -> None:
        if self._closed:
            return
        if self._loop is not None and self._started:
            await self._await(self._aclose_inner())
        self._closed = True
        self._untune_gc()
        loop, thread = self._loop, self._thread
        await asyncio.get_running_loop().run_in_executor(None, _stop_loop, loop, thread)

    async def _aclose_inner(self) -> None:
        for client in list(self.clients.values()):
            await client.stop()
        for host in list(self.servers.values()):
            if not host.stopped:
                await host.stop()
        if self.coord is not None:
            await self.coord.stop()
        for sink in self._sinks:
            with contextlib.suppress(Exception):
                await sink.aclose(timeout=10)
        if self.tracing_server is not None:
            await self.tracing_server.close()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Cluster:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran; a closed cluster cannot be started again."""
        return self._closed

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``close()``."""
        return self._started and not self._closed

    # ================================================================= ops
    def client(self, i: int = 1) -> KVClient:
        """The kvslib client ``i`` (1-based). Its methods are async; run them with ``run``."""
        try:
            return self.clients[i]
        except KeyError:
            raise ClusterError(f"no client {i}; this cluster has {self.num_clients}") from None

    def _default_client(self) -> KVClient:
        if not self.clients:
            raise ClusterError("this cluster has no clients (clients=0)")
        return self.client(1)

    def put(self, key: str, value: str, client: int = 1) -> None:
        """Put through client ``client``; waits for the commit."""
        self._run(self.client(client).put(key, value), timeout=self.timing.op_timeout + 5)

    def get(self, key: str, client: int = 1) -> str | None:
        """Get through the log; None when the key was never put."""
        return self._run(self.client(client).get(key), timeout=self.timing.op_timeout + 5)

    async def aput(self, key: str, value: str, client: int = 1) -> None:
        await self._await(self.client(client).put(key, value))

    async def aget(self, key: str, client: int = 1) -> str | None:
        return await self._await(self.client(client).get(key))

    def run(self, coro: Awaitable[T], timeout: float | None = 60) -> T:
        """Run any coroutine on the cluster's loop (e.g. ``cluster.client(2).get("k")``)."""
        return self._run(coro, timeout)

    def set_slow_motion(self, factor: float) -> None:
        """Stretch every timer by ``factor`` (1.0 is full speed), live.

        Heartbeats, failure detection, retries and timeouts all slow down
        together, so a class can watch messages go by without false failures.
        """
        if factor <= 0:
            raise ClusterError("slow_motion must be > 0")

        def apply() -> None:
            self.slow_motion = factor
            self.timing = self.base_timing.scaled(factor)
            t = self.timing
            if self.coord is not None:
                self.coord.tick_interval = t.coord_tick
                self.coord.monitor.interval = t.heartbeat_interval
            for host in self.servers.values():
                host.tick_interval = t.server_tick
            for client in self.clients.values():
                client.tick_interval = t.client_tick
                client.call_timeout = t.call_timeout

        self.call_in_loop(apply)

    # =============================================================== faults
    def _server(self, server_id: int) -> ServerHost:
        if server_id not in self.servers:
            raise ClusterError(f"no server {server_id}; servers are 1..{self.num_servers}")
        return self.servers[server_id]

    def fail(self, server_id: int) -> None:
        """Fail-stop a server: its sockets close and its tasks end."""
        self._run(self.afail_inner(server_id), timeout=30)

    async def afail(self, server_id: int) -> None:
        await self._await(self.afail_inner(server_id))

    async def afail_inner(self, server_id: int) -> None:
        host = self._server(server_id)
        if host.stopped:
            return
        self._record_fault("fail", [host.name], "fail-stop", host)
        self._begin_fault(f"fail:{host.name}", f"{host.name} failed")
        self.failed.add(server_id)
        await host.stop()

    def restart(self, server_id: int) -> None:
        """Start a failed server again from its data directory; it rejoins and catches up.

        Its tracer continues its old clock, so the trace stays valid for ShiViz.
        """
        self._run(self.arestart_inner(server_id), timeout=30)

    async def arestart(self, server_id: int) -> None:
        await self._await(self.arestart_inner(server_id))

    async def arestart_inner(self, server_id: int) -> None:
        old = self._server(server_id)
        if not self.persist:
            raise ClusterError(
                "restart needs stable storage: create the cluster with persist=True "
                "(or data_dir=...), as a Raft server must keep its log and term"
            )
        if not old.stopped:
            raise ClusterError(f"server {server_id} is running; fail it first")
        clock = old.core.tracer.clock if self.tracing else None
        await self._start_server(server_id, clock)
        self.failed.discard(server_id)
        self._end_fault(f"fail:{server_name(server_id)}")
        self._record_heal("restart", [server_name(server_id)])

    def pause(self, server_id: int) -> None:
        """Pause a server: it stops processing but keeps its sockets open."""
        self._run(self._apause(server_id, True), timeout=10)

    def resume(self, server_id: int) -> None:
        """Resume a paused server; what it was sent meanwhile is processed in order."""
        self._run(self._apause(server_id, False), timeout=10)

    async def _apause(self, server_id: int, pause: bool) -> None:
        host = self._server(server_id)
        if host.stopped or host.paused == pause:
            return
        name = server_name(server_id)
        if pause:
            self._record_fault("pause", [name], "paused", host)
            self._begin_fault(f"pause:{name}", f"{name} paused")
            host.pause()
        else:
            host.resume()
            self._end_fault(f"pause:{name}")
            self._record_heal("pause", [name])

    def drop(self, a: int | str, b: int | str, p: float) -> None:
        """Lose each message from a to b with probability p (seeded)."""
        na, nb = self._node_name(a), self._node_name(b)
        self.call_in_loop(lambda: self.faults.drop(na, nb, p))

    def delay(self, a: int | str, b: int | str, mean: float, jitter: float = 0.0) -> None:
        """Delay each message from a to b by mean +- jitter seconds (which reorders them)."""
        na, nb = self._node_name(a), self._node_name(b)
        self.call_in_loop(lambda: self.faults.delay(na, nb, mean, jitter))

    def leader(self) -> int:
        """The id of the current leader as the coord sees it (0 while none is chosen)."""
        return self.call_in_loop(self._leader)

    def _leader(self) -> int:
        if self.coord is not None and self.coord.core.phase == SERVING:
            return self.coord.core.leader
        return 0

    def fail_leader(self) -> int:
        """Fail-stop the current leader and return its id."""
        return self._run(self.afail_leader_inner(), timeout=30)

    async def afail_leader(self) -> int:
        return await self._await(self.afail_leader_inner())

    async def afail_leader_inner(self) -> int:
        await self._wait(lambda: self._leader() != 0, self.timing.start_timeout, "no leader")
        leader = self._leader()
        await self.afail_inner(leader)
        return leader

    def _node_name(self, node: int | str) -> str:
        if isinstance(node, int):
            return server_name(node)
        return node

    def partition(self, *groups: Iterable[int | str]) -> None:
        """Cut the network between groups (server ids, ``"coord"``, ``"client1"``)."""
        named = [[self._node_name(n) for n in g] for g in groups]
        self.call_in_loop(lambda: self.faults.partition(*named))

    def cut(self, a: int | str, b: int | str, one_way: bool = False) -> None:
        """Cut the link a-b; with ``one_way`` only messages from a to b are lost."""
        na, nb = self._node_name(a), self._node_name(b)
        self.call_in_loop(lambda: self.faults.cut(na, nb, one_way))

    def heal(self) -> None:
        """Remove every network fault."""
        self.call_in_loop(self.faults.heal)

    def _fault_changed(self, kind: str, details: dict[str, Any]) -> None:
        nodes = sorted({str(n) for v in details.values() for n in _flatten(v)})
        if kind == "heal":
            for key in [k for k in self._open_faults if k.startswith("net:")]:
                self._end_fault(key)
            self._record_heal(kind, nodes)
        else:
            self._begin_fault(f"net:{kind}:{','.join(nodes)}", f"{kind} {' '.join(nodes)}")
            self._record_fault(kind, nodes, json.dumps(details, sort_keys=True, default=str))

    def _begin_fault(self, key: str, label: str) -> None:
        if key not in self._open_faults:
            self._open_faults[key] = (time.monotonic(), label)

    def _end_fault(self, key: str) -> None:
        started = self._open_faults.pop(key, None)
        if started is not None:
            self.fault_log.append((started[0], time.monotonic(), started[1]))

    def fault_periods(self) -> list[tuple[float, float, str]]:
        """(start, end, label) of every fault so far, on the history's clock; open ones end now."""

        def snapshot() -> list[tuple[float, float, str]]:
            now = time.monotonic()
            still = [(t, now, label) for t, label in self._open_faults.values()]
            return sorted(self.fault_log + still)

        return self.call_in_loop(snapshot)

    def _fault_trace(self) -> Any:
        if self._fault_tracer is None:
            self._fault_tracer = self._tracer("cluster")
        return self._fault_tracer.create_trace()

    def _record_fault(
        self, kind: str, nodes: list[str], detail: str, host: ServerHost | None = None
    ) -> None:
        """A fault event; a failed or paused server records it as its own last event,
        so that the space-time diagram places it after everything the server did."""
        if not self.tracing:
            return
        tracer = host.core.tracer if host is not None else None
        trace = tracer.create_trace() if tracer is not None else self._fault_trace()
        trace.record_action(A.FaultInjected(Kind=kind, Nodes=nodes, Detail=detail))

    def _record_heal(self, kind: str, nodes: list[str]) -> None:
        if self.tracing:
            self._fault_trace().record_action(A.FaultHealed(Kind=kind, Nodes=nodes))

    # =============================================================== views
    def status(self) -> dict[str, Any]:
        """Per server: role, term, commit index, last applied, log length; the coord's view."""
        return self.call_in_loop(self._status)

    def _status(self) -> dict[str, Any]:
        servers = {}
        for sid, host in sorted(self.servers.items()):
            s = host.core.status()
            if host.stopped:
                s["role"] = "failed"
            elif host.paused:
                s["role"] = "paused"
            servers[sid] = s
        coord = self.coord.core.status() if self.coord else {}
        problems = collect_problems(  # security: visible problems
            [self.coord, *self.servers.values(), *self.clients.values()],
            self.tracing_server,
            self._sinks,
            len(self.torn_tails),
        )
        return {
            "servers": servers,
            "coord": coord,
            "leader": coord.get("leader", 0),
            "problems": problems,
        }

    def node_names(self) -> list[str]:
        """Every node of the deployment: tracing server, coord, servers, clients."""
        names = ["tracing"] if self.tracing else []
        names.append("coord")
        names += [server_name(i) for i in range(1, self.num_servers + 1)]
        names += [f"client{i}" for i in range(1, self.num_clients + 1)]
        return names

    def links(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Per directed link ``(src, dst)``: frames sent, received, dropped, and its state
        (``up``, ``cut``, ``one-way``, ``lossy``, ``slow``) under the current faults."""
        return self.call_in_loop(self._links)

    def _links(self) -> dict[tuple[str, str], dict[str, Any]]:
        hosts: list[Any] = [self.coord, *self.servers.values(), *self.clients.values()]
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for host in hosts:
            if host is None:
                continue
            for node in host.nodes():
                for (src, dst), st in node.stats.items():
                    row = out.setdefault((src, dst), {"sent": 0, "received": 0, "dropped": 0})
                    row["sent"] += st.sent if src == host.name else 0
                    row["received"] += st.received if dst == host.name else 0
                    row["dropped"] += st.dropped if src == host.name else 0
        for (src, dst), row in out.items():
            row["state"] = self.faults.link_state(src, dst)
        return out

    def log(self, server_id: int) -> list[Entry]:
        """The entries of one server's log (index 1 first)."""
        host = self._server(server_id)
        return self.call_in_loop(lambda: host.core.log.user_entries())

    def listing(self, server_id: int) -> list[str]:
        """One server's log in the original's format: ``27. Term=1, Index=27, Entry=...``."""
        return [f"{e.index}. {e.listing()}" for e in self.log(server_id)]

    def kv(self, server_id: int) -> dict[str, str]:
        """A copy of one server's applied key-value map."""
        host = self._server(server_id)
        return self.call_in_loop(lambda: dict(host.core.kv.data))

    def wait_converged(self, timeout: float = 10.0) -> None:
        """Wait until every live server holds the same log and applied all of it."""
        self._run(self._wait(self._converged, timeout, "logs did not converge"), timeout + 5)

    def _converged(self) -> bool:
        live = [h.core for h in self.servers.values() if not h.stopped and not h.paused]
        if not live:
            return True
        first = live[0]
        return all(
            c.log.entries == first.log.entries and c.last_applied == c.log.last_index for c in live
        )

    def events(self) -> Any:
        """The trace event table (every traced event so far, in happened-before order)."""
        if self.tracing_server is None:
            raise ClusterError("tracing is off for this cluster (tracing=False)")
        return self.call_in_loop(lambda: self.tracing_server.table)

    def flush_traces(self, timeout: float = 20.0) -> None:
        """Wait until every tracer delivered its records to the tracing server."""

        async def flush() -> None:
            await self._wait(
                lambda: not any(s.pending for s in self._sinks) and not self.tracing_server.held,
                timeout,
                "trace records were not all delivered",
            )
            self.tracing_server.flush()

        if self.tracing_server is not None:
            self._run(flush(), timeout + 5)

    @property
    def trace_paths(self) -> tuple[Path, Path]:
        """(trace_output.log, shiviz_output.log) of this run."""
        return self.out_dir / "trace_output.log", self.out_dir / "shiviz_output.log"

    def export_shiviz(self, path: str | Path, name: str | None = None) -> Path:
        """Write this run's events as a ShiViz log (upload the file, do not paste it)."""
        from teachraft.tracing.shiviz import export_shiviz

        self.flush_traces()
        table = self.events()
        target = Path(path)
        self.call_in_loop(lambda: export_shiviz({name: table} if name else table, target))
        return target

    def history(self) -> Any:
        """The recorded client history (for ``teachraft.check``)."""
        if self.recorder is None:
            raise ClusterError("history recording is off for this cluster")
        return self.call_in_loop(self.recorder.history)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, str):
        return [value]
    return []


def _stop_loop(loop: asyncio.AbstractEventLoop | None, thread: threading.Thread | None) -> None:
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
