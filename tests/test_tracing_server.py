"""The tracing server live: lossless across a server restart, causal, robust to bad peers."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import sys
from pathlib import Path

import pytest
from conftest import REPO

from teachraft.net.auth import new_nonce, process_secret
from teachraft.net.framing import HEADER, decode_body, encode_frame
from teachraft.tracing.actions import Put, PutCommitted, PutRecvd, PutResultRecvd, ServerStart
from teachraft.tracing.client import TracingClient
from teachraft.tracing.config import ConfigError, load_tracing_server_config
from teachraft.tracing.files import load_trace_output
from teachraft.tracing.server import TracingServer
from teachraft.tracing.sinks import MemorySink, Record
from teachraft.tracing.tracer import Tracer
from teachraft.tracing.validate import validate_shiviz, validate_trace_output
from teachraft.tracing.wire import auth_message

WORKER = """
import base64, sys
from teachraft.tracing import connect_tracer
from teachraft.tracing.actions import PutRecvd

tracer = connect_tracer(sys.argv[1], sys.argv[2], secret=bytes.fromhex(sys.argv[3]))
print("ready", tracer.own_time, flush=True)
for line in sys.stdin:
    line = line.strip()
    if line == "quit":
        break
    trace = tracer.receive_token(base64.b64decode(line))
    trace.record_action(PutRecvd("w", tracer.own_time, "k", "v"))
    print(base64.b64encode(trace.generate_token()).decode(), flush=True)
