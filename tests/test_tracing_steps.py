"""The tracing hot path's shortcuts give exactly what the long way gives.

Local events travel as one clock step (``Record.step``), the server and the
writer reuse what they computed for the previous event, and action bodies are
built with one conversion lookup per type: every file, every body and every
refusal must be the same as without these shortcuts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import random
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teachraft.net.framing import decode_body, encode_frame
from teachraft.tracing import gojson
from teachraft.tracing.actions import ACTION_TYPES, ClientInfo, Command, action_body, plain
from teachraft.tracing.formats import (
    ClockTextCache,
    body_json,
    clock_texts,
    format_records,
    record_lines,
)
from teachraft.tracing.gojson import go_json
from teachraft.tracing.ordering import CausalOrderer
from teachraft.tracing.process import _NoTable
from teachraft.tracing.server import TracingServer
from teachraft.tracing.sinks import MemorySink, Record
from teachraft.tracing.tokens import TokenError, decode_clock, decode_token, encode_token
from teachraft.tracing.tracer import Tracer
from teachraft.tracing.wire import ProtocolError, batch_message, parse_batch


class Kind(enum.IntEnum):
    PUT = 1


class Colour(str, enum.Enum):
    RED = "red"


class Flag(enum.IntFlag):
    A = 4


def causal_records(count: int, hosts: int = 5, seed: int = 0) -> list[Record]:
    """Records of hosts that pass tokens around, in the order they were made."""
    sink = MemorySink()
    tracers = [Tracer(f"host{i}", sink, rng=random.Random(i)) for i in range(hosts)]
    traces = [t.create_trace() for t in tracers]
    rng = random.Random(seed)
    while len(sink.records) < count:
        i = rng.randrange(hosts)
        if rng.random() < 0.3:
            j = (i + 1 + rng.randrange(hosts - 1)) % hosts
            traces[j] = tracers[j].receive_token(traces[i].generate_token())
        else:
            key = f"k{rng.randrange(9)}"
            traces[i].record_action(Command(Kind.PUT, key, "v", ClientInfo("1", 2)))
    return sink.records[:count]


def without_steps(records: list[Record]) -> list[Record]:
    return [replace(r, step=False) for r in records]


# ------------------------------------------------------------------ bodies
TRICKY = [
    Kind.PUT,
    Colour.RED,
    Flag.A,
    (1, "a", (Kind.PUT,)),
    {1: Kind.PUT, "k": [Colour.RED, b"x"]},
    Command(Kind.PUT, "k", "v", ClientInfo("c", 3)),
    bytearray(b"ab"),
    memoryview(b"cd"),
    None,
    2.5,
    True,
    [{"Term": 1, "Command": {"Kind": Kind.PUT, "ClientInfo": {"OpId": 2}}, "Index": 3}],
]


def reference_plain(value: object) -> object:
    """What a body value must become, written the plain, slow way (the spec)."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, dict):
        return {str(k): reference_plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: reference_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [reference_plain(v) for v in value]
    raise TypeError(type(value).__name__)


@pytest.mark.parametrize("name", sorted(ACTION_TYPES))
def test_bodies_are_what_the_reference_builds(name: str) -> None:
    cls = ACTION_TYPES[name]
    count = len(cls.__dataclass_fields__)
    for shift in range(len(TRICKY)):
        values = [TRICKY[(shift + i) % len(TRICKY)] for i in range(count)]
        action = cls(*values)
        fast, slow = action_body(action), reference_plain(action)
        assert fast == slow
        assert repr(fast) == repr(slow)  # the same types too (True is not 1, 'red' not RED)


def test_a_value_a_trace_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot record a value of type set"):
        plain({1, 2})


plain_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=5),
        st.binary(max_size=5),
        st.sampled_from([Kind.PUT, Colour.RED, Flag.A]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 9)), inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_plain_values_are_what_the_reference_builds(value: object) -> None:
    assert repr(plain(value)) == repr(reference_plain(value))


