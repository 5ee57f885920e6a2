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


def test_a_torn_tail_is_dropped_counted_and_caught_up(tmp_path) -> None:
    data = tmp_path / "data"
    with Cluster(servers=3, tracing=False, out_dir=tmp_path, data_dir=data) as cluster:
        for i in range(20):
            cluster.put(f"k{i}", f"val{i}")
        assert cluster.status()["problems"] == {}
        victim = next(sid for sid in cluster.servers if sid != cluster.leader())
        cluster.fail(victim)
        path = data / f"server{victim}.log"
        path.write_bytes(path.read_bytes()[:-5])  # a crash cut the last write short
        cluster.restart(victim)
        assert cluster.status()["problems"].get("torn tails") == 1
        assert str(path) in cluster.torn_tails[0]
        cluster.put("k20", "val20")
        cluster.wait_converged()
        assert [e.value for e in cluster.log(victim) if e.value][-21:] == [
            f"val{i}" for i in range(21)
        ]


def test_a_flipped_bit_in_a_committed_value_refuses_the_restart(tmp_path) -> None:
    from teachraft.runtime.storage import StorageCorrupt

    data = tmp_path / "data"
    with Cluster(servers=3, tracing=False, out_dir=tmp_path / "one", data_dir=data) as cluster:
        for i in range(20):
            cluster.put(f"k{i}", f"val{i}")
    path = data / "server2.log"
    raw = bytearray(path.read_bytes())
    at = raw.index(b"val5")
    raw[at] ^= 0x02  # "val5" becomes "tal5"
    path.write_bytes(bytes(raw))
    cluster = Cluster(servers=3, tracing=False, out_dir=tmp_path / "two", data_dir=data)
    with pytest.raises(StorageCorrupt) as info:
        cluster.start()
    cluster.close()
    assert str(path) in str(info.value) and "byte " in str(info.value)
