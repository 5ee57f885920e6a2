"""Live in-process clusters over real TCP on loopback: the behaviours KVRaft promises.

Every cluster made through the ``make_cluster`` fixture is traced, and its
ShiViz log is validated when the test ends (``conftest.py``), so every test here
also checks that tracing stays exact under failures.
"""

from __future__ import annotations

import time

import pytest

from teachraft.core.log import NOOP
from teachraft.errors import NoQuorumError

pytestmark = pytest.mark.slow


def _pairs(cluster, start: int, stop: int) -> None:
    for i in range(start, stop):
        cluster.put(f"k{i}", f"val{i}")
        assert cluster.get(f"k{i}") == f"val{i}"


def _ops(entries) -> list[tuple[str, int]]:
    return [(e.client_id, e.op_id) for e in entries if e.kind != NOOP]


def test_normal_operation_20_pairs_and_equal_logs(make_cluster) -> None:
    c = make_cluster(servers=5)
    _pairs(c, 0, 20)
    c.wait_converged()
    logs = [c.log(i) for i in range(1, 6)]
    assert all(log == logs[0] for log in logs)
    assert [e.describe() for e in logs[0][:2]] == ["Put(k0,val0)", "Get(k0)"]
    assert len(logs[0]) == 40


def test_leader_fails_mid_workload(make_cluster) -> None:
    c = make_cluster(servers=5)
    _pairs(c, 0, 14)
    old = c.fail_leader()
    _pairs(c, 14, 20)
    c.wait_converged()
    survivors = [i for i in range(1, 6) if i != old]
    logs = [c.log(i) for i in survivors]
    assert all(log == logs[0] for log in logs)
    entries = logs[0]
    ops = _ops(entries)
    assert len(ops) == len(set(ops)) == 40, "an op is missing or in the log twice"
    for sid in survivors:
        assert c.kv(sid) == {f"k{i}": f"val{i}" for i in range(20)}
    noops = [e for e in entries if e.kind == NOOP]
    assert len(noops) == 1 and noops[0].term == 2
    before = entries[noops[0].index - 2]
    assert (before.term, before.index, before.describe()) == (1, 28, "Get(k13)")
    assert noops[0].index == 29
    assert all(e.term == 1 for e in entries[: noops[0].index - 1])
    assert all(e.term == 2 for e in entries[noops[0].index - 1 :])


def test_follower_fails_service_continues(make_cluster) -> None:
    c = make_cluster(servers=3)
    _pairs(c, 0, 3)
    follower = next(i for i in (1, 2, 3) if i != c.leader())
    c.fail(follower)
    _pairs(c, 3, 10)
    assert c.status()["servers"][follower]["role"] == "failed"


def test_duplicate_after_leader_fails_before_replying(make_cluster) -> None:
    """The leader commits an op, its reply is lost, it dies; the retry hits the cache."""
    c = make_cluster(servers=5)
    c.put("a", "1")
    leader = c.leader()
    c.cut(leader, "client1", one_way=True)  # the leader's replies never reach the client
    fut = c.submit(c.client(1).put("a", "2"))
    c.wait_until(
        lambda: all(h.core.kv.data.get("a") == "2" for h in c.servers.values()),
        10,
        "the put was not applied everywhere",
    )
    c.fail(leader)
    fut.result(timeout=15)
    c.heal()
    new = c.leader()
    assert new != leader
    c.wait_converged()
    entries = c.log(new)
    assert _ops(entries).count(("1", 2)) == 1
    assert c.call_in_loop(lambda: c.servers[new].core.duplicates_answered) >= 1
    assert c.get("a") == "2"


def test_partition_from_coord_picks_most_up_to_date_and_heals(make_cluster) -> None:
    """The original's partition test, with logs made to differ by a real partition."""
    c = make_cluster(servers=5)
    _pairs(c, 0, 2)
    assert c.leader() == 1
    c.partition([1, 4, 5], [2, 3])  # 2 and 3 fall behind; the coord and client reach all
    for i in range(5):
        c.put(f"p{i}", str(i))
    c.cut("coord", 1)
    c.cut("coord", 5)
    c.wait_until(lambda: c.deployment.leader() not in (0, 1), 10, "no new leader")
    assert c.leader() == 4, "the coord must pick the most up-to-date server"
    c.put("after", "x")
    c.heal()
    c.wait_until(lambda: c.coord.core.view == [1, 2, 3, 4, 5], 10, "1 and 5 did not rejoin")
    c.wait_converged()
    assert c.get("after") == "x"
    assert all(c.kv(i)["p4"] == "4" for i in range(1, 6))


