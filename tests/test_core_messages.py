"""Wire messages: every one round-trips, and every malformed body is refused."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from teachraft.core.log import GET, NOOP, PUT, Entry
from teachraft.core.messages import (
    MESSAGES,
    SCHEMA,
    AppendEntries,
    ClientRequest,
    MessageError,
    ServerLogStateRequest,
    decode,
)

SAMPLES = {
    "int": 7,
    "str": "k1",
    "bytes": b"\x01token",
    "bool": True,
    "str?": None,
    "entries": [Entry(1, 1, PUT, "k", "v", "1", 1, 1), Entry(2, 2, NOOP)],
    "peers": [(1, "127.0.0.1:1"), (2, "127.0.0.1:2")],
    "pairs": [("k1", "v1"), ("k2", "")],
    "sessions": [("client1", 3, 5, [(3, None), (4, "v1")])],
    "any": None,
}


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
def test_every_message_round_trips_through_msgpack(cls) -> None:
    msg = cls(*[SAMPLES[kind] for _, kind in cls.WIRE])
    wire = msgpack.unpackb(msgpack.packb(msg.to_wire(), use_bin_type=True), raw=False)
    assert decode(cls.METHOD, wire) == msg


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
def test_wrong_shapes_are_refused(cls) -> None:
    good = list(cls(*[SAMPLES[kind] for _, kind in cls.WIRE]).to_wire())
    with pytest.raises(MessageError):
        cls.from_wire(good[:-1])
    with pytest.raises(MessageError):
        cls.from_wire({"fields": good})
    for i, (_, kind) in enumerate(cls.WIRE):
        if kind == "any":
            continue
        bad = list(good)
        bad[i] = 3.5
        with pytest.raises(MessageError):
            cls.from_wire(bad)


def test_unknown_method_is_refused() -> None:
    with pytest.raises(MessageError, match="unknown message type"):
        decode("drop_table", [])
    assert set(SCHEMA) == {m.METHOD for m in MESSAGES}


def test_malformed_entries_are_refused() -> None:
    base = [1, 1, 0, 0, [], 0, b""]
    for entries in ([[1, 1, 9, "", "", "", 0, 0]], [[1, 1]], ["x"], [[1, 1, 1, 2, "", "", 0, 0]]):
        body = list(base)
        body[4] = entries
        with pytest.raises(MessageError):
            AppendEntries.from_wire(body)


def test_bool_is_not_an_int_and_int_is_not_a_bool() -> None:
    with pytest.raises(MessageError):
        ClientRequest.from_wire(["1", True, PUT, "k", "v", 0, b""])
    with pytest.raises(MessageError):
        ServerLogStateRequest.from_wire([2, 1, b""])


@given(
    st.integers(0, 2**63 - 1),
    st.integers(0, 2**31),
    st.sampled_from([PUT, GET, NOOP]),
    st.text(),
    st.text(),
)
def test_entries_round_trip(term: int, index: int, kind: int, key: str, value: str) -> None:
    e = Entry(term, index, kind, key, value, "c", 1, 0)
    wire = msgpack.unpackb(msgpack.packb(e.to_wire()), raw=False)
    assert Entry.from_wire(wire) == e
