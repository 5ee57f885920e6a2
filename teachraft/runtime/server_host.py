"""Runs one KVRaft server: its transport node, heartbeat responder and join loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from teachraft.core.messages import SCHEMA, JoinResponse, ServerJoin
from teachraft.core.server import Server, server_id_of, server_name
from teachraft.net.errors import NetError
from teachraft.net.faults import FaultFilter
from teachraft.net.fcheck import HeartbeatResponder
from teachraft.net.transport import Node
from teachraft.runtime.host import Host

log = logging.getLogger(__name__)


SERVED = frozenset(
    {
        "append_entries",
        "append_entries_reply",
        "install_snapshot",
        "install_snapshot_reply",
        "log_state_request",
        "leader_failover",
        "cluster_view",
        "client_request",
        "request_vote",
        "request_vote_reply",
        "timeout_now",
    }
)
"""What a server accepts from the network (its JoinResponse comes back from its own call)."""


class JoinRefused(RuntimeError):
    """The coord already has NumServers servers and this id is not one of them."""


class ServerHost(Host):
    """The asyncio host of a ``core.server.Server``."""

    def __init__(
        self,
        core: Server,
        coord_addr: str,
        *,
        tick_interval: float,
        faults: FaultFilter | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        client_port: int = 0,
        heartbeat_port: int = 0,
        storage: Any = None,
        join_timeout: float = 30.0,
        secret: str | bytes | None = None,  # the cluster secret (net.auth)
    ) -> None:
        super().__init__(server_name(core.server_id), core, tick_interval)
        self.coord_addr = coord_addr
        self.storage = storage
        self.join_timeout = join_timeout
        self.node = Node(
            self.name,
            self._handle,
            host=host,
            port=port,
            schema=SCHEMA,
            faults=faults,
            secret=secret,
        )
        self.client_node = Node(
            self.name,
            self._handle,
            host=host,
            port=client_port,
            schema=SCHEMA,
            faults=faults,
            secret=secret,
        )
        self.heartbeats = HeartbeatResponder(
            self.name, host=host, port=heartbeat_port, faults=faults, secret=secret
        )
        self.joined = asyncio.Event()

    @property
    def address(self) -> str:
        assert self.node is not None
        return self.node.address

    async def start(self) -> None:
        """Bind both sockets, start the timer, and join the coord in the background."""
        self.loop = asyncio.get_running_loop()
        assert self.node is not None
        started: list[Any] = []
        try:
            for part in (self.node, self.client_node, self.heartbeats):
                await part.start()
                started.append(part)
        except Exception:
            for part in started:
                await part.close()
            raise
        self.start_ticking()
        self.core.start(self.node.address, self.heartbeats.address, self.client_node.address)
        self.kick()

    def _handle(self, method: str, body: Any, peer: str, responder: Any) -> None:
        if self.stopped:
            return
        if method not in SERVED:
            if responder is not None:
                responder.error(f"{self.name} does not serve {method!r}")
            return
        self.feed(body, responder)

    def resolve(self, dest: str) -> str | None:
        if dest == "coord":
            return self.coord_addr
        sid = server_id_of(dest)
        return None if sid is None else self.core.peers.get(sid)

    def execute(self, effects: list[Any]) -> None:
        joins = [e for e in effects if type(getattr(e, "msg", None)) is ServerJoin]
        if joins:
            effects = [e for e in effects if e not in joins]
            for e in joins:
                self.spawn(self._join(e.msg))
        super().execute(effects)

    async def _join(self, msg: ServerJoin) -> None:
        """RequestServerJoin over RPC; retried while the coord is not up yet."""
        assert self.node is not None
        delay = 0.05
        while not self.stopped:
            try:
                body = await self.node.call(
                    self.coord_addr,
                    "join",
                    msg.to_wire(),
                    timeout=self.join_timeout,
                    decode=JoinResponse.from_wire,
                )
            except NetError as exc:
                log.info("%s: join failed (%s); retrying", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if body.term == 0:
                log.error(
                    "%s: the coord refused the join: it already has all its servers", self.name
                )
                self.notify("join_refused", body)
                return
            self.feed(body)
            self.joined.set()
            self.notify("joined", body)
            return

    def nodes(self) -> list[Node]:
        return [self.node, self.client_node] if self.node is not None else []

    async def stop(self) -> None:
        await super().stop()
        await self.heartbeats.close()

    def pause(self) -> None:
        super().pause()
        self.heartbeats.pause()

    def resume(self) -> None:
        super().resume()
        self.heartbeats.resume()
        self.kick()