def test_old_leader_cut_from_coord_loses_no_acknowledged_write(make_cluster) -> None:
    c = make_cluster(servers=5)
    c.put("x", "0")
    old = c.leader()
    c.cut("coord", old)
    acked = []
    deadline = time.monotonic() + 3
    i = 0
    while time.monotonic() < deadline and i < 400:
        i += 1
        try:
            c.put("x", str(i))
            acked.append(str(i))
        except Exception:
            pass
    c.wait_until(lambda: c.deployment.leader() not in (0, old), 10, "no new leader")
    c.heal()
    c.put("y", "done")
    c.wait_converged()
    final = {e.value for e in c.log(c.leader()) if e.key == "x"}
    assert set(acked) <= final, f"acknowledged writes lost: {sorted(set(acked) - final)}"


def test_quorum_impossible_gives_a_clear_error_then_resumes(make_cluster) -> None:
    c = make_cluster(servers=3)
    c.put("a", "1")
    c.partition(["coord", 1, "client1"], [2, 3])
    t0 = time.monotonic()
    with pytest.raises(NoQuorumError, match="no quorum"):
        for _ in range(50):
            c.put("a", "2")
    assert time.monotonic() - t0 < 15
    c.heal()
    c.wait_until(lambda: c.coord.core.phase == "serving", 10, "quorum did not return")
    c.put("a", "3")
    assert c.get("a") == "3"


def test_majority_failstop_errors_within_bounded_time(make_cluster) -> None:
    c = make_cluster(servers=3)
    c.put("a", "1")
    c.fail(2)
    c.fail(3)
    t0 = time.monotonic()
    with pytest.raises(NoQuorumError):
        for _ in range(50):
            c.put("a", "2")
    assert time.monotonic() - t0 < 15
    assert c.status()["coord"]["phase"] == "no quorum"


def test_async_twins_from_another_loop(make_cluster) -> None:
    import asyncio

    c = make_cluster(servers=3)

    async def main() -> str | None:
        await c.aput("k", "v")
        return await c.aget("k")

    assert asyncio.run(main()) == "v"


def test_sync_call_from_cluster_thread_is_refused(make_cluster) -> None:
    from teachraft.errors import ClusterError

    c = make_cluster(servers=3)

    async def inside() -> str:
        try:
            c.put("k", "v")
        except ClusterError as exc:
            return str(exc)
        return "no error"

    assert "own thread" in c.run(inside())


def test_request_to_a_follower_names_the_leader(make_cluster) -> None:
    from teachraft.core.log import PUT
    from teachraft.core.messages import ClientReply, ClientRequest

    c = make_cluster(servers=3)
    c.put("a", "1")
    follower = next(i for i in (1, 2, 3) if i != c.leader())
    host = c.servers[follower]
    req = ClientRequest(
        client_id="1", op_id=99, kind=PUT, key="a", value="2", acked_below=0, token=b""
    )

    async def ask() -> ClientReply:
        node = c.client(1).node
        raw = await node.call(host.client_node.address, "client_request", req.to_wire(), timeout=5)
        return ClientReply.from_wire(raw)

    reply = c.run(ask())
    assert not reply.ok
    assert f"the leader is server{c.leader()}" in reply.error
    assert reply.leader == c.leader()


def test_malformed_messages_close_one_connection_and_service_goes_on(make_cluster) -> None:
    import socket
    import struct

    import msgpack

    c = make_cluster(servers=3)
    c.put("a", "1")
    host, port = c.servers[c.leader()].address.rsplit(":", 1)
    frames = [
        b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1",  # not msgpack
        b"\xff\xff\xff\xff",  # a huge length prefix
        struct.pack(">I", 3) + msgpack.packb([9, 9]),  # msgpack of the wrong shape
    ]
    hello = msgpack.packb([4, "intruder"])
    bad_body = msgpack.packb([3, "append_entries", ["not", "an", "append"]])
    frames.append(
        struct.pack(">I", len(hello)) + hello + struct.pack(">I", len(bad_body)) + bad_body
    )
    for frame in frames:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(frame)
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass
    c.put("a", "2")
    assert c.get("a") == "2"
