"""FaultFilter: partitions, cuts, seeded loss and delay, and their effect on live nodes."""

from __future__ import annotations

import pytest
from test_net_support import Recorder, close_all, run_async, started, wait_until, within

from teachraft.net import CallTimeout, FaultFilter, Node

LONG = 30.0


def decisions(faults: FaultFilter, src: str, dst: str, n: int) -> list[float | None]:
    return [faults.route(src, dst) for _ in range(n)]


def test_without_faults_every_frame_goes_now() -> None:
    faults = FaultFilter()
    assert not faults.active
    assert faults.route("a", "b") == 0.0
    assert faults.link_state("a", "b") == "up"


def test_partition_separates_groups_both_ways() -> None:
    faults = FaultFilter()
    faults.partition(["s1", "s2"], ["s3", "coord"])
    assert faults.route("s1", "s3") is None
    assert faults.route("coord", "s2") is None
    assert faults.route("s1", "s2") == 0.0
    assert faults.route("s3", "coord") == 0.0
    assert faults.link_state("s1", "s3") == "cut"


def test_nodes_in_no_group_keep_talking_to_everyone() -> None:
    faults = FaultFilter()
    faults.partition(["s1"], ["s2"])
    assert faults.route("client1", "s1") == 0.0
    assert faults.route("s2", "client1") == 0.0


def test_a_new_partition_replaces_the_old_one() -> None:
    faults = FaultFilter()
    faults.partition(["s1"], ["s2"])
    faults.partition(["s1", "s2"], ["s3"])
    assert faults.route("s1", "s2") == 0.0
    assert faults.route("s2", "s3") is None
    faults.partition()
    assert faults.route("s2", "s3") == 0.0
    assert not faults.active


def test_a_node_in_two_groups_is_an_error() -> None:
    with pytest.raises(ValueError, match="s1"):
        FaultFilter().partition(["s1", "s2"], ["s1"])


def test_cut_loses_frames_both_ways() -> None:
    faults = FaultFilter()
    faults.cut("s1", "s2")
    assert faults.route("s1", "s2") is None
    assert faults.route("s2", "s1") is None
    assert faults.route("s1", "s3") == 0.0
    assert faults.link_state("s2", "s1") == "cut"


def test_one_way_cut_loses_only_a_to_b() -> None:
    faults = FaultFilter()
    faults.cut("s1", "s2", one_way=True)
    assert faults.route("s1", "s2") is None
    assert faults.route("s2", "s1") == 0.0
    assert faults.link_state("s1", "s2") == "one-way"
    assert faults.link_state("s2", "s1") == "up"


def test_uncut_restores_a_link() -> None:
    faults = FaultFilter()
    faults.cut("s1", "s2")
    faults.uncut("s1", "s2")
    assert faults.route("s1", "s2") == 0.0
    assert not faults.active


def test_heal_removes_every_fault() -> None:
    faults = FaultFilter()
    faults.partition(["s1"], ["s2"])
    faults.cut("s3", "s4", one_way=True)
    faults.drop("s1", "s3", 1.0)
    faults.delay("s2", "s4", 0.5, 0.0)
    faults.heal()
    assert not faults.active
    for a, b in [("s1", "s2"), ("s3", "s4"), ("s1", "s3"), ("s2", "s4")]:
        assert faults.route(a, b) == 0.0
        assert faults.link_state(a, b) == "up"


def test_drop_rate_is_about_p() -> None:
    faults = FaultFilter(seed=11)
    faults.drop("s1", "s2", 0.3)
    lost = decisions(faults, "s1", "s2", 10_000).count(None)
    assert 2_500 < lost < 3_500  # 0.3 ± 11 standard deviations
    assert faults.link_state("s1", "s2") == "lossy"
    assert faults.route("s2", "s1") == 0.0


def test_drop_extremes() -> None:
    faults = FaultFilter()
    faults.drop("a", "b", 1.0)
    assert decisions(faults, "a", "b", 100) == [None] * 100
    faults.drop("a", "b", 0.0)
    assert decisions(faults, "a", "b", 100) == [0.0] * 100
    with pytest.raises(ValueError):
        faults.drop("a", "b", 1.5)


def test_delays_stay_within_mean_plus_or_minus_jitter_and_never_negative() -> None:
    faults = FaultFilter(seed=3)
    faults.delay("a", "b", 0.01, 0.005)
    faults.delay("b", "a", 0.001, 0.01)
    forward = decisions(faults, "a", "b", 1000)
    backward = decisions(faults, "b", "a", 1000)
    assert all(d is not None and 0.005 <= d <= 0.015 for d in forward)
    assert all(d is not None and d >= 0.0 for d in backward)
    assert 0.0 in backward  # the clamp at zero is reached
    assert faults.link_state("a", "b") == "slow"


def test_independent_delays_can_reorder() -> None:
    faults = FaultFilter(seed=5)
    faults.delay("a", "b", 0.02, 0.02)
    delays = decisions(faults, "a", "b", 20)
    assert delays != sorted(delays)  # type: ignore[type-var]


def test_same_seed_same_decisions() -> None:
    def script(seed: int) -> list[float | None]:
        faults = FaultFilter(seed=seed)
        faults.drop("a", "b", 0.5)
        faults.delay("a", "b", 0.01, 0.01)
        faults.drop("b", "a", 0.2)
        return decisions(faults, "a", "b", 200) + decisions(faults, "b", "a", 200)

    assert script(42) == script(42)
    assert script(42) != script(43)


