"""Shared pytest fixtures, and where the reference material lives inside the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from teachraft.data import go_traces_dir

REPO = Path(__file__).resolve().parents[1]
# The Go original's traces are package data (the notebooks draw them too).
REFERENCE_TRACES = go_traces_dir()
# Test-only inputs: see tests/data/README.md.
REFERENCE_HISTORIES = REPO / "tests" / "data" / "reference-histories"


@pytest.fixture
def make_cluster(tmp_path: Path):
    """Start traced in-process clusters; on teardown close them and validate their ShiViz logs.

    Every trace a test produces must be one that ShiViz accepts, so this check
    runs for every live test rather than in a test of its own.
    """
    from teachraft.cluster import Cluster
    from teachraft.tracing.validate import validate_shiviz

    made: list[Cluster] = []

    def make(**kwargs: object) -> Cluster:
        kwargs.setdefault("out_dir", tmp_path / f"cluster{len(made) + 1}")
        cluster = Cluster(**kwargs)  # type: ignore[arg-type]
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.close()
    for cluster in made:
        if cluster.tracing:
            shiviz = cluster.trace_paths[1]
            problems = validate_shiviz(shiviz.read_text(encoding="utf-8"))
            assert not problems, f"{shiviz} is not a valid ShiViz log: {problems[:5]}"
