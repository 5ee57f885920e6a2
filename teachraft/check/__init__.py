"""Linearizability checking of recorded client histories.

Record ops with :class:`HistoryRecorder` (or load a Jepsen/Knossos/teachraft
file with :func:`load_history`), then ask :func:`check` for a verdict under
one of the :data:`MODELS`; ``result.explain()`` tells why, and
:func:`teachraft.viz.history.history_figure` draws it.
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
from teachraft.check.models import MODELS, EtcdModel, KVModel, make_model

__all__ = [
    "MODELS",
    "CheckResult",
    "EtcdModel",
    "History",
    "HistoryRecorder",
    "KVModel",
    "Op",
    "Outcome",
    "check",
    "load_history",
    "make_model",
    "write_edn",
    "write_jsonl",
]