def test_a_links_decisions_do_not_depend_on_other_links_traffic() -> None:
    quiet = FaultFilter(seed=9)
    busy = FaultFilter(seed=9)
    for faults in (quiet, busy):
        faults.drop("a", "b", 0.5)
        faults.drop("c", "d", 0.5)
    expected = decisions(quiet, "a", "b", 100)
    got = []
    for _ in range(100):
        decisions(busy, "c", "d", 3)
        got.append(busy.route("a", "b"))
    assert got == expected


def test_subscribers_see_every_change_and_a_failing_one_does_not_stop_the_rest() -> None:
    faults = FaultFilter()
    events: list[tuple[str, dict]] = []

    def broken(kind: str, details: dict) -> None:
        raise RuntimeError("subscriber bug")

    faults.subscribe(broken)
    faults.subscribe(lambda kind, details: events.append((kind, details)))
    faults.partition(["s1"], ["s2", "s3"])
    faults.cut("s1", "s2", one_way=True)
    faults.drop("s1", "s2", 0.1)
    faults.delay("s1", "s2", 0.1, 0.0)
    faults.heal()
    assert events == [
        ("partition", {"groups": [["s1"], ["s2", "s3"]]}),
        ("cut", {"a": "s1", "b": "s2", "one_way": True}),
        ("drop", {"a": "s1", "b": "s2", "p": 0.1}),
        ("delay", {"a": "s1", "b": "s2", "mean": 0.1, "jitter": 0.0}),
        ("heal", {}),
    ]
    faults.unsubscribe(broken)


def test_describe_lists_the_installed_faults() -> None:
    faults = FaultFilter()
    faults.partition(["s1"], ["s2"])
    faults.cut("a", "b", one_way=True)
    assert faults.describe() == {
        "groups": [["s1"], ["s2"]],
        "cuts": [("a", "b")],
        "drops": {},
        "delays": {},
    }


# -- end to end with live nodes ------------------------------------------------


async def faulty_pair(faults: FaultFilter) -> tuple[Node, Node, Recorder]:
    recorder = Recorder()
    server = Node("s1", recorder, faults=faults)
    client = Node("c1", Recorder(), listen=False, faults=faults)
    await started(server, client)
    return server, client, recorder


@run_async
async def test_a_call_across_a_cut_times_out_and_works_after_heal() -> None:
    faults = FaultFilter()
    server, client, recorder = await faulty_pair(faults)
    assert await client.call(server.address, "echo", 1, timeout=LONG) == 1
    faults.cut("c1", "s1")
    with pytest.raises(CallTimeout):
        await client.call(server.address, "echo", 2, timeout=0.3)
    assert recorder.bodies("echo") == [1]
    assert client.stats[("c1", "s1")].dropped == 1
    faults.heal()
    assert await client.call(server.address, "echo", 3, timeout=LONG) == 3
    await close_all(client, server)


@run_async
async def test_a_partition_applies_from_the_first_frame_of_a_new_connection() -> None:
    faults = FaultFilter()
    faults.partition(["c1"], ["s1"])
    server, client, recorder = await faulty_pair(faults)
    with pytest.raises(CallTimeout):
        await client.call(server.address, "echo", 1, timeout=0.3)
    faults.heal()
    assert await client.call(server.address, "echo", 2, timeout=LONG) == 2
    assert recorder.bodies("echo") == [2]
    await close_all(client, server)


@run_async
async def test_over_a_one_way_cut_the_request_arrives_but_the_reply_is_lost() -> None:
    faults = FaultFilter()
    server, client, recorder = await faulty_pair(faults)
    await client.call(server.address, "echo", 0, timeout=LONG)
    faults.cut("s1", "c1", one_way=True)
    with pytest.raises(CallTimeout):
        await client.call(server.address, "echo", 1, timeout=0.3)
    await wait_until(lambda: recorder.bodies("echo") == [0, 1])
    assert server.stats[("s1", "c1")].dropped == 1
    await close_all(client, server)


@run_async
async def test_delayed_one_way_messages_all_arrive_but_out_of_order() -> None:
    faults = FaultFilter(seed=1)
    server, client, recorder = await faulty_pair(faults)
    await client.call(server.address, "echo", 0, timeout=LONG)
    faults.delay("c1", "s1", 0.03, 0.03)
    for i in range(50):
        client.send(server.address, "note", i)
    await wait_until(lambda: len(recorder.bodies("note")) == 50)
    arrived = recorder.bodies("note")
    assert sorted(arrived) == list(range(50))
    assert arrived != list(range(50))
    await close_all(client, server)


@run_async
async def test_a_lossy_link_loses_some_one_way_messages() -> None:
    faults = FaultFilter(seed=2)
    server, client, recorder = await faulty_pair(faults)
    await client.call(server.address, "echo", 0, timeout=LONG)
    faults.drop("c1", "s1", 0.5)
    for i in range(200):
        client.send(server.address, "note", i)
    dropped = client.stats[("c1", "s1")].dropped
    assert 0 < dropped < 200
    await wait_until(lambda: len(recorder.bodies("note")) == 200 - dropped)
    arrived = recorder.bodies("note")
    assert arrived == sorted(arrived)  # loss alone never reorders
    faults.heal()
    assert await within(client.call(server.address, "echo", "end", timeout=LONG)) == "end"
    await close_all(client, server)


@run_async
async def test_faults_do_not_touch_the_hello() -> None:
    faults = FaultFilter()
    faults.cut("c1", "s1")
    server, client, _ = await faulty_pair(faults)
    client.send(server.address, "note", 1)
    await wait_until(lambda: client.peer_name(server.address) == "s1")
    assert client.stats[("c1", "s1")].dropped == 1
    await close_all(client, server)
