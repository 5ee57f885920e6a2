"""Faults on a live cluster: crash-restart from disk, pause, one-way cuts, drops, delays."""

from __future__ import annotations

import pytest

from teachraft.errors import ClusterError

pytestmark = pytest.mark.slow


def test_crash_restart_keeps_acknowledged_writes_and_catches_up(make_cluster, tmp_path) -> None:
    c = make_cluster(servers=3, persist=True, data_dir=tmp_path / "data")
    for i in range(10):
        c.put(f"k{i}", str(i))
    victim = c.leader()
    c.fail(victim)
    for i in range(10, 20):
        c.put(f"k{i}", str(i))
    c.restart(victim)
    c.put("after", "restart")
    c.wait_converged()
    assert c.kv(victim) == {**{f"k{i}": str(i) for i in range(20)}, "after": "restart"}
    assert c.status()["servers"][victim]["role"] == "follower"
    assert victim in c.status()["coord"]["view"]
    tags = {e.tag for e in c.events()}
    assert {"FaultInjected", "FaultHealed", "ServerRestart"} <= tags


def test_all_servers_restart_from_disk(make_cluster, tmp_path) -> None:
    c = make_cluster(servers=3, persist=True, data_dir=tmp_path / "data")
    c.put("a", "1")
    c.wait_converged()
    for sid in (2, 3):
        c.fail(sid)
        c.restart(sid)
    c.wait_converged()
    assert c.get("a") == "1"


def test_restart_without_storage_is_refused(make_cluster) -> None:
    c = make_cluster(servers=3)
    c.fail(2)
    with pytest.raises(ClusterError, match="persist=True"):
        c.restart(2)


def test_pause_keeps_sockets_and_resume_catches_up(make_cluster) -> None:
    c = make_cluster(servers=5)
    follower = next(i for i in range(1, 6) if i != c.leader())
    c.pause(follower)
    for i in range(5):
        c.put(f"p{i}", str(i))
    assert c.status()["servers"][follower]["role"] == "paused"
    c.resume(follower)
    c.wait_converged()
    assert c.kv(follower)["p4"] == "4"


def test_one_way_cut_drop_and_delay_keep_the_store_correct(make_cluster) -> None:
    c = make_cluster(servers=5)
    leader = c.leader()
    others = [i for i in range(1, 6) if i != leader]
    c.cut(leader, others[0], one_way=True)
    c.drop(leader, others[1], 0.5)
    c.delay(leader, others[2], 0.01, 0.01)
    for i in range(30):
        c.put("x", str(i))
        assert c.get("x") == str(i)
    links = c.links()
    assert links[(f"server{leader}", f"server{others[0]}")]["state"] == "one-way"
    c.heal()
    c.wait_converged()
    assert {e.tag for e in c.events()} >= {"FaultInjected", "FaultHealed"}
