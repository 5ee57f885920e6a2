"""The labs by number and name, their skeletons and their reference solutions.

``solution(lab)`` is the skeleton with the reference handlers put back (they
are ``LabServer``'s, ``LabCoord``'s and ``VectorClocks``' own). With the
environment variable ``TEACHRAFT_LAB_SOLUTIONS=1`` every grading entry point
uses the solution instead of the class it is given: CI runs each lab notebook
that way and expects full marks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from teachraft.labs import skeletons
from teachraft.labs.api import LabCoord, LabServer, VectorClocks

SOLUTIONS_ENV = "TEACHRAFT_LAB_SOLUTIONS"


@dataclass(frozen=True, slots=True)
class Lab:
    """One lab: its number, short name, title, what it plugs into and its handlers."""

    number: int
    name: str
    title: str
    kind: str
    """``server`` (Cluster(server_class=...)), ``coord`` (coord_class) or ``clocks``."""
    handlers: tuple[str, ...]
    skeleton: type
    election: str = "coord"
    """How the lab's cluster picks leaders: ``coord`` (KVRaft) or ``raft`` (lab 6)."""

    @property
    def reference(self) -> type:
        return {"server": LabServer, "coord": LabCoord, "clocks": VectorClocks}[self.kind]


LABS: dict[int, Lab] = {
    lab.number: lab
    for lab in (
        Lab(
            1,
            "append_entries",
            "The AppendEntries receiver",
            "server",
            ("append_entries",),
            skeletons.AppendEntriesLab,
        ),
        Lab(
            2,
            "commit",
            "The leader's commit rule and the No-Op",
            "server",
            ("advance_commit_index", "start_term"),
            skeletons.CommitLab,
        ),
        Lab(
            3,
            "dedup",
            "Duplicate detection",
            "server",
            ("client_request", "apply_entry"),
            skeletons.DedupLab,
        ),
        Lab(
            4,
            "selection",
            "The coord's leader selection",
            "coord",
            ("log_state",),
            skeletons.SelectionLab,
        ),
        Lab(
            5, "clocks", "Vector clocks", "clocks", ("tick", "send", "receive"), skeletons.ClocksLab
        ),
        Lab(
            6,
            "request_vote",
            "The RequestVote receiver (raft mode)",
            "server",
            ("request_vote",),
            skeletons.VoteLab,
            election="raft",
        ),
    )
}
"""Every lab by number (``lab(n)`` also takes its name)."""


def lab(which: int | str | Lab) -> Lab:
    """A lab by number (1-6), by name (``append_entries``, ``commit``, ``dedup``,
    ``selection``, ``clocks``, ``request_vote``) or as itself."""
    if isinstance(which, Lab):
        return which
    if isinstance(which, str) and which.isdigit():
        which = int(which)
    if isinstance(which, int) and which in LABS:
        return LABS[which]
    for item in LABS.values():
        if item.name == which:
            return item
    names = ", ".join(f"{n} ({x.name})" for n, x in LABS.items())
    raise ValueError(f"no lab {which!r}; the labs are {names}")


def skeleton(which: int | str) -> type:
    """The class a student subclasses: the reference with the lab's handlers removed."""
    return lab(which).skeleton


def solution(which: int | str) -> type:
    """The skeleton with the reference handlers put back (full marks)."""
    item = lab(which)
    methods = {name: getattr(item.reference, name) for name in item.handlers}
    return type(f"{item.skeleton.__name__}Solution", (item.skeleton,), methods)


def solutions_injected() -> bool:
    """True when ``TEACHRAFT_LAB_SOLUTIONS`` is set to a true value (CI's second run)."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def submission(which: int | str, cls: type) -> type:
    """``cls``, or the lab's reference solution when ``TEACHRAFT_LAB_SOLUTIONS`` is set."""
    return solution(which) if solutions_injected() else cls
