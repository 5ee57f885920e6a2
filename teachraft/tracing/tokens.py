"""Trace tokens: the bytes a node sends along with a message to carry its clock.

A token is three msgpack values back to back (not an array): the sender's
identity, the trace id, and the sender's vector clock. The layout is the one
the DistributedClocks tracing library produced, so tokens in KVRaft traces
decode here and tokens made here decode there. Two details make it
byte-identical: the trace id is always written as ``0xcf`` plus 8 big-endian
bytes (msgpack would pick a shorter form for small ids), and the clock map is
written in the key order it is given, so a decoded clock re-encodes to the
same bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import msgpack

_UINT64 = b"\xcf"
_MAX_UINT64 = (1 << 64) - 1
_packb = msgpack.packb
_unpackb = msgpack.unpackb


class TokenError(ValueError):
    """Bytes that are not a well-formed trace token."""


def encode_token(identity: str, trace_id: int, clock: Mapping[str, int]) -> bytes:
    """The token bytes for ``identity``'s ``clock`` inside trace ``trace_id``."""
    if not 0 <= trace_id <= _MAX_UINT64:
        raise ValueError(f"trace id {trace_id} is not a uint64")
    if type(clock) is not dict:
        clock = dict(clock)
    return _packb(identity) + _UINT64 + trace_id.to_bytes(8, "big") + _packb(clock)


def decode_token(token: bytes | str) -> tuple[str, int, dict[str, int]]:
    """Split a token into (identity, trace id, clock); base64 text is accepted too.

    Raises TokenError for anything but exactly three well-typed msgpack values.
    """
    data = _as_bytes(token)
    parsed = _decode_fast(data)
    if parsed is None:
        parsed = _decode_general(data)
    _check_clock(parsed[2])
    return parsed


_STR_ONLY = frozenset({str})
_INT_ONLY = frozenset({int})


def decode_clock(token: bytes) -> tuple[int, dict[str, int]] | None:
    """(trace id, clock) of a well-formed token in the common layout; None otherwise.

    The tracer's receive path: the checks of ``decode_token`` done by C-level
    set and min operations instead of a loop. None means "ask decode_token",
    which accepts the other layouts or raises the TokenError that explains.
    """
    if type(token) is not bytes:
        return None
    parsed = _decode_fast(token)
    if parsed is None:
        return None
    clock = parsed[2]
    if clock and not (
        _STR_ONLY.issuperset(map(type, clock))
        and _INT_ONLY.issuperset(map(type, clock.values()))
        and min(clock.values()) >= 0
    ):
        return None
    return parsed[1], clock


def _as_bytes(token: bytes | str) -> bytes:
    if isinstance(token, str):
        try:
            return base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TokenError(f"token is not valid base64: {exc}") from None
    if isinstance(token, (bytes, bytearray, memoryview)):
        return bytes(token)
    raise TokenError(f"a token must be bytes, not {type(token).__name__}")


def _decode_fast(data: bytes) -> tuple[str, int, dict[str, int]] | None:
    """The common layout: a fixstr identity then ``0xcf`` id then the map."""
    if not data or not 0xA0 <= data[0] <= 0xBF:
        return None
    end = 1 + (data[0] & 0x1F)
    if len(data) < end + 9 or data[end] != 0xCF:
        return None
    try:
        identity = data[1:end].decode("utf-8")
        clock = _unpackb(data[end + 9 :], raw=False, strict_map_key=True)
    except Exception:
        return None
    if type(clock) is not dict:
        return None
    return identity, int.from_bytes(data[end + 1 : end + 9], "big"), clock


def _decode_general(data: bytes) -> tuple[str, int, dict[str, int]]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=len(data) + 16)
    try:
        unpacker.feed(data)
        values = [unpacker.unpack() for _ in range(3)]
    except msgpack.OutOfData:
        raise TokenError("token is truncated: it must hold three msgpack values") from None
    except Exception as exc:
        raise TokenError(f"token is not msgpack: {type(exc).__name__}: {exc}") from None
    if unpacker.tell() != len(data):
        raise TokenError("token has bytes after its three msgpack values")
    identity, trace_id, clock = values
    if not isinstance(identity, str):
        raise TokenError("token identity is not a string")
    if type(trace_id) is not int or trace_id < 0:
        raise TokenError("token trace id is not an unsigned integer")
    if type(clock) is not dict:
        raise TokenError("token clock is not a map")
    return identity, trace_id, clock


def _check_clock(clock: dict[str, int]) -> None:
    for key, value in clock.items():
        if type(key) is not str or type(value) is not int or value < 0:
            raise TokenError(f"token clock entry {key!r}: {value!r} is not str -> uint")


def token_text(token: bytes | None) -> str | None:
    """The base64 form a token takes in trace files (None stays None)."""
    return None if token is None else base64.b64encode(token).decode("ascii")
