"""Where a record's clock entries for other hosts came from, checked by the tracing server.

A host's vector clock learns about another host only by receiving a token: the
entries for every host but its own can grow only in a ``ReceiveTokenTrace``
record, and then no further than the clock inside the token it received.
A record whose clock claims more (``{ghost: 5, server2: 1000000}``) would hold
back every later record of the run while the server waits for events that
never happen, and then fill the log with causality errors; the server refuses
it instead. An entry is also explained when the server has already seen that
event (a tracer restarted with the clock the server gave it).
"""

from __future__ import annotations

from collections.abc import Callable

from teachraft.tracing.sinks import Record
from teachraft.tracing.tokens import decode_token

RECEIVE_TAG = "ReceiveTokenTrace"


def unexplained_entry(
    record: Record, previous: dict[str, int] | None, seen: Callable[[str, int], bool]
) -> str | None:
    """Why ``record``'s clock cannot be right (None when every entry is explained).

    ``previous`` is the clock of the host's latest earlier record, ``seen(host,
    time)`` tells whether the server has that event.
    """
    before = previous or {}
    carried: dict[str, int] = {}
    if record.tag == RECEIVE_TAG:
        token = record.body.get("Token")
        try:
            carried = decode_token(token)[2] if token else {}
        except (ValueError, TypeError):
            carried = {}
    identity = record.identity
    for host, time in record.clock.items():
        if (
            host == identity
            or time <= before.get(host, 0)
            or time <= carried.get(host, 0)
            or seen(host, time)
        ):
            continue
        return (
            f"the record {identity}:{record.clock.get(identity)} ({record.tag}) claims "
            f"{host}:{time}, which no token it received carries"
        )
    return None
