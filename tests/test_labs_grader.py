"""The grader: full marks for the reference, a useful failure for everything else.

The reference (each lab's solution) must pass every check over 1,000 seeded
schedules (200 for each of the five simulated labs); a skeleton, an endless
loop, a handler that raises or emits garbage must each end as a failed check
with a sentence, never a traceback; the command line must speak JSON.
``python -m bench --soak`` runs longer versions.
"""

from __future__ import annotations

import json

import pytest

from teachraft import labs
from teachraft.labs import cli
from teachraft.labs.explore import explore
from teachraft.labs.schedules import random_schedule, run_schedule, shrink


@pytest.mark.parametrize("lab", [1, 2, 3, 4, 6])
def test_the_reference_gets_full_marks_over_200_seeds_per_lab(lab: int) -> None:
    grade = labs.grade(lab, labs.solution(lab), seeds=200, search=lab == 1)
    assert grade.passed, str(grade)
    assert grade.score == 100.0
    assert all(c.total >= 200 or c.name == "Exhaustive search" for c in grade.checks)


def test_the_clock_reference_replays_every_go_trace() -> None:
    grade = labs.grade("clocks", labs.solution(5))
    assert grade.passed, str(grade)
    traces = next(c for c in grade.checks if c.name == "Go traces replayed")
    assert traces.total > 1000


@pytest.mark.parametrize("lab", [1, 2, 3, 4, 5, 6])
def test_a_skeleton_fails_with_the_exception_in_one_sentence(lab: int) -> None:
    grade = labs.grade(lab, labs.skeleton(lab), seeds=5)
    assert not grade.passed and grade.score == 0.0
    assert grade.failed_check == "Handlers run without error"
    assert "raised NotImplementedError" in grade.violation
    assert grade.to_json()["passed"] is False


def test_solutions_are_injected_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(labs.SOLUTIONS_ENV, "1")
    grade = labs.grade(1, labs.skeleton(1), seeds=20, search=False)
    assert grade.passed and grade.graded == "the reference solution"
    assert labs.submission(1, labs.skeleton(1)) is not labs.skeleton(1)


class Garbage(labs.AppendEntriesLab):
    def append_entries(self, ae):  # type: ignore[no-untyped-def]
        self.outbox.append("junk")


def test_garbage_from_a_handler_is_a_failed_check() -> None:
    grade = labs.grade(1, Garbage, seeds=3)
    assert grade.failed_check == "Handlers run without error"
    assert "holds 'junk', which is not an effect" in grade.violation


class GarbageState(labs.AppendEntriesLab):
    def append_entries(self, ae):  # type: ignore[no-untyped-def]
        labs.LabServer.append_entries(self, ae)
        self.commit_index = "all of it"


def test_state_the_checks_cannot_read_is_a_failed_check_not_a_traceback() -> None:
    grade = labs.grade(1, GarbageState, seeds=3)
    assert grade.failed_check == "Handlers run without error"
    assert "could not be checked" in grade.violation


def test_something_that_is_not_a_lab_class_is_refused_with_a_sentence() -> None:
    grade = labs.grade(1, object)
    assert not grade.passed and "not a subclass" in grade.violation
    with pytest.raises(ValueError, match="no lab 9"):
        labs.grade(9, labs.skeleton(1))


class NoNoop(labs.CommitLab):
    advance_commit_index = labs.LabServer.advance_commit_index

    def start_term(self) -> None:
        """Forgets the No-Op: an inherited entry then waits for a new client op."""


class CountsOldReplicas(labs.CommitLab):
    start_term = labs.LabServer.start_term

    def advance_commit_index(self) -> None:
        """Figure 8's mistake: the highest index a majority holds, of any term."""
        matches = [p.match_index for p in self.progress.values()] + [self.log.last_index]
        self.commit_to(sorted(matches, reverse=True)[self.majority - 1])


class FirstAnswerWins(labs.SelectionLab):
    def log_state(self, msg):  # type: ignore[no-untyped-def]
        if self.answers_this_round(msg):
            self.fenced[msg.server_id] = msg
            self.choose(msg.server_id)


class VotesTwice(labs.VoteLab):
    def request_vote(self, rv):  # type: ignore[no-untyped-def]
        self.observe_term(rv.term)
        if (rv.last_log_term, rv.last_log_index) >= (self.log.last_term, self.log.last_index):
            self.grant_vote(rv)  # forgets votedFor: two candidates can win one term
        else:
            self.refuse_vote(rv)


@pytest.mark.parametrize(
    ("lab", "cls", "check"),
    [
        (2, NoNoop, "Termination"),
        (2, CountsOldReplicas, "Commit only on a majority of current-term entries"),
        (4, FirstAnswerWins, "Leader Completeness"),
        (6, VotesTwice, "Election Safety"),
    ],
)
def test_common_student_mistakes_fail(lab: int, cls: type, check: str) -> None:
    grade = labs.grade(lab, cls, seeds=150, search=False)
    assert not grade.passed
    assert check in {c.name for c in grade.checks if not c.ok}


def test_shrinking_keeps_a_failure_and_never_grows_it() -> None:
    server, coord = labs.compose(["keep_conflicts"])
    seed = next(s for s in range(200) if not run_schedule(random_schedule(s, 1), server, coord).ok)
    first = run_schedule(random_schedule(seed, 1), server, coord)
    small = shrink(first, lambda s: run_schedule(s, server, coord))
    assert not small.ok
    assert len(small.schedule.steps) <= len(first.schedule.steps)
    assert small.schedule.servers <= first.schedule.servers


def test_the_search_finds_a_shortest_counterexample_and_states_its_bound() -> None:
    server, coord = labs.compose(["skip_prev_check"])
    found = explore(server, coord, max_states=500)
    assert found.failure == "Log Matching" and len(found.path) <= 4
    assert "no shorter run fails" in found.bound()
    clean = explore(labs.LabServer, labs.LabCoord, max_states=300)
    assert clean.ok and "state bound 300" in clean.bound()


def test_a_grade_replays_its_counterexample_as_trace_events() -> None:
    from teachraft.labs.replay import replay

    grade = labs.grade(1, labs.compose(["apply_before_commit"])[0], seeds=20)
    assert grade.counterexample is not None and grade.counterexample.steps
    run = replay(grade)
    assert len(run.source) > 10 and run.at == len(run.source) - 1
    assert "Replay counterexample" in repr(grade.widget().children)


def test_the_command_line_grades_files_as_json(tmp_path, capsys) -> None:
    good = tmp_path / "good.py"
    good.write_text(
        "from teachraft.labs import AppendEntriesLab, LabServer\n"
        "class Mine(AppendEntriesLab):\n"
        "    append_entries = LabServer.append_entries\n"
    )
    broken = tmp_path / "broken.py"
    broken.write_text("def broken(:\n")
    code = cli.main(["1", str(good), str(broken), "--seeds", "20", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    assert out[0]["passed"] is True and out[0]["score"] == 100.0
    assert out[1]["passed"] is False and "SyntaxError" in out[1]["violation"]
    assert cli.main(["9", str(good)]) == 2
