"""Predict, then observe: a one-click question placed before the cell that shows the answer.

A student who commits to a prediction before running an experiment learns
more from its result than one who only watches it (the "predict, observe,
explain" cycle of peer instruction). ``predict`` shows a question with one
button per choice:

>>> p = predict("Who leads next?", ["server2", "server4"], "server4", why="Most up to date.")
>>> p.choose("server2")
>>> p.choice, p.correct
('server2', False)

The first click **locks** the choice (the buttons are disabled), records it,
and only then shows whether it was right and why: a student cannot change a
prediction after seeing the verdict. Until a click, the verdict and the
explanation are nowhere in the page, so they are not in the saved notebook
either.

Nothing waits for the click: a notebook run top to bottom (nbval, "Run All",
Voila) shows the question and goes on. :func:`predictions` lists every
prediction of this kernel with the student's choice, and :func:`score` sums
them up, for a student's own look back or a teacher walking the room.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import ipywidgets as W

RIGHT_STYLE = "color:#1B5E20"
WRONG_STYLE = "color:#B00020"
HINT = "Pick one: your choice is locked in, then the answer shows."
_MADE: dict[str, Prediction] = {}  # by question: re-running a cell replaces it


@dataclass(frozen=True)
class Recorded:
    """One prediction as the student made it (``choice`` is None until a click)."""

    question: str
    choice: str | None
    answer: str
    correct: bool | None


class Prediction(W.VBox):
    """A question with one button per choice; the first click locks it and shows the verdict."""

    def __init__(self, question: str, choices: list[str], answer: str | int, why: str = "") -> None:
        self.question = question
        self.choices = _checked_choices(choices)
        self.answer = _checked_answer(self.choices, answer)
        self.why = why
        self.choice: str | None = None
        self.prompt = W.HTML(f"<b>Predict.</b> {html.escape(question)}")
        self.buttons = [self._button(text) for text in self.choices]
        self.status = W.HTML(f"<small>{html.escape(HINT)}</small>")
        self.verdict = W.HTML()
        self.reveal = W.HTML()
        column = W.VBox(self.buttons, layout=W.Layout(align_items="flex-start"))
        super().__init__([self.prompt, column, self.status, self.verdict, self.reveal])
        _MADE[question] = self

    def _button(self, text: str) -> W.Button:
        button = W.Button(description=text, tooltip=text, layout=W.Layout(width="auto"))
        button.on_click(lambda _: self.choose(text))
        return button

    @property
    def correct(self) -> bool | None:
        """Whether the locked-in choice is the answer (None before a choice)."""
        return None if self.choice is None else self.choice == self.answer

    def choose(self, choice: str) -> None:
        """What a click does: record ``choice`` once, lock the buttons, show the verdict."""
        if self.choice is not None:
            return
        if choice not in self.choices:
            raise ValueError(f"{choice!r} is not one of the choices: {self.choices}")
        self.choice = choice
        for button in self.buttons:
            button.disabled = True
            if button.description == self.answer:
                button.button_style = "success"
            elif button.description == choice:
                button.button_style = "danger"
        self.status.value = f"<small>You predicted: <b>{html.escape(choice)}</b></small>"
        self.verdict.value = self._verdict_html()
        self.reveal.value = self._reveal_html()

    def _verdict_html(self) -> str:
        if self.correct:
            return f"<span style='{RIGHT_STYLE}'><b>Right.</b></span>"
        answer = html.escape(self.answer)
        return f"<span style='{WRONG_STYLE}'><b>Not this time:</b> it is <b>{answer}</b>.</span>"

    def _reveal_html(self) -> str:
        why = f"{html.escape(self.why)} " if self.why else ""
        return f"<div>{why}<i>Run the next cell to see it happen.</i></div>"

    def recorded(self) -> Recorded:
        """This prediction as plain data."""
        return Recorded(self.question, self.choice, self.answer, self.correct)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget, and for pages that draw no widgets the question and its choices
        (never the answer)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        items = "".join(f"<li>{html.escape(c)}</li>" for c in self.choices)
        bundle["text/html"] = (
            f"<p><b>Predict.</b> {html.escape(self.question)}</p><ul>{items}</ul>"
            "<p><i>Run the notebook to answer.</i></p>"
        )
        bundle["text/plain"] = f"Predict: {self.question}"
        return bundle


def predict(question: str, choices: list[str], answer: str | int, why: str = "") -> Prediction:
    """Ask ``question`` with one button per choice; ``answer`` is a choice or its index.

    ``why`` is the one or two sentences shown after the click, right or wrong.
    """
    return Prediction(question, choices, answer, why=why)


def predictions() -> list[Recorded]:
    """Every question asked in this kernel (the latest run of each), with the student's choice."""
    return [p.recorded() for p in _MADE.values()]


def score() -> str:
    """One line: how many predictions were right, out of those made."""
    made = [p for p in _MADE.values() if p.choice is not None]
    right = sum(bool(p.correct) for p in made)
    left = len(_MADE) - len(made)
    tail = f" ({left} not answered)" if left else ""
    return f"{right} of {len(made)} predictions right{tail}"


def _checked_choices(choices: list[str]) -> list[str]:
    texts = [str(c) for c in choices]
    if len(texts) < 2:
        raise ValueError(f"a prediction needs at least two choices, got {texts}")
    if len(set(texts)) != len(texts) or not all(t.strip() for t in texts):
        raise ValueError(f"the choices must be distinct and non-empty, got {texts}")
    return texts


def _checked_answer(choices: list[str], answer: str | int) -> str:
    if isinstance(answer, int) and not isinstance(answer, bool):
        if not 0 <= answer < len(choices):
            raise ValueError(f"answer index {answer} is out of range for {len(choices)} choices")
        return choices[answer]
    if answer not in choices:
        raise ValueError(f"the answer {answer!r} is not one of the choices: {choices}")
    return str(answer)
