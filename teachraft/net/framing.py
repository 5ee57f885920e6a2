"""Length-prefixed msgpack frames: the byte format of every teachraft connection.

A frame is a 4-byte big-endian length followed by exactly one msgpack value of
that many bytes. The length lets a reader reject an oversized frame before it
buffers it, and lets it find the next frame after any value. Nothing received is
ever passed to pickle, eval or exec: msgpack decodes only plain data, and map
keys must be strings or bytes (``strict_map_key``) so a peer cannot make us hash
arbitrary objects.

The decoder is written for the hot path of the transport: the socket reads
straight into the decoder's reusable buffer, and frames are decoded out of it
through a memoryview, without copying them first. The buffer grows only as
bytes arrive, never to the size a header announces, so a peer that sends a
4-byte header for a 4 MiB frame costs us 4 bytes, not 4 MiB.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 4 * 1024 * 1024
_SHRINK_ABOVE = 1024 * 1024

_unpackb = msgpack.unpackb
_unpack_header = HEADER.unpack_from
_pack_header = HEADER.pack


class FrameError(Exception):
    """A peer sent bytes that are not a valid frame; its connection must close."""


def encode_frame(obj: Any) -> bytes:
    """Return the frame bytes for one msgpack-able value."""
    body = msgpack.packb(obj, use_bin_type=True)
    return _pack_header(len(body)) + body


def decode_body(body: bytes | bytearray | memoryview) -> Any:
    """Decode one frame body, raising FrameError on anything but one msgpack value."""
    try:
        return _unpackb(body, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise FrameError(f"malformed msgpack frame: {exc}") from None
    except Exception as exc:  # msgpack raises a few other types on hostile input
        raise FrameError(f"malformed msgpack frame: {type(exc).__name__}: {exc}") from None


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get back whole values.

    Kept separate from any socket (the h11 shape) so tests can feed it one byte
    at a time, and so a protocol object can use it from ``data_received``. It
    also offers the ``asyncio.BufferedProtocol`` shape: ``get_buffer`` hands out
    free space in its own buffer for the socket to read into, ``commit(n)``
    decodes what arrived. That spares the event loop a fresh 256 KiB bytes
    object per read, the biggest cost of small messages on loopback.

    After a FrameError the decoder's state is undefined: close the connection.
    """

    __slots__ = ("_buf", "_capacity", "_end", "_start", "_view", "max_frame", "single")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, capacity: int = 65536) -> None:
        self.max_frame = max_frame
        self.single = False  # decode at most one frame per commit (during a handshake)
        self._capacity = max(capacity, 16)
        self._buf = bytearray(self._capacity)
        self._view = memoryview(self._buf)
        self._start = 0  # first byte not yet decoded
        self._end = 0  # one past the last byte received

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Add bytes; return every value completed by them (possibly none)."""
        size = len(data)
        self._reserve(size)
        end = self._end
        self._view[end : end + size] = data
        return self.commit(size)

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Free space to receive into; follow with ``commit(nbytes)``."""
        self._reserve(max(sizehint, 1))
        return self._view[self._end :]

    def commit(self, nbytes: int) -> list[Any]:
        """Account for ``nbytes`` written into ``get_buffer``; return whole values."""
        self._end += nbytes
        out: list[Any] = []
        self._scan(out)
        if self._start == self._end:
            self._start = self._end = 0
            if len(self._buf) > _SHRINK_ABOVE:  # a big frame passed: give the memory back
                self._view.release()
                self._buf = bytearray(self._capacity)
                self._view = memoryview(self._buf)
        return out

    def _scan(self, out: list[Any]) -> None:
        """Decode every whole frame between ``_start`` and ``_end`` into ``out``."""
        buf = self._buf
        view = self._view
        pos = self._start
        end = self._end
        limit = self.max_frame
        single = self.single
        append = out.append
        try:
            while end - pos >= 4:
                (size,) = _unpack_header(buf, pos)
                if size > limit:
                    raise FrameError(f"frame of {size} bytes exceeds the limit of {limit}")
                stop = pos + 4 + size
                if stop > end:
                    break  # the rest arrives later; the buffer grows only as it does
                append(_unpackb(view[pos + 4 : stop], raw=False, strict_map_key=True))
                pos = stop
                if single:
                    break
        except FrameError:
            raise
        except Exception:
            decode_body(view[pos + 4 : stop])  # raises the FrameError that explains it
            raise
        self._start = pos

    def _reserve(self, free: int) -> None:
        """Make at least ``free`` bytes of room after ``_end`` (compacting or growing)."""
        buf = self._buf
        if len(buf) - self._end >= free:
            return
        pending = self._end - self._start
        needed = pending + free
        if needed <= len(buf) and self._start:
            self._view[:pending] = self._view[self._start : self._end]
        else:
            grown = bytearray(max(needed, 2 * len(buf)))
            grown[:pending] = self._view[self._start : self._end]
            self._view.release()
            self._buf = grown
            self._view = memoryview(grown)
        self._start = 0
        self._end = pending

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return self._end - self._start

    @property
    def allocated(self) -> int:
        """Bytes this decoder holds in memory (its buffer's size)."""
        return len(self._buf)
