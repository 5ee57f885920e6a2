"""Size limits that keep every message below the transport's frame limit.

A frame holds at most ``net.framing.DEFAULT_MAX_FRAME`` bytes (4 MiB). A log
entry travels whole, in one client request and in one AppendEntries, so a Put
larger than a frame could never be replicated: it is refused at the client
before it reaches the log (``check_put``), with room left for the message
around it. AppendEntries batches are cut by bytes as well as by count
(``ServerOptions.max_batch_bytes``), so a follower that missed several large
values gets them over several frames instead of one frame that can never be
sent.
"""

from __future__ import annotations

from teachraft.errors import ValueTooLargeError

MAX_VALUE_BYTES = 3 * 1024 * 1024
"""Default limit on a Put's key plus value, in UTF-8 bytes (``max_value_bytes``)."""

MAX_ENTRY_BYTES = 4 * 1024 * 1024 - 64 * 1024
"""Hard ceiling on a Put, whatever ``max_value_bytes`` says: one entry plus the
AppendEntries around it must fit in one 4 MiB frame. Servers refuse more."""

MAX_BATCH_BYTES = 1024 * 1024
"""Default cap on the entry bytes of one AppendEntries (one entry is always sent)."""

ENTRY_OVERHEAD = 64
"""Bytes an entry costs on the wire besides its strings (msgpack ints and headers)."""


def text_bytes(text: str) -> int:
    """UTF-8 size of ``text``; exact for ASCII, an upper bound otherwise (O(1))."""
    return len(text) if text.isascii() else 4 * len(text)


def put_problem(key: str, value: str, limit: int = MAX_VALUE_BYTES) -> str | None:
    """Why a Put of ``key`` and ``value`` is too large (None when it fits ``limit``)."""
    limit = min(limit, MAX_ENTRY_BYTES)
    size = text_bytes(key) + text_bytes(value)
    if size <= limit:
        return None
    size = len(key.encode("utf-8")) + len(value.encode("utf-8"))
    if size <= limit:
        return None
    return (
        f"value is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB "
        "(max_value_bytes), so that every message stays below the 4.2 MB frame limit"
    )


def check_put(key: str, value: str, limit: int = MAX_VALUE_BYTES) -> None:
    """Raise ValueTooLargeError when a Put of ``key`` and ``value`` exceeds ``limit``."""
    problem = put_problem(key, value, limit)
    if problem is not None:
        raise ValueTooLargeError(problem)


def entry_bytes(entry: tuple) -> int:
    """Wire-size estimate of one log entry (key, value and client id, plus overhead)."""
    return ENTRY_OVERHEAD + text_bytes(entry[3]) + text_bytes(entry[4]) + text_bytes(entry[5])


def within_bytes(entries: list, limit: int) -> list:
    """The longest prefix of ``entries`` whose size is at most ``limit`` (never empty)."""
    total = 0
    for i, entry in enumerate(entries):
        total += entry_bytes(entry)
        if total > limit and i:
            return entries[:i]
    return entries
