"""The cluster's fault controller: every fault a lesson can inject, sync and async.

Fail-stop, restart, pause and resume act on a server; partition, cut, drop,
delay and heal act on the network between named nodes (server ids, or
``"coord"``, ``"client1"``). Every fault has an async twin (``afail``,
``apartition``, ...), which is what code on the cluster's own loop uses
(chaos runs, widgets in a notebook's loop).

Each fault is recorded twice: as a trace event (``FaultInjected`` and
``FaultHealed``, which the figures draw) and as a period on the history's
clock (``periods()``, which the history figure shades).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from teachraft.cluster.bridge import LoopBridge, poll_until
from teachraft.cluster.deployment import Deployment
from teachraft.core.server import ElectNow, TransferLeader, server_name
from teachraft.errors import ClusterError
from teachraft.net.faults import FaultFilter
from teachraft.runtime.server_host import ServerHost
from teachraft.tracing import actions as A

Node = int | str
"""A node: a server id, or a node name (``"coord"``, ``"client1"``, ``"server3"``)."""


def node_name(node: Node) -> str:
    return server_name(node) if isinstance(node, int) else node


class FaultController:
    """Injects and heals faults in one cluster; see the module docstring."""

    def __init__(self, bridge: LoopBridge, dep: Deployment, network: FaultFilter) -> None:
        self._bridge = bridge
        self._dep = dep
        self.network = network
        """The filter every transport node consults (read it on the cluster's loop)."""
        self.failed: set[int] = set()
        self.log: list[tuple[float, float, str]] = []
        self._open: dict[str, tuple[float, str]] = {}
        self._tracer: Any = None
        network.subscribe(self._network_changed)

    # ------------------------------------------------------------- servers
    def fail(self, server_id: int | str) -> None:
        """Fail-stop a server (or, in coord mode, ``"coord"``): its sockets close."""
        self._bridge.call(self._fail, server_id, timeout=30, twin="afail")

    async def afail(self, server_id: int | str) -> None:
        await self._bridge.acall(self._fail, server_id)

    def check_coord_can_serve(self) -> None:
        """Coord mode with the coord down: refuse an op once the leader is gone, saying why."""
        dep = self._dep
        if not dep.coord_down or dep.coord is None:
            return
        leader = dep.coord.core.leader
        if leader in self.failed:
            raise ClusterError(
                f"the coord is down and so is the leader (server{leader}): in coord mode only "
                "the coord detects failures and chooses a new leader, so this cluster cannot "
                "recover; Raft's own elections (election='raft') need no coord"
            )

    # ------------------------------------------------------------ elections
    def transfer_leader(self, to: int) -> None:
        """Raft mode: hand leadership to ``to``; waits until it leads."""
        wait = self._dep.timing.start_timeout + 5
        self._bridge.call(self._transfer_leader, to, timeout=wait, twin="atransfer_leader")

    async def atransfer_leader(self, to: int) -> None:
        await self._bridge.acall(self._transfer_leader, to)

    def timeout_now(self, server_id: int) -> None:
        """Raft mode: the server's election timer fires now."""
        self._bridge.call(self._timeout_now, server_id, timeout=10, twin="atimeout_now")

    async def atimeout_now(self, server_id: int) -> None:
        await self._bridge.acall(self._timeout_now, server_id)

    def restart(self, server_id: int) -> None:
        """Start a failed server again from its data directory; it rejoins and catches up."""
        self._bridge.call(self._restart, server_id, timeout=30, twin="arestart")

    async def arestart(self, server_id: int) -> None:
        await self._bridge.acall(self._restart, server_id)

    def pause(self, server_id: int) -> None:
        """Pause a server: it stops processing but keeps its sockets open."""
        self._bridge.call(self._pause, server_id, True, timeout=10, twin="apause")

    async def apause(self, server_id: int) -> None:
        await self._bridge.acall(self._pause, server_id, True)

    def resume(self, server_id: int) -> None:
        """Resume a paused server; what it was sent meanwhile is processed in order."""
        self._bridge.call(self._pause, server_id, False, timeout=10, twin="aresume")

    async def aresume(self, server_id: int) -> None:
        await self._bridge.acall(self._pause, server_id, False)

    def fail_leader(self) -> int:
        """Fail-stop the current leader (waiting for one if a selection runs); its id."""
        return self._bridge.call(self._fail_leader, timeout=30, twin="afail_leader")

    async def afail_leader(self) -> int:
        return await self._bridge.acall(self._fail_leader)

    # ------------------------------------------------------------- network
    def partition(self, *groups: Iterable[Node]) -> None:
        """Cut the network between groups (server ids, ``"coord"``, ``"client1"``)."""
        self._bridge.call(self._partition, _named(groups), timeout=10, twin="apartition")

    async def apartition(self, *groups: Iterable[Node]) -> None:
        await self._bridge.acall(self._partition, _named(groups))

    def cut(self, a: Node, b: Node, one_way: bool = False) -> None:
        """Cut the link a-b; with ``one_way`` only messages from a to b are lost."""
        self._bridge.call(self._cut, node_name(a), node_name(b), one_way, timeout=10, twin="acut")

    async def acut(self, a: Node, b: Node, one_way: bool = False) -> None:
        await self._bridge.acall(self._cut, node_name(a), node_name(b), one_way)

    def drop(self, a: Node, b: Node, p: float) -> None:
        """Lose each message from a to b with probability p (seeded)."""
        self._bridge.call(self._drop, node_name(a), node_name(b), p, timeout=10, twin="adrop")

    async def adrop(self, a: Node, b: Node, p: float) -> None:
        await self._bridge.acall(self._drop, node_name(a), node_name(b), p)

    def delay(self, a: Node, b: Node, mean: float, jitter: float = 0.0) -> None:
        """Delay each message from a to b by mean +- jitter seconds (which reorders them)."""
        na, nb = node_name(a), node_name(b)
        self._bridge.call(self._delay, na, nb, mean, jitter, timeout=10, twin="adelay")

    async def adelay(self, a: Node, b: Node, mean: float, jitter: float = 0.0) -> None:
        await self._bridge.acall(self._delay, node_name(a), node_name(b), mean, jitter)

    def heal(self) -> None:
        """Remove every network fault (failed and paused servers stay so)."""
        self._bridge.call(self._heal, timeout=10, twin="aheal")

    async def aheal(self) -> None:
        await self._bridge.acall(self._heal)

    def periods(self) -> list[tuple[float, float, str]]:
        """(start, end, label) of every fault so far, on the history's clock; open ones end now."""
        return self._bridge.read(self._periods, twin="aperiods")

    async def aperiods(self) -> list[tuple[float, float, str]]:
        return await self._bridge.aread(self._periods)

    # ------------------------------------------------- on the cluster's loop
    async def _fail(self, server_id: int | str) -> None:
        if server_id == "coord":
            await self._fail_coord()
            return
        if not isinstance(server_id, int):
            raise ClusterError(f"fail takes a server id or 'coord', not {server_id!r}")
        host = self._dep.server(server_id)
        if host.stopped:
            return
        self._record_fault("fail", [host.name], "fail-stop", host)
        self._begin(f"fail:{host.name}", f"{host.name} failed")
        self.failed.add(server_id)
        await host.stop()

    async def _fail_coord(self) -> None:
        coord = self._dep.coord
        if coord is None:
            raise ClusterError("this cluster runs Raft's own elections: it has no coord to fail")
        if coord.stopped:
            return
        self._record_fault("fail", ["coord"], "fail-stop")
        self._begin("fail:coord", "coord failed")
        await coord.stop()

    def _raft_server(self, server_id: int) -> ServerHost:
        if not self._dep.spec.raft:
            raise ClusterError(
                "elections are the coord's in coord mode; create the cluster with "
                "election='raft' to transfer leadership or time a server out"
            )
        host = self._dep.server(server_id)
        if host.stopped or host.paused:
            raise ClusterError(f"server {server_id} is not running")
        return host

    async def _transfer_leader(self, to: int) -> None:
        target = self._raft_server(to)
        dep = self._dep
        await poll_until(lambda: dep.leader() != 0, dep.timing.start_timeout, "no leader")
        leader = dep.leader()
        if leader == to:
            return
        dep.server(leader).feed(TransferLeader(to))
        wait = 3 * dep.spec.election_ticks_max * target.tick_interval + 1.0
        await poll_until(
            lambda: dep.leader() == to,
            wait,
            f"leadership did not move from server {leader} to server {to} "
            f"(is server {to} cut off from a majority?)",
        )

    async def _timeout_now(self, server_id: int) -> None:
        self._raft_server(server_id).feed(ElectNow())

    async def _restart(self, server_id: int) -> None:
        old = self._dep.server(server_id)
        if not self._dep.spec.persist:
            raise ClusterError(
                "restart needs stable storage: create the cluster with persist=True "
                "(or data_dir=...), as a Raft server must keep its log and term"
            )
        if not old.stopped:
            raise ClusterError(f"server {server_id} is running; fail it first")
        clock = old.core.tracer.clock if self._dep.options.tracing else None
        await self._dep.start_server(server_id, clock)
        self.failed.discard(server_id)
        self._end(f"fail:{server_name(server_id)}")
        self._record_heal("restart", [server_name(server_id)])

    async def _pause(self, server_id: int, pause: bool) -> None:
        host = self._dep.server(server_id)
        if host.stopped or host.paused == pause:
            return
        name = server_name(server_id)
        if pause:
            self._record_fault("pause", [name], "paused", host)
            self._begin(f"pause:{name}", f"{name} paused")
            host.pause()
        else:
            host.resume()
            self._end(f"pause:{name}")
            self._record_heal("pause", [name])

    async def _fail_leader(self) -> int:
        dep = self._dep
        await poll_until(lambda: dep.leader() != 0, dep.timing.start_timeout, "no leader")
        leader = dep.leader()
        await self._fail(leader)
        return leader

    async def _partition(self, groups: list[list[str]]) -> None:
        self.network.partition(*groups)

    async def _cut(self, a: str, b: str, one_way: bool) -> None:
        self.network.cut(a, b, one_way)

    async def _drop(self, a: str, b: str, p: float) -> None:
        self.network.drop(a, b, p)

    async def _delay(self, a: str, b: str, mean: float, jitter: float) -> None:
        self.network.delay(a, b, mean, jitter)

    async def _heal(self) -> None:
        self.network.heal()

    def _periods(self) -> list[tuple[float, float, str]]:
        now = time.monotonic()
        still = [(t, now, label) for t, label in self._open.values()]
        return sorted(self.log + still)

    # ------------------------------------------------------------ bookkeeping
    def _network_changed(self, kind: str, details: dict[str, Any]) -> None:
        nodes = sorted({str(n) for v in details.values() for n in _flatten(v)})
        if kind == "heal":
            for key in [k for k in self._open if k.startswith("net:")]:
                self._end(key)
            self._record_heal(kind, nodes)
        else:
            self._begin(f"net:{kind}:{','.join(nodes)}", f"{kind} {' '.join(nodes)}")
            self._record_fault(kind, nodes, json.dumps(details, sort_keys=True, default=str))

    def _begin(self, key: str, label: str) -> None:
        if key not in self._open:
            self._open[key] = (time.monotonic(), label)

    def _end(self, key: str) -> None:
        started = self._open.pop(key, None)
        if started is not None:
            self.log.append((started[0], time.monotonic(), started[1]))

    def _trace(self) -> Any:
        if self._tracer is None:
            self._tracer = self._dep.tracer("cluster")
        return self._tracer.create_trace()

    def _record_fault(
        self, kind: str, nodes: list[str], detail: str, host: ServerHost | None = None
    ) -> None:
        """A fault event; a failed or paused server records it as its own last event,
        so that the space-time diagram places it after everything the server did."""
        if not self._dep.options.tracing:
            return
        trace = host.core.tracer.create_trace() if host is not None else self._trace()
        trace.record_action(A.FaultInjected(Kind=kind, Nodes=nodes, Detail=detail))

    def _record_heal(self, kind: str, nodes: list[str]) -> None:
        if self._dep.options.tracing:
            self._trace().record_action(A.FaultHealed(Kind=kind, Nodes=nodes))


def _named(groups: tuple[Iterable[Node], ...]) -> list[list[str]]:
    return [[node_name(n) for n in g] for g in groups]


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, str):
        return [value]
    return []
