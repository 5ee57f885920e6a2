"""Client histories: what every client asked, when, and what it was told.

A linearizability checker needs nothing about the cluster, only the history of
client operations: each op's invocation time, its return time and its result.
The runtime records every client op into a :class:`HistoryRecorder`; the
checker reads the resulting :class:`History`.

The rule that matters most is how an op with an *unknown* outcome is kept: a
client that timed out, or crashed, cannot tell whether its write took effect.
Such an op keeps ``ret = math.inf``: it may take effect at any time after its
call, or never. Closing it at the timeout, or dropping it, would make the
checker report violations that did not happen (or miss ones that did).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Outcome = Literal["ok", "fail", "unknown"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "fail", "unknown")

PathLike = str | os.PathLike[str]


@dataclass(slots=True)
class Op:
    """One client operation, from invocation to return.

    ``value`` is the input (put/append/write value, ``[expect, new]`` for cas,
    None for reads); ``output`` is what a get/read returned (None unless ok).
    ``ret`` is ``math.inf`` when the outcome is unknown.
    """

    id: int
    client: str
    f: str
    key: str | None
    value: Any
    output: Any
    call: float
    ret: float
    outcome: Outcome


Clock = Literal["seconds", "events"]


@dataclass
class History:
    """A whole run's operations, in the order they were invoked.

    ``initial`` is the value a key holds before any write, for the kv model:
    teachraft's store starts with a missing key (None); Jepsen/Knossos kv
    histories start every key at the empty string. ``model_hint`` is the
    model the file's format implies (Jepsen etcd logs: "etcd"), if any.

    Times are seconds on some clock (``clock="seconds"``) or, for files that
    carry no times, event positions (``clock="events"``). ``origin`` is when
    the run started on that clock: times are shown as milliseconds since then
    (since the first call when unknown). ``skipped`` counts the events of
    non-client processes (Jepsen's nemesis) that were left out, by process.
    """

    ops: list[Op] = field(default_factory=list)
    initial: Any = None
    model_hint: str | None = None
    origin: float | None = None
    clock: Clock = "seconds"
    skipped: dict[str, int] = field(default_factory=dict)

    def by_key(self) -> dict[str | None, list[Op]]:
        """The ops of each key, each list in invocation order."""
        groups: dict[str | None, list[Op]] = {}
        for op in self.ops:
            groups.setdefault(op.key, []).append(op)
        return groups

    def clients(self) -> list[str]:
        """Client names in order of their first op."""
        return list(dict.fromkeys(op.client for op in self.ops))

    def start(self) -> float:
        """The time that shown times count from: the origin, else the first call."""
        if self.origin is not None:
            return self.origin
        return min((op.call for op in self.ops), default=0.0)

    def shown(self, t: float, start: float | None = None) -> float:
        """``t`` on the axis a reader sees: ms since the start, or the event position."""
        if self.clock == "events":
            return t
        return (t - (self.start() if start is None else start)) * 1000.0

    def fmt_time(self, t: float, start: float | None = None) -> str:
        """``t`` for a reader: "12.34 ms" since the run started, "event 40", or "never"."""
        if math.isinf(t):
            return "never"
        if self.clock == "events":
            return f"event {t:g}"
        return f"{self.shown(t, start):.2f} ms"

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)


def client_label(client: str) -> str:
    """How a client is named to a reader: Jepsen's numeric processes become "client 3"."""
    return f"client {client}" if client.isdigit() else client


class HistoryRecorder:
    """Collects ops as clients invoke and complete them.

    The runtime calls :meth:`invoke` when a client sends an op and exactly one
    of :meth:`ok`, :meth:`fail` or :meth:`unknown` when it learns the outcome.
    A lock makes it safe to call from the event loop and from worker threads.
    The clock is injectable so that tests and simulations can use their own
    (then ``origin``, the run's start on that clock, is theirs to give too).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, origin: float | None = None
    ) -> None:
        self._clock = clock
        # the run starts when the runtime makes its recorder; an injected clock names its own
        self.origin = clock() if origin is None and clock is time.monotonic else origin
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._open: set[int] = set()

    def invoke(self, client: str, f: str, key: str | None, value: Any = None) -> int:
        """Record that ``client`` sent op ``f``; returns the op id to complete later."""
        with self._lock:
            op_id = len(self._ops)
            now = self._clock()
            self._ops.append(Op(op_id, client, f, key, value, None, now, math.inf, "unknown"))
            self._open.add(op_id)
            return op_id

    def ok(self, op_id: int, output: Any = None) -> None:
        """The op took effect; ``output`` is what a get returned."""
        self._close(op_id, "ok", output)

    def fail(self, op_id: int) -> None:
        """The op definitely did not take effect."""
        self._close(op_id, "fail", None)

    def unknown(self, op_id: int) -> None:
        """Timeout or crash: the op may have taken effect, at any time, or never."""
        self._close(op_id, "unknown", None)

    def history(self) -> History:
        """A snapshot of everything recorded; ops still open count as unknown."""
        with self._lock:
            return History([replace(op) for op in self._ops], origin=self.origin)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)

    def _close(self, op_id: int, outcome: Outcome, output: Any) -> None:
        with self._lock:
            if op_id not in self._open:
                raise ValueError(f"op {op_id} is not open (never invoked or already completed)")
            self._open.discard(op_id)
            op = self._ops[op_id]
            op.outcome = outcome
            op.output = output if outcome == "ok" else None
            op.ret = self._clock() if outcome != "unknown" else math.inf


def load_history(path: PathLike) -> History:
    """Read a history file, sniffing its format.

    Understands Jepsen etcd logs (``INFO jepsen.util - ...``), Knossos/Jepsen
    EDN event maps (``{:process 0, :type :invoke, ...}``) and teachraft's own
    JSON lines (one op per line, see :func:`write_jsonl`).
    """
    from teachraft.check import formats

    return formats.load_history(path)


def write_jsonl(history: History, path: PathLike) -> None:
    """Write one JSON object per op (``ret`` null when unknown)."""
    from teachraft.check import formats

    formats.write_jsonl(history, path)


def write_edn(history: History, path: PathLike) -> None:
    """Write Jepsen/Knossos-style EDN events: an invoke and a completion per op."""
    from teachraft.check import formats

    formats.write_edn(history, path)
