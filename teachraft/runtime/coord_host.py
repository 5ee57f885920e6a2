"""Runs the coord: its transport node, the heartbeat monitor and the selection timer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from teachraft.core.coord import Coord, Heartbeat
from teachraft.core.effects import Watch
from teachraft.core.messages import SCHEMA
from teachraft.core.server import server_id_of, server_name
from teachraft.net.faults import FaultFilter
from teachraft.net.fcheck import HeartbeatMonitor
from teachraft.net.transport import Node
from teachraft.runtime.host import Host

log = logging.getLogger(__name__)

SERVED = frozenset({"join", "get_leader", "joined", "log_state", "failover_done"})
"""What the coord accepts from the network (a join or get_leader only as a request)."""


class CoordHost(Host):
    """The asyncio host of a ``core.coord.Coord``."""

    def __init__(
        self,
        core: Coord,
        *,
        tick_interval: float,
        heartbeat_interval: float,
        faults: FaultFilter | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        client_port: int | None = None,
        secret: str | bytes | None = None,  # the cluster secret (net.auth)
    ) -> None:
        super().__init__("coord", core, tick_interval)
        self.node = Node(
            "coord", self._handle, host=host, port=port, schema=SCHEMA, faults=faults, secret=secret
        )
        # The original listens for clients and servers on separate addresses.
        self.client_node = self.node
        if client_port is not None:
            self.client_node = Node(
                "coord",
                self._handle,
                host=host,
                port=client_port,
                schema=SCHEMA,
                faults=faults,
                secret=secret,
            )
        self.monitor = HeartbeatMonitor(
            "coord", self._heartbeat, interval=heartbeat_interval, faults=faults, secret=secret
        )

    @property
    def address(self) -> str:
        """The address servers join at (ServerAPIListenAddr)."""
        assert self.node is not None
        return self.node.address

    @property
    def client_address(self) -> str:
        """The address clients ask for the leader at (ClientAPIListenAddr)."""
        return self.client_node.address

    def nodes(self) -> list[Node]:
        assert self.node is not None
        if self.client_node is self.node:
            return [self.node]
        return [self.node, self.client_node]

    def node_for(self, dest: str) -> Node | None:
        return self.client_node if dest.startswith("client:") else self.node

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        started: list[Any] = []
        try:
            for node in self.nodes():
                await node.start()
                started.append(node)
            await self.monitor.start()
        except Exception:
            for node in started:
                await node.close()
            raise
        self.core.start()
        self.start_ticking()
        self.kick()

    def _handle(self, method: str, body: Any, peer: str, responder: Any) -> None:
        if self.stopped:
            return
        if method not in SERVED:
            if responder is not None:
                responder.error(f"the coord does not serve {method!r}")
            return
        self.feed(body, responder)

    def _heartbeat(self, target: str, ok: bool) -> None:
        sid = server_id_of(target)
        if self.paused or self.stopped or sid is None:
            return
        self.feed(Heartbeat(sid, ok))

    def resolve(self, dest: str) -> str | None:
        if dest.startswith("client:"):
            return dest.removeprefix("client:")
        sid = server_id_of(dest)
        rec = None if sid is None else self.core.servers.get(sid)
        return rec.server_addr if rec else None

    def other_effect(self, effect: Any) -> None:
        if type(effect) is Watch:
            self.monitor.watch(server_name(effect.server_id), effect.address)

    async def stop(self) -> None:
        await super().stop()
        await self.monitor.close()
