"""``EtcdCluster``: a real etcd cluster on loopback, with teachraft's API, faults and history.

It has the shape of :class:`teachraft.cluster.Cluster` where that makes sense:
``put``/``get``/``cas`` (sync, and ``aput``/``aget``/``acas`` async),
``status()``, ``history()``, ``fault_periods()``, and the same faults:
``fail``/``fail_leader`` (SIGKILL), ``restart``, ``pause``/``resume``
(SIGSTOP/SIGCONT), and ``partition``/``cut``/``drop``/``delay``/``heal``
applied by teachraft's own :class:`~teachraft.net.faults.FaultFilter` in TCP
proxies between the members' peer ports (no root, no network namespaces).

What differs is what etcd is: no coord picks the leader (the members elect
one themselves, with randomized timeouts); members are ``server1..N`` and
clients ``client1..``; the client's requests go straight to a member's client
port, which forwards writes to the leader through Raft.

A background thread runs an asyncio loop for the proxies and the clients; the
members are separate ``etcd`` processes, each killed by PID on ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from teachraft.check.history import History, HistoryRecorder
from teachraft.cluster.bridge import LoopBridge
from teachraft.errors import ClusterError
from teachraft.etcd import members as procs
from teachraft.etcd.client import EtcdClient
from teachraft.etcd.members import Member
from teachraft.etcd.proxy import PeerProxy
from teachraft.net.faults import FaultFilter

log = logging.getLogger(__name__)
T = TypeVar("T")
CLOSED = "this EtcdCluster was closed; make a new one"
NOT_TRACED = (
    "etcd is not traced, so an EtcdCluster has no space-time diagram: draw its "
    "topology_figure and the history_figure of its history() instead"
)


class EtcdCluster:
    """A real etcd cluster of 3 or 5 (any odd 1-7) members on 127.0.0.1.

    >>> with EtcdCluster(members=3) as c:   # doctest: +SKIP
    ...     c.put("k1", "v1")
    ...     c.get("k1")
    'v1'

    ``fsync=False`` adds ``--unsafe-no-fsync``; ``proxies=False`` lets the
    members talk directly (no network faults then, and no proxy cost: the
    benchmark measures etcd that way).
    """

    not_traced = NOT_TRACED

    def __init__(
        self,
        members: int = 3,
        *,
        fsync: bool = True,
        heartbeat_ms: int = 100,
        election_ms: int = 1000,
        seed: int | None = None,
        out_dir: str | Path | None = None,
        op_timeout: float = 2.0,
        start_timeout: float = 30.0,
        proxies: bool = True,
    ) -> None:
        if members % 2 == 0 or not 1 <= members <= 7:
            raise ClusterError(f"members must be odd and between 1 and 7, not {members}")
        self.binary = procs.etcd_binary()
        self.num_servers = members
        self.fsync = fsync
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.seed = random.randrange(2**31) if seed is None else seed
        self.op_timeout = op_timeout
        self.start_timeout = start_timeout
        self.use_proxies = proxies
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None
        if out_dir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="teachraft-etcd-")
            out_dir = self._own_dir.name
        self.out_dir = Path(out_dir)
        self.faults = FaultFilter(seed=self.seed)
        self.recorder = HistoryRecorder()
        self.members: dict[int, Member] = {}
        self.proxies: dict[int, PeerProxy] = {}
        self.clients: dict[int, EtcdClient] = {}
        self.pinned: dict[int, EtcdClient] = {}
        self.fault_log: list[tuple[float, float, str]] = []
        self._open_faults: dict[str, tuple[float, str]] = {}
        self._names: dict[str, str] = {}
        self._admin: EtcdClient | None = None
        self._started = False
        self._bridge = LoopBridge(
            thread_name="teachraft-etcd",
            owner="EtcdCluster",
            closed_message=CLOSED,
            on_stop=functools.partial(_kill_members, self.members),
        )

    # ================================================================ thread
    def _run(self, coro: Awaitable[T], timeout: float | None = 60) -> T:
        return self._bridge.run(coro, timeout)

    async def _await(self, coro: Awaitable[T]) -> T:
        """Await one of the cluster's coroutines from any event loop (a notebook's too)."""
        return await self._bridge.arun(coro)

    def call_in_loop(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the cluster's thread."""
        if self._bridge.in_loop_thread():
            return fn()
        return self._bridge.read(fn, timeout=10)

    def run(self, coro: Awaitable[T], timeout: float | None = 60) -> T:
        """Run a coroutine (a workload, a chaos run) on the cluster's loop and wait for it."""
        return self._run(coro, timeout)

    # ============================================================ lifecycle
    def start(self) -> EtcdCluster:
        """Start every member and wait until a leader serves a linearizable read."""
        try:
            self._run(self._astart(), timeout=self.start_timeout + 30)
        except BaseException:
            self.close()
            raise
        return self

    async def astart(self) -> EtcdCluster:
        try:
            await self._await(self._astart())
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _astart(self) -> None:
        if self._started:
            return
        self._started = True
        token = f"teachraft-{self.seed}-{random.randrange(2**32):08x}"
        for sid in range(1, self.num_servers + 1):
            peer_port = procs.free_port()
            proxy_port = peer_port
            if self.use_proxies:
                proxy = PeerProxy(f"server{sid}", peer_port, self.faults, self._names.get)
                self.proxies[sid] = proxy
                proxy_port = await proxy.start()
            self.members[sid] = Member(
                sid=sid,
                client_port=procs.free_port(),
                peer_port=peer_port,
                proxy_port=proxy_port,
                data_dir=self.out_dir / "data" / f"server{sid}",
                token=token,
            )
        for member in self.members.values():
            member.args = procs.member_args(
                self.binary,
                member,
                list(self.members.values()),
                self.fsync,
                self.heartbeat_ms,
                self.election_ms,
            )
            self._names[format(member.id, "x")] = member.name
        self.faults.subscribe(self._fault_changed)
        self._admin = EtcdClient("admin", self.client_urls, None, timeout=1.0)
        for member in self.members.values():
            procs.spawn(member)
        await self._await_serving(self.start_timeout)

    async def _await_serving(self, timeout: float) -> None:
        """Wait until some member answers a linearizable read (a leader holds a quorum)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for member in self.members.values():
                if not member.running and member.process is not None:
                    raise ClusterError(
                        f"etcd {member.name} exited with code {member.process.returncode}:\n"
                        + procs.log_tail(member)
                    )
            for member in self._running():
                with contextlib.suppress(Exception):
                    await self._call(member, "/v3/kv/range", {"key": "dGVhY2hyYWZ0"})
                    return
            await asyncio.sleep(0.1)
        tails = "\n".join(f"--- {m.name}\n{procs.log_tail(m, 5)}" for m in self.members.values())
        raise ClusterError(f"no etcd leader served within {timeout:.0f} s\n{tails}")

    def close(self) -> None:
        """Kill every member by PID, close proxies and clients, stop the thread, remove files."""
        if self._bridge.closed:
            return
        if self._bridge.loop is not None:
            try:
                self._run(self._aclose_inner(), timeout=30)
            except Exception:
                log.exception("closing the etcd cluster failed")
        self._bridge.stop()
        if self._own_dir is not None:
            with contextlib.suppress(OSError):
                self._own_dir.cleanup()

    async def aclose(self) -> None:
        if self._bridge.closed:
            return
        if self._bridge.loop is not None:
            await self._await(self._aclose_inner())
        await self._bridge.astop()
        if self._own_dir is not None:
            with contextlib.suppress(OSError):
                self._own_dir.cleanup()

    async def _aclose_inner(self) -> None:
        for member in self.members.values():
            procs.kill(member)
        for client in [*self.clients.values(), *self.pinned.values(), self._admin]:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
        for proxy in self.proxies.values():
            await proxy.close()

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> EtcdCluster:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        return self._bridge.closed

    @property
    def running(self) -> bool:
        return self._started and not self._bridge.closed

    def pids(self) -> dict[int, int]:
        """The PID of each running member process (to check that close() left none)."""
        return {sid: m.pid for sid, m in self.members.items() if m.running and m.pid}

    def client_urls(self) -> list[str]:
        return [m.client_url for m in self.members.values()]

    def _running(self) -> list[Member]:
        return [m for m in self.members.values() if m.running and not m.paused]

    def _member(self, server_id: int) -> Member:
        if not self._started or self._bridge.closed:
            raise ClusterError("the etcd cluster is not running (use it inside `with`)")
        try:
            return self.members[server_id]
        except KeyError:
            raise ClusterError(
                f"no member {server_id}: members are 1..{self.num_servers}"
            ) from None

    async def _call(self, member: Member, path: str, body: dict[str, Any]) -> dict:
        assert self._admin is not None
        return await self._admin.call(path, body, endpoint=member.client_url)

    # ================================================================= ops
    def client(self, i: int = 1) -> EtcdClient:
        """Client ``i`` (1-based), made on first use; it starts at member ``i``."""
        if i < 1:
            raise ClusterError("client ids start at 1")
        if i not in self.clients:
            self.clients[i] = self.call_in_loop(
                lambda: EtcdClient(
                    f"client{i}", self.client_urls, self.recorder, self.op_timeout, start=i - 1
                )
            )
        return self.clients[i]

    def put(self, key: str, value: str, client: int = 1, lease: int = 0) -> None:
        """A write through Raft; with a ``lease`` (see ``grant_lease``) the key expires with it."""
        self._run(self.client(client).put(key, value, lease))

    def grant_lease(self, ttl: int, client: int = 1) -> int:
        """Grant a lease of ``ttl`` seconds: keys put with it vanish when it expires."""
        return self._run(self.client(client).grant_lease(ttl))

    def get(self, key: str, client: int = 1, serializable: bool = False) -> str | None:
        """A linearizable read, or a ``serializable`` one from the client's member alone."""
        return self._run(self.client(client).get(key, serializable))

    def cas(self, key: str, expect: str | None, new: str, client: int = 1) -> bool:
        """Compare-and-set in one etcd transaction; True if it applied."""
        return self._run(self.client(client).cas(key, expect, new))

    async def aput(self, key: str, value: str, client: int = 1) -> None:
        await self._await(self.client(client).put(key, value))

    async def aget(self, key: str, client: int = 1, serializable: bool = False) -> str | None:
        return await self._await(self.client(client).get(key, serializable))

    async def acas(self, key: str, expect: str | None, new: str, client: int = 1) -> bool:
        return await self._await(self.client(client).cas(key, expect, new))

    def via(self, server_id: int) -> EtcdClient:
        """A recorded client that always talks to member ``server_id`` (it never moves on)."""
        member = self._member(server_id)
        if server_id not in self.pinned:
            self.pinned[server_id] = self.call_in_loop(
                lambda: EtcdClient(
                    f"client via {member.name}",
                    lambda: [member.client_url],
                    self.recorder,
                    self.op_timeout,
                )
            )
        return self.pinned[server_id]

    def put_at(self, server_id: int, key: str, value: str) -> None:
        """A write sent to member ``server_id`` (which forwards it to its leader)."""
        self._run(self.via(server_id).put(key, value))

    def get_from(self, server_id: int, key: str, serializable: bool = True) -> str | None:
        """Read ``key`` at one member (serializable by default: its own, maybe stale, copy)."""
        member = self._member(server_id)

        async def read() -> str | None:
            client = EtcdClient(f"reader{server_id}", lambda: [member.client_url], None, 2.0)
            try:
                return await client.get(key, serializable)
            finally:
                await client.close()

        return self._run(read())

    def history(self) -> History:
        """Every recorded op: invoke and return times and outcome (unknown: ``ret=inf``)."""
        return self.recorder.history()

    # ================================================================ faults
    def fail(self, server_id: int) -> None:
        """SIGKILL a member (its data folder stays for ``restart``)."""
        self._run(self.afail_inner(server_id))

    async def afail(self, server_id: int) -> None:
        await self._await(self.afail_inner(server_id))

    async def afail_inner(self, server_id: int) -> None:
        member = self._member(server_id)
        if not member.running:
            raise ClusterError(f"{member.name} is already stopped")
        self._end_fault(f"pause:{member.name}")
        procs.kill(member)
        if server_id in self.proxies:
            self.proxies[server_id].reset()
        self._begin_fault(f"fail:{member.name}", f"{member.name} failed")

    def fail_leader(self) -> int:
        """SIGKILL the current leader and return its id."""
        return self._run(self.afail_leader_inner(), timeout=30)

    async def afail_leader(self) -> int:
        return await self._await(self.afail_leader_inner())

    async def afail_leader_inner(self) -> int:
        leader = await self._await_leader(10.0)
        await self.afail_inner(leader)
        return leader

    def restart(self, server_id: int) -> None:
        """Start a failed member again on its data folder; it catches up from the leader."""
        self._run(self.arestart_inner(server_id))

    async def arestart(self, server_id: int) -> None:
        await self._await(self.arestart_inner(server_id))

    async def arestart_inner(self, server_id: int) -> None:
        member = self._member(server_id)
        if member.running:
            raise ClusterError(f"{member.name} is running; fail it before restarting it")
        procs.kill(member)  # reap an exited process
        procs.spawn(member)
        self._end_fault(f"fail:{member.name}")

    def pause(self, server_id: int) -> None:
        """SIGSTOP a member: it holds its connections but answers nothing."""
        self._run(self._apause(server_id, True))

    def resume(self, server_id: int) -> None:
        """SIGCONT a paused member."""
        self._run(self._apause(server_id, False))

    async def _apause(self, server_id: int, pause: bool) -> None:
        member = self._member(server_id)
        if pause == member.paused:
            raise ClusterError(f"{member.name} is {'already' if pause else 'not'} paused")
        procs.signal_member(member, signal.SIGSTOP if pause else signal.SIGCONT)
        if pause:
            self._begin_fault(f"pause:{member.name}", f"{member.name} paused")
        else:
            self._end_fault(f"pause:{member.name}")

    def _node_name(self, node: int | str) -> str:
        if not self.use_proxies:
            raise ClusterError(
                "network faults need the peer proxies: this cluster was made with proxies=False"
            )
        return f"server{node}" if isinstance(node, int) else node

    def partition(self, *groups: Iterable[int | str]) -> None:
        """Split the members into groups that cannot reach each other (peer traffic only)."""
        self._node_name(0)  # refuses without proxies
        named = [[self._node_name(n) for n in g] for g in groups]
        self.call_in_loop(lambda: self.faults.partition(*named))

    def cut(self, a: int | str, b: int | str, one_way: bool = False) -> None:
        """Cut the peer link a-b (``one_way``: only a->b; over TCP, see the proxy's notes)."""
        na, nb = self._node_name(a), self._node_name(b)
        self.call_in_loop(lambda: self.faults.cut(na, nb, one_way))

    def drop(self, a: int | str, b: int | str, p: float) -> None:
        """Reset each a->b peer connection's chunk with probability p (seeded)."""
        na, nb = self._node_name(a), self._node_name(b)
        self.call_in_loop(lambda: self.faults.drop(na, nb, p))

    def delay(self, a: int | str, b: int | str, mean: float, jitter: float = 0.0) -> None:
        """Hold each a->b chunk mean +- jitter seconds (in order: TCP never reorders)."""
        na, nb = self._node_name(a), self._node_name(b)
        self.call_in_loop(lambda: self.faults.delay(na, nb, mean, jitter))

    def heal(self) -> None:
        """Remove every network fault (failed or paused members stay as they are)."""
        self.call_in_loop(self.faults.heal)

    def _fault_changed(self, kind: str, details: dict[str, Any]) -> None:
        if kind == "heal":
            for key in [k for k in self._open_faults if k.startswith("net:")]:
                self._end_fault(key)
            return
        nodes = sorted({str(n) for v in details.values() for n in _flatten(v)})
        self._begin_fault(f"net:{kind}:{','.join(nodes)}", f"{kind} {' '.join(nodes)}")
        log.debug("fault %s %s", kind, json.dumps(details, default=str))

    def _begin_fault(self, key: str, label: str) -> None:
        if key not in self._open_faults:
            self._open_faults[key] = (time.monotonic(), label)

    def _end_fault(self, key: str) -> None:
        started = self._open_faults.pop(key, None)
        if started is not None:
            self.fault_log.append((started[0], time.monotonic(), started[1]))

    def fault_periods(self) -> list[tuple[float, float, str]]:
        """(start, end, label) of every fault so far, on the history's clock; open ones end now."""
        now = time.monotonic()
        still = [(t, now, label) for t, label in list(self._open_faults.values())]
        return sorted(self.fault_log + still)

    # ================================================================= views
    def status(self) -> dict[str, Any]:
        """Per member, from etcd's own status API: role, term, leader, raft index."""
        return self._run(self._astatus(), timeout=10)

    async def astatus(self) -> dict[str, Any]:
        return await self._await(self._astatus())

    async def _astatus(self) -> dict[str, Any]:
        ids = {m.id: sid for sid, m in self.members.items()}
        answers = await asyncio.gather(
            *(self._member_status(m) for m in self.members.values()), return_exceptions=True
        )
        servers: dict[int, dict[str, Any]] = {}
        for (sid, member), answer in zip(self.members.items(), answers, strict=True):
            servers[sid] = _member_view(member, answer, ids)
        claims = [(s["term"], sid) for sid, s in servers.items() if s["role"] == "leader"]
        leader = max(claims)[1] if claims else 0
        term = max((s["term"] for s in servers.values()), default=0)
        return {"servers": servers, "leader": leader, "term": term}

    async def _member_status(self, member: Member) -> dict:
        if not member.running or member.paused:
            raise ClusterError("down")
        return await asyncio.wait_for(self._call(member, "/v3/maintenance/status", {}), 0.5)

    def leader(self) -> int:
        """The member that leads in the highest term (0 while none is known)."""
        return int(self.status()["leader"])

    async def _await_leader(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = (await self._astatus())["leader"]
            if leader:
                return int(leader)
            await asyncio.sleep(0.1)
        raise ClusterError(f"no etcd leader within {timeout:.0f} s")

    def wait_for_leader(self, timeout: float = 15.0, other_than: int = 0) -> int:
        """Wait until a leader (other than ``other_than``) is elected; return its id."""

        async def wait() -> int:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                leader = await self._await_leader(max(0.1, deadline - time.monotonic()))
                if leader != other_than:
                    return leader
                await asyncio.sleep(0.1)
            raise ClusterError(f"no new etcd leader within {timeout:.0f} s")

        return self._run(wait(), timeout=timeout + 10)

    def node_names(self) -> list[str]:
        """Members, then the clients made so far (there is no coord and no tracing server)."""
        return [m.name for m in self.members.values()] + [
            f"client{i}" for i in sorted(self.clients)
        ]

    def links(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Per directed peer link: chunks forwarded and lost by the proxies, and its state."""
        return self.call_in_loop(self._links)

    def _links(self) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        names = [m.name for m in self.members.values()]
        for a in names:
            for b in names:
                if a != b:
                    out[(a, b)] = {"sent": 0, "received": 0, "dropped": 0}
        for proxy in self.proxies.values():
            for pair, counts in proxy.counts.items():
                if pair in out:
                    row = out[pair]
                    row["sent"] += counts[0]
                    row["received"] += counts[0]
                    row["dropped"] += counts[1]
        for cid, client in self.clients.items():
            target = next(
                (m.name for m in self.members.values() if m.client_url == client.endpoint), None
            )
            if target:
                out[(f"client{cid}", target)] = {"sent": 0, "received": 0, "dropped": 0}
        for (src, dst), row in out.items():
            row["state"] = self.faults.link_state(src, dst)
        return out

    def snapshot(self) -> Any:
        """What the topology figure draws: members, roles, term, leader and peer links."""
        from teachraft.etcd.views import snapshot_of_etcd

        return snapshot_of_etcd(self)

    def logs_of(self, server_id: int) -> Path:
        """The path of a member's etcd log file."""
        return self._member(server_id).log_path


def _member_view(member: Member, answer: Any, ids: dict[int, int]) -> dict[str, Any]:
    if member.paused:
        role = "paused"
    elif not member.running:
        role = "failed"
    elif isinstance(answer, BaseException):
        role = "unreachable"
    else:
        role = "leader" if int(answer.get("leader", 0)) == member.id else "follower"
    ok = isinstance(answer, dict)
    return {
        "role": role,
        "term": int(answer.get("raftTerm", 0)) if ok else 0,
        "leader": ids.get(int(answer.get("leader", 0)), 0) if ok else 0,
        "commit_index": int(answer.get("raftIndex", 0)) if ok else 0,
        "last_applied": int(answer.get("raftAppliedIndex", 0)) if ok else 0,
        "member_id": format(member.id, "x"),
        "pid": member.pid if member.running else None,
        "version": answer.get("version", "") if ok else "",
    }


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [x for v in value for x in _flatten(v)]
    return [value] if isinstance(value, str) else []


def _kill_members(members: dict[int, Member]) -> None:
    """Kill the members by PID (also for a forgotten cluster: the bridge's finalizer)."""
    for member in members.values():
        procs.kill(member)
