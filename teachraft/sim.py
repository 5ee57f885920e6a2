"""A deterministic, seeded simulation of a whole cluster: the core machines, no sockets.

The same ``Server``, ``Coord`` and ``ClientSession`` machines that run over TCP
run here on an in-memory network whose every choice (which message is
delivered next, which is lost, when a server crashes) comes from one seeded
``random.Random``. A schedule that finds a bug replays exactly from its seed.
Tests use it to explore thousands of interleavings in seconds; lessons use it
to step through a run message by message.

With ``election="raft"`` no coord runs: the servers elect their leaders with
randomized election timeouts, RequestVote, PreVote and CheckQuorum
(``docs/elections.md``); a tick is then one election-timer tick.
``restart`` brings a crashed server back with the term, vote and log it had
made durable (the simulator persists synchronously, so that is its state).
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from teachraft.cluster.spec import MachineSpec, machine_classes
from teachraft.core.client import (
    ClientSession,
    CoordUnreachable,
    LeaderAnswer,
    RequestDone,
    RequestFailed,
)
from teachraft.core.coord import JOINING, SERVING, Heartbeat
from teachraft.core.effects import AskLeader, Deliver, Reply, Send, SendRequest, Watch
from teachraft.core.machine import Machine
from teachraft.core.messages import GetLeader, JoinResponse, LeaderInfo, ServerJoin
from teachraft.core.server import (
    LEADER,
    Configure,
    ElectNow,
    Server,
    TransferLeader,
    server_id_of,
    server_name,
)
from teachraft.tracing.tracer import NullTracer


@dataclass(slots=True)
class Responder:
    """Where a request's answer goes in the simulation."""

    deliver: Callable[[Any], None]


@dataclass
class Packet:
    src: str
    dst: str
    msg: Any
    responder: Any = None


