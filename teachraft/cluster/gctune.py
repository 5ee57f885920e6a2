"""The collector's thresholds while a cluster runs.

A cluster allocates a few short-lived objects per message; with CPython's
default first threshold (700) the collector runs every few hundred messages
and its full passes over a growing log stall the loop. Raising the first
threshold keeps memory bounded and gives back about a third of the
throughput. The previous thresholds come back when the last cluster closes.
"""

from __future__ import annotations

import gc
import threading

GC_THRESHOLD = (20_000, 50, 50)

_lock = threading.Lock()
_users = 0
_saved: tuple[int, ...] | None = None


def tune_gc(enter: bool) -> None:
    """Raise the collector's thresholds while any cluster runs; restore after the last."""
    global _users, _saved
    with _lock:
        if enter:
            if _users == 0:
                _saved = gc.get_threshold()
                if _saved[0] < GC_THRESHOLD[0]:
                    gc.set_threshold(*GC_THRESHOLD)
            _users += 1
        else:
            _users = max(0, _users - 1)
            if _users == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
