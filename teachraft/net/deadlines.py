"""Call timeouts for a whole node on ONE event-loop timer.

A loop timer per call (``loop.call_later``) costs a Python object, a heap push
ordered by Python-level comparisons, and a cancel, for every call: about a
quarter of a pipelined call's cost. Here every call's deadline goes into one
heap of plain tuples (compared in C) and a single loop timer is armed for the
earliest one. Calls that finished are not removed at once; they are skipped
when their deadline comes up, and the heap is compacted when finished entries
pile up, so its size stays proportional to the calls in flight.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from typing import Any

_COMPACT_MIN = 1024


class CallDeadlines:
    """Fails each registered future with ``make_error(*info)`` at its deadline."""

    __slots__ = ("_armed", "_handle", "_heap", "_live", "_loop", "_make_error", "_seq")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, make_error: Callable[..., BaseException]
    ) -> None:
        self._loop = loop
        self._make_error = make_error
        self._heap: list[tuple[float, int, asyncio.Future, tuple[Any, ...]]] = []
        self._seq = 0
        self._live = 0
        self._handle: asyncio.TimerHandle | None = None
        self._armed = float("inf")

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, fut: asyncio.Future, timeout: float, info: tuple[Any, ...]) -> None:
        """Fail ``fut`` after ``timeout`` seconds unless it is done by then.

        Every ``add`` must be matched by one ``finish`` when the call ends.
        """
        deadline = self._loop.time() + timeout
        self._seq += 1
        self._live += 1
        heap = self._heap
        heapq.heappush(heap, (deadline, self._seq, fut, info))
        if deadline < self._armed:
            self._arm(deadline)
        elif len(heap) >= 2 * self._live + _COMPACT_MIN:
            self._compact()

    def finish(self) -> None:
        """One call registered with ``add`` ended (in any way)."""
        self._live -= 1

    def close(self) -> None:
        """Forget every deadline and cancel the timer."""
        self._heap.clear()
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed = float("inf")

    def _arm(self, deadline: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = deadline
        self._handle = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed = float("inf")
        heap = self._heap
        now = self._loop.time()
        while heap and heap[0][0] <= now:
            _, _, fut, info = heapq.heappop(heap)
            if not fut.done():
                fut.set_exception(self._make_error(*info))
        while heap and heap[0][2].done():
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])

    def _compact(self) -> None:
        """Drop the entries of finished calls (most of the heap when this runs)."""
        live = [entry for entry in self._heap if not entry[2].done()]
        heapq.heapify(live)
        self._heap = live
