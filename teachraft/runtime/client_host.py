"""kvslib at run time: a client session with a socket, futures and a results stream.

``KVClient`` is what ``Cluster.client(i)`` returns. ``put``/``get`` wait for the
result; ``submit_put``/``submit_get`` return an op id at once and the result
arrives later on the results stream, in op order, as in the original kvslib.
Every op is also recorded in a history (invoke, return, outcome) when the
cluster keeps one, which is what the linearizability checker reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from teachraft.core.client import (
    AskLeader,
    ClientSession,
    CoordUnreachable,
    Deliver,
    LeaderAnswer,
    RequestDone,
    RequestFailed,
    SendRequest,
)
from teachraft.core.log import GET, PUT
from teachraft.core.messages import SCHEMA, ClientReply, GetLeader, LeaderInfo
from teachraft.errors import KVError, NoQuorumError, OpTimeoutError
from teachraft.limits import MAX_VALUE_BYTES, check_put
from teachraft.net.errors import NetError
from teachraft.net.faults import FaultFilter
from teachraft.net.transport import REDIAL_BUDGET, Node
from teachraft.runtime.host import Host

log = logging.getLogger(__name__)

RAFT_DIAL_BUDGET = 0.05
"""Raft mode: how long a refusing server is redialled before the session tries another
(with no coord to ask, the other servers are where the next leader is found)."""


@dataclass(frozen=True, slots=True)
class OpResult:
    """One op's result, as kvslib's notify channel delivers it (``{OpId, Result}``)."""

    op_id: int
    kind: str
    key: str
    ok: bool
    value: str | None
    error: str

    def raise_for_error(self) -> None:
        if self.ok:
            return
        if self.error.startswith("no quorum"):
            raise NoQuorumError(self.error)
        if self.error.startswith("timed out"):
            raise OpTimeoutError(f"{self.kind}({self.key}) {self.error}; it may have taken effect")
        raise KVError(f"{self.kind}({self.key}) failed: {self.error}")


class KVClient(Host):
    """The asyncio host of a ``core.client.ClientSession``."""

    def __init__(
        self,
        core: ClientSession,
        coord_addr: str,
        *,
        tick_interval: float,
        call_timeout: float,
        faults: FaultFilter | None = None,
        history: Any = None,
        keep_results: int = 10_000,
        port: int = 0,
        secret: str | bytes | None = None,  # the cluster secret (net.auth)
        max_value_bytes: int = MAX_VALUE_BYTES,  # security: refuse a Put larger than a frame
    ) -> None:
        super().__init__(f"client{core.client_id}", core, tick_interval)
        self.client_id = core.client_id
        self.max_value_bytes = max_value_bytes
        self.coord_addr = coord_addr
        self.call_timeout = call_timeout
        self.history = history
        self.server_address: Callable[[int], str | None] | None = None
        """Where a server takes client requests, for ops sent ``via`` it (set by the deployment)."""
        self.admit: Callable[[], Awaitable[None]] | None = None
        """Awaited before each op: the deployment holds ops back while traces lag behind."""
        self.node = Node(
            self.name, self._handle, port=port, schema=SCHEMA, faults=faults, secret=secret
        )
        self.futures: dict[int, asyncio.Future[OpResult]] = {}
        self.history_ids: dict[int, int] = {}
        self.results: deque[OpResult] = deque(maxlen=keep_results)
        self.subscribers: list[Callable[[OpResult], None]] = []
        self._queue: asyncio.Queue[OpResult] | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        assert self.node is not None
        await self.node.start()
        self.start_ticking()
        self.core.start()
        self.kick()

    async def stop(self) -> None:
        """Stop: KvslibStop, then close; pending ops fail with an error."""
        self.core.stop()
        self.execute(self.core.take())
        for fut in self.futures.values():
            if not fut.done():
                fut.set_exception(KVError(f"client {self.client_id} stopped"))
        await super().stop()

    # ------------------------------------------------------------------ ops
    def submit(self, kind: int, key: str, value: str = "", via: int | None = None) -> int:
        """Queue an op; returns its op id (raises core.client.QueueFull past ChCapacity).

        A Put larger than ``max_value_bytes`` raises ValueTooLargeError here,
        before it reaches the log (``teachraft.limits``). ``via`` sends it to that
        server once, instead of to the leader.
        """
        if kind == PUT:
            check_put(key, value, self.max_value_bytes)
        op_id = self.core.submit(kind, key, value, self._via_address(via))
        if self.history is not None:
            f = "put" if kind == PUT else "get"
            self.history_ids[op_id] = self.history.invoke(
                self.client_id, f, key, value if kind == PUT else None
            )
        self.kick()
        return op_id

    def set_servers(self, addrs: dict[int, str]) -> None:
        """Raft mode: where each server takes client requests (no coord names the leader)."""
        self.core.set_servers(addrs)
        if self.loop is not None:
            self.kick()

    def submit_put(self, key: str, value: str) -> int:
        return self.submit(PUT, key, value)

    def submit_get(self, key: str) -> int:
        return self.submit(GET, key)

    def _via_address(self, via: int | None) -> str:
        if via is None:
            return ""
        address = self.server_address(via) if self.server_address is not None else None
        if not address:
            raise KVError(f"cannot send through server {via}: it is down or unknown")
        return address

    async def op(self, kind: int, key: str, value: str = "", via: int | None = None) -> OpResult:
        assert self.loop is not None
        if self.admit is not None:
            await self.admit()
        op_id = self.submit(kind, key, value, via)
        fut = self.loop.create_future()
        self.futures[op_id] = fut
        return await fut

    async def put(self, key: str, value: str, via: int | None = None) -> None:
        """Put and wait for the commit; raises NoQuorumError, OpTimeoutError or KVError.

        ``via`` sends it straight to that server (once) instead of the leader.
        """
        (await self.op(PUT, key, value, via)).raise_for_error()

    async def get(self, key: str, via: int | None = None) -> str | None:
        """Get through the log; None when the key was never put. ``via`` as for ``put``."""
        result = await self.op(GET, key, "", via)
        result.raise_for_error()
        return result.value

    async def next_result(self) -> OpResult:
        """The next result of the notify stream (for submit_put/submit_get users)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        return await self._queue.get()

    # ------------------------------------------------------------- effects
    def other_effect(self, effect: Any) -> None:
        kind = type(effect)
        if kind is SendRequest:
            self._send(effect)
        elif kind is Deliver:
            self._deliver(effect)
        elif kind is AskLeader:
            self.spawn(self._ask_leader(effect.token))

    def _send(self, eff: SendRequest) -> None:
        """Send one op to the leader; its outcome comes back to the core as an input."""
        assert self.node is not None
        op_id, attempt = eff.op_id, eff.attempt

        def done(result: Any, error: BaseException | None) -> None:
            if error is None:
                try:
                    rep = cast(ClientReply, ClientReply.from_wire(result))
                except ValueError as exc:
                    error = exc
                else:
                    self.feed(RequestDone(rep, attempt))
                    return
            self.feed(RequestFailed(op_id, str(error) or type(error).__name__, attempt))

        self.node.call_later(
            eff.address,
            "client_request",
            eff.request.to_wire(),
            timeout=self.call_timeout,
            callback=done,
            dial_budget=RAFT_DIAL_BUDGET if self.core.raft else REDIAL_BUDGET,
        )

    async def _ask_leader(self, token: bytes) -> None:
        assert self.node is not None
        req = GetLeader(self.client_id, self.node.address, token)
        try:
            info = await self.node.call(
                self.coord_addr,
                "get_leader",
                req.to_wire(),
                timeout=max(2.0, self.call_timeout * 2),
                decode=LeaderInfo.from_wire,
            )
        except NetError as exc:
            self.feed(CoordUnreachable(f"coord unreachable: {exc}"))
            return
        self.feed(LeaderAnswer(info))

    def _handle(self, method: str, body: Any, peer: str, responder: Any) -> None:
        if method == "leader_info":
            self.feed(body)
        elif responder is not None:
            responder.error(f"{self.name} does not serve {method!r}")

    def _deliver(self, d: Deliver) -> None:
        result = OpResult(d.op_id, "put" if d.kind == PUT else "get", d.key, d.ok, d.value, d.error)
        self._record(d)
        self.results.append(result)
        if self._queue is not None:
            self._queue.put_nowait(result)
        for fn in self.subscribers:
            fn(result)
        fut = self.futures.pop(d.op_id, None)
        if fut is not None and not fut.done():
            fut.set_result(result)

    def _record(self, d: Deliver) -> None:
        hid = self.history_ids.pop(d.op_id, None)
        if hid is None or self.history is None:
            return
        if d.ok:
            self.history.ok(hid, d.value if d.kind == GET else None)
        elif d.sent:
            self.history.unknown(hid)
        else:
            self.history.fail(hid)
