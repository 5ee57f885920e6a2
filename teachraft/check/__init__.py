"""Linearizability checking of recorded client histories.

Record ops with :class:`HistoryRecorder` (or load a Jepsen/Knossos/teachraft
file with :func:`load_history`), then ask :func:`check` for a verdict.
"""

from __future__ import annotations

from teachraft.check.history import (
    History,
    HistoryRecorder,
    Op,
    Outcome,
    load_history,
    write_edn,
    write_jsonl,
)
from teachraft.check.linearizability import CheckResult, check
from teachraft.check.models import EtcdModel, KVModel

__all__ = [
    "CheckResult",
    "EtcdModel",
    "History",
    "HistoryRecorder",
    "KVModel",
    "Op",
    "Outcome",
    "check",
    "load_history",
    "write_edn",
    "write_jsonl",
]
