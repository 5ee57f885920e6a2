"""The loop bridge's batched hand-off from a foreign loop (the notebook's) to the cluster's.

These drive ``LoopBridge`` alone, with plain coroutines as the work, so that
ordering, errors and cancellation are checked without a cluster's timing.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from teachraft.cluster.bridge import LoopBridge
from teachraft.errors import ClusterError


@pytest.fixture
def bridge():
    b = LoopBridge(thread_name="test-bridge")
    yield b
    b.stop()


def test_many_ops_in_flight_each_get_their_own_result_on_the_cluster_thread(bridge) -> None:
    seen_threads: set[str] = set()

    async def work(i: int) -> int:
        seen_threads.add(threading.current_thread().name)
        await asyncio.sleep(0.001 * (i % 3))
        return i * i

    async def main() -> list[int]:
        return await asyncio.gather(*(bridge.acall(work, i) for i in range(500)))

    assert asyncio.run(main()) == [i * i for i in range(500)]
    assert seen_threads == {"test-bridge"}


def test_an_error_reaches_only_the_caller_whose_op_raised(bridge) -> None:
    async def work(i: int) -> int:
        if i == 7:
            raise KeyError("seven")
        return i

    async def main() -> list[object]:
        calls = (bridge.acall(work, i) for i in range(20))
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[7], KeyError)
    assert [r for i, r in enumerate(results) if i != 7] == [i for i in range(20) if i != 7]


def test_cancelling_the_callers_await_cancels_the_op_on_the_cluster_loop(bridge) -> None:
    started = threading.Event()
    cancelled = threading.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main() -> None:
        task = asyncio.ensure_future(bridge.acall(work))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cancelled.wait(5)


def test_two_foreign_loops_at_once_each_get_their_own_results(bridge) -> None:
    async def work(tag: str, i: int) -> str:
        await asyncio.sleep(0)
        return f"{tag}{i}"

    def drive(tag: str, out: dict[str, list[str]]) -> None:
        async def main() -> list[str]:
            return await asyncio.gather(*(bridge.acall(work, tag, i) for i in range(200)))

        out[tag] = asyncio.run(main())

    out: dict[str, list[str]] = {}
    threads = [threading.Thread(target=drive, args=(tag, out)) for tag in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert out == {tag: [f"{tag}{i}" for i in range(200)] for tag in "ab"}


def test_a_closed_bridge_refuses_before_making_the_coroutine(bridge) -> None:
    made: list[int] = []

    async def work() -> None:
        made.append(1)

    bridge.stop()

    async def main() -> None:
        with pytest.raises(ClusterError, match="closed"):
            await bridge.acall(work)

    asyncio.run(main())
    assert made == []
