"""The live nodes of one in-process cluster, and how they are wired together.

A tracing server, the coord, N servers and C clients run as asyncio hosts on
the cluster's loop and talk over real TCP on 127.0.0.1, every port
ephemeral, so that many clusters and test runs can share one machine. Every
method here runs on that loop (the bridge gets it there).

In raft mode (``spec.election == "raft"``) no coord runs: the deployment tells
every server where its peers listen (``Configure``, as a configuration file
would) and every client where the servers take requests, again whenever a
restarted server listens at new ports.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teachraft.cluster.bridge import poll_until
from teachraft.cluster.spec import MachineSpec
from teachraft.cluster.timing import Timing
from teachraft.core.coord import SERVING
from teachraft.core.server import LEADER, Configure, server_name
from teachraft.errors import ClusterError
from teachraft.net.faults import FaultFilter
from teachraft.runtime.client_host import KVClient
from teachraft.runtime.coord_host import CoordHost
from teachraft.runtime.server_host import ServerHost
from teachraft.runtime.storage import Storage
from teachraft.tracing.tracer import NullTracer, Tracer

TRACE_BACKLOG_HIGH = 20_000
TRACE_BACKLOG_LOW = 5_000
TRACE_BACKLOG_WAIT = 2.0


@dataclass(slots=True)
class Options:
    """What a deployment needs besides the machines' own tunables."""

    clients: int
    tracing: bool
    seed: int
    out_dir: Path
    data_dir: Path
    fsync: bool
    recorder: Any
    secret: bytes
    """Authenticates this cluster's nodes to each other (``net.auth``)."""
    max_value_bytes: int
    """The largest Put a client sends (``limits``)."""
    trace_in_process: bool = True
    """Run the tracing server in a child process (``tracing.process``), off the servers' loop."""


