"""The simulated world the grader runs a lab class in: ``SimCluster`` plus what grading needs.

On top of ``teachraft.sim.SimCluster`` (the same core machines on a seeded
in-memory network) this adds crash *and restart* (a restarted server reloads
the term and log it held, as from stable storage), network partitions, slow
links whose messages wait until healed, duplicated messages, a client history
for the linearizability checker, and a guard: an exception in a machine, or
an effect that is not one, ends the run as a ``HandlerFailure`` that names the
node, the handler and the exception instead of escaping.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from teachraft.check.history import History, HistoryRecorder
from teachraft.core.client import RequestFailed
from teachraft.core.coord import Heartbeat
from teachraft.core.effects import AskLeader, Deliver, Persist, Reply, Send, SendRequest, Watch
from teachraft.core.log import GET, PUT
from teachraft.core.messages import GetLeader, Message
from teachraft.core.server import Server, server_id_of, server_name
from teachraft.sim import Packet, SimCluster

NO_TIMEOUT = 1_000_000
CALL_TIMEOUT_TICKS = 20
"""A request unanswered this long fails at its client, which retries (the host's call timeout)."""
EFFECTS = (Send, Reply, Persist, Watch, SendRequest, AskLeader, Deliver)


class HandlerFailure(Exception):
    """A machine under test raised, or produced something that is not an effect."""

    def __init__(self, node: str, where: str, error: str, detail: str = "") -> None:
        super().__init__(f"{node}: {where} {error}")
        self.node, self.where, self.error, self.detail = node, where, error, detail
        self.endless = False

    @property
    def sentence(self) -> str:
        return f"{self.node}'s {self.where} {self.error}"


RUN_SECONDS = 10.0
"""A single simulated run longer than this is a handler stuck in a loop."""


@contextlib.contextmanager
def time_limit(seconds: float = RUN_SECONDS) -> Iterator[None]:
    """Interrupt a run that takes longer than ``seconds`` (an endless loop in a handler).

    Uses a timer signal, so it guards only on the main thread of a Unix process (a
    notebook's kernel, the ``teachraft grade`` command); elsewhere it does nothing.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        where = f"{frame.f_code.co_name}() at line {frame.f_lineno}" if frame else "a handler"
        failure = HandlerFailure(
            "a node", where, f"was still running after {seconds:g} s: an endless loop?"
        )
        failure.endless = True
        raise failure

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _failure(node: str, where: str, exc: BaseException) -> HandlerFailure:
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
    detail = "".join(frames[-3:]).strip()
    return HandlerFailure(node, where, f"raised {type(exc).__name__}: {exc}", detail)


def _handler_name(machine: Any, msg: Any) -> str:
    handler = getattr(machine, "_steps", {}).get(type(msg))
    if handler is not None:
        name = getattr(handler, "__name__", "step").removeprefix("_traced_")
        return f"{name}()"
    if type(msg).__name__ == "ClientRequest":
        return "client_request()"
    return f"step({type(msg).__name__})"


@dataclass
class LabSim(SimCluster):
    """A ``SimCluster`` with restarts, partitions, slow links, duplicates and a history."""

    duplicate: float = 0.0
    max_batch: int = 0
    """Entries per AppendEntries (0: the server's default); 1 makes every entry its own message."""
    on_step: Callable[[LabSim], None] | None = None
    held: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.recorder = _Recorder(clock=self._now, origin=0.0)
        self.op_ids: dict[tuple[str, int], int] = {}
        self.incarnation: dict[int, int] = {}
        self.sent_at: dict[tuple[str, int, int], int] = {}
        self.ticks = 0
        try:
            super().__post_init__()
        except HandlerFailure:
            raise
        except Exception as exc:
            raise _failure("the cluster", "start", exc) from exc
        for node in self.nodes.values():
            self._tune(node)
        for session in self.sessions.values():
            # The grader, not a client's patience, decides when a cluster is stuck.
            session.op_timeout_ticks = NO_TIMEOUT

    def _now(self) -> float:
        return float(self.steps)

    def _tune(self, node: Server) -> None:
        if self.max_batch:
            node.options.max_batch = self.max_batch

    # ----------------------------------------------------------- the guard
    def _drain(self, src: str, machine: Any) -> None:
        try:
            machine.flush()
            effects = machine.take()
        except HandlerFailure:
            raise
        except Exception as exc:
            raise _failure(src, "flush()", exc) from exc
        if not isinstance(effects, list):
            raise HandlerFailure(src, "take()", f"returned {type(effects).__name__}, not a list")
        for eff in effects:
            self._check_effect(src, eff)
            self._effect(src, eff)

    def _check_effect(self, src: str, eff: Any) -> None:
        if not isinstance(eff, EFFECTS):
            raise HandlerFailure(src, "outbox", f"holds {eff!r}, which is not an effect")
        if isinstance(eff, (Send, Reply)) and not isinstance(eff.msg, Message):
            raise HandlerFailure(src, "outbox", f"sends {eff.msg!r}, which is not a message")
        if isinstance(eff, Send) and not isinstance(eff.dest, str):
            raise HandlerFailure(src, "outbox", f"sends to {eff.dest!r}, which is not a node name")

    def _deliver(self, pkt: Packet) -> None:
        dst = pkt.dst
        machine: Any = self.coord if dst == "coord" else None
        sid = server_id_of(dst)
        if sid is not None:
            machine = self.nodes[sid]
        try:
            super()._deliver(pkt)
        except HandlerFailure:
            raise
        except Exception as exc:
            where = _handler_name(machine, pkt.msg) if machine is not None else "step()"
            raise _failure(dst, where, exc) from exc

    # ------------------------------------------------------------- network
    def step(self) -> bool:
        """Deliver, lose or duplicate one message chosen at random among those not held."""
        if not self.network:
            return False
        held = self.held
        if held:
            ready = [i for i, p in enumerate(self.network) if (p.src, p.dst) not in held]
            if not ready:
                return False
            index = ready[self.rng.randrange(len(ready))]
        else:
            index = self.rng.randrange(len(self.network))
        self.steps += 1
        pkt = self.network.pop(index)
        joined = self.raft or self.coord.phase != "joining"
        lossy = self.drop and joined
        if not self._reachable(pkt.src, pkt.dst) or (lossy and self.rng.random() < self.drop):
            self._lost(pkt)
        else:
            if self.duplicate and pkt.responder is None and joined and self._dice(self.duplicate):
                self.network.append(Packet(pkt.src, pkt.dst, pkt.msg))
            self._deliver(pkt)
        if self.on_step is not None:
            self.on_step(self)
        return True

    def _dice(self, p: float) -> bool:
        return self.rng.random() < p

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between nodes of different groups (names: server2, coord, 1)."""
        sets = [set(g) for g in groups]
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                for x in a:
                    for y in b:
                        self.cut.add(frozenset((x, y)))

    def hold(self, src: str, dst: str) -> None:
        """A slow link: messages from src to dst wait until ``heal``."""
        self.held.add((src, dst))

    def heal(self) -> None:
        """Every link up again; held messages may now be delivered."""
        self.cut.clear()
        self.held.clear()

    # ---------------------------------------------------- crash and restart
    def crash(self, server_id: int) -> None:
        """Fail-stop: the server and every message to or from it are gone."""
        if server_id in self.down:
            return
        self.down.add(server_id)
        name = server_name(server_id)
        kept: list[Packet] = []
        lost: list[Packet] = []
        for pkt in self.network:
            (lost if name in (pkt.src, pkt.dst) else kept).append(pkt)
        self.network[:] = kept
        for pkt in lost:
            self._lost(pkt)

    def restart(self, server_id: int) -> None:
        """Start a crashed server again with the term and log it had stored; it rejoins."""
        if server_id not in self.down:
            return
        old = self.nodes[server_id]
        name = server_name(server_id)
        if self.raft:  # the simulator's own restart keeps the vote too
            try:
                super().restart(server_id)
            except HandlerFailure:
                raise
            except Exception as exc:
                raise _failure(name, "restart", exc) from exc
            self._tune(self.nodes[server_id])
            self.incarnation[server_id] = self.incarnation.get(server_id, 0) + 1
            return
        try:
            node = self.spec.server(server_id, self.tracer_factory(name))
            self._tune(node)
            node.keep_applied = True
            node.restore(old.current_term, list(old.log.user_entries()))
            self.down.discard(server_id)
            self.nodes[server_id] = node
            self.incarnation[server_id] = self.incarnation.get(server_id, 0) + 1
            node.start(f"addr-{server_id}", f"hb-{server_id}")
        except HandlerFailure:
            raise
        except Exception as exc:
            raise _failure(name, "restart", exc) from exc
        self._drain(name, node)

    # --------------------------------------------------------------- clients
    def submit(self, client: str, kind: int, key: str, value: str = "") -> int:
        f = "put" if kind == PUT else "get"
        hid = self.recorder.invoke(client, f, key, value if kind == PUT else None)
        op_id = super().submit(client, kind, key, value)
        self.op_ids[(client, op_id)] = hid
        return op_id

    def _effect(self, src: str, eff: Any) -> None:
        kind = type(eff)
        if kind is SendRequest:  # as SimCluster does, with a responder that deep-copies
            self.sent_at[(src, eff.op_id, eff.attempt)] = self.ticks
            leader = eff.address.removeprefix("addr-")
            dst = server_name(int(leader)) if leader.isdigit() else "nowhere"
            answer = _Answer(self, dst, src, "reply", eff.attempt)
            self.network.append(Packet(src, dst, eff.request, answer))
            return
        if kind is AskLeader:
            answer = _Answer(self, "coord", src, "leader", 0)
            self.network.append(Packet(src, "coord", GetLeader(src, src, eff.token), answer))
            return
        if kind is Deliver:
            hid = self.op_ids.pop((src, eff.op_id), None)
            if hid is not None:
                if eff.ok:
                    self.recorder.ok(hid, eff.value if eff.kind == GET else None)
                elif eff.sent:
                    self.recorder.unknown(hid)
                else:
                    self.recorder.fail(hid)
        super()._effect(src, eff)

    def history(self) -> History:
        return self.recorder.history()

    def pending_ops(self) -> int:
        """Ops submitted and not yet answered, over every client."""
        return len(self.op_ids)

    # -------------------------------------------------------------- timers
    def tick(self) -> None:
        """One timer interval everywhere, guarded: a failing ``tick`` names its node."""
        self.ticks += 1
        for i, s in self.nodes.items():
            if i in self.down:
                continue
            try:
                s.tick()
            except Exception as exc:
                raise _failure(server_name(i), "tick()", exc) from exc
            self._drain(server_name(i), s)
        if self.raft:
            self._tick_sessions()
            return
        try:
            if self.coord.phase != "joining":
                for i in self.nodes:
                    ok = self._reachable("coord", server_name(i)) and self.rng.random() >= self.drop
                    self.coord.step(Heartbeat(i, ok))
            self.coord.tick()
        except Exception as exc:
            raise _failure("coord", "tick()", exc) from exc
        self._drain("coord", self.coord)
        self._tick_sessions()

    def _tick_sessions(self) -> None:
        for cid, session in self.sessions.items():
            session.tick()
            self._call_timeouts(cid, session)
            self._drain(cid, session)

    def _call_timeouts(self, cid: str, session: Any) -> None:
        """Fail every attempt on the wire for longer than CALL_TIMEOUT_TICKS (it retries)."""
        for op in list(session.ops.values()):
            sent = self.sent_at.get((cid, op.op_id, op.attempts))
            if op.on_wire and sent is not None and self.ticks - sent > CALL_TIMEOUT_TICKS:
                del self.sent_at[(cid, op.op_id, op.attempts)]
                session.step(RequestFailed(op.op_id, "timed out", attempt=op.attempts))

    def live(self) -> list[Server]:
        return [s for i, s in sorted(self.nodes.items()) if i not in self.down]


class _Recorder(HistoryRecorder):
    """A history recorder that a deep copy of its world can take along (its own lock)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Recorder:
        twin = _Recorder.__new__(_Recorder)
        memo[id(self)] = twin
        for name, value in vars(self).items():
            if name != "_lock":
                setattr(twin, name, copy.deepcopy(value, memo))
        twin._lock = threading.Lock()
        return twin


@dataclass(slots=True)
class _Answer:
    """Where a request's answer goes: back over the simulated network to the client.

    A plain object rather than a closure, so that ``copy.deepcopy`` of a world
    (the explorer's states) sends each copy's answers into that copy.
    """

    sim: LabSim
    src: str
    client: str
    tag: str
    attempt: int

    def deliver(self, msg: Any) -> None:
        body = ("reply", msg, self.attempt) if self.tag == "reply" else ("leader", msg)
        self.sim.network.append(Packet(self.src, self.client, body))


def unknown_ret(history: History) -> int:
    """How many ops of a history have no known outcome."""
    return sum(1 for op in history.ops if op.ret == math.inf)
