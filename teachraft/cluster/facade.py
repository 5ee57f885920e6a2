"""``Cluster``: a whole KVRaft deployment in one process, on its own event-loop thread.

A thin facade over parts with one job each: the loop-thread ``bridge`` (one
sync/async contract), the ``deployment`` (the nodes and their wiring), the
``faults`` controller and the ``views`` (one ``snapshot()`` for figures).
Every sync method has an async twin (``put``/``aput``, ``fail``/``afail``,
...). After ``close()`` every method raises ``ClusterError`` saying so.

``election="raft"`` runs Raft's own elections instead of the coord (no coord
runs); the public API is the same in both modes (``docs/elections.md``).
"""

from __future__ import annotations

import logging
import random
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from teachraft.cluster import views
from teachraft.cluster.bridge import CLOSED, LoopBridge, poll_until
from teachraft.cluster.deployment import Deployment, Options
from teachraft.cluster.faults import FaultController, Node
from teachraft.cluster.gctune import tune_gc
from teachraft.cluster.spec import DEFAULT_SNAPSHOT_EVERY, MachineSpec, machine_classes
from teachraft.cluster.timing import Timing
from teachraft.cluster.views import ClusterSnapshot
from teachraft.core.coord import Coord
from teachraft.core.log import Entry
from teachraft.core.server import ELECTIONS, Server
from teachraft.errors import ClusterError
from teachraft.limits import MAX_VALUE_BYTES
from teachraft.net.auth import new_secret
from teachraft.net.faults import FaultFilter
from teachraft.runtime.client_host import KVClient

log = logging.getLogger("teachraft.cluster")
T = TypeVar("T")


