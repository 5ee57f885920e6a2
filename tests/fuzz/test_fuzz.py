"""A short fuzz run in the tests: every port attacked while a workload checks each answer.

The long version runs in ``python -m bench --soak``.
"""

from __future__ import annotations

import pytest
from hostile import run_fuzz

pytestmark = pytest.mark.slow

SECONDS = 6.0


def test_nothing_acknowledged_is_lost_or_altered_under_attack(tmp_path) -> None:
    report = run_fuzz(SECONDS, seed=3, out_dir=tmp_path)
    print(report.summary())
    assert report.ok, report.summary()
    assert report.puts > 10 and report.restarts >= 1
    assert len(report.attacks) >= 6, report.attacks
    # What the attacker sent was refused and counted where a user looks.
    assert report.problems.get("auth", 0) > 0, report.problems
    assert report.problems.get("bad frame", 0) > 0, report.problems
    assert report.problems.get("forged heartbeats", 0) > 0, report.problems
