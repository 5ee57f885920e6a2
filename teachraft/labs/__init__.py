"""Labs: students write Raft's handlers, run them in the live cluster, and get graded.

A lab's *skeleton* is the reference class with that lab's handlers removed;
each raises ``NotImplementedError`` with the rule to write in its docstring.

>>> from teachraft import labs                                  # doctest: +SKIP
>>> class MyServer(labs.AppendEntriesLab):                        # doctest: +SKIP
...     def append_entries(self, ae): ...
>>> labs.grade(1, MyServer)          # a widget: scores, first violation, replay
>>> Cluster(server_class=MyServer)   # the same class, live, traced, drawn

The labs (``LABS``; a lab is named by number or name):

1. ``append_entries``: the AppendEntries receiver (``AppendEntriesLab``);
2. ``commit``: the leader's commit rule and the No-Op (``CommitLab``);
3. ``dedup``: duplicate detection (``DedupLab``);
4. ``selection``: the coord's leader selection (``SelectionLab``, a coord:
   ``Cluster(coord_class=...)``);
5. ``clocks``: vector clocks (``ClocksLab``);
6. ``request_vote``: the RequestVote receiver (``VoteLab``, in raft mode:
   ``Cluster(election="raft", server_class=...)``).

With ``TEACHRAFT_LAB_SOLUTIONS=1`` in the environment, ``grade`` and
``submission`` use the reference solution instead of the class given (CI).
``BUGS`` is the catalogue of named bugs (``Cluster(bugs={...})``);
``mystery(seed)`` hides one in a cluster, ``investigate()`` runs the grader's
schedules on it without naming it, and ``check_answer(name)`` checks a guess.
"""

from __future__ import annotations

from teachraft.labs.api import LabCoord, LabKV, LabServer, VectorClocks
from teachraft.labs.bugs import BUGS, Bug, compose
from teachraft.labs.catalog import (
    LABS,
    SOLUTIONS_ENV,
    Lab,
    lab,
    skeleton,
    solution,
    solutions_injected,
    submission,
)
from teachraft.labs.grader import Grade, grade
from teachraft.labs.mystery import check_answer, investigate, mystery, mystery_bug_names
from teachraft.labs.skeletons import (
    AppendEntriesLab,
    ClocksLab,
    CommitLab,
    DedupLab,
    SelectionLab,
    VoteLab,
)

__all__ = [
    "BUGS",
    "LABS",
    "SOLUTIONS_ENV",
    "AppendEntriesLab",
    "Bug",
    "ClocksLab",
    "CommitLab",
    "DedupLab",
    "Grade",
    "Lab",
    "LabCoord",
    "LabKV",
    "LabServer",
    "SelectionLab",
    "VectorClocks",
    "VoteLab",
    "check_answer",
    "compose",
    "grade",
    "investigate",
    "lab",
    "mystery",
    "mystery_bug_names",
    "skeleton",
    "solution",
    "solutions_injected",
    "submission",
]
