"""A real etcd cluster under teachraft's faults, workload, checker and figures.

:class:`EtcdCluster` starts etcd members (Debian's ``etcd-server`` package) on
127.0.0.1 and gives them the API of :class:`teachraft.cluster.Cluster`: the
same ops, faults, history and topology figure, so a lesson run on teachraft
can be run again on the Raft store that Kubernetes runs on.
"""

from __future__ import annotations

from teachraft.etcd.client import EtcdClient, EtcdError
from teachraft.etcd.cluster import NOT_TRACED, EtcdCluster
from teachraft.etcd.members import INSTALL_HINT, EtcdNotInstalled, etcd_available, etcd_binary

__all__ = [
    "INSTALL_HINT",
    "NOT_TRACED",
    "EtcdClient",
    "EtcdCluster",
    "EtcdError",
    "EtcdNotInstalled",
    "etcd_available",
    "etcd_binary",
]
