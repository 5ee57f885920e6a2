"""The tracing protocol's messages, and the checks on everything received.

Each frame (``teachraft.net.framing``) holds one msgpack map:

* ``{"t": "rec", "seq": n, "recs": [[identity, trace_id, tag, body, clock], ...]}``
  a batch of records, answered by ``{"t": "ack", "seq": n}`` once the server
  holds them (written, or waiting for their causal past). A record's clock is
  ``nil`` when it is one step on from the clock of the batch's previous record
  of the same identity: that clock with the own entry +1 (every event but a
  receive). The whole clock of a busy cluster is most of a record's bytes,
  and it need not travel, nor be checked, again for each local event;
* ``{"t": "clock", "id": identity}`` answered by ``{"t": "clock", "id":
  identity, "clock": {...} | None}``: the last clock the server has for that
  identity, so a restarted tracer continues its counter;
* ``{"t": "err", "msg": text}`` sent by the server just before it closes a
  connection that broke the protocol;
* ``{"t": "challenge", "nonce": bytes}``, the server's first message, answered
  by the tracer's first message ``{"t": "auth", "nonce": bytes, "mac": bytes}``:
  an HMAC with the cluster secret over both nonces (``auth_mac``), answered
  by ``{"t": "welcome"}`` (or ``err`` and a close).

A record travels as a 5-element list because that is the cheapest shape to
pack and unpack in bulk. Nothing received is trusted: ``parse_batch`` checks
every field and raises ProtocolError, which closes only that connection.
"""

from __future__ import annotations

from typing import Any

from teachraft.net.auth import mac
from teachraft.tracing.sinks import Record

_MAX_UINT64 = (1 << 64) - 1
_BAD_HOST_CHARS = frozenset(' \t\n\r\v\f"\\')
MAX_NAME = 256


class ProtocolError(ValueError):
    """A peer sent a well-framed message of the wrong shape."""


def batch_message(seq: int, records: list[Record]) -> dict[str, Any]:
    """The message carrying ``records`` as batch number ``seq``.

    A record marked ``step`` whose own time is one more than that of the
    batch's previous record of its identity travels without its clock.
    """
    last: dict[str, int] = {}
    recs: list[list[Any]] = []
    add = recs.append
    for r in records:
        identity = r.identity
        clock = r.clock
        time = clock.get(identity, 0)
        if r.step and last.get(identity, -1) == time - 1:
            add([identity, r.trace_id, r.tag, r.body, None])
        else:
            add([identity, r.trace_id, r.tag, r.body, clock])
        last[identity] = time
    return {"t": "rec", "seq": seq, "recs": recs}


def record_to_wire(record: Record) -> list[Any]:
    """One record as it travels."""
    return [record.identity, record.trace_id, record.tag, record.body, record.clock]


def ack_message(seq: int) -> dict[str, Any]:
    return {"t": "ack", "seq": seq}


def clock_request(identity: str) -> dict[str, Any]:
    return {"t": "clock", "id": identity}


def clock_reply(identity: str, clock: dict[str, int] | None) -> dict[str, Any]:
    return {"t": "clock", "id": identity, "clock": clock}


def error_message(text: str) -> dict[str, Any]:
    return {"t": "err", "msg": text}


def challenge_message(nonce: bytes) -> dict[str, Any]:
    return {"t": "challenge", "nonce": nonce}


def welcome_message() -> dict[str, Any]:
    return {"t": "welcome"}


def auth_mac(key: bytes, server_nonce: bytes, tracer_nonce: Any) -> bytes:
    """The tracer's proof that it knows the cluster secret."""
    tracer = tracer_nonce if type(tracer_nonce) is bytes else b""
    return mac(key, "teachraft-trace", server_nonce, tracer)


def auth_message(key: bytes, server_nonce: bytes, tracer_nonce: bytes) -> dict[str, Any]:
    return {"t": "auth", "nonce": tracer_nonce, "mac": auth_mac(key, server_nonce, tracer_nonce)}


