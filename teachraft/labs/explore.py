"""Exhaustive search of a small configuration, breadth first, like DSLabs' model checker.

From a serving 3-server cluster with two client ops submitted, every choice
the network or the failure model can make is an *action*: deliver one of the
messages in flight, lose one (at most ``drops``), crash the leader (at most
once), or let a timer interval pass (at most ``ticks``). States are explored
breadth first, each distinct state once (a fingerprint of every machine and
the messages in flight), up to ``depth`` actions and ``max_states`` states.
Because the search is breadth first, the first violation found has the
fewest actions of any: the smallest counterexample within the bound.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from teachraft.check import check as check_history
from teachraft.core.log import GET, PUT
from teachraft.labs.invariants import InvariantBroken, Monitor
from teachraft.labs.schedules import HANDLERS, LINEARIZABLE, TICK_EVERY, broken_state
from teachraft.labs.world import HandlerFailure, LabSim

Action = tuple[str, int]
"""("deliver", i), ("drop", i), ("crash", 0) or ("tick", 0)."""


@dataclass
class Exploration:
    """What the search covered, and its smallest counterexample if it found one."""

    states: int = 0
    max_states: int = 0
    depth: int = 0
    exhausted: bool = False
    """True when every state within the depth bound was visited (no state bound hit)."""
    seconds: float = 0.0
    failure: str = ""
    sentence: str = ""
    detail: str = ""
    path: list[Action] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    ops: tuple[tuple[int, str, str], ...] = ()
    election: str = "coord"

    @property
    def ok(self) -> bool:
        return not self.failure

    def bound(self) -> str:
        """The bound, in one sentence, for the result."""
        scope = f"3 servers and {len(self.ops)} ops, at most {self.depth} actions"
        if self.failure:
            return (
                f"breadth-first search of {scope}: violation found after {self.states} states "
                f"(state bound {self.max_states}); no shorter run fails"
            )
        how = "every reachable state" if self.exhausted else f"{self.states} states"
        return f"breadth-first search of {scope}: {how} checked (state bound {self.max_states})"


OPS: tuple[tuple[int, str, str], ...] = ((PUT, "x", "1"), (GET, "x", ""))


def start_world(
    server_class: Any, coord_class: Any, ops: tuple[tuple[int, str, str], ...] = OPS, **kw: Any
) -> LabSim:
    """A serving 3-server world with ``ops`` submitted by client 1 and nothing delivered yet."""
    sim = LabSim(
        servers=3,
        clients=1,
        seed=0,
        server_class=server_class,
        coord_class=coord_class,
        lost_msgs_thresh=1,
        max_batch=1,
        pre_vote=False,
        check_quorum=False,
        **kw,
    )
    for n in range(20_000):
        if sim.serving() and not sim.network:
            break
        if n % TICK_EVERY == 0:
            sim.tick()
        if not sim.step():
            sim.tick()
    sim.ticks = 0
    for kind, key, value in ops:
        sim.submit("1", kind, key, value)
    return sim


def describe(sim: LabSim, action: Action) -> str:
    kind, i = action
    if kind in ("deliver", "drop"):
        pkt = sim.network[i]
        what = type(pkt.msg).__name__ if not isinstance(pkt.msg, tuple) else pkt.msg[0]
        what = {"reply": "ClientReply", "leader": "LeaderInfo"}.get(what, what)
        verb = "deliver" if kind == "deliver" else "lose"
        return f"{verb} {what} {pkt.src} -> {pkt.dst}"
    if kind == "crash":
        return f"crash server{sim.leader()} (the leader)"
    return "a timer interval passes (heartbeats, retries, failure detection)"


def apply(sim: LabSim, action: Action) -> None:
    kind, i = action
    if kind == "deliver":
        pkt = sim.network.pop(i)
        sim.steps += 1
        if sim._reachable(pkt.src, pkt.dst):
            sim._deliver(pkt)
        else:
            sim._lost(pkt)
    elif kind == "drop":
        sim.steps += 1
        sim._lost(sim.network.pop(i))
    elif kind == "crash":
        sim.crash(sim.leader())
    else:
        sim.tick()


def _fingerprint(sim: LabSim) -> int:
    servers = tuple(
        (
            s.current_term,
            s.role,
            s.commit_index,
            s.last_applied,
            tuple(s.log.entries),
            i in sim.down,
        )
        for i, s in sorted(sim.nodes.items())
    )
    coord = (sim.coord.phase, sim.coord.term, sim.coord.leader, sim.coord.chosen)
    votes = tuple(getattr(s, "voted_for", 0) for _, s in sorted(sim.nodes.items()))
    net = tuple(sorted(repr((p.src, p.dst, p.msg)) for p in sim.network))
    sessions = tuple(
        (
            s.next_to_deliver,
            s.leader,
            tuple((o.op_id, o.on_wire, o.attempts) for o in s.ops.values()),
        )
        for s in sim.sessions.values()
    )
    return hash((servers, coord, votes, net, sessions))


def _actions(
    sim: LabSim, drops: int, crashes: int, ticks: int, used: dict[str, int]
) -> list[Action]:
    out: list[Action] = []
    seen: set[str] = set()
    for i, p in enumerate(sim.network):
        key = repr((p.src, p.dst, p.msg))
        if key in seen:
            continue
        seen.add(key)
        out.append(("deliver", i))
        if used["drop"] < drops:
            out.append(("drop", i))
    if used["crash"] < crashes and sim.leader():
        out.append(("crash", 0))
    if used["tick"] < ticks:
        out.append(("tick", 0))
    return out


def explore(
    server_class: Any = None,
    coord_class: Any = None,
    *,
    depth: int = 14,
    max_states: int = 3000,
    drops: int = 1,
    crashes: int = 1,
    ticks: int = 3,
    ops: tuple[tuple[int, str, str], ...] = OPS,
    time_limit: float = 8.0,
    election: str = "coord",
) -> Exploration:
    """Breadth-first search for the smallest counterexample; see the module docstring."""
    t0 = time.monotonic()
    result = Exploration(max_states=max_states, depth=depth, ops=ops, election=election)
    try:
        root = start_world(server_class, coord_class, ops, election=election)
    except HandlerFailure as exc:
        result.failure, result.sentence, result.detail = HANDLERS, exc.sentence, exc.detail
        return result
    except Exception as exc:
        result.failure, result.sentence = HANDLERS, broken_state(exc)
        return result
    monitor = Monitor(every=1)
    queue: deque[tuple[LabSim, Monitor, list[Action], dict[str, int]]] = deque()
    queue.append((root, monitor, [], {"drop": 0, "crash": 0, "tick": 0}))
    seen = {_fingerprint(root)}
    cut_short = False
    while queue:
        sim, mon, path, used = queue.popleft()
        if len(path) >= depth:
            continue
        for action in _actions(sim, drops, crashes, ticks, used):
            if len(seen) >= max_states or time.monotonic() - t0 > time_limit:
                cut_short = True
                break
            child, cmon = copy.deepcopy((sim, mon))
            cpath = [*path, action]
            cused = dict(used)
            if action[0] in cused:
                cused[action[0]] += 1
            try:
                apply(child, action)
                cmon.check(child, full=True)
                if child.pending_ops() == 0 and not _linearizable(child):
                    result.failure = LINEARIZABLE
                    result.sentence = "the client history is not linearizable."
            except HandlerFailure as exc:
                result.failure, result.sentence, result.detail = HANDLERS, exc.sentence, exc.detail
            except InvariantBroken as exc:
                result.failure, result.sentence = exc.violation.invariant, exc.violation.sentence
            except Exception as exc:  # state the checks cannot read
                result.failure, result.sentence = HANDLERS, broken_state(exc)
            if result.failure:
                result.path = cpath
                result.steps = replay_steps(
                    server_class, coord_class, cpath, ops, election=election
                )
                result.states = len(seen)
                result.seconds = time.monotonic() - t0
                return result
            fp = _fingerprint(child)
            if fp in seen:
                continue
            seen.add(fp)
            queue.append((child, cmon, cpath, cused))
        if cut_short:
            break
    result.states = len(seen)
    result.exhausted = not cut_short
    result.seconds = time.monotonic() - t0
    return result


def _linearizable(sim: LabSim) -> bool:
    return check_history(sim.history(), "kv", timeout=2.0).verdict != "not linearizable"


def replay_steps(
    server_class: Any,
    coord_class: Any,
    path: list[Action],
    ops: tuple[tuple[int, str, str], ...] = OPS,
    tracer_factory: Callable[[str], Any] | None = None,
    election: str = "coord",
) -> list[str]:
    """The path as sentences, replayed from the start (with tracers, for the timeline)."""
    kw: dict[str, Any] = {"election": election}
    if tracer_factory is not None:
        kw["tracer_factory"] = tracer_factory
    sim = start_world(server_class, coord_class, ops, **kw)
    lines = [f"client 1 submits {_op(k, key, v)}" for k, key, v in ops]
    for action in path:
        lines.append(describe(sim, action))
        try:
            apply(sim, action)
        except Exception:  # the failure itself; the steps so far are the story
            break
    return lines


def _op(kind: int, key: str, value: str) -> str:
    return f"Put({key},{value})" if kind == PUT else f"Get({key})"
