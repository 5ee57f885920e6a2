"""Foreign client histories shipped with the package, for the notebooks.

A history recorded by someone else's harness shows that the checker is a
tool in its own right: the linearizability notebook checks and draws a
Knossos history with it. The files sit in ``teachraft/data/histories/``
(where each came from is in the README there).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from teachraft.check.history import History, load_history

KNOSSOS = {
    # name: (file, model, initial value), as Knossos's own tests check it
    "cas-failure": ("knossos-cas-register-cas-failure.edn", "cas-register", 0),
}


def history_path(name: str = "cas-failure") -> Path:
    """Where the shipped Knossos history ``name`` is on disk."""
    if name not in KNOSSOS:
        raise ValueError(f"no shipped history {name!r} (there is: {', '.join(KNOSSOS)})")
    return Path(str(resources.files("teachraft.data") / "histories" / KNOSSOS[name][0]))


def knossos_history(name: str = "cas-failure") -> tuple[History, str, object]:
    """The Knossos history ``name``, with the model and initial value to check it under.

    >>> from teachraft.check import check
    >>> history, model, initial = knossos_history()
    >>> check(history, model, initial=initial).verdict
    'not linearizable'
    """
    path = history_path(name)
    _, model, initial = KNOSSOS[name]
    return load_history(path), model, initial
