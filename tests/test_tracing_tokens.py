"""Trace tokens are byte-identical to the DistributedClocks tracing library's."""

from __future__ import annotations

import base64

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teachraft.tracing.tokens import TokenError, decode_token, encode_token, token_text

WORKED_EXAMPLES = [
    (
        "p3NlcnZlcjHPdOANis/j1tmBp3NlcnZlcjEE",
        ("server1", 8421746193027290841, {"server1": 4}),
    ),
    (
        "pWNvb3JkzwLyLnqg7utrhKdzZXJ2ZXIzBKVjb29yZAunc2VydmVyMQSnc2VydmVyMgQ=",
        ("coord", 212283236660734827, {"server3": 4, "coord": 11, "server1": 4, "server2": 4}),
    ),
    (
        "p3NlcnZlcjHPOCpr+Xvwdu2GpWNvb3JkHadzZXJ2ZXIzGadzZXJ2ZXIyMadjbGllbnQxGadjbGllbnQyGadzZXJ2ZXIxzIU=",
        (
            "server1",
            4047165934416197357,
            {
                "coord": 29,
                "server3": 25,
                "server2": 49,
                "client1": 25,
                "client2": 25,
                "server1": 133,
            },
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), WORKED_EXAMPLES)
def test_worked_examples_decode_and_reencode_byte_for_byte(text: str, expected: tuple) -> None:
    raw = base64.b64decode(text)
    identity, trace_id, clock = decode_token(raw)
    assert (identity, trace_id, clock) == expected
    assert list(clock) == list(expected[2]), "the decoded clock keeps the token's key order"
    assert encode_token(identity, trace_id, clock) == raw
    assert token_text(encode_token(identity, trace_id, clock)) == text


def test_base64_text_is_accepted_by_decode() -> None:
    text, expected = WORKED_EXAMPLES[0]
    assert decode_token(text) == expected


def test_small_trace_ids_still_use_the_uint64_form() -> None:
    token = encode_token("c", 5, {"c": 1})
    assert token == b"\xa1c" + b"\xcf" + (5).to_bytes(8, "big") + b"\x81\xa1c\x01"
    assert msgpack.packb(5) != b"\xcf" + (5).to_bytes(8, "big")


def test_clock_values_take_their_smallest_msgpack_form() -> None:
    token = encode_token("a", 1, {"a": 127, "b": 133, "c": 300, "d": 70000, "e": 1 << 40})
    tail = token[2 + 9 :]
    assert tail == (
        b"\x85"
        + b"\xa1a\x7f"
        + b"\xa1b\xcc\x85"
        + b"\xa1c\xcd\x01\x2c"
        + b"\xa1d\xce\x00\x01\x11\x70"
        + b"\xa1e\xcf\x00\x00\x01\x00\x00\x00\x00\x00"
    )


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\xa1a",
        b"\xa1a\xcf\x00\x00\x00\x00\x00\x00\x00\x01",
        b"\xa1a\xcf\x00\x00\x00\x00\x00\x00\x00\x01\x81\xa1a\x01\x00",
        b"\x01\x02\x03",
        msgpack.packb("a") + msgpack.packb(-1) + msgpack.packb({"a": 1}),
        msgpack.packb("a") + msgpack.packb(1) + msgpack.packb({"a": -1}),
        msgpack.packb("a") + msgpack.packb(1) + msgpack.packb([1]),
        "not base64!",
    ],
)
def test_malformed_tokens_raise_token_error(bad: bytes | str) -> None:
    with pytest.raises(TokenError):
        decode_token(bad)


def test_encode_rejects_ids_outside_uint64() -> None:
    with pytest.raises(ValueError):
        encode_token("a", -1, {"a": 1})
    with pytest.raises(ValueError):
        encode_token("a", 1 << 64, {"a": 1})


identities = st.text(min_size=1, max_size=40)
clocks = st.dictionaries(st.text(max_size=12), st.integers(0, (1 << 64) - 1), max_size=8)


@settings(max_examples=300, deadline=None)
@given(identity=identities, trace_id=st.integers(0, (1 << 64) - 1), clock=clocks)
def test_tokens_round_trip_for_any_clock(identity: str, trace_id: int, clock: dict) -> None:
    token = encode_token(identity, trace_id, clock)
    head = msgpack.packb(identity)
    assert token[: len(head)] == head
    assert token[len(head)] == 0xCF
    assert decode_token(token) == (identity, trace_id, clock)
    decoded_identity, decoded_id, decoded_clock = decode_token(token)
    assert list(decoded_clock) == list(clock)
    assert encode_token(decoded_identity, decoded_id, decoded_clock) == token
