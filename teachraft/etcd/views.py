"""An ``EtcdCluster`` as the topology figure sees it: a :class:`~teachraft.viz.state.Snapshot`.

Roles, terms, leader and indices come from etcd's status API; the links are
the peer links between members, with the chunks the proxies forwarded and
lost and the state the fault filter gives them. There is no coord (the members
elect their leader) and no log view (etcd's log is not exposed over its API).
"""

from __future__ import annotations

from typing import Any

from teachraft.viz.state import LinkView, ServerView, Snapshot, mark_partitioned
from teachraft.viz.style import FAILED, FOLLOWER, LEADER, PAUSED

ROLES = {"leader": LEADER, "follower": FOLLOWER, "failed": FAILED, "paused": PAUSED}


def snapshot_of_etcd(cluster: Any) -> Snapshot:
    """Take a live snapshot of an ``EtcdCluster`` through its public API."""
    status = cluster.status()
    servers = {
        sid: ServerView(
            sid=sid,
            role=ROLES.get(st["role"], FOLLOWER),
            term=st["term"],
            leader=st["leader"],
            commit_index=st["commit_index"],
            last_applied=st["last_applied"],
        )
        for sid, st in status["servers"].items()
    }
    links = {
        pair: LinkView(row["state"], row["sent"], row["received"], row["dropped"])
        for pair, row in cluster.links().items()
    }
    snap = Snapshot(
        servers=servers,
        nodes=list(cluster.node_names()),
        links=links,
        leader=status["leader"],
        term=status["term"],
        source="live",
        name="etcd",
    )
    mark_partitioned(snap)
    return snap