@dataclass
class SimCluster:
    """N servers, a coord and C clients on a seeded in-memory network."""

    servers: int = 3
    clients: int = 1
    seed: int = 0
    drop: float = 0.0
    lost_msgs_thresh: int = 3
    unsafe_leader_selection: bool = False
    tracer_factory: Callable[[str], Any] = field(default=lambda name: NullTracer())
    server_class: type[Server] | None = None
    coord_class: Any = None
    bugs: Iterable[str] = ()
    election: str = "coord"
    pre_vote: bool = True
    check_quorum: bool = True
    snapshot_every: int = 0
    """Compact each server's log after this many applied entries (0: never; §7)."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        spec = self.spec = MachineSpec(
            servers=self.servers,
            lost_msgs_thresh=self.lost_msgs_thresh,
            unsafe_leader_selection=self.unsafe_leader_selection,
            **machine_classes(self.server_class, self.coord_class, self.bugs),
            election=self.election,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            seed=self.seed,
            snapshot_every=self.snapshot_every,
        )
        self.raft = spec.raft
        self.coord = spec.coord(self.tracer_factory("coord"))
        if not self.raft:
            self.coord.start()
        self.nodes: dict[int, Server] = {
            i: spec.server(i, self.tracer_factory(server_name(i)))
            for i in range(1, self.servers + 1)
        }
        self.sessions: dict[str, ClientSession] = {
            str(c): spec.session(str(c), self.tracer_factory(f"client{c}"))
            for c in range(1, self.clients + 1)
        }
        self.down: set[int] = set()
        self.cut: set[frozenset[str]] = set()
        self.network: list[Packet] = []
        self.delivered: dict[str, list[Deliver]] = {c: [] for c in self.sessions}
        self.steps = 0
        addrs = {i: f"addr-{i}" for i in self.nodes}
        for cid, session in self.sessions.items():
            if self.raft:
                session.set_servers(addrs)
            session.start()
            self._drain(cid, session)
        for i, s in self.nodes.items():
            s.keep_applied = True
            s.start(f"addr-{i}", f"hb-{i}")
            if self.raft:
                s.step(Configure([(j, a, a) for j, a in addrs.items()]))
            self._drain(server_name(i), s)

    # ------------------------------------------------------------ network
    def _reachable(self, a: str, b: str) -> bool:
        if frozenset((a, b)) in self.cut:
            return False
        return all(server_id_of(name) not in self.down for name in (a, b))

    def _drain(self, src: str, machine: Machine) -> None:
        machine.flush()
        for eff in machine.take():
            self._effect(src, eff)

    def _effect(self, src: str, eff: Any) -> None:
        kind = type(eff)
        if kind is Send:
            dst = eff.dest.removeprefix("client:")
            self.network.append(Packet(src, dst, eff.msg))
        elif kind is Reply:
            eff.responder.deliver(eff.msg)
        elif kind is Watch:
            return
        elif kind is SendRequest:
            leader = eff.address.removeprefix("addr-")
            dst = server_name(int(leader)) if leader.isdigit() else "nowhere"
            cid = src

            def answer(msg: Any, cid: str = cid, attempt: int = eff.attempt) -> None:
                self.network.append(Packet(dst, cid, ("reply", msg, attempt)))

            self.network.append(Packet(src, dst, eff.request, Responder(answer)))
        elif kind is AskLeader:
            cid = src

            def leader_answer(msg: Any, cid: str = cid) -> None:
                self.network.append(Packet("coord", cid, ("leader", msg)))

            req = GetLeader(cid, cid, eff.token)
            self.network.append(Packet(src, "coord", req, Responder(leader_answer)))
        elif kind is Deliver:
            self.delivered[src].append(eff)

    def step(self) -> bool:
        """Deliver (or lose) one message chosen at random; False when the network is empty."""
        if not self.network:
            return False
        self.steps += 1
        pkt = self.network.pop(self.rng.randrange(len(self.network)))
        lossy = self.drop and (self.raft or self.coord.phase != JOINING)
        if not self._reachable(pkt.src, pkt.dst) or (lossy and self.rng.random() < self.drop):
            self._lost(pkt)
            return True
        self._deliver(pkt)
        return True

    def _lost(self, pkt: Packet) -> None:
        """A lost request or answer surfaces at the client as a failed call (a timeout)."""
        cid = pkt.src if pkt.src in self.sessions else pkt.dst
        session = self.sessions.get(cid)
        if session is None:
            return
        msg = pkt.msg
        if isinstance(msg, tuple) and msg[0] == "reply":
            session.step(RequestFailed(msg[1].op_id, "timed out", attempt=msg[2]))
        elif (isinstance(msg, tuple) and msg[0] == "leader") or isinstance(msg, GetLeader):
            session.step(CoordUnreachable("coord unreachable"))
        elif hasattr(msg, "op_id"):
            session.step(RequestFailed(msg.op_id, "unreachable"))
        self._drain(cid, session)

    def _deliver(self, pkt: Packet) -> None:
        dst, msg = pkt.dst, pkt.msg
        if dst == "coord":
            self._to_coord(msg, pkt.responder)
            self._drain("coord", self.coord)
        elif (sid := server_id_of(dst)) is not None:
            node = self.nodes[sid]
            node.step(msg, pkt.responder)
            self._drain(dst, node)
        elif dst in self.sessions:
            self._to_client(self.sessions[dst], msg)
            self._drain(dst, self.sessions[dst])

    def _to_coord(self, msg: Any, responder: Any) -> None:
        if isinstance(msg, ServerJoin):
            responder = Responder(functools.partial(self._join_reply, msg.server_id))
        self.coord.step(msg, responder)

    def _join_reply(self, sid: int, resp: JoinResponse) -> None:
        self.network.append(Packet("coord", server_name(sid), resp))

    def _to_client(self, session: ClientSession, msg: Any) -> None:
        if isinstance(msg, LeaderInfo):
            session.step(msg)
            return
        tag = msg[0]
        if tag == "leader":
            info = msg[1]
            if info.leader_addr is not None:
                info = dataclasses.replace(info, leader_addr=f"addr-{info.leader}")
            session.step(LeaderAnswer(info))
        elif tag == "reply":
            session.step(RequestDone(msg[1], msg[2]))

    # ------------------------------------------------------------- driving
    def tick(self) -> None:
        """One timer interval everywhere: heartbeats, resends, failure detection."""
        for i, s in self.nodes.items():
            if i not in self.down:
                s.tick()
                self._drain(server_name(i), s)
        if self.raft:
            self._tick_clients()
            return
        if self.coord.phase != JOINING:
            for i in self.nodes:
                ok = self._reachable("coord", server_name(i)) and self.rng.random() >= self.drop
                self.coord.step(Heartbeat(i, ok))
        self.coord.tick()
        self._drain("coord", self.coord)
        self._tick_clients()

    def _tick_clients(self) -> None:
        for cid, session in self.sessions.items():
            session.tick()
            self._drain(cid, session)

    def run(self, max_steps: int = 100_000, tick_every: int = 50) -> None:
        """Deliver messages, ticking every ``tick_every`` steps, until quiet or max_steps.

        Raft mode is never quiet (a leader's heartbeats go on): it runs until the
        cluster settled (``settled``) instead.
        """
        for n in range(max_steps):
            if n % tick_every == 0:
                self.tick()
            if not self.step() and n % tick_every != 0:
                self.tick()
                if not self.network and (not self.raft or self.settled()):
                    return

    def settled(self) -> bool:
        """A leader, every live server's log equal to its and applied, no op waiting."""
        leader = self.leader()
        if not leader or any(s.ops for s in self.sessions.values()):
            return False
        log = self.nodes[leader].log
        return all(
            s.log.same_as(log) and s.last_applied == s.log.last_index
            for i, s in self.nodes.items()
            if i not in self.down
        )

    def run_until(self, pred: Callable[[], bool], max_steps: int = 200_000) -> bool:
        """Run until ``pred()`` holds; False if it never did within max_steps."""
        for n in range(max_steps):
            if pred():
                return True
            if n % 50 == 0 or not self.network:
                self.tick()
            self.step()
        return pred()

    def serving(self) -> bool:
        if self.raft:
            return self.leader() != 0
        return self.coord.phase == SERVING

    def leader(self) -> int:
        """Raft mode: the live leader of the highest term (0: none). Coord mode: the coord's."""
        if not self.raft:
            return self.coord.leader if self.coord.phase == SERVING else 0
        leaders = [
            (s.current_term, i)
            for i, s in self.nodes.items()
            if i not in self.down and s.role == LEADER
        ]
        return max(leaders)[1] if leaders else 0

    def crash(self, server_id: int) -> None:
        """Fail-stop one server: it receives nothing and sends nothing from now on."""
        self.down.add(server_id)

    def restart(self, server_id: int) -> None:
        """Raft mode: a crashed server comes back with its durable term, vote and log."""
        if not self.raft:
            raise ValueError("the simulator restarts servers in raft mode only")
        old = self.nodes[server_id]
        new = self.spec.server(server_id, self.tracer_factory(server_name(server_id)))
        new.randint = random.Random(self.rng.random()).randint  # a new life, new draws
        new.restore(old.current_term, old.log.user_entries(), old.voted_for, old.snapshot)
        new.keep_applied = True
        new.start(f"addr-{server_id}", f"hb-{server_id}")
        new.step(Configure([(j, f"addr-{j}", f"addr-{j}") for j in self.nodes]))
        self.nodes[server_id] = new
        self.down.discard(server_id)
        self._drain(server_name(server_id), new)

    def timeout_now(self, server_id: int) -> None:
        """Raft mode: the server's election timer fires now (two at once: a split vote)."""
        node = self.nodes[server_id]
        node.step(ElectNow())
        self._drain(server_name(server_id), node)

    def transfer_leader(self, to: int) -> None:
        """Raft mode: the current leader hands leadership to ``to`` (run on to see it)."""
        leader = self.leader()
        if leader:
            self.nodes[leader].step(TransferLeader(to))
            self._drain(server_name(leader), self.nodes[leader])

    def submit(self, client: str, kind: int, key: str, value: str = "") -> int:
        session = self.sessions[client]
        op_id = session.submit(kind, key, value)
        self._drain(client, session)
        return op_id
