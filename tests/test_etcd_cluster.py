"""A real etcd cluster under teachraft's API: start and close, ops, status, history, faults.

These tests run Debian's etcd-server (``bash .ci/etcd-deps`` installs it) and
skip, saying so, only where no etcd binary exists.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from teachraft.errors import ClusterError, KVError
from teachraft.etcd import INSTALL_HINT, EtcdCluster, EtcdNotInstalled, etcd_available
from teachraft.etcd.members import live_pids

needs_etcd = pytest.mark.skipif(
    not etcd_available(), reason=f"{INSTALL_HINT} (bash .ci/etcd-deps does it)"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(3, out_dir=tmp_path / "etcd", seed=7)
    try:
        yield cluster.start()
    finally:
        pids = list(cluster.pids().values())
        cluster.close()
        assert not [p for p in pids if _alive(p)], "etcd members outlived close()"


def _retry(fn, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    """Call ``fn`` until it stops raising KVError (an election takes a second or two)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except KVError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _wait(pred, timeout: float = 15.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(EtcdNotInstalled, match="apt-get install etcd-server"):
        EtcdCluster(3)


@needs_etcd
def test_start_and_close_leave_no_process(tmp_path: Path) -> None:
    cluster = EtcdCluster(3, out_dir=tmp_path / "etcd").start()
    pids = cluster.pids()
    assert len(pids) == 3 and all(_alive(p) for p in pids.values())
    assert set(pids.values()) <= live_pids()
    cluster.close()
    assert not [p for p in pids.values() if _alive(p)]
    assert not set(pids.values()) & live_pids()


@needs_etcd
def test_a_member_that_cannot_start_gives_its_log_and_leaves_no_process(tmp_path: Path) -> None:
    # etcd refuses an election timeout under 5 heartbeats; the error carries its log.
    cluster = EtcdCluster(3, out_dir=tmp_path / "etcd", heartbeat_ms=500, election_ms=600)
    with pytest.raises(ClusterError, match="exited with code"):
        cluster.start()
    assert cluster.closed
    assert not [p for m in cluster.members.values() if (p := m.pid) and _alive(p)]


@needs_etcd
def test_put_get_cas_sync_and_async_are_recorded(etcd: EtcdCluster) -> None:
    etcd.put("k", "v1")
    assert etcd.get("k") == "v1"
    assert etcd.cas("k", "v1", "v2") is True
    assert etcd.cas("k", "v1", "v3") is False
    assert etcd.cas("new", None, "x") is True
    assert etcd.get("missing") is None

    async def twins() -> str | None:
        await etcd.aput("a", "1", client=2)
        assert await etcd.acas("a", "1", "2", client=2)
        return await etcd.aget("a", client=2)

    assert asyncio.run(twins()) == "2"
    ops = etcd.history().ops
    assert [(o.f, o.outcome) for o in ops[:4]] == [
        ("put", "ok"),
        ("get", "ok"),
        ("cas", "ok"),
        ("cas", "fail"),
    ]
    assert ops[1].output == "v1" and ops[2].value == ["v1", "v2"]
    assert all(o.call <= o.ret for o in ops)
    assert {o.client for o in ops} == {"client1", "client2"}


@needs_etcd
def test_status_comes_from_etcd(etcd: EtcdCluster) -> None:
    etcd.put("k", "v")
    status = etcd.status()
    leader = status["leader"]
    assert leader in (1, 2, 3) and status["term"] >= 2
    roles = sorted(s["role"] for s in status["servers"].values())
    assert roles == ["follower", "follower", "leader"]
    assert all(s["leader"] == leader for s in status["servers"].values())
    assert all(s["commit_index"] > 0 and s["version"] for s in status["servers"].values())


@needs_etcd
def test_fail_leader_then_a_new_leader_serves_and_restart_catches_up(etcd: EtcdCluster) -> None:
    etcd.put("k", "before")
    old = etcd.fail_leader()
    assert etcd.status()["servers"][old]["role"] == "failed"
    new = etcd.wait_for_leader(other_than=old)
    assert new != old
    _retry(lambda: etcd.put_at(new, "k", "after"))
    etcd.restart(old)
    _wait(lambda: _quiet(etcd.get_from, old, "k") == "after", what="the restarted member")
    assert [p for p in etcd.fault_periods() if p[2] == f"server{old} failed"]


def _quiet(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except KVError:
        return None


@needs_etcd
def test_pause_times_out_as_unknown_and_resume_serves(etcd: EtcdCluster) -> None:
    leader = etcd.leader()
    follower = next(s for s in (1, 2, 3) if s != leader)
    etcd.pause(follower)
    assert etcd.status()["servers"][follower]["role"] == "paused"
    with pytest.raises(KVError):
        etcd.put_at(follower, "p", "x")  # its member is stopped: no answer
    op = etcd.history().ops[-1]
    assert op.outcome == "unknown" and math.isinf(op.ret)
    etcd.resume(follower)
    _wait(lambda: etcd.status()["servers"][follower]["role"] == "follower", what="resume")
    _retry(lambda: etcd.put_at(leader, "p", "y"))
    _wait(lambda: _quiet(etcd.get_from, follower, "p") == "y", what="the resumed member")


@needs_etcd
def test_partition_shows_a_stale_serializable_read(etcd: EtcdCluster) -> None:
    etcd.put("s", "old")
    old = etcd.leader()
    _wait(lambda: all(_quiet(etcd.get_from, s, "s") == "old" for s in (1, 2, 3)), what="copies")
    etcd.partition([old], [s for s in (1, 2, 3) if s != old])
    new = etcd.wait_for_leader(other_than=old)
    _retry(lambda: etcd.put_at(new, "s", "new"))
    assert etcd.get_from(new, "s", serializable=False) == "new"
    assert etcd.get_from(old, "s") == "old"  # serializable: the minority's own stale copy
    with pytest.raises(KVError):
        etcd.get_from(old, "s", serializable=False)  # linearizable: needs a quorum
    etcd.heal()
    _wait(lambda: _quiet(etcd.get_from, old, "s") == "new", what="the healed member")


@needs_etcd
def test_cut_isolates_a_member_until_heal(etcd: EtcdCluster) -> None:
    leader = etcd.leader()
    lone = next(s for s in (1, 2, 3) if s != leader)
    for other in (1, 2, 3):
        if other != lone:
            etcd.cut(lone, other)
    etcd.put_at(leader, "c", "1")
    time.sleep(0.5)
    assert etcd.get_from(lone, "c") is None
    links = etcd.links()
    assert links[(f"server{lone}", f"server{leader}")]["state"] == "cut"
    etcd.heal()
    _wait(lambda: _quiet(etcd.get_from, lone, "c") == "1", what="the cut member")


@needs_etcd
def test_drop_loses_peer_traffic_and_the_cluster_still_serves(etcd: EtcdCluster) -> None:
    leader = etcd.leader()
    follower = next(s for s in (1, 2, 3) if s != leader)
    etcd.drop(leader, follower, 1.0)
    for n in range(5):
        _retry(lambda n=n: etcd.put_at(leader, "d", str(n)))
    assert etcd.links()[(f"server{leader}", f"server{follower}")]["dropped"] > 0
    etcd.heal()
    _wait(lambda: _quiet(etcd.get_from, follower, "d") == "4", what="the follower")


@needs_etcd
def test_delay_slows_every_commit(etcd: EtcdCluster) -> None:
    etcd.put("w", "0")
    for a in (1, 2, 3):
        for b in (1, 2, 3):
            if a != b:
                etcd.delay(a, b, 0.15)
    start = time.monotonic()
    _retry(lambda: etcd.put("w", "1"))
    assert time.monotonic() - start >= 0.15  # a commit needs a follower's delayed answer
    etcd.heal()


@needs_etcd
def test_the_figures_draw_an_etcd_cluster(etcd: EtcdCluster) -> None:
    from teachraft.check import check
    from teachraft.viz import spacetime_figure, topology_figure
    from teachraft.viz.history import history_figure

    etcd.put("f", "1")
    leader = etcd.leader()
    etcd.partition([leader], [s for s in (1, 2, 3) if s != leader])
    fig = topology_figure(etcd)
    assert fig.layout.meta["leader"] == leader and fig.layout.meta["servers"] == 3
    assert "cut link" in {t.name for t in fig.data if t.x}
    assert "coord" not in str([t.text for t in fig.data])
    with pytest.raises(TypeError, match="not traced"):
        spacetime_figure(etcd)
    etcd.heal()
    history = etcd.history()
    fig = history_figure(history, check(history, "kv"), etcd.fault_periods())
    assert "linearizable" in fig.layout.title.text


def test_only_odd_sizes_are_accepted() -> None:
    if not etcd_available():
        pytest.skip(INSTALL_HINT)
    with pytest.raises(ClusterError, match="odd"):
        EtcdCluster(4)


@needs_etcd
def test_without_proxies_network_faults_are_refused(tmp_path: Path) -> None:
    with EtcdCluster(3, out_dir=tmp_path / "etcd", proxies=False) as cluster:
        cluster.put("k", "v")
        assert not cluster.proxies
        with pytest.raises(ClusterError, match="proxies"):
            cluster.partition([1], [2, 3])
        with pytest.raises(ClusterError, match="proxies"):
            cluster.cut(1, 2)
        old = cluster.fail_leader()  # process faults still work
        assert cluster.wait_for_leader(other_than=old) != old