class Cluster:
    """An in-process KVRaft cluster over TCP on loopback.

    Every node runs on the cluster's own loop thread, except the tracing
    server: it runs in a child process (``trace_in_process=False`` keeps it on
    the loop), so that a traced run costs the servers little.

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
        max_value_bytes: int = MAX_VALUE_BYTES,
        server_class: type[Server] | None = None,
        coord_class: type[Coord] | None = None,
        bugs: Iterable[str] = (),
        election: str = "coord",
        pre_vote: bool = True,
        check_quorum: bool = True,
        trace_in_process: bool = True,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
    ) -> None:
        """``server_class`` and ``coord_class`` plug in a student's machines (``teachraft.labs``);
        ``bugs`` switches on named bugs of ``teachraft.labs.bugs.BUGS``, for lessons."""
        if servers % 2 == 0 or not 3 <= servers <= 7:
            raise ClusterError(f"servers must be odd and between 3 and 7, not {servers}")
        if election not in ELECTIONS:
            raise ClusterError(f"election must be 'coord' or 'raft', not {election!r}")
        if election == "raft" and unsafe_leader_selection:
            raise ClusterError(
                "unsafe_leader_selection is the coord's: raft mode elects leaders with no coord"
            )
        self.election = election
        """``coord`` (KVRaft: the coord picks leaders) or ``raft`` (Raft's own elections)."""
        if clients < 0:
            raise ClusterError("clients must be >= 0")
        if type(snapshot_every) is not int or snapshot_every < 0:
            raise ClusterError(
                f"snapshot_every must be a whole number of entries >= 0 (0: never), "
                f"not {snapshot_every!r}"
            )
        self.snapshot_every = snapshot_every
        """Each server compacts its log into a snapshot after this many entries (0: never)."""
        _check_slow_motion(slow_motion)
        self.num_servers = servers
        self.num_clients = clients
        self.tracing = tracing
        self.slow_motion = slow_motion
        self.seed = random.randrange(2**31) if seed is None else seed
        self.unsafe_leader_selection = unsafe_leader_selection
        self.base_timing = timing or Timing()
        self.timing = self.base_timing.scaled(slow_motion)
        self._own_dir = None
        if out_dir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="teachraft-")
            out_dir = self._own_dir.name
        self.out_dir = Path(out_dir)
        self.tune_gc = tune_gc
        self._gc_tuned = False
        self.persist = persist or data_dir is not None
        self.data_dir = Path(data_dir) if data_dir is not None else self.out_dir / "data"
        self.recorder: Any = None
        if history:
            from teachraft.check.history import HistoryRecorder

            self.recorder = HistoryRecorder()
        base = self.base_timing
        low, high, heartbeat = base.election_ticks()
        spec = MachineSpec(
            servers=servers,
            lost_msgs_thresh=lost_msgs_thresh,
            selection_timeout_ticks=max(4, int(1.0 / base.coord_tick)),
            unsafe_leader_selection=unsafe_leader_selection,
            persist=self.persist,
            ch_capacity=ch_capacity,
            max_in_flight=max_in_flight,
            op_timeout_ticks=max(1, round(base.op_timeout / base.client_tick)),
            **machine_classes(server_class, coord_class, bugs),
            election=election,
            election_ticks_min=low,
            election_ticks_max=high,
            heartbeat_ticks=heartbeat,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
            seed=self.seed,
            snapshot_every=snapshot_every,
        )
        self.secret = new_secret()  # authenticates this cluster's nodes (net.auth)
        self.max_value_bytes = max_value_bytes  # the largest Put (limits)
        options = Options(
            clients,
            tracing,
            self.seed,
            self.out_dir,
            self.data_dir,
            fsync,
            self.recorder,
            self.secret,
            max_value_bytes,
            trace_in_process,
        )
        self._bridge = LoopBridge()
        self.deployment = Deployment(spec, options, self.timing, FaultFilter(seed=self.seed))
        self.faults = FaultController(self._bridge, self.deployment, self.deployment.faults)
        self._started = False

    # ============================================================ lifecycle
    def start(self) -> Cluster:
        """Start every node and wait until the servers joined and clients found the leader."""
        self._bridge.call(self._start, timeout=self.timing.start_timeout + 5, twin="astart")
        return self

    async def astart(self) -> Cluster:
        await self._bridge.acall(self._start)
        return self

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.tune_gc and not self._gc_tuned:
            self._gc_tuned = True
            tune_gc(True)
        await self.deployment.start()

    def close(self) -> None:
        """Stop every node, flush the trace files, stop the thread and free the ports.

        Closing twice is harmless; every other method of a closed cluster raises.
        """
        if self._bridge.closed:
            return
        if self._bridge.loop is not None and self._started:
            try:
                self._bridge.call(self.deployment.stop, timeout=30, twin="aclose")
            except ClusterError:
                raise
            except Exception:
                log.exception("closing the cluster failed")
        self._untune_gc()
        self._bridge.stop()

    async def aclose(self) -> None:
        if self._bridge.closed:
            return
        if self._bridge.loop is not None and self._started:
            await self._bridge.acall(self.deployment.stop)
        self._untune_gc()
        await self._bridge.astop()

    def _untune_gc(self) -> None:
        if self._gc_tuned:
            self._gc_tuned = False
            tune_gc(False)

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
        return self._bridge.closed

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``close()``."""
        return self._started and not self._bridge.closed

    # ------------------------------------------------- the nodes (read-only)
    @property
    def coord(self) -> Any:
        """The coord's host (read its state on the cluster's loop: ``call_in_loop``)."""
        return self.deployment.coord

    @property
    def servers(self) -> dict[int, Any]:
        """The server hosts by id (failed ones included, with ``stopped`` set)."""
        return self.deployment.servers

    @property
    def clients(self) -> dict[int, KVClient]:
        return self.deployment.clients

    @property
    def failed(self) -> set[int]:
        """Ids of servers failed through this cluster and not restarted."""
        return self.faults.failed

    @property
    def tracing_server(self) -> Any:
        return self.deployment.tracing_server

    @property
    def torn_tails(self) -> list[str]:
        """Torn tails dropped from data files at restart (reported in ``status()``)."""
        return self.deployment.torn_tails

    @property
    def fault_log(self) -> list[tuple[float, float, str]]:
        return self.faults.log

    # ================================================================= ops
    def client(self, i: int = 1) -> KVClient:
        """The kvslib client ``i`` (1-based). Its methods are async; run them with ``run``."""
        self._bridge.check_open()
        try:
            return self.deployment.clients[i]
        except KeyError:
            raise ClusterError(f"no client {i}; this cluster has {self.num_clients}") from None

    def put(self, key: str, value: str, client: int = 1, via: int | None = None) -> None:
        """Put through client ``client``; waits for the commit.

        ``via`` sends it straight to that server instead of the leader (once, no
        retry): a Put through an old, fenced leader is never acknowledged.
        """
        kv = self._client_for(client, via)
        self._bridge.call(kv.put, key, value, via, timeout=self._op_wait, twin="aput")

    def get(self, key: str, client: int = 1, via: int | None = None) -> str | None:
        """Get through the log; None when the key was never put. ``via`` as for ``put``."""
        kv = self._client_for(client, via)
        return self._bridge.call(kv.get, key, via, timeout=self._op_wait, twin="aget")

    async def aput(self, key: str, value: str, client: int = 1, via: int | None = None) -> None:
        await self._bridge.acall(self._client_for(client, via).put, key, value, via)

    async def aget(self, key: str, client: int = 1, via: int | None = None) -> str | None:
        return await self._bridge.acall(self._client_for(client, via).get, key, via)

    @property
    def _op_wait(self) -> float:
        return self.timing.op_timeout + 5

    def _client_for(self, client: int, via: int | None) -> KVClient:
        kv = self.client(client)
        self.faults.check_coord_can_serve()
        if via is not None and not 1 <= via <= self.num_servers:
            raise ClusterError(
                f"no server {via} to send through; servers are 1..{self.num_servers}"
            )
        return kv

    def run(self, coro: Awaitable[T], timeout: float | None = 60) -> T:
        """Run any coroutine on the cluster's loop (e.g. ``cluster.client(2).get("k")``)."""
        return self._bridge.run(coro, timeout)

    def submit(self, coro: Awaitable[T]) -> Future[T]:
        """Start a coroutine on the cluster's loop and return at once with its future."""
        if self._bridge.closed and hasattr(coro, "close"):
            coro.close()  # type: ignore[union-attr]
        self._bridge.check_open()

        async def wrapper() -> T:
            return await coro

        return self._bridge.submit(wrapper)

    def wait_until(self, pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Wait until ``pred()`` (checked on the cluster's loop) holds; ClusterError if not."""
        what = what or "the condition did not hold"
        self._bridge.call(poll_until, pred, timeout, what, timeout=timeout + 5, twin="await_until")

    async def await_until(
        self, pred: Callable[[], bool], timeout: float = 10.0, what: str = ""
    ) -> None:
        await self._bridge.acall(poll_until, pred, timeout, what or "the condition did not hold")

    def call_in_loop(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the cluster's thread (a consistent look at live state)."""
        return self._bridge.read(fn, twin="acall_in_loop")

    async def acall_in_loop(self, fn: Callable[[], T]) -> T:
        return await self._bridge.aread(fn)

    def set_slow_motion(self, factor: float) -> None:
        """Stretch every timer by ``factor`` (1.0 is full speed), live.

        Heartbeats, failure detection, retries and timeouts all slow down
        together, so a class can watch messages go by without false failures.
        """
        _check_slow_motion(factor)
        self._bridge.read(lambda: self._apply_slow_motion(factor), twin="aset_slow_motion")

    async def aset_slow_motion(self, factor: float) -> None:
        _check_slow_motion(factor)
        await self._bridge.aread(lambda: self._apply_slow_motion(factor))

    def _apply_slow_motion(self, factor: float) -> None:
        self.slow_motion = factor
        self.timing = self.base_timing.scaled(factor)
        self.deployment.apply_timing(self.timing)

    # =============================================================== faults
    def fail(self, server_id: int | str) -> None:
        """Fail-stop a server: its sockets close and its tasks end.

        ``fail("coord")`` (coord mode) stops the coord: the cluster serves until
        its leader fails, and then cannot recover, since only the coord picks leaders.
        """
        self.faults.fail(server_id)

    async def afail(self, server_id: int | str) -> None:
        await self.faults.afail(server_id)

    # ============================================================ elections
    def transfer_leader(self, to: int) -> None:
        """Raft mode: hand leadership to server ``to`` (TimeoutNow); waits until it leads."""
        self.faults.transfer_leader(to)

    async def atransfer_leader(self, to: int) -> None:
        await self.faults.atransfer_leader(to)

    def timeout_now(self, server_id: int) -> None:
        """Raft mode: server ``server_id``'s election timer fires now (a PreVote first, if on)."""
        self.faults.timeout_now(server_id)

    async def atimeout_now(self, server_id: int) -> None:
        await self.faults.atimeout_now(server_id)

    def restart(self, server_id: int) -> None:
        """Start a failed server again from its data directory; it rejoins and catches up.

        Its tracer continues its old clock, so the trace stays valid for ShiViz.
        """
        self.faults.restart(server_id)

    async def arestart(self, server_id: int) -> None:
        await self.faults.arestart(server_id)

    def pause(self, server_id: int) -> None:
        """Pause a server: it stops processing but keeps its sockets open."""
        self.faults.pause(server_id)

    async def apause(self, server_id: int) -> None:
        await self.faults.apause(server_id)

    def resume(self, server_id: int) -> None:
        """Resume a paused server; what it was sent meanwhile is processed in order."""
        self.faults.resume(server_id)

    async def aresume(self, server_id: int) -> None:
        await self.faults.aresume(server_id)

    def fail_leader(self) -> int:
        """Fail-stop the current leader and return its id."""
        return self.faults.fail_leader()

    async def afail_leader(self) -> int:
        return await self.faults.afail_leader()

    def partition(self, *groups: Iterable[Node]) -> None:
        """Cut the network between groups (server ids, ``"coord"``, ``"client1"``)."""
        self.faults.partition(*groups)

    async def apartition(self, *groups: Iterable[Node]) -> None:
        await self.faults.apartition(*groups)

    def cut(self, a: Node, b: Node, one_way: bool = False) -> None:
        """Cut the link a-b; with ``one_way`` only messages from a to b are lost."""
        self.faults.cut(a, b, one_way)

    async def acut(self, a: Node, b: Node, one_way: bool = False) -> None:
        await self.faults.acut(a, b, one_way)

    def drop(self, a: Node, b: Node, p: float) -> None:
        """Lose each message from a to b with probability p (seeded)."""
        self.faults.drop(a, b, p)

    async def adrop(self, a: Node, b: Node, p: float) -> None:
        await self.faults.adrop(a, b, p)

    def delay(self, a: Node, b: Node, mean: float, jitter: float = 0.0) -> None:
        """Delay each message from a to b by mean +- jitter seconds (which reorders them)."""
        self.faults.delay(a, b, mean, jitter)

    async def adelay(self, a: Node, b: Node, mean: float, jitter: float = 0.0) -> None:
        await self.faults.adelay(a, b, mean, jitter)

    def heal(self) -> None:
        """Remove every network fault."""
        self.faults.heal()

    async def aheal(self) -> None:
        await self.faults.aheal()

    def fault_periods(self) -> list[tuple[float, float, str]]:
        """(start, end, label) of every fault so far, on the history's clock; open ones end now."""
        return self.faults.periods()

    # =============================================================== views
    def leader(self) -> int:
        """The id of the current leader as the coord sees it (0 while none is chosen).

        Raft mode: the live leader of the highest term."""
        return self._bridge.read(self.deployment.leader, twin="aleader")

    async def aleader(self) -> int:
        return await self._bridge.aread(self.deployment.leader)

    def status(self) -> dict[str, Any]:
        """Per server: role, term, commit index, last applied, log length; the coord's view."""
        return self._bridge.read(lambda: views.status(self.deployment), twin="astatus")

    async def astatus(self) -> dict[str, Any]:
        return await self._bridge.aread(lambda: views.status(self.deployment))

    def snapshot(self) -> ClusterSnapshot:
        """Everything a figure draws, read in one consistent hop (see ``ClusterSnapshot``)."""
        return self._bridge.read(self._snapshot, twin="asnapshot")

    async def asnapshot(self) -> ClusterSnapshot:
        return await self._bridge.aread(self._snapshot)

    def _snapshot(self) -> ClusterSnapshot:
        return views.take_snapshot(self.deployment, self.faults.network)

    def node_names(self) -> list[str]:
        """Every node of the deployment: tracing server, coord, servers, clients."""
        self._bridge.check_open()
        return self.deployment.node_names()

    def links(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Per directed link ``(src, dst)``: frames sent, received, dropped, and its state
        (``up``, ``cut``, ``one-way``, ``lossy``, ``slow``) under the current faults."""
        return self._bridge.read(lambda: views.links(self.deployment, self.faults.network))

    def log(self, server_id: int) -> list[Entry]:
        """The entries of one server's log (index 1 first)."""
        return self._bridge.read(lambda: views.server_log(self.deployment, server_id))

    def listing(self, server_id: int) -> list[str]:
        """One server's log in the original's format: ``27. Term=1, Index=27, Entry=...``."""
        return [f"{e.index}. {e.listing()}" for e in self.log(server_id)]

    def kv(self, server_id: int) -> dict[str, str]:
        """A copy of one server's applied key-value map."""
        return self._bridge.read(lambda: dict(self.deployment.server(server_id).core.kv.data))

    def wait_converged(self, timeout: float = 10.0) -> None:
        """Wait until every live server holds the same log and applied all of it."""
        self.wait_until(lambda: views.converged(self.deployment), timeout, "logs did not converge")

    def events(self) -> Any:
        """The trace event table (every traced event so far, in happened-before order)."""
        self._bridge.check_open()
        server = self.deployment.tracing_server
        if server is None:
            raise ClusterError("tracing is off for this cluster (tracing=False)")
        if getattr(server, "table_reads_anywhere", False):
            return server.table  # read from the file in this thread, not on the servers' loop
        return self._bridge.read(lambda: server.table)

    def flush_traces(self, timeout: float = 20.0) -> None:
        """Wait until every tracer delivered its records to the tracing server."""
        self._bridge.check_open()
        if self.deployment.tracing_server is not None:
            self._bridge.call(self._flush, timeout, timeout=timeout + 5)

    async def _flush(self, timeout: float) -> None:
        await self.deployment.settle_traces(timeout)

    @property
    def trace_paths(self) -> tuple[Path, Path]:
        """(trace_output.log, shiviz_output.log) of this run (also readable once closed)."""
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
        self._bridge.check_open()
        if self.recorder is None:
            raise ClusterError("history recording is off for this cluster")
        return self._bridge.read(self.recorder.history)


def _check_slow_motion(factor: float) -> None:
    if factor <= 0:
        raise ClusterError("slow_motion must be > 0")


__all__ = ["CLOSED", "Cluster", "ClusterSnapshot", "Timing"]
