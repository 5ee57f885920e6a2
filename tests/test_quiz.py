"""The prediction widget and the "Try this" answers, clicked in plain pytest.

``button.click()`` and setting ``selected_index`` run the same handlers a
browser triggers. The checks: a click records and locks the choice, the
verdict and the explanation appear only after it, nothing is given away
before, and every "Try this" prompt of every notebook has its answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teachraft import quiz
from teachraft.answers import answers, notebooks_with_answers, parse, try_this

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def ask() -> quiz.Prediction:
    return quiz.predict(
        "Which server does the coord pick?",
        ["server2", "server4", "server5"],
        "server4",
        why="Servers 2 and 3 lag behind, and 5 is cut off from the coord.",
    )


def page_text(p: quiz.Prediction) -> str:
    return " ".join(w.value for w in (p.prompt, p.status, p.verdict, p.reveal))


def test_nothing_is_given_away_before_the_click() -> None:
    p = ask()
    assert p.choice is None and p.correct is None
    assert "Which server does the coord pick?" in p.prompt.value
    assert [b.description for b in p.buttons] == ["server2", "server4", "server5"]
    assert not any(b.disabled for b in p.buttons)
    assert p.verdict.value == "" and p.reveal.value == ""
    assert "lag behind" not in page_text(p)
    bundle = p._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "server4" in bundle["text/html"] and "lag behind" not in bundle["text/html"]


def test_a_right_click_is_recorded_locked_and_explained() -> None:
    p = ask()
    p.buttons[1].click()
    assert p.choice == "server4" and p.correct is True
    assert all(b.disabled for b in p.buttons)
    assert "You predicted: <b>server4</b>" in p.status.value
    assert "Right." in p.verdict.value
    assert "Servers 2 and 3 lag behind" in p.reveal.value
    assert "Run the next cell" in p.reveal.value
    assert p.buttons[1].button_style == "success"


def test_a_wrong_click_names_the_answer_and_a_second_click_changes_nothing() -> None:
    p = ask()
    p.buttons[0].click()
    assert p.choice == "server2" and p.correct is False
    assert "Not this time" in p.verdict.value and "<b>server4</b>" in p.verdict.value
    assert "Servers 2 and 3 lag behind" in p.reveal.value
    assert p.buttons[0].button_style == "danger" and p.buttons[1].button_style == "success"
    p.choose("server4")  # a locked prediction keeps the first choice
    assert p.choice == "server2" and p.correct is False


def test_predictions_and_score_keep_the_latest_run_of_each_question() -> None:
    quiz._MADE.clear()
    ask().choose("server2")
    ask().choose("server4")  # the cell run again: replaces the first
    other = quiz.predict("Stale read?", ["yes", "no"], 1)
    assert other.answer == "no"
    made = quiz.predictions()
    assert [(r.question, r.choice, r.correct) for r in made] == [
        ("Which server does the coord pick?", "server4", True),
        ("Stale read?", None, None),
    ]
    assert quiz.score() == "1 of 1 predictions right (1 not answered)"


@pytest.mark.parametrize(
    ("choices", "answer", "message"),
    [
        (["only"], "only", "at least two choices"),
        (["a", "a"], "a", "distinct"),
        (["a", "b"], "c", "not one of the choices"),
        (["a", "b"], 2, "out of range"),
    ],
)
def test_a_malformed_question_says_what_is_wrong(
    choices: list[str], answer: str | int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        quiz.predict("q?", choices, answer)


def test_choosing_something_that_is_not_a_choice_is_refused() -> None:
    p = ask()
    with pytest.raises(ValueError, match="not one of the choices"):
        p.choose("server9")
    assert p.choice is None and not any(b.disabled for b in p.buttons)


def test_answers_stay_hidden_until_their_section_is_opened() -> None:
    panel = try_this("02_log_replication")
    first = answers("02_log_replication")[0]
    assert panel.selected_index is None
    assert all(not body.outputs for body in panel.bodies)
    assert first.text not in json.dumps(panel._repr_mimebundle_())
    panel.selected_index = 0  # a click on the first title
    shown = panel.bodies[0].outputs[0]["data"]["text/markdown"]
    assert shown == first.text and len(first.text) > 40
    assert all(not body.outputs for body in panel.bodies[1:])
    panel.selected_index = None
    panel.selected_index = 0  # opened again: shown once, not twice
    assert len(panel.bodies[0].outputs) == 1


def test_an_unknown_notebook_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="02_log_replication"):
        try_this("99_nothing")


def test_parse_splits_at_second_level_headings_only() -> None:
    text = "# preface\nignored\n## One\nfirst\n### detail\nmore\n## Two\n\nsecond\n"
    assert [(a.title, a.text) for a in parse(text)] == [
        ("One", "first\n### detail\nmore"),
        ("Two", "second"),
    ]


def sources(notebook: Path) -> list[tuple[str, str]]:
    """Each cell's type and source text."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [(cell["cell_type"], "".join(cell["source"])) for cell in cells]


def try_this_prompts(notebook: Path) -> list[str]:
    """The list items of a notebook's "## Try this" cell."""
    for kind, text in sources(notebook):
        if kind == "markdown" and text.startswith("## Try this"):
            items = [line for line in text.splitlines() if line[:2] in ("- ", "* ")]
            numbered = [line for line in text.splitlines() if line[:1].isdigit() and ". " in line]
            return items + numbered
    return []


def test_every_try_this_prompt_has_an_answer_and_the_notebook_shows_them() -> None:
    with_prompts = {p.stem: p for p in NOTEBOOKS.glob("*.ipynb") if try_this_prompts(p)}
    assert set(notebooks_with_answers()) >= set(with_prompts)
    for name in notebooks_with_answers():
        path = NOTEBOOKS / f"{name}.ipynb"
        prompts = try_this_prompts(path)
        assert len(answers(name)) == len(prompts), f"{name}: {len(prompts)} prompts"
        shown = f'try_this("{name}")'
        assert any(text.strip().endswith(shown) for _, text in sources(path)), name


LESSONS = [
    "01_quickstart",
    "02_log_replication",
    "03_leader_failure",
    "04_duplicate_requests",
    "05_partitions_and_leader_selection",
    "06_vector_clocks_and_shiviz",
    "07_linearizability",
    "10_real_etcd",
]


@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_asks_two_predictions_before_the_cells_that_answer_them(name: str) -> None:
    cells = sources(NOTEBOOKS / f"{name}.ipynb")
    asked = [i for i, (kind, text) in enumerate(cells) if kind == "code" and "predict(" in text]
    assert len(asked) >= 2, f"{name} asks {len(asked)} predictions"
    for i in asked:
        after = [text for kind, text in cells[i + 1 :] if kind == "code"]
        assert after and "predict(" not in after[0], f"{name}: no result follows cell {i}"
