"""Data shipped with the package, so that a pip install and Binder have it.

The notebooks draw the Go KVRaft's ``trace_output.log`` and ``shiviz_output.log``
with the same code that draws a live run; load one run with :func:`go_trace`.
Foreign client histories are in :mod:`teachraft.data.histories`. ``README.md``
beside this module (and ``histories/README.md``) says where each came from.

>>> go_trace("3Server2ClientNormalOperation").name
'3Server2ClientNormalOperation'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

GO_TRACES = "kvraft-go"


def go_traces_dir() -> Path:
    """The folder that holds one sub-folder per recorded Go run."""
    return Path(str(resources.files(__name__) / GO_TRACES))


def go_trace_names() -> list[str]:
    """The names of the recorded Go runs, sorted."""
    return sorted(p.name for p in go_traces_dir().iterdir() if p.is_dir())


def go_trace(name: str) -> Path:
    """The folder of one Go run (its ``trace_output.log`` and ``shiviz_output.log``).

    Every teachraft figure and loader accepts this folder as a source.
    """
    path = go_traces_dir() / name
    if not path.is_dir():
        known = ", ".join(go_trace_names())
        raise ValueError(f"no Go trace named {name!r}; the recorded runs are: {known}")
    return path
