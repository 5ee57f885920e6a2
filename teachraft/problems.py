"""Everything a cluster refused or dropped, counted where a user looks: ``status()["problems"]``.

Nothing teachraft drops may vanish into a log no one reads: a refused
connection, a forged heartbeat ack, a refused or shortened trace record, a torn
tail cut from a data file. Each part counts its own (``Node.problems``,
``HeartbeatMonitor.ignored``, ``TracingServer.problems``, ``TracingClient``'s
``oversize`` and ``dropped``); this module adds them up per kind, and
``describe`` gives one line per kind for a panel or a command's output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

LABELS = {
    "auth": "connections refused: the peer did not know the cluster secret",
    "handshake timeout": "connections closed: no handshake in time",
    "connection cap": "connections refused: too many open",
    "bad frame": "connections closed: bytes that break the protocol",
    "forged heartbeats": "heartbeats or acks ignored: forged, replayed or malformed",
    "trace auth": "tracer connections refused: the tracer did not know the cluster secret",
    "forged clock": "trace records refused: a clock entry no received token explains",
    "trace oversize": "trace records whose body was left out: over the frame limit",
    "trace dropped": "trace records dropped: they could not be encoded",
    "trace connection cap": "tracer connections refused: too many open",
    "torn tails": "torn tails dropped from data files after a crash",
    "coord down": (
        "coord down: in coord mode only the coord detects failures and chooses leaders; "
        "the cluster serves until the leader fails, and cannot recover from that"
    ),
}
_TRACING_KINDS = {
    "auth": "trace auth",
    "handshake timeout": "trace auth",
    "connection cap": "trace connection cap",
}


def collect(
    hosts: Iterable[Any],
    tracing_server: Any = None,
    sinks: Iterable[Any] = (),
    torn_tails: int = 0,
) -> dict[str, int]:
    """The counts of every kind of problem in a cluster (kinds with none are left out)."""
    total: Counter[str] = Counter()
    for host in hosts:
        if host is None:
            continue
        if getattr(host, "failure", ""):
            total[host.failure] += 1
        for node in host.nodes():
            total.update(node.problems)
        for part in (getattr(host, "monitor", None), getattr(host, "heartbeats", None)):
            if part is not None:
                total["forged heartbeats"] += part.ignored
    if tracing_server is not None:
        for kind, count in tracing_server.problems.items():
            total[_TRACING_KINDS.get(kind, kind)] += count
    for sink in sinks:
        total["trace oversize"] += getattr(sink, "oversize", 0)
        total["trace dropped"] += getattr(sink, "dropped", 0)
    total["torn tails"] += torn_tails
    return {kind: count for kind, count in sorted(total.items()) if count}


def describe(problems: dict[str, int]) -> list[str]:
    """One line per kind: ``3 connections refused: the peer did not know the cluster secret``."""
    return [f"{count} {LABELS.get(kind, kind)}" for kind, count in problems.items()]
