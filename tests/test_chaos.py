"""Seeded chaos runs against live clusters: every run must converge and be linearizable.

The mixed nemesis kills, restarts, pauses, partitions, cuts, drops and delays
while clients run; the checker then reads the recorded history. The unsafe
seed proves the other half: with the original's leader selection switched back
on, the same tools catch a lost write. The raft-mode runs put Raft's own
elections (no coord) under the same nemesis.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from teachraft.chaos import main, run_chaos
from teachraft.check import write_jsonl

pytestmark = pytest.mark.slow

UNSAFE_SEED = 4  # isolates the leader from the coord while a follower lags behind it


@pytest.mark.parametrize("seed", range(1, 21))
def test_chaos_run_is_linearizable_and_converges(seed: int, tmp_path: Path) -> None:
    report = run_chaos(seed, duration=10, servers=5, clients=3)
    saved = tmp_path / f"chaos-seed{seed}.jsonl"
    write_jsonl(report.history, saved)  # a seed names a scenario, not an interleaving: keep it
    where = f"{report.summary()}\nhistory: {saved}"
    assert report.ok > 0, where
    assert report.faults, where
    assert report.converged, where
    assert report.verdict == "linearizable", where + "\n" + report.explanation


@pytest.mark.parametrize("election", ["coord", "raft"])
def test_servers_back_from_faults_catch_up_by_snapshot(election: str, tmp_path: Path) -> None:
    """Logs compact every 20 entries: a killed or cut-off server comes back behind the
    leader's snapshot and must catch up by InstallSnapshot, and the history stays linearizable."""
    report = run_chaos(3, duration=5, servers=5, clients=2, election=election, snapshot_every=20)
    write_jsonl(report.history, tmp_path / "history.jsonl")
    where = f"{report.summary()}\n{report.explanation}"
    assert report.passed and report.snapshots_installed >= 1, where


@pytest.mark.parametrize("seed", range(1, 21))
def test_raft_mode_chaos_run_is_linearizable_and_converges(seed: int, tmp_path: Path) -> None:
    """The same nemesis against Raft's own elections (no coord); short runs."""
    report = run_chaos(seed, duration=3, servers=5, clients=2, election="raft")
    saved = tmp_path / f"raft-chaos-seed{seed}.jsonl"
    write_jsonl(report.history, saved)
    where = f"{report.summary()}\nhistory: {saved}"
    assert report.ok > 0, where
    assert report.faults, where
    assert report.converged, where
    assert report.verdict == "linearizable", where + "\n" + report.explanation


def test_unsafe_leader_selection_is_caught_by_the_checker() -> None:
    """The unfenced selection loses acknowledged writes; the checker says so.

    Whether a run exposes it depends on timing (an old leader must take a write
    in the window before it learns of the new term), so up to three seeded runs
    are made and the first that exposes it is checked. Every run still ends in
    a verdict; a test that needs all three is a real regression.
    """
    summaries = []
    for seed in (UNSAFE_SEED, UNSAFE_SEED + 1, UNSAFE_SEED + 2):
        report = run_chaos(seed, duration=8, clients=5, unsafe=True)
        summaries.append(report.summary())
        if report.verdict == "not linearizable":
            break
    assert report.verdict == "not linearizable", "\n".join(summaries)
    assert report.result.failed_op is not None
    assert "no order of the ops can include" in report.explanation


def test_same_scenario_with_fencing_is_linearizable() -> None:
    report = run_chaos(UNSAFE_SEED, duration=8, clients=5, scenario="isolate")
    assert report.verdict == "linearizable", report.summary() + "\n" + report.explanation
    assert report.converged


def test_chaos_command_takes_the_election_mode(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--seed", "3", "--duration", "2", "--servers", "3", "--clients", "1"]
    assert main([*argv, "--election", "raft"]) == 0
    assert "verdict=linearizable" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*argv, "--election", "raft", "--unsafe"])
    assert "coord mode" in capsys.readouterr().err
