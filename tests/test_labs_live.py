"""Lab classes in the live TCP cluster: traced, drawn, stopped with a message when they raise."""

from __future__ import annotations

import time

import pytest

from teachraft import labs
from teachraft.cluster import Cluster
from teachraft.sim import SimCluster

pytestmark = pytest.mark.slow


def test_a_lab_solution_runs_live_traced_and_exports_to_shiviz(tmp_path) -> None:
    with Cluster(servers=3, server_class=labs.solution(1), coord_class=labs.solution(4)) as c:
        c.put("k", "v")
        assert c.get("k") == "v"
        c.wait_converged()
        assert type(c.servers[1].core).__name__ == "AppendEntriesLabSolution"
        c.flush_traces()
        tags = set(c.events().tags())
        assert {"AppendEntriesRequestRecvd", "PutRecvd", "PutCommitted"} <= tags
        assert c.export_shiviz(tmp_path / "run.log").stat().st_size > 0
        assert c.status()["problems"] == {}


def test_the_vote_lab_solution_elects_leaders_live_in_raft_mode() -> None:
    with Cluster(servers=3, election="raft", server_class=labs.solution(6), tracing=False) as c:
        c.put("k", "v")
        assert c.get("k") == "v"
        old = c.fail_leader()
        deadline = time.monotonic() + 20
        while c.leader() in (0, old) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.leader() not in (0, old), "no new leader was elected"
        assert c.get("k") == "v"


class Broken(labs.AppendEntriesLab):
    def append_entries(self, ae):  # type: ignore[no-untyped-def]
        raise ZeroDivisionError("oops")


def test_a_raising_handler_stops_its_server_with_a_message_not_the_cluster() -> None:
    with Cluster(servers=3, server_class=Broken) as c:
        c.wait_until(lambda: any(h.failure for h in c.servers.values()), 10, "no server failed")
        status = c.status()
        problems = " ".join(status["problems"])
        assert "stopped: append_entries(AppendEntries) raised ZeroDivisionError: oops" in problems
        assert "failed" in {s["role"] for s in status["servers"].values()}
        assert c.running  # the cluster's thread lives on


def test_bugs_compose_onto_the_core_classes_and_unknown_names_are_refused() -> None:
    sim = SimCluster(servers=3, bugs={"apply_before_commit"})
    assert "apply_before_commit" in type(sim.nodes[1]).__name__
    with pytest.raises(ValueError, match="no bug named 'nope'"):
        SimCluster(servers=3, bugs=["nope"])
    with pytest.raises(TypeError, match="subclass of Server"):
        SimCluster(servers=3, server_class=int)  # type: ignore[arg-type]
    c = Cluster(servers=3, bugs=["unfenced_selection"])
    try:
        assert c.deployment.spec.coord_class.__name__.startswith("Coord[unfenced")
    finally:
        c.close()


def test_mystery_hides_one_bug_and_checks_a_guess() -> None:
    c = labs.mystery(7, tracing=False)
    try:
        spec = c.deployment.spec
        assert spec.server_class.__name__ == "Server" and spec.coord_class.__name__ == "Coord"
    finally:
        c.close()
    names = labs.mystery_bug_names()
    assert "next_index_off_by_one" not in names  # it only stalls a live cluster
    hidden = {n for s in range(200) for n in names if labs.check_answer(n, seed=s)}
    assert hidden == set(names)
    right = [n for n in names if labs.check_answer(n, seed=7)]
    assert len(right) == 1
    assert labs.check_answer(labs.BUGS[right[0]].title, seed=7).correct
    wrong = next(n for n in names if n != right[0])
    assert not labs.check_answer(wrong)  # the last mystery's seed
    assert "not a bug of the catalogue" in labs.check_answer("gremlins").message
    sim = labs.mystery(7, sim=True, servers=3)
    assert sim.run_until(sim.serving)


def test_an_investigation_of_the_mystery_never_names_its_bug() -> None:
    seed = next(s for s in range(100) if labs.check_answer("apply_before_commit", seed=s))
    result = labs.investigate(seed, runs=30)
    assert not result.passed and result.failed_check == "State Machine Safety"
    text = str(result) + str(result.to_json())
    assert "apply_before_commit" not in text and "Lab " not in text
