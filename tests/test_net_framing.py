"""The frame format: length-prefixed msgpack, decoded incrementally and defensively."""

from __future__ import annotations

import contextlib
import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teachraft.net.framing import (
    DEFAULT_MAX_FRAME,
    HEADER,
    FrameDecoder,
    FrameError,
    decode_body,
    encode_frame,
)

VALUES = [
    None,
    True,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    1.5,
    "",
    "héllo",
    b"\x00\xff",
    [],
    [1, "two", [3.0, None]],
    {"term": 3, "entries": [{"index": 1, "command": b"put k v"}]},
]

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


def feed_in_pieces(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list:
    """Feed ``data`` split at the given offsets; return every decoded value."""
    out: list = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    return out


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_round_trip(value: object) -> None:
    assert FrameDecoder().feed(encode_frame(value)) == [value]


def test_frame_is_a_big_endian_length_then_msgpack() -> None:
    frame = encode_frame([1, "a"])
    body = msgpack.packb([1, "a"], use_bin_type=True)
    assert frame == HEADER.pack(len(body)) + body


def test_feeding_one_byte_at_a_time_yields_each_value_once() -> None:
    data = b"".join(encode_frame(v) for v in VALUES)
    decoder = FrameDecoder(capacity=16)
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i : i + 1])
    assert out == VALUES
    assert decoder.buffered == 0


def test_partial_frame_stays_buffered_until_complete() -> None:
    frame = encode_frame({"k": "v" * 100})
    decoder = FrameDecoder()
    assert decoder.feed(frame[:10]) == []
    assert decoder.buffered == 10
    assert decoder.feed(frame[10:] + frame[:3]) == [{"k": "v" * 100}]
    assert decoder.buffered == 3


def test_buffer_api_matches_feed() -> None:
    values = [["x" * n, n] for n in range(0, 3000, 97)]
    data = b"".join(encode_frame(v) for v in values)
    decoder = FrameDecoder(capacity=64)
    rng = random.Random(7)
    out: list = []
    pos = 0
    while pos < len(data):
        space = decoder.get_buffer(-1)
        size = min(len(space), rng.randint(1, 500), len(data) - pos)
        space[:size] = data[pos : pos + size]
        out += decoder.commit(size)
        pos += size
    assert out == values


def test_a_frame_larger_than_the_buffer_grows_it() -> None:
    big = b"\x01" * 200_000
    assert FrameDecoder(capacity=1024).feed(encode_frame(big)) == [big]


def test_oversized_length_prefix_is_rejected_before_the_body_arrives() -> None:
    decoder = FrameDecoder(max_frame=1000)
    with pytest.raises(FrameError, match="exceeds the limit"):
        decoder.feed(HEADER.pack(1001))


def test_default_limit_rejects_a_huge_prefix() -> None:
    with pytest.raises(FrameError, match="exceeds"):
        FrameDecoder().feed(HEADER.pack(DEFAULT_MAX_FRAME + 1) + b"x")


@pytest.mark.parametrize(
    "body",
    [b"\xc1", b"\x01\x02", b"\x92\x01", msgpack.packb({1: 2})],
    ids=["reserved-byte", "two-values", "truncated-array", "int-map-key"],
)
def test_malformed_body_is_rejected(body: bytes) -> None:
    with pytest.raises(FrameError, match="malformed"):
        FrameDecoder().feed(HEADER.pack(len(body)) + body)


def test_decode_body_never_returns_half_a_value() -> None:
    with pytest.raises(FrameError):
        decode_body(b"\x93\x01\x02")


@settings(max_examples=200, deadline=None)
@given(values=st.lists(msgpack_values, max_size=6), cuts=st.lists(st.integers(0, 400)))
def test_random_values_round_trip_however_the_bytes_are_split(
    values: list, cuts: list[int]
) -> None:
    data = b"".join(encode_frame(v) for v in values)
    decoder = FrameDecoder(capacity=32)
    cuts = [c for c in cuts if c < len(data)]
    assert feed_in_pieces(decoder, data, cuts) == values
    assert decoder.buffered == 0


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=300))
def test_random_bytes_either_decode_or_raise_frame_error(junk: bytes) -> None:
    decoder = FrameDecoder(max_frame=1 << 16)
    with contextlib.suppress(FrameError):
        decoder.feed(junk)