left = tracer.sink.close()
print("done", tracer.own_time, left, flush=True)
"""

STEP = 60.0  # generous bound for any single wait on a loaded machine


class Worker:
    """A tracer in a subprocess, exchanging tokens over its stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.start_time = 0

    @classmethod
    async def start(cls, identity: str, address: str) -> Worker:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            identity,
            address,
            process_secret().hex(),  # the secret of the server this test process runs
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        worker = cls(process)
        words = (await worker._line()).split()
        assert words[0] == "ready", words
        worker.start_time = int(words[1])
        return worker

    async def _line(self) -> str:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), STEP)
        if not line:
            raise AssertionError("the worker subprocess ended early")
        return line.decode().strip()

    async def exchange(self, token: bytes) -> bytes:
        assert self.process.stdin is not None
        self.process.stdin.write(base64.b64encode(token) + b"\n")
        await self.process.stdin.drain()
        return base64.b64decode(await self._line())

    async def quit(self) -> int:
        """End the worker; return its final own time (all its records flushed)."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"quit\n")
        await self.process.stdin.drain()
        words = (await self._line()).split()
        assert words[0] == "done" and words[2] == "0", words
        await asyncio.wait_for(self.process.wait(), STEP)
        return int(words[1])

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


class Nodes:
    """Three in-process tracers passing tokens around, optionally via the worker."""

    def __init__(self, address: str) -> None:
        self.clients = [TracingClient(address) for _ in range(3)]
        self.tracers = [
            Tracer(f"node{i + 1}", client, rng=random.Random(i))
            for i, client in enumerate(self.clients)
        ]
        self.ops = 0

    async def round(self, worker: Worker | None) -> None:
        """One Put-like exchange: a -> b (-> worker) -> c -> a, yielding between hops."""
        self.ops += 1
        a, b, c = (self.tracers[(self.ops + k) % 3] for k in range(3))
        trace = a.create_trace()
        trace.record_action(Put("1", self.ops, "k", "v"))
        token = trace.generate_token()
        await asyncio.sleep(0.001)
        at_b = b.receive_token(token)
        at_b.record_action(PutRecvd("1", self.ops, "k", "v"))
        token = at_b.generate_token()
        if worker is not None:
            token = await worker.exchange(token)
        await asyncio.sleep(0.001)
        at_c = c.receive_token(token)
        at_c.record_action(PutCommitted("1", self.ops, "k", "v"))
        token = at_c.generate_token()
        await asyncio.sleep(0.001)
        a.receive_token(token).record_action(PutResultRecvd(self.ops, "k"))

    async def close(self) -> None:
        for client in self.clients:
            assert await client.aclose(timeout=STEP) == 0


def assert_file_in_happened_before_order(path: Path) -> dict[tuple[str, int], int]:
    position: dict[tuple[str, int], int] = {}
    for i, line in enumerate(path.read_text().splitlines()):
        record = json.loads(line)
        host, clock = record["TracerIdentity"], record["VectorClock"]
        key = (host, clock[host])
        assert key not in position, f"duplicate {key}"
        for other, value in clock.items():
            known = (other, value - 1) if other == host else (other, value)
            if known[1] > 0:
                assert known in position, f"line {i + 1}: {key} written before {known}"
        position[key] = i
    return position


async def _live_run(folder: Path) -> tuple[dict[str, int], Path, Path]:
    trace_file, shiviz_file = folder / "trace_output.log", folder / "shiviz_output.log"
    first = await TracingServer("127.0.0.1:0", trace_file, shiviz_file).start()
    address = first.address
    nodes = Nodes(address)
    worker = await Worker.start("worker", address)
    try:
        for _ in range(10):
            await nodes.round(worker)
        worker_time = await worker.quit()

        stop = asyncio.Event()

        async def traffic() -> None:
            while not stop.is_set():
                await nodes.round(None)

        background = asyncio.create_task(traffic())
        await asyncio.sleep(0.2)
        await first.close()  # the tracing server goes away mid-run
        await asyncio.sleep(0.3)  # the nodes keep recording meanwhile
        second = await TracingServer(address, trace_file, shiviz_file, append=True).start()
        worker = await Worker.start("worker", address)
        assert worker.start_time == worker_time, "a restarted tracer continues its counter"
        for _ in range(5):
            await nodes.round(worker)
        stop.set()
        await asyncio.wait_for(background, STEP)
        worker_time = await worker.quit()
        await nodes.close()
        await second.close()
    finally:
        worker.kill()
    own_times = {t.identity: t.own_time for t in nodes.tracers}
    own_times["worker"] = worker_time
    return own_times, trace_file, shiviz_file


@pytest.mark.timeout(300)
def test_live_run_survives_a_tracing_server_restart_without_losing_a_record(
    tmp_path: Path,
) -> None:
    own_times, trace_file, shiviz_file = asyncio.run(_live_run(tmp_path))
    expected = {(host, t) for host, last in own_times.items() for t in range(1, last + 1)}
    assert own_times["worker"] > 30

    position = assert_file_in_happened_before_order(trace_file)
    assert set(position) == expected, "every record exactly once"
    shiviz_text = shiviz_file.read_text()
    assert shiviz_text.count("\n") == 2 + 2 * len(expected)
    assert validate_shiviz(shiviz_text) == []
    assert validate_trace_output(trace_file.read_text()) == []
    table = load_trace_output(trace_file)
    assert all(e.partner is not None for e in table if e.tag == "ReceiveTokenTrace")


async def _restart_in_process(folder: Path) -> Path:
    server = await TracingServer("127.0.0.1:0", folder / "t.log", folder / "s.log").start()
    client = TracingClient(server.address)
    tracer = Tracer("server1", client)
    trace = tracer.create_trace()
    for _ in range(4):
        trace.record_action(ServerStart(1))
    assert await client.aclose() == 0
    assert await TracingClient.fetch_clock(server.address, "nobody") is None
    clock = await TracingClient.fetch_clock(server.address, "server1")
    assert clock == {"server1": 5}
    client = TracingClient(server.address)
    again = Tracer("server1", client, clock=clock)
    again.create_trace().record_action(ServerStart(1))
    assert again.own_time == 7
    await again.aclose()
    await server.close()
    return folder / "s.log"


def test_a_restarted_tracer_continues_its_counter(tmp_path: Path) -> None:
    shiviz = asyncio.run(_restart_in_process(tmp_path))
    assert validate_shiviz(shiviz.read_text()) == []
    assert 'server1 {"server1":7}' in shiviz.read_text()


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), STEP)
        if not chunk:
            return data
        data += chunk


BAD_PAYLOADS = {
    "random bytes in a frame": HEADER.pack(64) + random.Random(5).randbytes(64),
    "huge length prefix": b"\xff\xff\xff\xff" + b"x" * 16,
    "not a map": encode_frame([1, 2, 3]),
    "integer map keys": encode_frame({1: 2}),
    "unknown type": encode_frame({"t": "what"}),
    "bad seq": encode_frame({"t": "rec", "seq": "x", "recs": []}),
    "record without own clock entry": encode_frame(
        {"t": "rec", "seq": 1, "recs": [["a", 1, "X", {}, {"b": 1}]]}
    ),
    "identity with a space": encode_frame(
        {"t": "rec", "seq": 1, "recs": [["a b", 1, "X", {}, {"a b": 1}]]}
    ),
    "record of 3 fields": encode_frame({"t": "rec", "seq": 1, "recs": [["a", 1, "X"]]}),
    "clock request without id": encode_frame({"t": "clock"}),
}


async def _authenticate_raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer the server's challenge as a tracer of this process would."""
    (size,) = HEADER.unpack(await reader.readexactly(4))
    challenge = decode_body(await reader.readexactly(size))
    writer.write(encode_frame(auth_message(process_secret(), challenge["nonce"], new_nonce())))
    (size,) = HEADER.unpack(await reader.readexactly(4))
    assert decode_body(await reader.readexactly(size)) == {"t": "welcome"}


async def _bad_peers(folder: Path) -> tuple[Path, int]:
    server = await TracingServer("127.0.0.1:0", folder / "t.log", folder / "s.log").start()
    client = TracingClient(server.address)
    tracer = Tracer("good", client)
    trace = tracer.create_trace()
    for name, payload in BAD_PAYLOADS.items():
        trace.record_action(ServerStart(1))
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await _authenticate_raw(reader, writer)
        writer.write(payload)
        await writer.drain()
        reply = await _read_until_closed(reader)
        assert reply == b"" or b"err" in reply, name
        writer.close()
        trace.record_action(ServerStart(2))
    assert await client.aclose() == 0
    await server.close()
    return folder / "s.log", tracer.own_time