# --------------------------------------------------------------------- wire
def test_local_events_travel_without_their_clock_and_come_back_whole() -> None:
    records = causal_records(400)
    message = decode_body(encode_frame(batch_message(7, records))[4:])
    sent = message["recs"]
    steps = [r for r in records if r.tag != "ReceiveTokenTrace"]
    assert sum(item[4] is None for item in sent) >= len(steps) - 5  # the first of each host
    assert all(item[4] is not None for item, r in zip(sent, records, strict=True) if not r.step)
    seq, back = parse_batch(message)
    assert seq == 7
    assert back == records
    assert [r.clock for r in back] == [r.clock for r in records]


def test_a_step_needs_a_record_of_its_host_before_it_in_the_batch() -> None:
    message = {"t": "rec", "seq": 1, "recs": [["a", 1, "X", {}, None]]}
    with pytest.raises(ProtocolError, match="without a clock"):
        parse_batch(message)
    message["recs"] = [["b", 1, "X", {}, {"b": 1}], ["a", 1, "X", {}, None]]
    with pytest.raises(ProtocolError, match="without a clock"):
        parse_batch(message)


def test_a_step_after_a_refused_record_is_checked_and_refused_too(tmp_path: Path) -> None:
    async def run() -> TracingServer:
        server = TracingServer("127.0.0.1:0", tmp_path / "t.log", tmp_path / "s.log")
        await server.start()
        forged = ["a", 1, "X", {}, {"a": 1, "ghost": 5}]
        server.handle({"t": "rec", "seq": 1, "recs": [forged, ["a", 1, "Y", {}, None]]})
        server.handle({"t": "rec", "seq": 2, "recs": [["a", 1, "Z", {}, {"a": 1}]]})
        await server.close()
        return server

    server = asyncio.run(run())
    assert server.problems["forged clock"] == 2
    assert (tmp_path / "t.log").read_text().count("\n") == 1
    assert '"Tag":"Z"' in (tmp_path / "t.log").read_text()


def _serve(records: list[Record], folder: Path, batch: int) -> tuple[bytes, bytes]:
    """Both files a server writes for ``records`` sent per host in batches of ``batch``."""

    async def run() -> None:
        server = TracingServer("127.0.0.1:0", folder / "t.log", folder / "s.log", table=_NoTable())
        await server.start()
        seq = 0
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            for host in sorted({r.identity for r in chunk}, reverse=True):
                seq += 1
                mine = [r for r in chunk if r.identity == host]
                server.handle(decode_body(encode_frame(batch_message(seq, mine))[4:]))
        await server.close()

    folder.mkdir()
    asyncio.run(run())
    return (folder / "t.log").read_bytes(), (folder / "s.log").read_bytes()


@pytest.mark.parametrize("batch", [1, 7, 60, 1000])
def test_both_files_are_byte_identical_with_and_without_steps(tmp_path: Path, batch: int) -> None:
    records = causal_records(1500, seed=batch)
    fast = _serve(records, tmp_path / "steps", batch)
    slow = _serve(without_steps(records), tmp_path / "whole", batch)
    assert fast == slow
    assert fast[0].count(b"\n") == len(records)


# ----------------------------------------------------------------- ordering
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40))
def test_the_orderer_writes_the_same_sequence_with_and_without_steps(seed: int, batch: int) -> None:
    records = causal_records(300, seed=seed)
    rng = random.Random(seed)
    arrivals: list[list[Record]] = []
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        per_host = [[r for r in chunk if r.identity == h] for h in {r.identity for r in chunk}]
        rng.shuffle(per_host)
        arrivals.extend(per_host)
    rng.shuffle(arrivals)  # batches from different connections overtake each other

    def order(marked: bool) -> list[tuple[str, int]]:
        orderer = CausalOrderer()
        out: list[Record] = []
        for group in arrivals:
            out += orderer.offer_many(group if marked else without_steps(group))
        out += orderer.drain()
        return [(r.identity, r.time) for r in out]

    assert order(True) == order(False)


