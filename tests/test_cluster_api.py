"""The Cluster's public contract: closed means closed, every fault has a twin, ``via=``.

* Every method of a closed cluster raises ``ClusterError`` with one sentence a
  student can act on, and leaves no "coroutine was never awaited" warning.
* Every fault has an async twin that works from another event loop.
* ``via=`` sends an op straight to one server: through a follower it is refused,
  and through an old leader that the coord fenced it is never acknowledged.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings
from typing import Any

import pytest

from teachraft import Cluster, ClusterError, KVError
from teachraft.cluster import CLOSED, ClusterLike

CORO = object()
"""Stands for a fresh coroutine argument, made only when the call is tried."""
CLOSED_MATCH = "this cluster is closed; start a new one with Cluster\\(\\.\\.\\.\\)"

# Arguments for every public method of Cluster; the test fails when a new one has no row.
SYNC_CALLS: dict[str, tuple[Any, ...]] = {
    "start": (),
    "client": (1,),
    "put": ("k", "v"),
    "get": ("k",),
    "run": (CORO,),
    "submit": (CORO,),
    "wait_until": (lambda: True,),
    "call_in_loop": (lambda: 1,),
    "set_slow_motion": (2.0,),
    "fail": (1,),
    "restart": (1,),
    "pause": (1,),
    "resume": (1,),
    "fail_leader": (),
    "transfer_leader": (2,),
    "timeout_now": (2,),
    "partition": ([1], [2, 3]),
    "cut": (1, 2),
    "drop": (1, 2, 0.5),
    "delay": (1, 2, 0.01),
    "heal": (),
    "fault_periods": (),
    "leader": (),
    "status": (),
    "snapshot": (),
    "node_names": (),
    "links": (),
    "log": (1,),
    "listing": (1,),
    "kv": (1,),
    "wait_converged": (),
    "events": (),
    "flush_traces": (),
    "export_shiviz": ("run.log",),
    "history": (),
}
ASYNC_CALLS: dict[str, tuple[Any, ...]] = {
    "astart": (),
    "aput": ("k", "v"),
    "aget": ("k",),
    "await_until": (lambda: True,),
    "acall_in_loop": (lambda: 1,),
    "aset_slow_motion": (2.0,),
    "afail": (1,),
    "arestart": (1,),
    "apause": (1,),
    "aresume": (1,),
    "afail_leader": (),
    "atransfer_leader": (2,),
    "atimeout_now": (2,),
    "apartition": ([1], [2, 3]),
    "acut": (1, 2),
    "adrop": (1, 2, 0.5),
    "adelay": (1, 2, 0.01),
    "aheal": (),
    "aleader": (),
    "astatus": (),
    "asnapshot": (),
}
NOT_AFTER_CLOSE = {"close", "aclose"}  # closing twice is harmless


def _public_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(Cluster)
        if not name.startswith("_") and callable(member) and name not in NOT_AFTER_CLOSE
    }


def test_every_public_method_has_a_row_in_the_closed_tables() -> None:
    assert _public_methods() == set(SYNC_CALLS) | set(ASYNC_CALLS)


def test_every_method_of_a_closed_cluster_says_so_and_leaves_no_warning() -> None:
    c = Cluster(servers=3, tracing=True, persist=True)
    assert isinstance(c, ClusterLike), "widgets and figures type the cluster as ClusterLike"
    c.start()
    c.close()
    c.close()  # harmless
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a never-awaited coroutine would fail the test
        for name, args in SYNC_CALLS.items():
            fresh = tuple(asyncio.sleep(0) if a is CORO else a for a in args)
            with pytest.raises(ClusterError, match=CLOSED_MATCH):
                getattr(c, name)(*fresh)

        async def twins() -> None:
            for name, args in ASYNC_CALLS.items():
                with pytest.raises(ClusterError, match=CLOSED_MATCH):
                    await getattr(c, name)(*args)
            await c.aclose()  # harmless

        asyncio.run(twins())
        gc.collect()
    assert c.closed and not c.running
    assert CLOSED == "this cluster is closed; start a new one with Cluster(...)"


def test_every_fault_has_an_async_twin_that_works_from_another_loop(make_cluster) -> None:
    c = make_cluster(servers=5, persist=True, fsync=False)

    async def lesson() -> None:
        await c.aput("a", "1")
        await c.apause(2)
        await c.aresume(2)
        await c.acut("coord", 3)
        await c.adrop(4, 5, 0.5)
        await c.adelay(4, 5, 0.01)
        await c.apartition([1, 2, 3, "coord", "client1"], [4, 5])
        await c.aheal()
        await c.afail(5)
        await c.arestart(5)
        old = await c.afail_leader()
        await c.await_until(lambda: c.deployment.leader() not in (0, old), 10, "no new leader")
        await c.aput("a", "2")
        assert await c.aget("a") == "2"

    asyncio.run(lesson())
    labels = [label for _, _, label in c.fault_periods()]
    assert "server2 paused" in labels and "server5 failed" in labels
    assert any(label.startswith("partition") for label in labels)
    snap = c.snapshot()
    assert snap.leader not in (0, 1) and snap.servers[1]["role"] == "failed"


def test_a_sync_method_on_the_clusters_own_loop_names_its_twin(make_cluster) -> None:
    c = make_cluster(servers=3)

    async def on_the_loop() -> str:
        try:
            c.heal()
        except ClusterError as exc:
            return str(exc)
        return ""

    assert "await cluster.aheal(...)" in c.run(on_the_loop())


def test_via_a_follower_is_refused_and_via_the_leader_works(make_cluster) -> None:
    c = make_cluster(servers=3)
    leader = c.leader()
    follower = next(s for s in (1, 2, 3) if s != leader)
    c.put("k", "1", via=leader)
    assert c.get("k", via=leader) == "1"
    assert c.run(c.client(1).get("k", via=leader)) == "1"
    with pytest.raises(KVError, match="not leader"):
        c.put("k", "2", via=follower)
    assert c.get("k") == "1"
    with pytest.raises(ClusterError, match="no server 9"):
        c.put("k", "3", via=9)


def test_a_put_through_the_old_fenced_leader_is_never_acknowledged(make_cluster) -> None:
    c = make_cluster(servers=5)
    c.put("x", "before")
    old = c.leader()
    c.cut("coord", old)  # the coord fences the others and picks a new leader
    c.wait_until(lambda: c.deployment.leader() not in (0, old), 10, "no new leader")
    with pytest.raises(KVError):
        c.put("x", "through-the-old-leader", via=old)
    c.heal()
    c.put("y", "after")
    c.wait_converged()
    assert c.get("x") == "before"
    assert all(e.value != "through-the-old-leader" for e in c.log(c.leader()))
