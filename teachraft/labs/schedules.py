"""Schedules: what happens to a simulated cluster, as a short list of steps a student reads.

A ``Schedule`` is a seed (which message goes next, which is lost or
duplicated) plus a few *steps*: client ops and faults at given points of the
run (crash the leader, restart it, cut the leader from the coord, hold a slow
link, heal). ``random_schedule`` draws one from a seed; ``run_schedule`` plays
it on a ``LabSim`` under the invariant ``Monitor``, heals everything at the
end and checks that the cluster finishes its work (termination) and that the
client history is linearizable; ``shrink`` removes steps, servers, clients and
noise while the run still fails, so a student reads the smallest failing story.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from teachraft.check import check as check_history
from teachraft.core.log import GET, PUT
from teachraft.core.server import server_name
from teachraft.labs.invariants import InvariantBroken, Monitor, Violation
from teachraft.labs.world import HandlerFailure, LabSim, time_limit

HANDLERS = "Handlers run without error"
LINEARIZABLE = "Linearizability"
TERMINATION = "Termination"

TICK_EVERY = 50
START_STEPS = 30_000
SETTLE_TICKS = 120
"""After the heal, ticks within which every waiting op must finish and the logs converge."""


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happens ``at`` a number of delivered messages into the run."""

    at: int
    kind: str
    """put, get, crash, restart, isolate, partition, hold or heal."""
    args: tuple[Any, ...] = ()

    def describe(self) -> str:
        a = self.args
        if self.kind == "put":
            return f"client {a[0]} puts {a[1]}={a[2]}"
        if self.kind == "get":
            return f"client {a[0]} gets {a[1]}"
        if self.kind == "crash":
            return "the leader crashes" if a[0] == "leader" else f"server{a[0]} crashes"
        if self.kind == "crash_uncommitted":
            return "the leader crashes once a follower holds an entry it has not committed"
        if self.kind == "restart":
            return "every crashed server restarts" if a[0] == "all" else f"server{a[0]} restarts"
        if self.kind == "isolate":
            return "the leader is cut from the coord (not from the other servers)"
        if self.kind == "partition":
            return "the leader is cut off with the coord on the other side"
        if self.kind == "hold":
            return "messages from the leader to one follower are held back (a slow link)"
        return "every link heals"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A whole simulated run: the seed, the configuration and the steps."""

    seed: int
    servers: int = 3
    clients: int = 1
    drop: float = 0.0
    duplicate: float = 0.0
    max_batch: int = 0
    steps: tuple[Step, ...] = ()
    election: str = "coord"
    """``raft``: the servers elect their leaders (lab 6); no PreVote, no leader lease."""
    variant: str = ""
    """``apply_alone``: retries are appended again even while pending, so that the
    state machine's own duplicate check (lab 3's ``apply_entry``) is tested alone."""

    @property
    def ops(self) -> int:
        return sum(1 for s in self.steps if s.kind in ("put", "get"))

    @property
    def faults(self) -> int:
        return len(self.steps) - self.ops

    def describe(self) -> list[str]:
        """The schedule as short lines: the configuration, then one line per step."""
        noise = []
        if self.drop:
            noise.append(f"{self.drop:.0%} of messages lost")
        if self.duplicate:
            noise.append(f"{self.duplicate:.0%} duplicated")
        if self.max_batch == 1:
            noise.append("one entry per AppendEntries")
        if self.variant == "apply_alone":
            noise.append("the leader appends every retry again, so apply_entry must dedup")
        head = f"{self.servers} servers, {self.clients} client(s), seed {self.seed}"
        if self.election == "raft":
            head += ", raft elections"
        lines = [head + (f" ({', '.join(noise)})" if noise else "")]
        for s in self.steps:
            text = s.describe()
            if self.election == "raft" and s.kind == "isolate":
                text = "the leader is cut from the other servers (not from the clients)"
            lines.append(f"after {s.at} messages: {text}")
        lines.append("then every fault heals and the cluster must finish")
        return lines


@dataclass
class RunResult:
    """What one schedule did: the first failure (if any) and what was checked."""

    schedule: Schedule
    failure: str = ""
    """The check that failed first (an invariant, Linearizability, Termination, Handlers)."""
    sentence: str = ""
    detail: str = ""
    step: int = 0
    checked: list[str] = field(default_factory=list)
    happened: list[str] = field(default_factory=list)
    """The steps as they resolved in this run (``the leader`` named)."""
    sim: Any = None
    endless: bool = False
    """The run was stopped: a handler was still running after ``world.RUN_SECONDS``."""

    @property
    def ok(self) -> bool:
        return not self.failure


# ------------------------------------------------------------------ drawing
def random_schedule(seed: int, lab: int = 0, servers: int = 0) -> Schedule:
    """A schedule drawn from ``seed``, weighted toward the faults that matter for ``lab``;
    ``servers`` 0 draws 3 servers, or 5 for about one schedule in seven."""
    rng = random.Random(seed * 7919 + lab)
    clients = rng.choice((1, 1, 2))
    steps: list[Step] = []
    at = 0
    n_ops = rng.randint(2, 5)
    values = iter(range(1, 100))
    for _ in range(n_ops):
        at += rng.randint(0, 25)
        client = str(rng.randint(1, clients))
        key = rng.choice(("x", "y")) if lab != 3 else "x"
        if rng.random() < 0.55:
            steps.append(Step(at, "put", (client, key, f"v{next(values)}")))
        else:
            steps.append(Step(at, "get", (client, key)))
    fault_at = rng.randint(2, max(3, at + 10))
    kinds = ["crash", "crash", "uncommitted", "isolate", "partition", "hold", "none"]
    if lab == 4:
        kinds = ["isolate", "isolate", "isolate", "crash", "partition"]
    elif lab == 2:
        kinds = ["crash", "uncommitted", "uncommitted", "isolate", "hold"]
    kind = rng.choice(kinds)
    if kind == "uncommitted":
        # One op, so that the next leader's only work is the entry it inherits.
        first = steps[0]
        steps = [Step(first.at, first.kind, ("1", *first.args[1:]))]
        clients = 1
        fault_at = first.at
        steps.append(Step(fault_at, "crash_uncommitted", ()))
        steps.append(Step(fault_at + rng.randint(200, 600), "restart", ("all",)))
    elif kind == "crash":
        steps.append(Step(fault_at, "crash", ("leader",)))
        if rng.random() < 0.7:
            steps.append(Step(fault_at + rng.randint(20, 300), "restart", ("all",)))
        if rng.random() < 0.4:
            steps.append(Step(fault_at + rng.randint(300, 600), "crash", ("leader",)))
            steps.append(Step(fault_at + rng.randint(600, 900), "restart", ("all",)))
    elif kind == "isolate":
        if rng.random() < 0.6:
            steps.append(Step(max(0, fault_at - 1), "hold", ()))
        steps.append(Step(fault_at, "isolate", ()))
        for i in range(rng.randint(1, 3)):
            steps.append(Step(fault_at + 5 + i * 7, "put", ("1", "x", f"v{next(values)}")))
        steps.append(Step(fault_at + rng.randint(100, 500), "heal", ()))
    elif kind == "partition":
        steps.append(Step(fault_at, "partition", ()))
        steps.append(Step(fault_at + rng.randint(50, 500), "heal", ()))
    elif kind == "hold":
        steps.append(Step(fault_at, "hold", ()))
        steps.append(Step(fault_at + rng.randint(20, 200), "crash", ("leader",)))
        steps.append(Step(fault_at + rng.randint(200, 400), "restart", ("all",)))
    drop = rng.choice((0.05, 0.1, 0.2) if lab == 3 else (0.0, 0.0, 0.05, 0.15))
    duplicate = rng.choice((0.0, 0.0, 0.05))
    max_batch = 1 if rng.random() < (0.6 if lab == 2 else 0.3) else 0
    variant = "apply_alone" if lab == 3 and rng.random() < 0.5 else ""
    steps.sort(key=lambda s: s.at)
    election = "raft" if lab == 6 else "coord"
    servers = servers or (5 if rng.random() < 0.15 else 3)
    return Schedule(
        seed, servers, clients, drop, duplicate, max_batch, tuple(steps), election, variant
    )


def classes_for(schedule: Schedule, server_class: Any, coord_class: Any) -> tuple[Any, Any]:
    """The classes a schedule runs: for ``apply_alone``, the server appends every retry."""
    if schedule.variant == "apply_alone" and _is_lab_server(server_class):
        server_class = type(server_class.__name__, (server_class,), {"client_request": _retries})
    return server_class, coord_class


def _is_lab_server(cls: Any) -> bool:
    from teachraft.labs.api import LabServer

    return isinstance(cls, type) and issubclass(cls, LabServer)


def _retries(self: Any, req: Any, responder: Any) -> None:
    """A leader that answers from the cache but appends a retry still pending in the log."""
    hit, value = self.kv.cached(req.client_id, req.op_id)
    if hit:
        self.answer(req, responder, ok=True, value=value)
        return
    entry = self.append_entry(req.kind, req.key, req.value, req)
    self.wait_for(entry.index, req, responder)


# ------------------------------------------------------------------ running
def run_schedule(
    schedule: Schedule,
    server_class: type | None = None,
    coord_class: type | None = None,
    *,
    tracer_factory: Callable[[str], Any] | None = None,
    linearizability: bool = True,
) -> RunResult:
    """Play ``schedule`` with the given classes; never raises for what the classes do."""
    result = RunResult(schedule)
    monitor = Monitor()
    server_class, coord_class = classes_for(schedule, server_class, coord_class)
    kwargs: dict[str, Any] = {}
    if tracer_factory is not None:
        kwargs["tracer_factory"] = tracer_factory
    try:
        sim = LabSim(
            servers=schedule.servers,
            clients=schedule.clients,
            seed=schedule.seed,
            server_class=server_class,
            coord_class=coord_class,
            max_batch=schedule.max_batch,
            lost_msgs_thresh=2,
            election=schedule.election,
            pre_vote=False,
            check_quorum=False,
            **kwargs,
        )
        result.sim = sim
        with time_limit():
            _play(sim, schedule, monitor, result)
        result.checked = ["invariants", TERMINATION]
        if linearizability:
            verdict = check_history(sim.history(), "kv", timeout=5.0)
            result.checked.append(LINEARIZABLE)
            if verdict.verdict == "not linearizable":
                result.failure = LINEARIZABLE
                result.sentence = _first_line(verdict.explain())
                result.detail = verdict.explain()
    except HandlerFailure as exc:
        result.failure, result.sentence, result.detail = HANDLERS, exc.sentence, exc.detail
        result.step = getattr(result.sim, "steps", 0)
        result.endless = exc.endless
    except InvariantBroken as exc:
        v: Violation = exc.violation
        result.failure, result.sentence, result.step = v.invariant, v.sentence, v.step
    except _Stuck as exc:
        result.failure, result.sentence = TERMINATION, str(exc)
        result.step = getattr(result.sim, "steps", 0)
    except Exception as exc:  # the machines' state itself is broken (not an Entry, ...)
        result.failure = HANDLERS
        result.sentence = broken_state(exc)
        result.detail = "".join(traceback.format_exception(exc)[-3:])
        result.step = getattr(result.sim, "steps", 0)
    return result


def broken_state(exc: BaseException) -> str:
    """One sentence for state the checks cannot read (a handler stored garbage)."""
    return (
        f"the servers' state could not be checked ({type(exc).__name__}: {exc}): a handler "
        "stored something that is not what Figure 2 keeps there (an Entry in the log, an "
        "int in commit_index)."
    )


class _Stuck(Exception):
    """The cluster did not finish its work after every fault healed."""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return text


def _play(sim: LabSim, schedule: Schedule, monitor: Monitor, result: RunResult) -> None:
    if not _drive(sim, sim.serving, START_STEPS):
        raise _Stuck(f"the cluster never started serving ({_state(sim)})")
    sim.on_step = monitor.check
    sim.drop, sim.duplicate = schedule.drop, schedule.duplicate
    base = sim.steps
    for step in schedule.steps:
        target = base + step.at

        def reached(target: int = target) -> bool:
            return sim.steps >= target

        _drive(sim, reached, (step.at + 1) * 40 + 2000)
        result.happened.append(_do(sim, step))
    _drive(sim, lambda: False, 300)
    _heal(sim)
    settle = SETTLE_TICKS * TICK_EVERY
    if not _drive(sim, lambda: sim.pending_ops() == 0, settle, SETTLE_TICKS):
        raise _Stuck(
            f"after every fault healed, {sim.pending_ops()} client op(s) still had no answer "
            f"after {SETTLE_TICKS} timer ticks ({_state(sim)})."
        )
    _probe(sim)
    if not _drive(sim, lambda: _converged(sim), settle, SETTLE_TICKS):
        raise _Stuck("after every fault healed, the servers' logs never converged: " + _logs(sim))
    monitor.check(sim, full=True)


def _do(sim: LabSim, step: Step) -> str:
    kind, args = step.kind, step.args
    leader = sim.leader()
    if kind in ("put", "get"):
        client = args[0]
        if client in sim.sessions and sim.sessions[client].waiting < 60:
            if kind == "put":
                sim.submit(client, PUT, args[1], args[2])
            else:
                sim.submit(client, GET, args[1])
        return step.describe()
    if kind == "crash":
        sid = leader if args[0] == "leader" else int(args[0])
        if sid and len(sim.down) < (len(sim.nodes) - 1) // 2:
            sim.crash(sid)
            return f"server{sid} crashes" + (" (the leader)" if sid == leader else "")
        return "no crash (no leader, or a majority must stay up)"
    if kind == "crash_uncommitted":
        return _crash_uncommitted(sim)
    if kind == "restart":
        down = sorted(sim.down) if args[0] == "all" else [int(args[0])]
        for sid in down:
            sim.restart(sid)
        return "restart " + (", ".join(server_name(s) for s in down) or "nothing")
    if kind == "isolate" and leader and sim.raft:
        others = [server_name(s) for s in sim.nodes if s != leader]
        sim.partition([server_name(leader)], others)
        return f"server{leader} (the leader) is cut from the other servers, not from clients"
    if kind == "isolate" and leader:
        sim.partition([server_name(leader)], ["coord"])
        return f"server{leader} (the leader) is cut from the coord, not from its followers"
    if kind == "partition" and leader:
        others = [server_name(s) for s in sim.nodes if s != leader]
        sim.partition([server_name(leader)], ["coord", *others, *sim.sessions])
        return f"server{leader} (the leader) is cut off from everyone"
    if kind == "hold" and leader:
        follower = max(s for s in sim.nodes if s != leader)
        sim.hold(server_name(leader), server_name(follower))
        return f"messages from server{leader} (the leader) to server{follower} are held back"
    if kind == "heal":
        sim.heal()
        return "every link heals"
    return f"nothing ({kind}: no leader)"


def _crash_uncommitted(sim: LabSim) -> str:
    """Wait (a bounded while) until a follower holds an entry the leader has not committed,
    then crash the leader: the next leader inherits an entry of an earlier term."""

    def ready() -> bool:
        if not sim.leader():
            return False
        leader = sim.nodes[sim.leader()]
        return any(
            s.log.last_index > leader.commit_index
            for i, s in sim.nodes.items()
            if i != leader.server_id and i not in sim.down
        )

    if not _drive(sim, ready, 3000):
        return "no crash (no entry was ever replicated and left uncommitted)"
    sid = sim.leader()
    sim.crash(sid)
    return f"server{sid} (the leader) crashes while a follower holds an entry it has not committed"


def _state(sim: LabSim) -> str:
    """Who leads, in a few words, for a termination failure."""
    leader = f"leader: server{sim.leader()}" if sim.leader() else "no leader"
    if sim.raft:
        terms = ", ".join(f"server{s.server_id} in term {s.current_term}" for s in sim.live())
        return f"{leader}; {terms}"
    return f"coord: {sim.coord.phase.value}, {leader}"


def _heal(sim: LabSim) -> None:
    sim.heal()
    sim.drop = sim.duplicate = 0.0
    for sid in sorted(sim.down):
        sim.restart(sid)


def _probe(sim: LabSim) -> None:
    """A fresh Put, then a Get of it, after the heal: both must succeed."""
    settle = SETTLE_TICKS * TICK_EVERY
    if not _drive(sim, sim.serving, settle, SETTLE_TICKS):
        raise _Stuck(f"after every fault healed, the cluster never served again ({_state(sim)}).")
    for kind, what in ((PUT, "Put(probe,done)"), (GET, "Get(probe)")):
        for _attempt in range(3):  # a stale no-quorum notice may still be on its way
            op_id = sim.submit("1", kind, "probe", "done" if kind == PUT else "")
            if not _drive(sim, lambda: sim.pending_ops() == 0, settle, SETTLE_TICKS):
                raise _Stuck(
                    f"after every fault healed, a new {what} got no answer within "
                    f"{SETTLE_TICKS} ticks ({_state(sim)})."
                )
            d = next(d for d in sim.delivered["1"] if d.op_id == op_id)
            if d.ok or not d.error.startswith("no quorum"):
                break
        if not d.ok:
            raise _Stuck(f"after every fault healed, a new {what} failed: {d.error}")
        if kind == GET and d.value != "done":
            raise _Stuck(
                f"after every fault healed, Get(probe) returned {d.value!r}, not the value "
                "just put."
            )


def _converged(sim: LabSim) -> bool:
    live = sim.live()
    first = live[0].log
    return all(s.log.same_as(first) and s.last_applied == s.log.last_index for s in live)


def _logs(sim: LabSim) -> str:
    parts = [
        f"server{s.server_id} holds {s.log.last_index} entries, applied {s.last_applied}"
        for s in sim.live()
    ]
    return "; ".join(parts) + "."


def _drive(
    sim: LabSim, done: Callable[[], bool], budget: int, max_ticks: int | None = None
) -> bool:
    """Deliver messages, ticking every TICK_EVERY steps (and whenever the network is
    empty), until ``done()``, ``budget`` iterations or ``max_ticks`` timer ticks."""
    last_tick = sim.ticks + (max_ticks if max_ticks is not None else budget)
    for n in range(budget):
        if done():
            return True
        if sim.ticks >= last_tick:
            break
        if n % TICK_EVERY == 0 or not sim.network:
            sim.tick()
        if not sim.step():
            sim.tick()
    return done()


# ------------------------------------------------------------------ shrinking
def shrink(failing: RunResult, run: Callable[[Schedule], RunResult], budget: int = 60) -> RunResult:
    """The smallest schedule found that still fails (fewer steps, servers, clients, noise)."""
    best = failing
    tries = 0

    def attempt(candidate: Schedule) -> bool:
        nonlocal best, tries
        if tries >= budget:
            return False
        tries += 1
        res = run(candidate)
        if not res.ok:
            best = res
            return True
        return False

    changed = True
    while changed and tries < budget:
        changed = False
        s = best.schedule
        for simpler in _simpler_configs(s):
            if attempt(simpler):
                changed = True
                break
        if changed:
            continue
        s = best.schedule
        for i in range(len(s.steps) - 1, -1, -1):
            steps = s.steps[:i] + s.steps[i + 1 :]
            if attempt(replace(s, steps=steps)):
                changed = True
                break
    return best


def _simpler_configs(s: Schedule) -> list[Schedule]:
    out = []
    if s.servers > 3:
        out.append(replace(s, servers=3))
    if s.clients > 1:
        steps = tuple(
            replace(st, args=("1", *st.args[1:])) if st.kind in ("put", "get") else st
            for st in s.steps
        )
        out.append(replace(s, clients=1, steps=steps))
    if s.drop:
        out.append(replace(s, drop=0.0))
    if s.duplicate:
        out.append(replace(s, duplicate=0.0))
    return out
