"""The lab notebooks' quick checks: a skeleton is "not written yet", the reference passes,
and a student's typical mistake fails the case written for the rule it breaks."""

from __future__ import annotations

import pytest

from teachraft import labs
from teachraft.labcheck import quick_checks, run_quick_checks, runnable


@pytest.mark.parametrize("lab", sorted(labs.LABS))
def test_the_skeleton_is_not_written_yet_and_the_solution_passes(lab: int) -> None:
    todo = run_quick_checks(lab, labs.skeleton(lab))
    assert todo and all(o.ok is None and "not written yet" in o.note for o in todo)
    done = run_quick_checks(lab, labs.solution(lab))
    assert [o.ok for o in done] == [True] * len(todo), [o.line() for o in done]


class TruncateOnMatch(labs.AppendEntriesLab):
    """Lab 1 with rule 3 broken: the log is cut after prevLogIndex even where it matches."""

    def append_entries(self, ae):  # type: ignore[no-untyped-def]
        if ae.term < self.current_term:
            self.reply_append(ae, success=False)
            return
        self.observe_term(ae.term)
        self.leader_id = ae.leader_id
        if self.log.term_at(ae.prev_log_index) != ae.prev_log_term:
            self.reply_append(ae, success=False, conflict_index=self.log.last_index + 1)
            return
        self.log.replace_suffix(ae.prev_log_index + 1, list(ae.entries))
        last = ae.prev_log_index + len(ae.entries)
        if ae.leader_commit > self.commit_index:
            self.commit_to(min(ae.leader_commit, last))
        self.reply_append(ae, success=True, match_index=last)


class CountsOldTerms(labs.solution(2)):  # type: ignore[misc]
    """Lab 2 with Figure 8's mistake: commit whatever a majority holds, of any term."""

    def advance_commit_index(self) -> None:
        for n in range(self.log.last_index, self.commit_index, -1):
            held = 1 + sum(p.match_index >= n for p in self.progress.values())
            if held >= self.majority:
                self.commit_to(n)
                return


class AppliesTwice(labs.solution(3)):  # type: ignore[misc]
    """Lab 3 without duplicate detection at apply time."""

    def apply_entry(self, entry):  # type: ignore[no-untyped-def]
        result = self.kv.execute(entry)
        self.kv.remember(entry, result)
        return result


class ChoosesTheFirst(labs.SelectionLab):
    """Lab 4 unfenced: picks the first server that answers."""

    def log_state(self, msg):  # type: ignore[no-untyped-def]
        if self.answers_this_round(msg):
            self.fenced[msg.server_id] = msg
            self.choose(msg.server_id)


class MergesWithoutTicking(labs.solution(5)):  # type: ignore[misc]
    """Lab 5 with a receive that only merges."""

    def receive(self, clock, me, received):  # type: ignore[no-untyped-def]
        out = dict(clock)
        for node, value in received.items():
            out[node] = max(out.get(node, 0), value)
        return out


class VotesForAnyLog(labs.VoteLab):
    """Lab 6 without the election restriction: one vote per term, whatever the log."""

    def request_vote(self, rv):  # type: ignore[no-untyped-def]
        if rv.term < self.current_term:
            self.refuse_vote(rv, "stale term")
            return
        self.observe_term(rv.term)
        if self.voted_for in (0, rv.candidate_id):
            self.grant_vote(rv)
        else:
            self.refuse_vote(rv, "already voted")


@pytest.mark.parametrize(
    ("lab", "cls", "failing"),
    [
        (1, TruncateOnMatch, "rule 4"),
        (2, CountsOldTerms, "an old-term entry"),
        (3, AppliesTwice, "a Put in the log twice"),
        (4, ChoosesTheFirst, "no choice before a majority"),
        (5, MergesWithoutTicking, "receive"),
        (6, VotesForAnyLog, "rule 2: only a log at least as up to date"),
    ],
)
def test_a_typical_mistake_fails_the_case_for_its_rule(lab: int, cls: type, failing: str) -> None:
    outcomes = run_quick_checks(lab, cls)
    broken = [o for o in outcomes if o.ok is not True]
    assert broken and broken[0].what.startswith(failing), [o.line() for o in outcomes]
    assert broken[0].ok is False and broken[0].note


def test_the_printout_counts_and_the_live_run_waits_for_every_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    quick_checks(5, labs.skeleton(5))
    out = capsys.readouterr().out
    assert out.count("…") == 3 and "0 of 3 quick checks hold." in out
    assert runnable(5, labs.skeleton(5)) is None
    assert "the live run is skipped" in capsys.readouterr().out
    solution = labs.solution(5)
    assert runnable(5, solution) is solution


def test_with_the_solutions_variable_the_skeleton_runs_as_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(labs.SOLUTIONS_ENV, "1")
    assert all(o.ok for o in run_quick_checks(1, labs.skeleton(1)))
    assert runnable(1, labs.skeleton(1)) is not None
