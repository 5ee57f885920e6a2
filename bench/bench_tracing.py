"""Tracing speed: record_action cost, tracing-server throughput, trace loading time.

Run with ``python -m bench.bench_tracing``. Targets: record_action median
<= 20 us in-process, tracing server >= 50,000 records/s written to both
files, the largest reference trace loaded in < 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from teachraft.net.auth import as_key, new_nonce
from teachraft.net.framing import FrameDecoder, encode_frame
from teachraft.tracing.actions import (
    AppendEntriesRequestSent,
    ClientInfo,
    Command,
    LogEntry,
    PutRecvd,
)
from teachraft.tracing.client import TracingClient
from teachraft.tracing.files import load_shiviz, load_trace_output
from teachraft.tracing.server import TracingServer
from teachraft.tracing.sinks import MemorySink, Record, Sink
from teachraft.tracing.tracer import NullTracer, Tracer
from teachraft.tracing.wire import auth_message, batch_message

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference-traces" / "kvraft-go"


def median_us(call: Callable[[], object], rounds: int) -> float:
    """Median wall time of one call, in microseconds."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(rounds):
        start = clock()
        call()
        samples.append(clock() - start)
    return statistics.median(samples) / 1000


def record_action_costs(sink: Sink, rounds: int) -> dict[str, float]:
    """Median µs of the tracer's calls with ``sink``."""
    tracer = Tracer("server1", sink, rng=random.Random(1))
    peer = Tracer("server2", sink, rng=random.Random(2))
    trace = tracer.create_trace()
    put = PutRecvd("1", 7, "key", "value")
    entry = LogEntry(1, Command(1, "k", "v", ClientInfo("1", 7)), 12)
    append = AppendEntriesRequestSent(1, 1, 11, 1, [entry], 11, b"")
    token = peer.create_trace().generate_token()
    return {
        "record_action(PutRecvd)": median_us(lambda: trace.record_action(put), rounds),
        "record_action(AppendEntries, 1 entry)": median_us(
            lambda: trace.record_action(append), rounds
        ),
        "generate_token": median_us(trace.generate_token, rounds),
        "receive_token": median_us(lambda: tracer.receive_token(token), rounds),
    }


async def client_sink_costs(rounds: int) -> dict[str, float]:
    """The same costs with a TracingClient sink shipping to a live server."""
    with tempfile.TemporaryDirectory() as folder:
        server = TracingServer("127.0.0.1:0", Path(folder) / "t.log", Path(folder) / "s.log")
        await server.start()
        client = TracingClient(server.address)
        costs = record_action_costs(client, rounds)
        await client.aclose(timeout=120)
        await server.close()
    return costs


def make_records(count: int, hosts: int = 6) -> list[Record]:
    """A causal workload: each step one host records an action or passes a token on.

    The list order is the order of recording, so it is causal."""
    sink = MemorySink()
    tracers = [Tracer(f"server{i}", sink, rng=random.Random(i)) for i in range(hosts)]
    traces = [t.create_trace() for t in tracers]
    rng = random.Random(0)
    put = PutRecvd("1", 7, "key", "value")
    while len(sink.records) < count:
        i = rng.randrange(hosts)
        if rng.random() < 0.2:
            j = (i + 1 + rng.randrange(hosts - 1)) % hosts
            traces[j] = tracers[j].receive_token(traces[i].generate_token())
        else:
            traces[i].record_action(put)
    return sink.records[:count]


async def server_throughput(records: list[Record], clients: int, chunk: int = 200) -> float:
    """Records/s from the first emit until every record is in both files, closed.

    Records are emitted ``chunk`` at a time with a yield in between, as live
    nodes emit them while the client tasks send, one client per host group.
    """
    with tempfile.TemporaryDirectory() as folder:
        server = TracingServer("127.0.0.1:0", Path(folder) / "t.log", Path(folder) / "s.log")
        await server.start()
        sinks = [TracingClient(server.address) for _ in range(clients)]
        route = {
            host: sinks[i % clients] for i, host in enumerate(sorted({r.identity for r in records}))
        }
        start = time.perf_counter()
        for i in range(0, len(records), chunk):
            for record in records[i : i + chunk]:
                route[record.identity].emit(record)
            await asyncio.sleep(0)
        for sink in sinks:
            await sink.aclose(timeout=300)
        await server.close()
        elapsed = time.perf_counter() - start
        with open(Path(folder) / "t.log", encoding="utf-8") as handle:
            lines = sum(1 for _ in handle)
    if lines != len(records):
        raise AssertionError(f"{len(records) - lines} records lost")
    return len(records) / elapsed


