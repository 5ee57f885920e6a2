"""Find the bug: a cluster with one hidden bug from the catalogue, and a check of the guess.

``mystery(seed)`` picks a bug of ``BUGS`` from the seed and returns an
unstarted ``Cluster`` (or, with ``sim=True``, a ``SimCluster``) that runs it;
nothing in the cluster names the bug. The student runs chaos, checks the
history, scrubs the timeline, and names it with ``check_answer(name)``.
"""

from __future__ import annotations

import html
import random
import time
from dataclasses import dataclass
from typing import Any

from teachraft.labs.bugs import BUGS, compose
from teachraft.labs.catalog import Lab

_last_seed: int | None = None


NOT_A_MYSTERY = frozenset({"next_index_off_by_one"})
"""Bugs a mystery never hides: in a live cluster this one stalls every write after the
first divergence, so a student sees nothing but timeouts (the grader still catches it)."""


def mystery_bug_names() -> list[str]:
    """The names a mystery's bug is drawn from (the catalogue but ``NOT_A_MYSTERY``)."""
    return [n for n in sorted(BUGS) if n not in NOT_A_MYSTERY]


def _bug_of(seed: int) -> str:
    names = sorted(BUGS)
    i = names.index(random.Random(f"mystery:{seed}").choice(names))
    while names[i] in NOT_A_MYSTERY:  # the next one, so that no other seed changes its bug
        i = (i + 1) % len(names)
    return names[i]


def _hidden_classes(seed: int) -> tuple[type, type]:
    server_class, coord_class = compose([_bug_of(seed)])
    # The classes keep the core's names, so that nothing on screen gives the bug away.
    server_class = type("Server", (server_class,), {"__module__": "teachraft.labs.mystery"})
    coord_class = type("Coord", (coord_class,), {"__module__": "teachraft.labs.mystery"})
    return server_class, coord_class


def mystery(seed: int, *, sim: bool = False, **kwargs: Any) -> Any:
    """An unstarted cluster with one hidden bug chosen by ``seed``.

    ``kwargs`` go to ``Cluster`` (``servers``, ``clients``, ``tracing``, ...) or,
    with ``sim=True``, to ``SimCluster``.
    """
    global _last_seed
    _last_seed = seed
    server_class, coord_class = _hidden_classes(seed)
    if sim:
        from teachraft.sim import SimCluster

        return SimCluster(server_class=server_class, coord_class=coord_class, **kwargs)
    from teachraft.cluster import Cluster

    kwargs.setdefault("servers", 5)
    return Cluster(server_class=server_class, coord_class=coord_class, **kwargs)


MYSTERY_LAB = Lab(0, "mystery", "the mystery cluster", "server", (), object)
"""What an investigation's result is titled: nothing in it names the bug."""


def investigate(seed: int | None = None, runs: int = 200, search: bool = True) -> Any:
    """The grader's seeded schedules and invariant monitor, run on the mystery's hidden classes.

    Returns a ``Grade`` (shown as its widget: the first violated invariant, the shrunk
    steps, a replay button) whose text never names the bug. ``seed`` defaults to the
    last ``mystery()``; the schedules cycle through every lab's kinds of fault.
    """
    from teachraft.labs.grader import grade_machines

    if seed is None:
        seed = _last_seed
    if seed is None:
        raise ValueError("call teachraft.labs.mystery(seed) first, or pass its seed")
    started = time.monotonic()
    server_class, coord_class = _hidden_classes(seed)
    result = grade_machines(
        MYSTERY_LAB,
        server_class,
        coord_class,
        f"mystery {seed}",
        list(range(runs)),
        search=search,
        weighting=lambda s: 1 + s % 4,
    )
    result.seconds = time.monotonic() - started
    return result


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


@dataclass
class Answer:
    """Whether a guess names the hidden bug, and what the bug breaks."""

    guess: str
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.correct else "#b35900"
        return f'<div style="color:{colour};font-weight:600">{html.escape(self.message)}</div>'


def check_answer(name: str, seed: int | None = None) -> Answer:
    """Check a guess (a bug's name, e.g. ``apply_before_commit``) for the mystery of ``seed``
    (the last ``mystery()`` when None)."""
    if seed is None:
        seed = _last_seed
    if seed is None:
        return Answer(name, False, "Call teachraft.labs.mystery(seed) first: no mystery yet.")
    guess = _normal(name)
    names = {_normal(n): n for n in BUGS} | {_normal(b.title): b.name for b in BUGS.values()}
    if guess not in names:
        return Answer(
            name,
            False,
            f"{name!r} is not a bug of the catalogue; the names are: "
            + ", ".join(mystery_bug_names()),
        )
    hidden = BUGS[_bug_of(seed)]
    if names[guess] == hidden.name:
        return Answer(name, True, f"Right: {hidden.title}. The rule it breaks: {hidden.rule}.")
    return Answer(
        name,
        False,
        f"Not {names[guess]}. Look again: which rule does the evidence break? "
        "(The history figure, the timeline and the logs of each server will tell.)",
    )
