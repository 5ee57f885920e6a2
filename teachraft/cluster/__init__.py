"""The in-process cluster a notebook drives, split into parts with one job each.

* ``facade``: ``Cluster``, the thin public face (sync methods and async twins);
* ``bridge``: the cluster's event-loop thread and the one sync/async contract;
* ``spec``: how the core machines are built (shared with ``nodes`` and ``sim``);
* ``deployment``: the live nodes and their wiring;
* ``faults``: the public fault controller (``cluster.faults``);
* ``views``: status, links and the one-hop ``snapshot()`` for figures;
* ``protocol``: ``ClusterLike``, the typed surface the widgets and figures use.

Parts load lazily, so that ``teachraft.cluster.spec`` stays as light as the core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teachraft.cluster.bridge import CLOSED
    from teachraft.cluster.facade import Cluster
    from teachraft.cluster.faults import FaultController
    from teachraft.cluster.protocol import ClusterLike
    from teachraft.cluster.spec import MachineSpec
    from teachraft.cluster.timing import Timing
    from teachraft.cluster.views import ClusterSnapshot
    from teachraft.errors import ClusterError

_EXPORTS = {
    "Cluster": "teachraft.cluster.facade",
    "CLOSED": "teachraft.cluster.bridge",
    "Timing": "teachraft.cluster.timing",
    "ClusterSnapshot": "teachraft.cluster.views",
    "ClusterLike": "teachraft.cluster.protocol",
    "FaultController": "teachraft.cluster.faults",
    "MachineSpec": "teachraft.cluster.spec",
    "ClusterError": "teachraft.errors",
}

__all__ = [
    "CLOSED",
    "Cluster",
    "ClusterError",
    "ClusterLike",
    "ClusterSnapshot",
    "FaultController",
    "MachineSpec",
    "Timing",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'teachraft.cluster' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
