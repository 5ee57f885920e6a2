"""What a cluster looks like right now, read on its own loop in one hop.

``take_snapshot`` gathers everything a figure draws (every server's role,
term, indices and log, the coord's view, every link's counters and fault
state) in one pass on the cluster's thread, so that a panel refresh is one
round trip and the figures never see a half-updated cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from teachraft.cluster.deployment import Deployment
from teachraft.core.log import Entry
from teachraft.net.faults import FaultFilter
from teachraft.problems import collect as collect_problems


@dataclass(slots=True)
class ClusterSnapshot:
    """One consistent moment of a live cluster (plain data: safe to keep and compare).

    ``servers`` maps an id to its ``status()`` row plus ``"log"`` (its entries);
    ``links`` maps ``(src, dst)`` to sent/received/dropped counts and ``state``
    (``up``, ``cut``, ``one-way``, ``lossy``, ``slow``), for every pair that
    carried a frame or is under a fault.
    """

    servers: dict[int, dict[str, Any]]
    coord: dict[str, Any]
    leader: int
    term: int
    nodes: list[str]
    links: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)
    election: str = "coord"
    """``coord`` or ``raft`` (then ``coord`` is empty; see docs/elections.md)."""


def status(dep: Deployment) -> dict[str, Any]:
    """Per server: role, term, commit index, last applied, log length; the coord's view."""
    servers = {}
    raft = dep.spec.raft
    for sid, host in sorted(dep.servers.items()):
        s = host.core.status()
        if raft:
            _timer_ms(s, host.tick_interval)
        if host.stopped:
            s["role"] = "failed"
        elif host.paused:
            s["role"] = "paused"
        servers[sid] = s
    coord = dep.coord.core.status() if dep.coord else {}
    problems = collect_problems(
        [dep.coord, *dep.servers.values(), *dep.clients.values()],
        dep.tracing_server,
        dep.sinks,
        len(dep.torn_tails),
    )
    if dep.coord_down:
        coord["phase"] = "failed"
        problems["coord down"] = 1
    return {
        "servers": servers,
        "coord": coord,
        "leader": dep.leader() if raft else coord.get("leader", 0),
        "problems": problems,
        "election": dep.spec.election,
    }


def _timer_ms(row: dict[str, Any], tick: float) -> None:
    """Raft mode: the election timer in milliseconds too (slow motion included)."""
    ms = tick * 1000.0
    row["election_tick_ms"] = ms
    row["election_timeout_ms"] = row["election_timeout"] * ms
    row["election_elapsed_ms"] = row["election_elapsed"] * ms


def links(dep: Deployment, faults: FaultFilter) -> dict[tuple[str, str], dict[str, Any]]:
    """Per directed link: frames sent, received and dropped, and its fault state."""
    hosts: list[Any] = [dep.coord, *dep.servers.values(), *dep.clients.values()]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for host in hosts:
        if host is None:
            continue
        for node in host.nodes():
            for (src, dst), st in node.stats.items():
                row = out.setdefault((src, dst), {"sent": 0, "received": 0, "dropped": 0})
                row["sent"] += st.sent if src == host.name else 0
                row["received"] += st.received if dst == host.name else 0
                row["dropped"] += st.dropped if src == host.name else 0
    for (src, dst), row in out.items():
        row["state"] = faults.link_state(src, dst)
    return out


def take_snapshot(dep: Deployment, faults: FaultFilter) -> ClusterSnapshot:
    """Everything a figure needs, in one pass on the loop."""
    st = status(dep)
    servers = st["servers"]
    for sid, row in servers.items():
        row["log"] = dep.servers[sid].core.log.user_entries()
    rows = links(dep, faults)
    nodes = dep.node_names()
    if faults.active:  # a cut before any traffic has no counters yet, but it shows
        names = [n for n in nodes if n != "tracing"]
        for a in names:
            for b in names:
                if a != b and (a, b) not in rows:
                    state = faults.link_state(a, b)
                    if state != "up":
                        rows[(a, b)] = {"sent": 0, "received": 0, "dropped": 0, "state": state}
    coord = st["coord"]
    term = coord.get("term", 0) or 0
    if dep.spec.raft:
        term = max((row["term"] for row in servers.values()), default=0)
    return ClusterSnapshot(
        servers=servers,
        coord=coord,
        leader=st["leader"] or 0,
        term=term,
        nodes=nodes,
        links=rows,
        problems=dict(st["problems"]),
        election=dep.spec.election,
    )


def converged(dep: Deployment) -> bool:
    """Every live server holds the same log and applied all of it."""
    live = [h.core for h in dep.servers.values() if not h.stopped and not h.paused]
    if not live:
        return True
    first = live[0]
    return all(c.log.same_as(first.log) and c.last_applied == c.log.last_index for c in live)


def server_log(dep: Deployment, server_id: int) -> list[Entry]:
    return list(dep.server(server_id).core.log.user_entries())
