"""teachraft: a replicated key-value store (KVRaft) for teaching, over real TCP on loopback.

``from teachraft import Cluster`` is the entry point; the package imports its
parts lazily so that command-line tools start fast.
"""

from __future__ import annotations

import logging
from typing import Any

__version__ = "0.1.0"

# Library logging stays silent unless the application configures logging: a
# warning from the cluster's thread must never print into a notebook cell.
logging.getLogger("teachraft").addHandler(logging.NullHandler())

_EXPORTS = {
    "Cluster": "teachraft.cluster",
    "Timing": "teachraft.cluster",
    "ClusterError": "teachraft.errors",
    "KVError": "teachraft.errors",
    "NoQuorumError": "teachraft.errors",
    "OpTimeoutError": "teachraft.errors",
    "ConfigError": "teachraft.errors",
    "ValueTooLargeError": "teachraft.errors",
    "check": "teachraft.check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'teachraft' has no attribute {name!r}")
