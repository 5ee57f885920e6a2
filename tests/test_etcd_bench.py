"""The etcd rows of ``python -m bench``: one tiny session of each measurement.

Only the harness is tested (the numbers are timings, which belong in the
bench's report): each workload completes ops, the leader kill ends in a
committed put, and the side-by-side table is built from the results.
"""

from __future__ import annotations

import pytest

from bench.peer_etcd import EtcdSystem, comparison_markdown
from bench.workloads import WorkloadSpec
from teachraft.etcd import INSTALL_HINT, etcd_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not etcd_available(), reason=f"{INSTALL_HINT} (bash .ci/etcd-deps does it)"),
]


def test_etcd_session_runs_each_workload_and_a_leader_kill() -> None:
    system = EtcdSystem(3, fsync=False)
    system.start()
    try:
        seq = system.run(WorkloadSpec("seq", 1, 0.0, 30, 2.0)).summary()
        many = system.run(WorkloadSpec("inflight64", 64, 0.0, 300, 2.0)).summary()
        seconds = system.leader_kill()
    finally:
        pids = list(system.cluster.pids().values())
        system.close()
    assert seq["ops"] > 0 and seq["errors"] == 0, seq
    assert many["ops"] > 0 and many["p50_ms"] <= many["p99_ms"], many
    assert 0 < seconds < 30
    assert pids and not system.cluster.pids()


def test_comparison_table_puts_etcd_beside_teachraft() -> None:
    def fig(system: str, variant: str, mode: str, workload: str, **medians: float) -> dict:
        return {
            "system": system,
            "variant": variant,
            "mode": mode,
            "servers": 3,
            "workload": workload,
            "medians": medians,
        }

    results = {
        "figures": [
            fig("teachraft", "tracing off", "in-process", "seq", ops_s=3000.0, p50_ms=0.2),
            fig("etcd", "no fsync", "per-process", "seq", ops_s=600.0, p50_ms=1.5),
            fig("etcd", "fsync", "per-process", "leader_kill", seconds=1.3),
        ]
    }
    table = comparison_markdown(results)
    assert "| 3 servers: sequential put (ops/s) | 3,000 | - | - | 600 | - |" in table
    assert "| 3 servers: leader kill -> next op (s) | - | - | - | - | 1.3 |" in table
