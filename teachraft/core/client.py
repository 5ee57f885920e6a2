"""kvslib, the client library, as a pure state machine: op ids, queue, retry, failover.

* ``submit`` gives every Put and Get an op id at once; at most ``ch_capacity``
  ops may wait for their results (KVRaft's ``ChCapacity``).
* Up to ``max_in_flight`` ops are on the wire at once, in op order, over one
  connection to the leader.
* An op that fails (a timeout, a connection error, "not leader") is retried
  with the **same** op id after asking the coord for the leader, so that the
  servers' duplicate detection can answer it from their cache.
* A leader change pushed by the coord resends every op in flight.
* Results are delivered in op order, each exactly once.
* An op submitted ``via`` a chosen server goes to that server only, once: it
  is never retried elsewhere, so a lesson can watch what that server does with
  it (a fenced old leader must not acknowledge it). Any failure is its result.
* When the coord reports that no quorum is left, every waiting op is answered
  with that error at once instead of hanging.
* In raft mode (``raft=True``) there is no coord: the session knows every
  server's client address (``set_servers``), asks the next one in turn when it
  knows no leader, and follows a follower's leader hint. At most
  ``HOPS_PER_TICK`` such moves happen between two ticks, so a dead leader that
  followers still name is not hammered. When every server in turn said it
  cannot reach a majority (or could not be reached), every waiting op is
  answered with a ``no quorum`` error.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from teachraft.core.effects import AskLeader, Deliver, Effect, SendRequest
from teachraft.core.log import GET, PUT
from teachraft.core.machine import NotServed
from teachraft.core.messages import ClientReply, ClientRequest, LeaderInfo
from teachraft.core.tracelike import TracerLike
from teachraft.tracing import actions as A

HOPS_PER_TICK = 3
"""Raft mode: servers tried (probes and hints followed) between two ticks at most."""
SUSPECT_TICKS = 10
"""Raft mode: ticks during which a server that could not be reached is not tried again,
even when a follower still names it as the leader (it has not noticed the failure yet)."""


class QueueFull(RuntimeError):
    """More than ChCapacity ops are waiting for results."""


@dataclass(slots=True)
class LeaderAnswer:
    """A local input: the coord's answer to this session's GetLeader."""

    info: LeaderInfo


@dataclass(slots=True)
class RequestDone:
    """A local input: a server answered attempt ``attempt`` of an op."""

    reply: ClientReply
    attempt: int = 0


@dataclass(slots=True)
class RequestFailed:
    """A local input: an attempt failed (timeout, connection lost) before any answer."""

    op_id: int
    error: str
    attempt: int = 0


@dataclass(slots=True)
class CoordUnreachable:
    """A local input: GetLeader itself failed; the next tick asks again."""

    error: str


ClientInput = LeaderInfo | LeaderAnswer | RequestDone | RequestFailed | CoordUnreachable
"""What a session steps on: a pushed ChangeLeaderNode, or one of the host's outcomes."""


@dataclass(slots=True)
class PendingOp:
    op_id: int
    kind: int
    key: str
    value: str
    trace: Any
    sent: bool = False
    on_wire: bool = False
    age_ticks: int = 0
    attempts: int = 0
    via: str = ""
    addr: str = ""


