"""Quick visible checks for the lab notebooks: a few scripted cases, one line each.

Before the full ``grade()``, a student wants to know whether the handler does
the obvious things: "a follower at term 3 refuses an AppendEntries of term 2".
``quick_checks(lab, MyClass)`` feeds a handful of such cases, each a few
messages to one machine built by hand (no network, no clock), and prints one
line per case: ``✓`` when it holds, ``✗`` with what came out instead, or
``…`` when the handler still raises ``NotImplementedError``. It never raises,
so a notebook that ships with the skeleton runs top to bottom.

``runnable(lab, MyClass)`` says whether the class is ready for a live cluster
(every quick check holds), and returns the class to run: the student's, or
the reference solution when ``TEACHRAFT_LAB_SOLUTIONS`` is set, so that CI's
solution run exercises the same cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from teachraft.core.coord import FENCING, CoordOptions
from teachraft.core.effects import Send
from teachraft.core.log import GET, NOOP, PUT, Entry
from teachraft.core.messages import (
    AppendEntries,
    AppendEntriesReply,
    JoinResponse,
    RequestVote,
    RequestVoteReply,
    ServerLogState,
)
from teachraft.core.server import Configure, ServerOptions
from teachraft.labs import lab as find_lab
from teachraft.labs import submission
from teachraft.tracing.tracer import NullTracer

PEERS = [(1, "a1"), (2, "a2"), (3, "a3")]
PASS, FAIL, TODO = "✓", "✗", "…"


@dataclass(frozen=True)
class Outcome:
    """One quick check: its sentence, and ``ok`` True, False, or None (not written yet)."""

    what: str
    ok: bool | None
    note: str = ""

    def line(self, note: bool = True) -> str:
        mark = {True: PASS, False: FAIL, None: TODO}[self.ok]
        return f"{mark} {self.what}" + (f"\n    {self.note}" if note and self.note else "")


class Mismatch(Exception):
    """A quick check saw something else than the rule says."""


def expect(condition: bool, saw: str) -> None:
    if not condition:
        raise Mismatch(saw)


def run_check(what: str, case: Callable[[], None]) -> Outcome:
    """Run one case; a mismatch, a missing handler or any exception becomes its outcome."""
    try:
        case()
    except NotImplementedError as exc:
        return Outcome(what, None, f"not written yet: {exc}")
    except Mismatch as exc:
        return Outcome(what, False, str(exc))
    except Exception as exc:
        return Outcome(what, False, f"raised {type(exc).__name__}: {exc}")
    return Outcome(what, True)


# --- machines built by hand ------------------------------------------------------------


def follower(cls: type, term: int = 1, sid: int = 2) -> Any:
    """A follower of server 1 at ``term``, with an empty log."""
    s = cls(sid, NullTracer())
    s.step(JoinResponse(server_id=sid, leader=1, peers=PEERS, term=term, token=b""))
    s.take()
    return s


def leader(cls: type, term: int = 1) -> Any:
    """Server 1, leader of ``term`` (as the coord made it at start: no No-Op yet)."""
    s = cls(1, NullTracer())
    s.step(JoinResponse(server_id=1, leader=1, peers=PEERS, term=term, token=b""))
    s.take()
    return s


def entry(term: int, index: int, key: str = "k", kind: int = PUT, op: int | None = None) -> Entry:
    """A Put (or ``kind``) of client ``c`` with op id ``op`` (default: the index)."""
    op_id = index if op is None else op
    return Entry(term, index, kind, key, f"v{index}", "c", op_id, 0)


def append(s: Any, term: int, prev: int, prev_term: int, entries: list[Entry], commit: int = 0):
    """Deliver one AppendEntries from server 1 and return the replies it produced."""
    s.step(
        AppendEntries(
            term=term,
            leader_id=1,
            prev_log_index=prev,
            prev_log_term=prev_term,
            entries=entries,
            leader_commit=commit,
            token=b"",
        )
    )
    return [
        x.msg for x in s.take() if isinstance(x, Send) and isinstance(x.msg, AppendEntriesReply)
    ]


def terms(s: Any) -> list[int]:
    return [e.term for e in s.log.slice(1)]


def one_reply(replies: list[Any]) -> Any:
    expect(len(replies) == 1, f"expected one AppendEntriesReply, got {len(replies)}")
    return replies[0]


# --- lab 1: the AppendEntries receiver ---------------------------------------------------


def _lab1(cls: type) -> list[tuple[str, Callable[[], None]]]:
    def rule1() -> None:
        s = follower(cls, term=3)
        r = one_reply(append(s, 2, 0, 0, [entry(2, 1)]))
        expect(not r.success, "the reply says success")
        expect(r.term == 3, f"the reply carries term {r.term}, not the follower's 3")
        expect(s.log.last_index == 0, f"the log grew to {s.log.last_index} entries")

    def rule2() -> None:
        s = follower(cls)
        r = one_reply(append(s, 1, 2, 1, [entry(1, 3)]))
        expect(not r.success, "the reply says success, but the log has no entry 2")
        expect(s.log.last_index == 0, f"the log grew to {s.log.last_index} entries")
        hint = r.conflict_index
        expect(hint == 1, f"conflict_index is {hint}; the log is empty, so retry from 1")

    def rule4() -> None:
        s = follower(cls)
        r = one_reply(append(s, 1, 0, 0, [entry(1, 1), entry(1, 2)]))
        expect(r.success and s.log.last_index == 2, f"log {terms(s)}, success={r.success}")
        expect(r.match_index == 2, f"match_index is {r.match_index}, not 2")
        one_reply(append(s, 1, 0, 0, [entry(1, 1)]))  # late and reordered
        expect(s.log.last_index == 2, f"a stale AppendEntries cut the log to {terms(s)}")

    def rule3() -> None:
        s = follower(cls)
        append(s, 1, 0, 0, [entry(1, 1), entry(1, 2), entry(1, 3)])
        r = one_reply(append(s, 2, 1, 1, [entry(2, 2)]))
        expect(r.success, "the reply says failure, but entry 1 matches")
        expect(terms(s) == [1, 2], f"terms in the log: {terms(s)}, expected [1, 2]")

    def rule5() -> None:
        s = follower(cls)
        append(s, 1, 0, 0, [entry(1, 1), entry(1, 2)], commit=5)
        expect(s.commit_index == 2, f"commitIndex is {s.commit_index}, expected min(5, 2) = 2")

    return [
        ("rule 1: a follower at term 3 refuses an AppendEntries of term 2", rule1),
        ("rule 2: no entry at prevLogIndex -> refuse, and say where to retry", rule2),
        ("rule 4: new entries are appended; a late duplicate cuts nothing", rule4),
        ("rule 3: a conflicting entry is deleted with all that follow it", rule3),
        ("rule 5: commitIndex = min(leaderCommit, index of last new entry)", rule5),
    ]


# --- lab 2: the commit rule and the No-Op --------------------------------------------------


def _lab2(cls: type) -> list[tuple[str, Callable[[], None]]]:
    def old_term_not_counted() -> None:
        s = leader(cls, term=3)
        for e in (entry(1, 1), entry(1, 2), entry(3, 3)):
            s.log.append(e)
        s.progress[2].match_index = 2  # the leader and server 2: a majority hold 1-2
        s.advance_commit_index()
        expect(s.commit_index == 0, f"committed up to {s.commit_index}: a term-1 entry")
        s.progress[2].match_index = 3  # now a majority holds index 3, of term 3
        s.advance_commit_index()
        expect(s.commit_index == 3, f"commitIndex is {s.commit_index}, expected 3")

    def no_majority() -> None:
        s = leader(cls, term=1)
        s.log.append(entry(1, 1))
        s.advance_commit_index()
        expect(s.commit_index == 0, f"committed {s.commit_index} with the leader alone")

    def noop() -> None:
        s = leader(cls, term=2)
        s.log.append(entry(1, 1))
        s.start_term()
        last = s.log[s.log.last_index]
        expect(s.log.last_index == 2, f"the log has {s.log.last_index} entries, expected 2")
        expect(last.kind == NOOP and last.term == 2, f"the last entry is {last.describe()}")

    return [
        (
            "an old-term entry is not committed by counting replicas (Figure 8)",
            old_term_not_counted,
        ),
        ("nothing commits without a majority", no_majority),
        ("a new leader appends a No-Op of its own term", noop),
    ]


# --- lab 3: duplicate detection ----------------------------------------------------------


def _lab3(cls: type) -> list[tuple[str, Callable[[], None]]]:
    def put_once() -> None:
        s = follower(cls)
        s.apply_entry(entry(1, 1, op=1))  # Put(k, v1), op 1
        s.apply_entry(entry(1, 2, op=2))  # Put(k, v2), op 2
        s.apply_entry(entry(1, 3, op=1))  # op 1 again: a retry that was appended twice
        value = s.kv.data.get("k")
        expect(value == "v2", f"k = {value!r}: the retried Put took effect a second time")

    def get_once() -> None:
        s = follower(cls)
        s.apply_entry(entry(1, 1, op=1))
        first = s.apply_entry(entry(1, 2, kind=GET, op=2))
        s.apply_entry(entry(1, 3, op=3))
        again = s.apply_entry(entry(1, 4, kind=GET, op=2))  # the Get retried
        expect(first == "v1", f"the Get returned {first!r}, not 'v1'")
        expect(again == "v1", f"the retried Get returned {again!r}, not its first answer 'v1'")

    return [
        ("a Put in the log twice takes effect once", put_once),
        ("a retried Get returns the value the first one read", get_once),
    ]


# --- lab 4: the coord's leader selection ---------------------------------------------------


def _coord_fencing(cls: type, servers: int = 5) -> Any:
    """A coord of ``servers`` servers, in the fencing phase of the selection of term 2."""
    c = cls(NullTracer(), CoordOptions(num_servers=servers))
    c.term = 2
    c.phase = FENCING
    c.fenced = {}
    return c


def _state(c: Any, sid: int, last_term: int, last_index: int) -> ServerLogState:
    return ServerLogState(
        server_id=sid,
        term=last_term,
        log_idx=last_index,
        request_term=c.term,
        fenced_term=c.term,
        token=b"",
    )


def _lab4(cls: type) -> list[tuple[str, Callable[[], None]]]:
    chosen: list[int] = []

    def watch(c: Any) -> Any:
        c.choose = lambda sid: chosen.append(sid)
        return c

    def waits_for_majority() -> None:
        chosen.clear()
        c = watch(_coord_fencing(cls))
        c.log_state(_state(c, 2, 1, 9))
        c.log_state(_state(c, 3, 1, 7))
        expect(not chosen, f"chose server{chosen[0] if chosen else 0} with 2 of 5 fenced")

    def most_up_to_date() -> None:
        chosen.clear()
        c = watch(_coord_fencing(cls))
        c.log_state(_state(c, 2, 1, 9))
        c.log_state(_state(c, 3, 2, 4))
        c.log_state(_state(c, 4, 1, 8))
        expect(chosen == [3], f"chose {chosen}; server3's last term (2) is the highest")

    return [
        ("no choice before a majority of all servers is fenced", waits_for_majority),
        ("the most up-to-date log wins: last term first, then length", most_up_to_date),
    ]


# --- lab 5: vector clocks ----------------------------------------------------------------


def _lab5(cls: type) -> list[tuple[str, Callable[[], None]]]:
    vc = cls()

    def tick() -> None:
        got = vc.tick({"a": 1, "b": 4}, "a")
        expect(got == {"a": 2, "b": 4}, f"tick gave {got}")
        got = vc.tick({}, "c")
        expect(got == {"c": 1}, f"tick of an empty clock gave {got}")

    def send() -> None:
        got = vc.send({"a": 1}, "a")
        expect(got == {"a": 2}, f"send gave {got}; a send is an event: tick first")

    def receive() -> None:
        received = {"a": 5, "b": 1}
        got = vc.receive({"a": 1, "b": 3}, "b", received)
        expect(got == {"a": 5, "b": 4}, f"receive gave {got}, expected {{'a': 5, 'b': 4}}")
        expect(received == {"a": 5, "b": 1}, "receive changed the clock that came in")

    return [
        ("tick adds one to the node's own entry", tick),
        ("send ticks, and the ticked clock travels", send),
        ("receive ticks, then takes the entry-wise maximum", receive),
    ]


# --- lab 6: the RequestVote receiver (raft mode) ------------------------------------------


def voter(cls: type, sid: int = 2) -> Any:
    """A raft-mode follower of a 3-server cluster, term 0, empty log, no vote yet."""
    s = cls(sid, NullTracer(), ServerOptions(election="raft"))
    s.step(Configure([(i, f"s{i}", f"c{i}") for i in (1, 2, 3)]))
    s.take()
    return s


def ask(s: Any, term: int, candidate: int, last_index: int = 0, last_term: int = 0) -> Any:
    """Deliver one RequestVote and return the one reply it produced."""
    s.step(RequestVote(term, candidate, last_index, last_term, False, False, b""))
    replies = [
        x.msg for x in s.take() if isinstance(x, Send) and isinstance(x.msg, RequestVoteReply)
    ]
    expect(len(replies) == 1, f"expected one RequestVoteReply, got {len(replies)}")
    return replies[0]


def _lab6(cls: type) -> list[tuple[str, Callable[[], None]]]:
    def stale_term() -> None:
        s = voter(cls)
        expect(ask(s, 3, 3).vote_granted, "refused the first candidate of term 3")
        r = ask(s, 2, 1)
        expect(not r.vote_granted, "granted a vote to a candidate of term 2 at term 3")
        expect(r.term == 3, f"the reply carries term {r.term}, not the voter's 3")

    def one_vote() -> None:
        s = voter(cls)
        expect(ask(s, 1, 1).vote_granted, "refused the first candidate of term 1")
        expect(not ask(s, 1, 3).vote_granted, "voted twice in term 1")
        expect(ask(s, 1, 1).vote_granted, "refused a repeated request of the same candidate")
        expect(ask(s, 2, 3).vote_granted, "refused a new term's candidate: a vote is per term")

    def up_to_date() -> None:
        s = voter(cls)
        s.log.append(entry(1, 1))
        s.log.append(entry(2, 2))
        r = ask(s, 3, 1, last_index=5, last_term=1)
        expect(not r.vote_granted, "granted a longer log that ends in an older term")
        expect(s.current_term == 3, f"term is {s.current_term}: a higher term is adopted")
        expect(not ask(s, 3, 3, last_index=1, last_term=2).vote_granted, "granted a shorter log")
        expect(ask(s, 4, 3, last_index=2, last_term=2).vote_granted, "refused an equal log")

    return [
        ("rule 1: a candidate of an older term is refused", stale_term),
        ("rule 2: one vote per term (the same candidate may ask again)", one_vote),
        ("rule 2: only a log at least as up to date (last term, then length)", up_to_date),
    ]


CASES: dict[int, Callable[[type], list[tuple[str, Callable[[], None]]]]] = {
    1: _lab1,
    2: _lab2,
    3: _lab3,
    4: _lab4,
    5: _lab5,
    6: _lab6,
}


def run_quick_checks(lab: int | str, cls: type) -> list[Outcome]:
    """Every quick check of ``lab`` on ``cls`` (the reference under the solutions variable)."""
    item = find_lab(lab)
    impl = submission(item.number, cls)
    return [run_check(what, case) for what, case in CASES[item.number](impl)]


def quick_checks(lab: int | str, cls: type) -> list[Outcome]:
    """Print one line per quick check, then how many hold; return the outcomes."""
    outcomes = run_quick_checks(lab, cls)
    said = ""
    for outcome in outcomes:  # a note the line before gave (one missing handler) once
        print(outcome.line(note=outcome.note != said))
        said = outcome.note
    passed = sum(o.ok is True for o in outcomes)
    print(f"{passed} of {len(outcomes)} quick checks hold.", end=" ")
    print("Now grade it." if passed == len(outcomes) else "Fix the first one that does not.")
    return outcomes


def runnable(lab: int | str, cls: type) -> type | None:
    """The class to run live once every quick check holds, else None (with a note).

    A handler that still raises, or breaks a basic rule, would only stall a
    live cluster; the quick checks say why in a line each.
    """
    item = find_lab(lab)
    outcomes = run_quick_checks(item.number, cls)
    if all(o.ok for o in outcomes):
        return submission(item.number, cls)
    failing = sum(not o.ok for o in outcomes)
    print(f"{failing} quick check(s) do not hold yet: the live run is skipped until they do.")
    return None
