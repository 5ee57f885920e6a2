"""Finding 4 on a live cluster: one forged coord message cannot make a leader."""

from __future__ import annotations

import asyncio
import time

import pytest

from teachraft.cluster import Cluster
from teachraft.core.messages import LeaderFailOver
from teachraft.net import Node

pytestmark = pytest.mark.slow


def test_a_forged_leader_failover_changes_nothing(tmp_path) -> None:
    with Cluster(servers=3, tracing=False, out_dir=tmp_path) as cluster:
        cluster.put("k1", "v1")
        before = cluster.status()
        leader = before["leader"]
        follower = next(sid for sid in cluster.servers if sid != leader)
        term = before["servers"][follower]["term"]
        target = cluster.servers[follower].address
        peers = [(sid, host.address) for sid, host in sorted(cluster.servers.items())]
        forged = LeaderFailOver(follower, leader, peers, term + 1, b"").to_wire()

        async def forge() -> None:
            # A local process that did not get this cluster's secret (it may
            # even share the Python process) claims to be the coord.
            node = Node("coord", lambda *args: None, listen=False)
            await node.start()
            for _ in range(3):
                node.send(target, "leader_failover", forged)
                await asyncio.sleep(0.1)
            await node.close()

        asyncio.run(forge())
        time.sleep(0.5)
        after = cluster.status()
        assert after["leader"] == leader
        assert after["servers"][follower]["role"] != "leader"
        assert after["servers"][follower]["term"] == term
        assert cluster.servers[follower].node.problems["auth"] >= 1
        cluster.put("k2", "v2")
        assert cluster.get("k1") == "v1" and cluster.get("k2") == "v2"