@dataclass
class ClientSession:
    """One kvslib client. Ticks come from the host (its retry timer)."""

    client_id: str
    tracer: TracerLike
    ch_capacity: int = 64
    max_in_flight: int = 16
    op_timeout_ticks: int = 200
    leader: int = 0
    leader_addr: str | None = None
    outbox: list[Effect] = field(default_factory=list)
    raft: bool = False

    def __post_init__(self) -> None:
        self.tracing = self.tracer.enabled
        self.next_op_id = 1
        self.ops: OrderedDict[int, PendingOp] = OrderedDict()
        self.done: dict[int, Deliver] = {}
        self.next_to_deliver = 1
        self.asking = False
        self.last_error = ""
        self.stopped = False
        self.on_wire = 0  # ops sent and not yet answered or failed
        self.servers: dict[int, str] = {}
        """Raft mode: every server's client address, by id."""
        self.turn = 0
        self.hops = 0
        self.no_quorum_from: set[int] = set()
        self.suspects: dict[str, int] = {}
        """Raft mode: client addresses that could not be reached, and when (ticks)."""
        self.ticks = 0

    def take(self) -> list[Effect]:
        out, self.outbox = self.outbox, []
        return out

    def step(self, msg: ClientInput, responder: Any = None) -> None:
        """Feed one input in: a pushed LeaderInfo, or an outcome the host observed."""
        if type(msg) is RequestDone:  # the common case first: one per op
            self.reply(msg.reply, msg.attempt)
        elif isinstance(msg, LeaderInfo):
            self.leader_info(msg, pushed=True)
        elif isinstance(msg, LeaderAnswer):
            self.leader_info(msg.info)
        elif isinstance(msg, RequestDone):
            self.reply(msg.reply, msg.attempt)
        elif isinstance(msg, RequestFailed):
            self.failed(msg.op_id, msg.error, attempt=msg.attempt)
        elif isinstance(msg, CoordUnreachable):
            self.leader_unreachable(msg.error)
        else:
            raise NotServed(f"client {self.client_id} does not serve {type(msg).__name__}")

    def flush(self) -> None:
        """Nothing is batched in a session; here so that every machine drains alike."""

    # ---------------------------------------------------------------- session
    def start(self) -> None:
        """KvslibStart, then ask the coord for the leader."""
        trace = self.tracer.create_trace()
        if self.tracing:
            trace.record_action(A.KvslibStart(ClientId=self.client_id))
        if not self.raft:
            self._ask_leader()

    def stop(self) -> None:
        trace = self.tracer.create_trace()
        if self.tracing:
            trace.record_action(A.KvslibStop(ClientId=self.client_id))
        self.stopped = True

    @property
    def waiting(self) -> int:
        """Ops submitted whose results were not yet delivered."""
        return self.next_op_id - self.next_to_deliver

    def submit(self, kind: int, key: str, value: str = "", via: str = "") -> int:
        """Queue a Put or Get; returns its op id at once.

        ``via`` is the client address of one server to send it to, instead of the leader.
        """
        if self.waiting >= self.ch_capacity:
            raise QueueFull(f"client {self.client_id}: {self.ch_capacity} ops already waiting")
        op_id = self.next_op_id
        self.next_op_id += 1
        trace = self.tracer.create_trace()
        if self.tracing:
            if kind == PUT:
                trace.record_action(
                    A.Put(ClientId=self.client_id, OpId=op_id, Key=key, Value=value)
                )
            else:
                trace.record_action(A.Get(ClientId=self.client_id, OpId=op_id, Key=key))
        op = self.ops[op_id] = PendingOp(op_id, kind, key, value, trace, via=via)
        if via:
            op.sent = True
            op.attempts = 1
            self.outbox.append(SendRequest(op_id, 1, via, self._request(op)))
        else:
            self._pump()
        return op_id

    # ---------------------------------------------------------------- sending
    @property
    def acked_below(self) -> int:
        """Every op below this id has its result here; servers may forget them."""
        return next(iter(self.ops), self.next_op_id)

    def _pump(self) -> None:
        """Put ops on the wire, in order, up to max_in_flight."""
        if self.leader_addr is None:
            if not self.asking and self.ops:
                self._ask_leader()
            return
        if self.on_wire >= self.max_in_flight or self.on_wire >= len(self.ops):
            return
        for op in self.ops.values():
            if self.on_wire >= self.max_in_flight:
                break
            if not op.on_wire and not op.via:
                self._send(op)

    def _send(self, op: PendingOp) -> None:
        op.on_wire = True
        self.on_wire += 1
        op.sent = True
        op.attempts += 1
        op.addr = self.leader_addr or ""
        self.outbox.append(
            SendRequest(op.op_id, op.attempts, self.leader_addr or "", self._request(op))
        )

    def _request(self, op: PendingOp) -> ClientRequest:
        # Positional, in ClientRequest's field order: this runs once per op sent.
        return ClientRequest(
            self.client_id,
            op.op_id,
            op.kind,
            op.key,
            op.value,
            self.acked_below,
            op.trace.generate_token(),
        )

    def _ask_leader(self) -> None:
        if self.raft:
            self._find_leader()
            return
        self.asking = True
        trace = self.tracer.create_trace()
        if self.tracing:
            trace.record_action(A.LeaderReq(ClientId=self.client_id))
        self.outbox.append(AskLeader(trace.generate_token()))

    # --------------------------------------------------------------- outcomes
    def leader_info(self, info: LeaderInfo, pushed: bool = False) -> None:
        """The coord's answer to GetLeader, or its ChangeLeaderNode push."""
        trace = self.tracer.receive_token(info.token) if info.token else None
        if not pushed:
            self.asking = False
        if info.error:
            self.last_error = info.error
            self.leader, self.leader_addr = 0, None
            self._fail_all(info.error)
            return
        if trace is not None and self.tracing:
            action = A.LeaderNodeUpdateRecvd if pushed else A.LeaderResRecvd
            trace.record_action(action(ClientId=self.client_id, ServerId=info.leader))
        changed = info.leader_addr != self.leader_addr
        self.leader, self.leader_addr = info.leader, info.leader_addr
        if changed:
            self._all_off_wire()
        self._pump()

    def reply(self, rep: ClientReply, attempt: int = 0) -> None:
        """A server answered an op."""
        op = self.ops.get(rep.op_id)
        if op is None:
            return  # a late duplicate answer for an op already delivered
        if not rep.ok:
            if op.via:
                self._finish(op, False, None, rep.error)
                return
            self.failed(rep.op_id, rep.error, rep.leader, rep.leader_addr, attempt)
            return
        trace = self.tracer.receive_token(rep.token) if rep.token else op.trace
        if self.tracing:
            if op.kind == PUT:
                trace.record_action(A.PutResultRecvd(OpId=op.op_id, Key=op.key))
            else:
                trace.record_action(
                    A.GetResultRecvd(OpId=op.op_id, Key=op.key, Value=rep.value or "")
                )
        if self.raft:
            self.no_quorum_from.clear()
            self.suspects.pop(op.addr, None)
        self._finish(op, True, rep.value, "")
        self._pump()

    def failed(
        self,
        op_id: int,
        error: str,
        hint: int = 0,
        hint_addr: str | None = None,
        attempt: int = 0,
    ) -> None:
        """An attempt failed (timeout, connection lost, not leader): retry with the same id."""
        op = self.ops.get(op_id)
        if op is not None and op.via:
            self._finish(op, False, None, error)
            return
        if op is None or not op.on_wire or (attempt and attempt != op.attempts):
            return
        self._off_wire(op)
        self.last_error = error
        if self.raft:
            self._failed_raft(op, error, hint, hint_addr)
            return
        if hint_addr and hint_addr != self.leader_addr:
            self.leader_addr = hint_addr
            self.leader = hint
            self._pump()
            return
        if self.leader_addr is not None:
            self.leader, self.leader_addr = 0, None
            self._all_off_wire()
        if not self.asking:
            self._ask_leader()

    def leader_unreachable(self, error: str) -> None:
        """GetLeader itself failed (the coord did not answer): try again on the next tick."""
        self.asking = False
        self.last_error = error

    def tick(self) -> None:
        """Retry timer: age ops, give up on ones past their deadline, re-ask for a leader."""
        if self.raft:
            self.hops = 0
            self.asking = False
            self.ticks += 1
        for op in list(self.ops.values()):
            op.age_ticks += 1
            if op.age_ticks >= self.op_timeout_ticks:
                self._finish(op, False, None, f"timed out after {op.attempts} attempts")
        if self.ops and self.leader_addr is None and not self.asking:
            self._ask_leader()
        self._pump()

    # --------------------------------------------------------------- raft mode
    def set_servers(self, addrs: dict[int, str]) -> None:
        """Raft mode: where each server takes client requests (again after a restart)."""
        self.servers = dict(addrs)
        addr = self.servers.get(self.leader)
        if self.leader and addr != self.leader_addr:
            self.leader_addr = addr
            self._all_off_wire()
            self._pump()

    def _find_leader(self) -> None:
        """No leader known: try the next server in turn (it names the leader it knows)."""
        if not self.servers or self.hops >= HOPS_PER_TICK:
            self.asking = True  # the next tick tries again
            return
        ids = sorted(self.servers)
        for _ in ids:  # skip suspects, unless every server is one
            sid = ids[self.turn % len(ids)]
            self.turn += 1
            if not self._suspect(self.servers[sid]):
                break
        self._go_to(sid, self.servers[sid])

    def _suspect(self, addr: str) -> bool:
        since = self.suspects.get(addr)
        return since is not None and self.ticks - since < SUSPECT_TICKS

    def _go_to(self, sid: int, addr: str) -> None:
        self.hops += 1
        self.asking = False
        self.leader, self.leader_addr = sid, addr
        self._pump()

    def _failed_raft(self, op: PendingOp, error: str, hint: int, hint_addr: str | None) -> None:
        """An attempt failed: follow the hint, or try the next server; give up without quorum."""
        if op.addr != self.leader_addr:  # an answer from a server we already left
            self._pump()
            return
        answered = error.startswith("not leader") or error.startswith("no quorum")
        if not answered:
            self.suspects[op.addr] = self.ticks
        if error.startswith("no quorum") or not answered:
            self.no_quorum_from.add(self.leader)
        else:
            self.no_quorum_from.clear()
        if self.servers and self.no_quorum_from >= set(self.servers):
            self.no_quorum_from.clear()
            self.leader, self.leader_addr = 0, None
            n = len(self.servers)
            self._fail_all(
                f"no quorum: none of the {n} servers could reach a majority of them "
                f"(last answer: {error})"
            )
            return
        self.leader, self.leader_addr = 0, None
        self._all_off_wire()
        if hint and hint_addr and hint_addr != op.addr and not self._suspect(hint_addr):
            if self.hops < HOPS_PER_TICK:
                self._go_to(hint, hint_addr)
            else:
                self.leader, self.leader_addr = hint, hint_addr  # the next tick sends
            return
        self._find_leader()

    def _fail_all(self, error: str) -> None:
        for op in list(self.ops.values()):
            self._finish(op, False, None, error)

    def _off_wire(self, op: PendingOp) -> None:
        if op.on_wire:
            op.on_wire = False
            self.on_wire -= 1

    def _all_off_wire(self) -> None:
        """A leader change: every op in flight will be sent again (same op ids)."""
        for op in self.ops.values():
            op.on_wire = False
        self.on_wire = 0

    def _finish(self, op: PendingOp, ok: bool, value: str | None, error: str) -> None:
        self._off_wire(op)
        del self.ops[op.op_id]
        self.done[op.op_id] = Deliver(op.op_id, op.kind, op.key, ok, value, error, op.sent)
        while self.next_to_deliver in self.done:
            self.outbox.append(self.done.pop(self.next_to_deliver))
            self.next_to_deliver += 1


__all__ = [
    "GET",
    "PUT",
    "AskLeader",
    "ClientInput",
    "ClientSession",
    "CoordUnreachable",
    "Deliver",
    "LeaderAnswer",
    "QueueFull",
    "RequestDone",
    "RequestFailed",
    "SendRequest",
]
