"""teachraft: a replicated key-value store (KVRaft) for teaching, over real TCP on loopback.

``from teachraft import Cluster`` is the entry point; the package imports its
parts lazily so that command-line tools start fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Cluster": "teachraft.cluster",
    "Timing": "teachraft.cluster",
    "ClusterError": "teachraft.errors",
    "KVError": "teachraft.errors",
    "NoQuorumError": "teachraft.errors",
    "OpTimeoutError": "teachraft.errors",
    "ConfigError": "teachraft.errors",
    "check": "teachraft.check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'teachraft' has no attribute {name!r}")
