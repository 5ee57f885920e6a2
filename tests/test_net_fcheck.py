"""The UDP heartbeat failure detector: acks, silence, pauses and faults."""

from __future__ import annotations

import asyncio
import logging

import msgpack
import pytest
from test_net_support import WAIT_BOUND, close_all, run_async, within

from teachraft.net import BindError, FaultFilter, HeartbeatMonitor, HeartbeatResponder

INTERVAL = 0.05


class Results:
    """Collects ``on_result`` calls; tests wait for the next outcome they expect."""

    def __init__(self) -> None:
        self.all: list[tuple[str, bool]] = []
        self._queue: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()

    def __call__(self, target: str, ok: bool) -> None:
        self.all.append((target, ok))
        self._queue.put_nowait((target, ok))

    async def next_with(self, ok: bool, count: int = 1, target: str = "s1") -> None:
        """Wait until ``count`` more results for ``target`` equal to ``ok`` arrived."""

        async def collect() -> None:
            seen = 0
            while seen < count:
                name, got = await self._queue.get()
                seen += name == target and got == ok

        await within(collect(), WAIT_BOUND)

    def drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()


async def watched(
    faults: FaultFilter | None = None,
) -> tuple[HeartbeatMonitor, HeartbeatResponder, Results]:
    results = Results()
    responder = HeartbeatResponder("s1", faults=faults)
    monitor = HeartbeatMonitor("coord", results, interval=INTERVAL, faults=faults)
    await responder.start()
    await monitor.start()
    monitor.watch("s1", responder.address)
    return monitor, responder, results


@run_async
async def test_acks_give_true_results_and_an_rtt_estimate() -> None:
    monitor, responder, results = await watched()
    await results.next_with(True, count=3)
    rtt = monitor.rtt("s1")
    assert rtt is not None and rtt >= 0.0
    assert responder.answered >= 3
    await close_all(monitor, responder)


@run_async
async def test_a_closed_responder_gives_false_results() -> None:
    monitor, responder, results = await watched()
    await results.next_with(True)
    await responder.close()
    await results.next_with(False, count=3)
    await monitor.close()


@run_async
async def test_a_paused_responder_gives_false_then_true_after_resume() -> None:
    monitor, responder, results = await watched()
    await results.next_with(True)
    responder.pause()
    await results.next_with(False, count=2)
    responder.resume()
    results.drain()
    await results.next_with(True, count=2)
    await close_all(monitor, responder)


@pytest.mark.parametrize(
    "cut",
    [("coord", "s1", False), ("coord", "s1", True), ("s1", "coord", True)],
    ids=["both-ways", "heartbeats-lost", "acks-lost"],
)
@run_async
async def test_faults_make_heartbeats_fail_until_healed(cut: tuple[str, str, bool]) -> None:
    faults = FaultFilter()
    monitor, responder, results = await watched(faults)
    await results.next_with(True)
    faults.cut(cut[0], cut[1], one_way=cut[2])
    await results.next_with(False, count=3)
    faults.heal()
    results.drain()
    await results.next_with(True, count=2)
    await close_all(monitor, responder)


@run_async
async def test_a_partition_counts_too() -> None:
    faults = FaultFilter()
    monitor, responder, results = await watched(faults)
    faults.partition(["coord"], ["s1", "s5"])
    await results.next_with(False, count=2)
    await close_all(monitor, responder)


@run_async
async def test_unwatch_stops_results_for_that_target() -> None:
    monitor, responder, results = await watched()
    other = HeartbeatResponder("s2")
    await other.start()
    monitor.watch("s2", other.address)
    await results.next_with(True, target="s2")
    monitor.unwatch("s1")
    results.all.clear()
    await results.next_with(True, count=3, target="s2")
    assert all(target == "s2" for target, _ in results.all)
    await close_all(monitor, responder, other)


@run_async
async def test_garbage_datagrams_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    monitor, responder, results = await watched()
    loop = asyncio.get_running_loop()
    sender, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    host, port = monitor.address.rsplit(":", 1)
    with caplog.at_level(logging.DEBUG, logger="teachraft.net.fcheck"):
        for junk in [b"\xc1", b"x", msgpack.packb({"a": 1}), msgpack.packb(["x", "1"])]:
            sender.sendto(junk, ("127.0.0.1", responder.port))
            sender.sendto(junk, (host, int(port)))
        sender.sendto(msgpack.packb(["s1", 10**9]), (host, int(port)))  # unknown seq
        results.drain()
        await results.next_with(True, count=2)
    sender.close()
    assert any("malformed" in r.getMessage() for r in caplog.records)
    await close_all(monitor, responder)


@run_async
async def test_timeout_follows_the_rtt_with_a_floor_and_a_cap() -> None:
    results = Results()
    monitor = HeartbeatMonitor("coord", results, interval=0.5, timeout_floor=0.01)
    responder = HeartbeatResponder("s1")
    await responder.start()
    assert monitor.timeout("s1") == 0.5  # not watched yet: the interval
    await monitor.start()
    monitor.watch("s1", responder.address)
    assert monitor.timeout("s1") == 0.5  # no RTT sample yet: the interval
    await results.next_with(True)
    rtt = monitor.rtt("s1")
    assert rtt is not None
    assert monitor.timeout("s1") == min(monitor.max_timeout, max(0.01, 4 * rtt))
    await close_all(monitor, responder)


@run_async
async def test_binding_a_udp_port_in_use_names_it() -> None:
    first = HeartbeatResponder("s1")
    await first.start()
    with pytest.raises(BindError, match=first.address):
        await HeartbeatResponder("s2", port=first.port).start()
    await first.close()


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HeartbeatMonitor("coord", lambda target, ok: None, interval=0)