def test_a_step_whose_clock_is_not_one_step_on_is_checked_entry_by_entry() -> None:
    orderer = CausalOrderer()
    assert len(orderer.offer_many([Record("a", 1, "X", {}, {"a": 1}, True)])) == 1
    liar = Record("a", 1, "X", {}, {"a": 2, "b": 1}, True)  # marked a step, but learned b:1
    assert orderer.offer_many([liar]) == []
    assert orderer.held == 1
    assert len(orderer.offer_many([Record("b", 1, "X", {}, {"b": 1})])) == 2


# ------------------------------------------------------------------ writer
def test_clock_texts_reused_a_step_at_a_time_are_the_full_texts() -> None:
    cache = ClockTextCache()
    records = causal_records(500, seed=3)
    liar = Record("host1", 1, "X", {}, {"host1": 10**6, "host2": 3}, True)
    for record in [*records, liar, *records[:50]]:
        expected = clock_texts(record.clock)
        assert cache.texts(record.identity, record.clock, record.step) == expected


def test_a_token_body_is_the_json_go_json_writes() -> None:
    for token in (b"", b"\x00\xff" * 40, bytes(range(256))):
        assert body_json({"Token": token}) == go_json({"Token": token})
    assert body_json({"Token": None}) == '{"Token":null}'


# ------------------------------------------------------------------- tokens
def _token_variants(token: bytes) -> list[bytes]:
    """A good token, and bad ones made from it by msgpack-level edits."""
    clock_at = token.index(b"\xcf") + 9
    return [
        token,
        token[:-1],
        token + b"\x00",
        token[:clock_at] + msgpack.packb({"a": -1}),
        token[:clock_at] + msgpack.packb({"a": True}),
        token[:clock_at] + msgpack.packb({b"a": 1}),
        token[:clock_at] + msgpack.packb({}),
        token[:clock_at] + msgpack.packb([1]),
    ]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 2**64 - 1), max_size=6))
def test_the_receive_fast_path_agrees_with_decode_token(clock: dict[str, int]) -> None:
    assert decode_clock(encode_token("host1", 7, clock)) == (7, clock)
    for token in _token_variants(encode_token("host1", 2**63 + 5, clock)):
        fast = decode_clock(token)
        try:
            _, trace_id, decoded = decode_token(token)
        except TokenError:
            assert fast is None
            continue
        assert fast is None or fast == (trace_id, decoded)


def test_format_records_gives_record_lines_texts() -> None:
    records = causal_records(300, seed=5)
    records += [
        Record("h<1>", 3, "Tag&", {"Token": None, "x": "<\u2028>"}, {"h<1>": 1}),
        Record("h2", 4, "T", {"Token": "text"}, {"h2": 1}),
        Record("h2", 4, "T", {"B": b"\x00"}, {"h2": 2}, True),
    ]
    trace: list[str] = []
    shiviz: list[str] = []
    assert format_records(records, ClockTextCache(), trace, shiviz) == len(records)
    assert list(zip(trace, shiviz, strict=True)) == [record_lines(r) for r in records]


def test_a_tracers_first_record_travels_with_its_whole_clock() -> None:
    sink = MemorySink()
    Tracer("a", sink).create_trace()  # (a, 1)
    again = Tracer("a", sink, clock={"a": 1, "b": 7})  # a new life that learned b:7
    again.create_trace().record_action(ClientInfo("1", 2))
    assert [r.step for r in sink.records] == [False, False, True]
    assert parse_batch(batch_message(1, sink.records))[1] == sink.records
    assert sink.records[1].clock == {"a": 2, "b": 7}


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=4), st.text(alphabet='ab<>&\\"\b\f\n\u2028\u2029é', max_size=12)
    )
)
def test_go_json_rewrites_exactly_where_the_escape_rules_say(body: dict[str, str]) -> None:
    text = gojson._encode(body)
    assert go_json(body) == gojson._GO_ESCAPES.sub(gojson._fix, text)