def _send_frames(port: int, frames: list[bytes], last_seq: int) -> None:
    """Blast pre-encoded batches at the server and wait for the last ack (a thread)."""
    decoder = FrameDecoder()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        _authenticate(sock, decoder)
        for frame in frames:
            sock.sendall(frame)
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            if any(m.get("seq") == last_seq for m in decoder.feed(data)):
                return


def _authenticate(sock: socket.socket, decoder: FrameDecoder) -> None:
    """Answer the server's challenge as a tracer of this process does; await its welcome."""
    sent = False
    while True:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed the connection")
        for message in decoder.feed(data):
            if message.get("t") == "welcome" and sent:
                return
            if message.get("t") != "challenge" or sent:
                raise ConnectionError(f"unexpected message from the server: {message}")
            sock.sendall(encode_frame(auth_message(as_key(None), message["nonce"], new_nonce())))
            sent = True


async def server_alone(records: list[Record], batch: int = 1024) -> float:
    """Records/s of the server by itself: batches encoded beforehand, sent from a thread."""
    frames = [
        encode_frame(batch_message(seq, records[i : i + batch]))
        for seq, i in enumerate(range(0, len(records), batch), 1)
    ]
    with tempfile.TemporaryDirectory() as folder:
        server = TracingServer("127.0.0.1:0", Path(folder) / "t.log", Path(folder) / "s.log")
        await server.start()
        start = time.perf_counter()
        await asyncio.to_thread(_send_frames, server.port, frames, len(frames))
        await server.close()
        elapsed = time.perf_counter() - start
        assert server.records_written == len(records)
    return len(records) / elapsed


def load_times(repeat: int) -> tuple[str, float, float]:
    """Median seconds to load the largest reference trace (both file kinds)."""
    largest = max(REFERENCE.glob("*/trace_output.log"), key=lambda p: p.stat().st_size)
    json_times, shiviz_times = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        load_trace_output(largest)
        json_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        load_shiviz(largest.with_name("shiviz_output.log"))
        shiviz_times.append(time.perf_counter() - start)
    return largest.parent.name, statistics.median(json_times), statistics.median(shiviz_times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_tracing")
    parser.add_argument("--rounds", type=int, default=20_000, help="calls per micro-benchmark")
    parser.add_argument("--records", type=int, default=200_000, help="records for the server")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the server measurement")
    args = parser.parse_args(argv)

    print("record_action and friends, median us per call")
    null = NullTracer("n").create_trace()
    null_us = median_us(lambda: null.record_action(None), args.rounds)
    print(f"  {'NullTracer':<13} {'record_action':<38} {null_us:6.2f}")
    for name, sink_costs in (
        ("MemorySink", record_action_costs(MemorySink(), args.rounds)),
        ("TracingClient", asyncio.run(client_sink_costs(args.rounds))),
    ):
        for call, us in sink_costs.items():
            print(f"  {name:<13} {call:<38} {us:6.2f}")

    records = make_records(args.records)
    rates = sorted(asyncio.run(server_alone(records)) for _ in range(args.repeat))
    print(
        f"tracing server alone: best {rates[-1]:,.0f}, median {statistics.median(rates):,.0f} "
        f"records/s to both files ({len(records):,} records sent pre-encoded in batches "
        f"of 1024, {args.repeat} runs; target >= 50,000)"
    )
    for clients in (1, 6):
        rate = asyncio.run(server_throughput(records, clients))
        print(
            f"end to end, {clients} TracingClient(s) and the server in one process: "
            f"{rate:,.0f} records/s ({len(records):,} records, none lost)"
        )

    name, json_s, shiviz_s = load_times(20)
    print(
        f"load largest reference trace ({name}): trace_output.log {json_s * 1000:.1f} ms, "
        f"shiviz_output.log {shiviz_s * 1000:.1f} ms (target < 500 ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
