"""Finding 7: the trace can be neither forged nor silently lose records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from teachraft.tracing.actions import ServerStart
from teachraft.tracing.client import TracingClient
from teachraft.tracing.server import TracingServer
from teachraft.tracing.sinks import Record
from teachraft.tracing.tracer import Tracer
from teachraft.tracing.validate import validate_shiviz, validate_trace_output

SECRET = b"the cluster secret"


def _run(coro):  # every test is bounded in time
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _server(folder: Path, **kwargs) -> TracingServer:
    return await TracingServer(
        "127.0.0.1:0", folder / "t.log", folder / "s.log", secret=SECRET, **kwargs
    ).start()


def test_a_tracer_without_the_secret_is_not_heard(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        server = await _server(tmp_path)
        intruder = TracingClient(server.address, secret=b"a guess", max_backoff=0.05)
        Tracer("server1", intruder).create_trace().record_action(ServerStart(1))
        await asyncio.sleep(0.5)
        left = await intruder.aclose(timeout=0.5)
        clock = None
        with pytest.raises(ConnectionError):
            clock = await TracingClient.fetch_clock(server.address, "server1", secret=b"a guess")
        assert clock is None
        written = server.records_written
        await server.close()
        return left, written

    left, written = _run(scenario())
    assert written == 0 and left == 2  # both records still held by the client, none forged in
    assert (tmp_path / "t.log").read_text() == ""


def test_a_clock_entry_no_token_explains_is_refused(tmp_path: Path) -> None:
    async def scenario() -> TracingServer:
        server = await _server(tmp_path, hold_timeout=0.5)
        client = TracingClient(server.address, secret=SECRET)
        sender = Tracer("server1", client)
        receiver = Tracer("server2", client)
        trace = sender.create_trace()
        receiver.receive_token(trace.generate_token()).record_action(ServerStart(2))
        forged = [
            Record("mallory", 7, "ReceiveTokenTrace", {"Token": b""}, {"mallory": 1, "ghost": 5}),
            Record("mallory", 7, "ServerStart", {}, {"mallory": 1, "server2": 10**6}),
            Record("server1", 7, "PutRecvd", {}, {"server1": 3, "server2": 10**6}),
        ]
        for record in forged:
            client.emit(record)
        assert await client.aclose() == 0
        await asyncio.sleep(0.1)
        assert server.held == 0
        await server.close()
        return server

    server = _run(scenario())
    assert server.problems["forged clock"] == 3
    text = (tmp_path / "t.log").read_text()
    assert "ghost" not in text and "1000000" not in text
    assert validate_trace_output(text) == []
    assert validate_shiviz((tmp_path / "s.log").read_text()) == []


@pytest.mark.parametrize("bad", ["\u2028", "\u0085", "\u00a0", "\x00", "\u200b"])
def test_names_with_control_or_separator_characters_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        Tracer(f"server{bad}1", [])

    async def scenario() -> int:
        server = await _server(tmp_path)
        client = TracingClient(server.address, secret=SECRET)
        name = f"server{bad}1"
        client.emit(Record(name, 1, "ServerStart", {}, {name: 1}))
        client.emit(Record("server1", 1, f"Tag{bad}", {}, {"server1": 1}))
        await client.aclose()
        written = server.records_written
        await server.close()
        return written

    assert _run(scenario()) == 0
    assert bad not in (tmp_path / "s.log").read_text()


def test_a_record_over_the_frame_limit_is_reported_not_lost(tmp_path: Path) -> None:
    async def scenario() -> TracingClient:
        server = await _server(tmp_path)
        client = TracingClient(server.address, secret=SECRET)
        tracer = Tracer("client1", client)
        trace = tracer.create_trace()
        tracer.record_event(trace.trace_id, "PutValue", {"Value": "x" * 4_500_000})
        trace.record_action(ServerStart(1))
        assert await client.aclose() == 0
        await server.close()
        return client

    client = _run(scenario())
    assert client.oversize == 1 and client.dropped == 0
    text = (tmp_path / "t.log").read_text()
    assert "4.5 MB" in text and "frame limit" in text
    assert validate_shiviz((tmp_path / "s.log").read_text()) == []
    assert (tmp_path / "s.log").read_text().count("\nclient1 {") == 3


def test_silent_connections_are_capped_and_timed_out(tmp_path: Path) -> None:
    async def scenario() -> TracingServer:
        server = await _server(tmp_path, max_connections=5, handshake_timeout=0.3)
        silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
        await asyncio.sleep(1.0)
        client = TracingClient(server.address, secret=SECRET)
        Tracer("server1", client).create_trace()
        assert await client.aclose() == 0
        for _, writer in silent:
            writer.close()
        await server.close()
        return server

    server = _run(scenario())
    assert server.problems["connection cap"] == 15
    assert server.problems["handshake timeout"] == 5
    assert server.records_written == 1