def message_type(message: Any) -> str:
    """The ``t`` of a message, or ProtocolError when it is not a message at all."""
    if type(message) is not dict:
        raise ProtocolError(f"expected a map, got {type(message).__name__}")
    kind = message.get("t")
    if type(kind) is not str:
        raise ProtocolError("message without a string 't'")
    return kind


def parse_batch(message: dict[str, Any]) -> tuple[int, list[Record]]:
    """(seq, records) of a ``rec`` message; ProtocolError for any bad field."""
    seq = message.get("seq")
    items = message.get("recs")
    if type(seq) is not int or type(items) is not list:
        raise ProtocolError("a 'rec' message needs an integer 'seq' and a list 'recs'")
    records: list[Record] = []
    add = records.append
    last: dict[str, dict[str, int]] = {}
    for item in items:
        if type(item) is list and len(item) == 5 and item[4] is None:
            record = _parse_step(item, last)
        else:
            record = parse_record(item)
        last[record.identity] = record.clock
        add(record)
    return seq, records


def _parse_step(item: list[Any], last: dict[str, dict[str, int]]) -> Record:
    """A record sent without its clock: one step on from its identity's previous one."""
    identity, trace_id, tag, body, _ = item
    previous = last.get(identity) if type(identity) is str else None
    if previous is None:
        raise ProtocolError("a record without a clock must follow one of its identity")
    if (
        type(trace_id) is not int
        or type(body) is not dict
        or not 0 <= trace_id <= _MAX_UINT64
        or not _good_name(tag)
    ):
        raise ProtocolError(_record_problem(item))
    time = previous[identity] + 1
    if time > _MAX_UINT64:
        raise ProtocolError(f"the clock of {identity!r} overflows")
    clock = previous.copy()
    clock[identity] = time
    return Record(identity, trace_id, tag, body, clock, True)


_GOOD_NAMES: set[str] = set()


def _good_name(name: object) -> bool:
    """A non-empty string ShiViz can show as a host or tag (results cached)."""
    if type(name) is not str:
        return False
    if name in _GOOD_NAMES:
        return True
    # isprintable() is False for control, format and separator characters
    # (U+0085, U+00A0, U+2028...), which break the line-based ShiViz log.
    if (
        not name
        or len(name) > MAX_NAME
        or not _BAD_HOST_CHARS.isdisjoint(name)
        or not name.isprintable()
    ):
        return False
    if len(_GOOD_NAMES) < 10_000:
        _GOOD_NAMES.add(name)
    return True


def parse_record(item: Any) -> Record:
    """Check one wire record and build the Record (ProtocolError if anything is off)."""
    if type(item) is not list or len(item) != 5:
        raise ProtocolError("a record must be a list of 5 values")
    identity, trace_id, tag, body, clock = item
    if (
        type(trace_id) is not int
        or type(body) is not dict
        or type(clock) is not dict
        or not 0 <= trace_id <= _MAX_UINT64
        or not _good_name(identity)
        or not _good_name(tag)
    ):
        raise ProtocolError(_record_problem(item))
    for key, value in clock.items():
        if type(value) is not int or not 1 <= value <= _MAX_UINT64 or not _good_name(key):
            raise ProtocolError(f"bad clock entry {str(key)[:80]!r}: {str(value)[:40]}")
    if identity not in clock:
        raise ProtocolError(f"the clock of {identity!r} lacks its own entry")
    return Record(identity, trace_id, tag, body, clock)


def _record_problem(item: list[Any]) -> str:
    """Say which field of a refused record is wrong."""
    identity, trace_id, tag, body, _ = item
    if not _good_name(identity):
        return f"bad identity {str(identity)[:80]!r}"
    if type(trace_id) is not int or not 0 <= trace_id <= _MAX_UINT64:
        return f"bad trace id {str(trace_id)[:40]}"
    if not _good_name(tag):
        return f"bad tag {str(tag)[:80]!r}"
    if type(body) is not dict:
        return "a record body must be a map"
    return "a record clock must be a map"


def parse_clock_request(message: dict[str, Any]) -> str:
    """The identity asked about in a ``clock`` message."""
    identity = message.get("id")
    if type(identity) is not str:
        raise ProtocolError("a 'clock' message needs a string 'id'")
    return identity