def test_bad_frames_close_only_their_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="teachraft.tracing.server")
    shiviz, own_time = asyncio.run(_bad_peers(tmp_path))
    assert own_time == 1 + 2 * len(BAD_PAYLOADS)
    assert validate_shiviz(shiviz.read_text()) == []
    assert shiviz.read_text().count("\ngood {") == own_time
    closing = [r for r in caplog.records if "closing tracing connection" in r.getMessage()]
    assert len(closing) == len(BAD_PAYLOADS)


# --- config ------------------------------------------------------------------------------


def test_the_repo_config_loads() -> None:
    config = load_tracing_server_config(REPO / "config" / "tracing_server_config.json")
    assert config.ServerBind.startswith("127.0.0.1:")
    assert (config.OutputFile, config.ShivizOutputFile) == ("trace_output.log", "shiviz_output.log")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '{"ServerBind": "127.0.0.1:0", "OutputFile": 5, "ShivizOutputFile": "s"}',
            'key "OutputFile" must be a string',
        ),
        ('{"OutputFile": "t", "ShivizOutputFile": "s"}', 'key "ServerBind" is missing'),
        (
            '{"ServerBind": "nonsense", "OutputFile": "t", "ShivizOutputFile": "s"}',
            'key "ServerBind" must be host:port',
        ),
        (
            '{"ServerBind": "0.0.0.0:1", "OutputFile": "t", "ShivizOutputFile": "s"}',
            'key "ServerBind" must be a loopback address',
        ),
        (
            '{"ServerBind": "127.0.0.1:0", "OutputFile": "t", "ShivizOutputFile": "t"}',
            "name one file",
        ),
        ("[1]", "must be a JSON object"),
        ("{", "not valid JSON"),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "tracing_server_config.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_tracing_server_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_tracing_server_config(tmp_path / "nope.json")


async def _from_config(folder: Path) -> Path:
    config = folder / "tracing_server_config.json"
    config.write_text(
        '{"ServerBind": "127.0.0.1:0", "Secret": "s3cret", '
        '"OutputFile": "t.log", "ShivizOutputFile": "s.log"}'
    )
    async with TracingServer.from_config(config, out_dir=folder) as server:
        client = TracingClient(server.address, secret="s3cret")
        Tracer("coord", client).create_trace()
        await client.aclose()
    return folder / "t.log"


def test_server_from_config(tmp_path: Path) -> None:
    trace = asyncio.run(_from_config(tmp_path))
    assert trace.read_text().count("\n") == 1


async def _lost_past(folder: Path) -> tuple[TracingServer, int]:
    server = TracingServer("127.0.0.1:0", folder / "t.log", folder / "s.log", hold_timeout=0.5)
    await server.start()
    lost = Tracer("lost", MemorySink())  # its records never reach the server
    client = TracingClient(server.address)
    tracer = Tracer("alive", client)
    tracer.receive_token(lost.create_trace().generate_token()).record_action(ServerStart(1))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP
    while len(server.table) < 2 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    written = len(server.table)
    await client.aclose()
    await server.close()
    return server, written


def test_records_whose_past_is_lost_are_written_after_the_hold_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="teachraft.tracing.server")
    server, written = asyncio.run(_lost_past(tmp_path))
    assert written == 2, "written while the server was still running"
    assert [e.tag for e in server.table] == ["ReceiveTokenTrace", "ServerStart"]
    assert any("did not arrive within" in r.getMessage() for r in caplog.records)


async def _poisoned_client(folder: Path) -> tuple[int, int, int]:
    server = await TracingServer("127.0.0.1:0", folder / "t.log", folder / "s.log").start()
    client = TracingClient(server.address)
    tracer = Tracer("good", client)
    trace = tracer.create_trace()
    trace.record_action(ServerStart(1))
    client.emit(Record("bad host", 1, "X", {}, {"bad host": 1}))  # refused by the server
    trace.record_action(ServerStart(2))
    left = await client.aclose()
    await server.close()
    return left, client.dropped, len(server.table)


def test_a_record_the_server_refuses_is_dropped_alone(tmp_path: Path) -> None:
    left, dropped, written = asyncio.run(_poisoned_client(tmp_path))
    assert (left, dropped, written) == (0, 1, 3)


async def _no_server() -> tuple[int, int]:
    probe = await TracingServer("127.0.0.1:0", os.devnull, os.devnull).start()
    address = probe.address
    await probe.close()  # nothing listens on this port any more
    client = TracingClient(address, max_backoff=0.05)
    tracer = Tracer("lonely", client)
    tracer.create_trace().record_action(ServerStart(1))
    await asyncio.sleep(0.2)
    pending = client.pending
    return pending, await client.aclose(timeout=0.5)


def test_a_client_keeps_its_records_while_no_server_answers() -> None:
    pending, left = asyncio.run(_no_server())
    assert (pending, left) == (2, 2), "buffered, not dropped; aclose says what was not sent"