class Deployment:
    """The hosts of one cluster; see the module docstring."""

    def __init__(
        self, spec: MachineSpec, options: Options, timing: Timing, faults: FaultFilter
    ) -> None:
        self.spec = spec
        self.options = options
        self.timing = timing
        self.faults = faults
        self.coord: CoordHost | None = None
        self.servers: dict[int, ServerHost] = {}
        self.clients: dict[int, KVClient] = {}
        self.tracing_server: Any = None
        self.sinks: list[Any] = []
        self.torn_tails: list[str] = []
        """Torn tails dropped from data files at restart (each one reported, none hidden)."""

    # ------------------------------------------------------------ start/stop
    async def start(self) -> None:
        """Start every node; wait until the servers joined, then start the clients."""
        self.options.out_dir.mkdir(parents=True, exist_ok=True)
        if self.options.tracing:
            await self._start_tracing()
        if self.spec.raft:
            await self._start_raft()
            return
        self.coord = CoordHost(
            self.spec.coord(self.tracer("coord")),
            tick_interval=self.timing.coord_tick,
            heartbeat_interval=self.timing.heartbeat_interval,
            faults=self.faults,
            secret=self.options.secret,
        )
        await self.coord.start()
        for sid in range(1, self.spec.servers + 1):
            await self.start_server(sid)
        await poll_until(
            lambda: self.coord is not None and self.coord.core.phase == SERVING,
            self.timing.start_timeout,
            "the servers did not all join",
        )
        for cid in range(1, self.options.clients + 1):
            await self.start_client(cid)

    async def _start_raft(self) -> None:
        """Raft mode: start the servers, tell them their peers, wait for a leader."""
        for sid in range(1, self.spec.servers + 1):
            await self.start_server(sid, configure=False)
        self.configure()
        await poll_until(
            lambda: self.leader() != 0, self.timing.start_timeout, "no leader was elected"
        )
        for cid in range(1, self.options.clients + 1):
            await self.start_client(cid)

    def configure(self) -> None:
        """Raft mode: tell every live server and client where every server listens now."""
        live = {sid: h for sid, h in self.servers.items() if not h.stopped}
        peers = [(sid, h.address, h.client_node.address) for sid, h in sorted(live.items())]
        for host in live.values():
            host.feed(Configure(peers))
            host.joined.set()
        addrs = {sid: caddr for sid, _, caddr in peers}
        for client in self.clients.values():
            client.set_servers(addrs)

    async def _start_tracing(self) -> None:
        out = self.options.out_dir
        files = out / "trace_output.log", out / "shiviz_output.log"
        if self.options.trace_in_process:
            from teachraft.tracing.process import TracingProcess

            self.tracing_server = TracingProcess(*files, secret=self.options.secret)
        else:
            from teachraft.tracing.server import TracingServer

            self.tracing_server = TracingServer("127.0.0.1:0", *files, secret=self.options.secret)
        await self.tracing_server.start()

    async def settle_traces(self, timeout: float) -> None:
        """Wait until every tracer delivered its records and the server wrote them all out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            delivered = not any(s.pending for s in self.sinks)
            if delivered and await self.tracing_server.aflush() == 0:
                return
            if loop.time() > deadline:
                raise ClusterError(f"trace records were not all delivered within {timeout:.1f} s")
            await asyncio.sleep(0.005)

    async def admit_traced_op(self) -> None:
        """Hold a client op back while the tracing server lags far behind the nodes.

        Records are made faster than one tracing server can order and write
        them at full load; unchecked, the backlog would grow in every tracer's
        buffer and in the server's held records without bound. Past
        ``TRACE_BACKLOG_HIGH`` records not yet acknowledged, new ops wait until
        it falls to ``TRACE_BACKLOG_LOW``, or ``TRACE_BACKLOG_WAIT`` seconds
        pass (a tracing server that is down must not stop the cluster).
        """
        if sum(s.pending for s in self.sinks) <= TRACE_BACKLOG_HIGH:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRACE_BACKLOG_WAIT
        while sum(s.pending for s in self.sinks) > TRACE_BACKLOG_LOW:
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.002)

    def tracer(self, identity: str, clock: dict[str, int] | None = None) -> Any:
        """A node's tracer: its records go to this cluster's tracing server.

        Every node of the cluster shares one TracingClient: the nodes run on one
        loop, so their records reach it in happened-before order and travel on
        one connection. The tracing server then writes each batch at once
        instead of holding records back until another node's connection
        delivers their causal past, and the loop sends one batch per turn
        instead of one per node.
        """
        if not self.options.tracing:
            return NullTracer()
        from teachraft.tracing.client import TracingClient

        if not self.sinks:
            self.sinks.append(
                TracingClient(self.tracing_server.address, secret=self.options.secret)
            )
        sink = self.sinks[0]
        rng = random.Random(f"{self.options.seed}:{identity}")
        return Tracer(identity, sink, rng=rng, clock=clock)

    async def start_server(
        self, sid: int, clock: dict[str, int] | None = None, configure: bool = True
    ) -> ServerHost:
        """Start server ``sid``; with persistence it first reloads what its last life saved."""
        assert self.coord is not None or self.spec.raft
        core = self.spec.server(sid, self.tracer(server_name(sid), clock))
        storage = None
        if self.spec.persist:
            path = self.options.data_dir / f"{server_name(sid)}.log"
            saved = Storage.recover(path)  # checked records; a torn tail is reported
            if saved is not None:
                if saved.torn is not None:
                    self.torn_tails.append(saved.torn)
                core.restore(saved.term, saved.entries, saved.voted_for, saved.snapshot)
            storage = Storage(path, fsync=self.options.fsync)
        host = ServerHost(
            core,
            self.coord.address if self.coord is not None else "",
            tick_interval=self.timing.election_tick if self.spec.raft else self.timing.server_tick,
            faults=self.faults,
            storage=storage,
            secret=self.options.secret,
        )
        await host.start()
        self.servers[sid] = host
        if self.spec.raft and configure:
            self.configure()
        return host

    async def start_client(self, cid: int) -> KVClient:
        assert self.coord is not None or self.spec.raft
        client = KVClient(
            self.spec.session(str(cid), self.tracer(f"client{cid}")),
            self.coord.address if self.coord is not None else "",
            tick_interval=self.timing.client_tick,
            call_timeout=self.timing.call_timeout,
            faults=self.faults,
            history=self.options.recorder,
            secret=self.options.secret,
            max_value_bytes=self.options.max_value_bytes,
        )
        client.server_address = self.client_address
        if self.options.tracing:
            client.admit = self.admit_traced_op
        if self.spec.raft:
            client.set_servers(
                {sid: h.client_node.address for sid, h in self.servers.items() if not h.stopped}
            )
        await client.start()
        self.clients[cid] = client
        return client

    async def stop(self) -> None:
        """Stop every node, then deliver every trace record and close the tracing server."""
        for client in list(self.clients.values()):
            await client.stop()
        for host in list(self.servers.values()):
            if not host.stopped:
                await host.stop()
        if self.coord is not None:
            await self.coord.stop()
        for sink in self.sinks:
            await sink.aclose(timeout=10)
        if self.tracing_server is not None:
            await self.tracing_server.close()

    # ----------------------------------------------------------------- wiring
    def apply_timing(self, timing: Timing) -> None:
        """Stretch every node's timers at once (the slow-motion slider)."""
        self.timing = timing
        if self.coord is not None:
            self.coord.tick_interval = timing.coord_tick
            self.coord.monitor.interval = timing.heartbeat_interval
        for host in self.servers.values():
            host.tick_interval = timing.election_tick if self.spec.raft else timing.server_tick
        for client in self.clients.values():
            client.tick_interval = timing.client_tick
            client.call_timeout = timing.call_timeout

    def server(self, server_id: int) -> ServerHost:
        if server_id not in self.servers:
            raise ClusterError(f"no server {server_id}; servers are 1..{self.spec.servers}")
        return self.servers[server_id]

    def client_address(self, server_id: int) -> str | None:
        """Where server ``server_id`` takes client requests (None while it is down)."""
        host = self.servers.get(server_id)
        return None if host is None or host.stopped else host.client_node.address

    def leader(self) -> int:
        """The leader as the coord sees it (0 while none is chosen).

        Raft mode: the live, unpaused leader of the highest term (0 while there is none).
        """
        if self.spec.raft:
            leaders = [
                (h.core.current_term, sid)
                for sid, h in self.servers.items()
                if not h.stopped and not h.paused and h.core.role == LEADER
            ]
            return max(leaders)[1] if leaders else 0
        if self.coord is not None and self.coord.core.phase == SERVING:
            return int(self.coord.core.leader)
        return 0

    @property
    def coord_down(self) -> bool:
        """Coord mode: the coord was failed (``fail("coord")``); nobody can pick leaders."""
        return self.coord is not None and self.coord.stopped

    def node_names(self) -> list[str]:
        """Every node of the deployment: tracing server, coord, servers, clients."""
        names = ["tracing"] if self.options.tracing else []
        if not self.spec.raft:
            names.append("coord")
        names += [server_name(i) for i in range(1, self.spec.servers + 1)]
        names += [f"client{i}" for i in range(1, self.options.clients + 1)]
        return names
