"""Seeded chaos against a real etcd cluster, checked by teachraft's checker (kv and cas).

The same nemesis kinds as teachraft's chaos run (kill, pause, partition, the
leader cut off, drop, delay) while clients put, get, read, write and cas. etcd
3.4 is expected to be linearizable; should a run ever say otherwise, the test
fails with the history saved next to the message, as a finding to report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from teachraft.check import write_jsonl
from teachraft.etcd import INSTALL_HINT, etcd_available
from teachraft.etcd.chaos import run_etcd_chaos

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not etcd_available(), reason=f"{INSTALL_HINT} (bash .ci/etcd-deps does it)"),
]


@pytest.mark.parametrize(("seed", "members"), [(1, 3), (2, 3), (3, 3), (4, 5), (5, 5)])
def test_etcd_chaos_run_is_linearizable_and_converges(
    seed: int, members: int, tmp_path: Path
) -> None:
    report = run_etcd_chaos(seed, duration=10, members=members, clients=3)
    saved = tmp_path / f"etcd-chaos-seed{seed}.jsonl"
    assert report.history is not None
    write_jsonl(report.history, saved)
    finding = f"{report.summary()}\nhistory saved at {saved}\n{report.explanation}"
    assert report.ok > 0 and report.faults, report.summary()
    assert {op.f for op in report.history.ops} >= {"get", "put", "read", "write", "cas"}
    assert set(report.verdicts) == {"kv", "etcd"}
    assert report.verdict == "linearizable", finding
    assert report.converged, finding


def test_chaos_command_runs_against_etcd(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from teachraft.cli import main

    code = main(
        [
            "chaos",
            "--engine",
            "etcd",
            "--seed",
            "6",
            "--duration",
            "4",
            "--servers",
            "3",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert "etcd chaos seed=6 members=3" in out and "verdict=linearizable" in out, out
    assert code == 0
    assert (tmp_path / "history.jsonl").stat().st_size > 0
