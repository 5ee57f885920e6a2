"""Answers to the notebooks' "Try this" prompts, each behind a click.

The answers are package data, one Markdown file per notebook in
``teachraft/data/answers/`` (a ``## `` heading per prompt, in the notebook's
order), so a teacher edits them as text and a pip install ships them. In a
notebook, the cell after "Try this" shows them collapsed:

>>> panel = try_this("02_log_replication")   # doctest: +SKIP

Each section's text is put into the page only when the student opens it, so
an answer is neither on screen nor in the saved notebook before that click.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import ipywidgets as W
from IPython.display import Markdown

ANSWERS = "answers"


@dataclass(frozen=True)
class Answer:
    """One prompt's answer: ``title`` from its heading, ``text`` in Markdown."""

    title: str
    text: str


def notebooks_with_answers() -> list[str]:
    """The notebooks (file names without ``.ipynb``) that have an answers file."""
    folder = resources.files("teachraft.data") / ANSWERS
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".md"))


def answers(notebook: str) -> list[Answer]:
    """The answers for ``notebook`` (``"02_log_replication"``), in the prompts' order."""
    name = notebook.removesuffix(".ipynb")
    path = resources.files("teachraft.data") / ANSWERS / f"{name}.md"
    if not path.is_file():
        known = ", ".join(notebooks_with_answers())
        raise ValueError(f"no answers for a notebook named {name!r}; there are for: {known}")
    return parse(path.read_text(encoding="utf-8"))


def parse(text: str) -> list[Answer]:
    """Split a Markdown file at its ``## `` headings; text before the first is a preface."""
    found: list[Answer] = []
    title: str | None = None
    lines: list[str] = []
    for line in [*text.splitlines(), "## "]:
        if line.startswith("## "):
            if title is not None:
                found.append(Answer(title, "\n".join(lines).strip()))
            title, lines = line[3:].strip(), []
        else:
            lines.append(line)
    return [a for a in found if a.title]


class TryThisAnswers(W.Accordion):
    """One collapsed section per prompt; opening one fills it with its answer."""

    def __init__(self, notebook: str) -> None:
        self.notebook = notebook
        self.answers = answers(notebook)
        self.bodies = [W.Output() for _ in self.answers]
        self.opened: set[int] = set()
        titles = tuple(f"Show answer {i}: {a.title}" for i, a in enumerate(self.answers, 1))
        super().__init__(children=self.bodies, titles=titles, selected_index=None)
        self.observe(lambda change: self.show(change["new"]), names="selected_index")

    def show(self, index: int | None) -> None:
        """Put answer ``index`` (0-based) into its section, once (what a click does)."""
        if index is None or index in self.opened or not 0 <= index < len(self.answers):
            return
        self.opened.add(index)
        self.bodies[index].append_display_data(Markdown(self.answers[index].text))
        opened: int | None = self.selected_index  # type: ignore[has-type]
        if opened != index:  # called from code, not a click: open the section too
            self.selected_index = index

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget; where no widgets are drawn, a line saying where the answers are."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        count = len(self.answers)
        bundle["text/plain"] = f"{count} answers, each behind a click (run the notebook to open)"
        bundle["text/html"] = f"<p><i>{bundle['text/plain']}.</i></p>"
        return bundle


def try_this(notebook: str) -> TryThisAnswers:
    """The answers to ``notebook``'s "Try this" prompts, collapsed, one click each."""
    return TryThisAnswers(notebook)
