"""Speed of teachraft's transport on loopback, in one process (not a test).

Run ``python -m bench.bench_net`` (``--calls N``, ``--profile`` for a pyinstrument
report of the pipelined run). It measures the four shapes of traffic the store
produces: one client waiting for each answer (sequential round trips), many
calls in flight on one connection (pipelined), fire-and-forget messages
(one-way), and a leader calling four followers at once (fan-out).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from teachraft.net import Node, Responder

IN_FLIGHT = 64
SMALL = 12345
PAYLOAD = {"term": 3, "key": "key-0001", "value": "v" * 32, "op": 12}


class Sink:
    """Echoes calls and counts one-way messages, waking a waiter at a target count."""

    def __init__(self) -> None:
        self.count = 0
        self.target = -1
        self.done: asyncio.Event | None = None

    def __call__(self, method: str, body: Any, peer: str, responder: Responder | None) -> None:
        if responder is not None:
            responder.ok(body)
            return
        self.count += 1
        if self.count == self.target and self.done is not None:
            self.done.set()


async def sequential(
    client: Node, address: str, calls: int, payload: Any = PAYLOAD
) -> dict[str, float]:
    samples = []
    clock = time.perf_counter
    start = clock()
    for _ in range(calls):
        t0 = clock()
        await client.call(address, "echo", payload, timeout=10.0)
        samples.append(clock() - t0)
    elapsed = clock() - start
    samples.sort()
    return {
        "rate": calls / elapsed,
        "p50": statistics.median(samples),
        "p99": samples[int(0.99 * (len(samples) - 1))],
    }


async def pipelined(
    client: Node, address: str, calls: int, payload: Any = PAYLOAD
) -> dict[str, float]:
    per_worker = calls // IN_FLIGHT

    async def worker() -> None:
        for _ in range(per_worker):
            await client.call(address, "echo", payload, timeout=10.0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return {"rate": per_worker * IN_FLIGHT / (time.perf_counter() - start)}


async def one_way(client: Node, address: str, sink: Sink, messages: int) -> dict[str, float]:
    sink.count = 0
    sink.target = messages
    sink.done = asyncio.Event()
    start = time.perf_counter()
    for i in range(messages):
        client.send(address, "note", PAYLOAD)
        if i % 256 == 255:
            await asyncio.sleep(0)  # let the loop write, as a real sender would
    await asyncio.wait_for(sink.done.wait(), 60)
    return {"rate": messages / (time.perf_counter() - start)}


async def fan_out(leader: Node, followers: list[str], rounds: int) -> dict[str, float]:
    per_worker = rounds // IN_FLIGHT

    async def worker() -> None:
        for _ in range(per_worker):
            await asyncio.gather(
                *(leader.call(a, "append", PAYLOAD, timeout=10.0) for a in followers)
            )

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    calls = per_worker * IN_FLIGHT * len(followers)
    return {"rate": calls / (time.perf_counter() - start)}


async def measure(calls: int, profile: bool) -> list[tuple[str, dict[str, float]]]:
    sink = Sink()
    server = Node("s1", sink)
    followers = [Node(f"s{i}", Sink()) for i in range(2, 6)]
    client = Node("c1", Sink(), listen=False)
    for node in (server, *followers, client):
        await node.start()
    await pipelined(client, server.address, 2 * IN_FLIGHT)  # warm up the connection
    address = server.address
    rows = [
        ("sequential, int", await sequential(client, address, calls, SMALL)),
        ("sequential, 4-field map", await sequential(client, address, calls)),
        (f"pipelined x{IN_FLIGHT}, int", await pipelined(client, address, calls, SMALL)),
        (
            f"pipelined x{IN_FLIGHT}, 4-field map",
            await profiled(profile, pipelined, client, address, calls),
        ),
        ("one-way, 4-field map", await one_way(client, address, sink, calls)),
    ]
    addresses = [f.address for f in followers]
    rows.append(
        (f"fan-out x4, {IN_FLIGHT} rounds in flight", await fan_out(server, addresses, calls // 4))
    )
    for node in (client, server, *followers):
        await node.close()
    return rows


async def profiled(
    profile: bool, fn: Callable[..., Awaitable[dict[str, float]]], *args: Any
) -> dict[str, float]:
    if not profile:
        return await fn(*args)
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    profiler.start()
    try:
        return await fn(*args)
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False))


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = [f"{'traffic':<34} {'calls/s':>10} {'p50 µs':>8} {'p99 µs':>8}"]
    for name, row in rows:
        p50 = f"{row['p50'] * 1e6:8.1f}" if "p50" in row else f"{'':>8}"
        p99 = f"{row['p99'] * 1e6:8.1f}" if "p99" in row else f"{'':>8}"
        lines.append(f"{name:<34} {row['rate']:>10,.0f} {p50} {p99}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per measurement")
    parser.add_argument("--profile", action="store_true", help="profile the pipelined run")
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.calls, args.profile))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
