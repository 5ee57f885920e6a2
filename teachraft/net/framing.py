"""Length-prefixed msgpack frames: the byte format of every teachraft connection.

A frame is a 4-byte big-endian length followed by exactly one msgpack value of
that many bytes. The length lets a reader reject an oversized frame before it
buffers it, and lets it find the next frame after any value. Nothing received is
ever passed to pickle, eval or exec: msgpack decodes only plain data.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 4 * 1024 * 1024


class FrameError(Exception):
    """A peer sent bytes that are not a valid frame; its connection must close."""


def encode_frame(obj: Any) -> bytes:
    """Return the frame bytes for one msgpack-able value."""
    body = msgpack.packb(obj, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> Any:
    """Decode one frame body, raising FrameError on anything but one msgpack value."""
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise FrameError(f"malformed msgpack frame: {exc}") from None
    except Exception as exc:  # msgpack raises a few other types on hostile input
        raise FrameError(f"malformed msgpack frame: {type(exc).__name__}: {exc}") from None


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get back whole values.

    Kept separate from any socket (the h11 shape) so tests can feed it one byte
    at a time, and so a protocol object can use it from ``data_received``.
    """

    __slots__ = ("_buf", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Add bytes; return every value completed by them (possibly none)."""
        buf = self._buf
        buf += data
        out: list[Any] = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            (size,) = HEADER.unpack_from(buf, pos)
            if size > self.max_frame:
                raise FrameError(f"frame of {size} bytes exceeds the limit of {self.max_frame}")
            end = pos + 4 + size
            if end > n:
                break
            out.append(decode_body(bytes(buf[pos + 4 : end])))
            pos = end
        if pos:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buf)
