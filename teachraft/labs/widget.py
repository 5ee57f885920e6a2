"""A grade in a notebook: scores per check, the violation, the steps, a replay button."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

OK, BAD, NONE = "&#10004;", "&#10008;", "&#8211;"


def _rows(grade: Any) -> str:
    rows = []
    for c in grade.checks:
        mark = NONE if c.total == 0 else (OK if c.ok else BAD)
        colour = "#888" if c.total == 0 else ("#1a7f37" if c.ok else "#b3261e")
        rows.append(
            f'<tr><td style="color:{colour};padding-right:8px">{mark}</td>'
            f"<td>{html.escape(c.name)}</td>"
            f'<td style="text-align:right;padding-left:12px">{html.escape(c.text())}</td></tr>'
        )
    return "<table>" + "".join(rows) + "</table>"


def grade_html(grade: Any) -> str:
    """The whole grade as HTML (also what a notebook without widgets shows)."""
    colour = "#1a7f37" if grade.passed else "#b3261e"
    parts = [
        f'<div style="font-size:1.1em;font-weight:600;color:{colour}">'
        f"{html.escape(grade.heading)} &mdash; "
        f"{grade.score:g}/100</div>",
        f"<div style='color:#555'>graded: {html.escape(grade.graded)}; "
        f"{grade.seeds} seeded schedules; {grade.seconds:.1f} s</div>",
        _rows(grade),
    ]
    if grade.exploration is not None:
        parts.append(f"<div style='color:#555'>{html.escape(grade.exploration.bound())}</div>")
    if grade.violation:
        parts.append(
            f"<p><b>First violation ({html.escape(grade.failed_check)}):</b> "
            f"{html.escape(grade.violation)}</p>"
        )
    if grade.counterexample is not None:
        steps = "".join(f"<li>{html.escape(s)}</li>" for s in grade.counterexample.steps)
        parts.append(f"<p><b>Smallest failing run found:</b></p><ol>{steps}</ol>")
    if grade.detail:
        parts.append(
            "<details><summary>details</summary><pre>"
            + html.escape(grade.detail)
            + "</pre></details>"
        )
    return "".join(parts)


class GradeWidget(W.VBox):
    """The grade, with a button that opens the counterexample in a TimelinePanel."""

    def __init__(self, grade: Any) -> None:
        self.grade = grade
        self.summary = W.HTML(grade_html(grade))
        self.out = W.VBox()
        self.status = W.HTML()
        children: list[Any] = [self.summary]
        if grade.counterexample is not None:
            self.button = W.Button(
                description="Replay counterexample",
                button_style="warning",
                tooltip="Run the failing schedule again, traced, and open it in the timeline",
                layout=W.Layout(width="220px"),
            )
            self.button.on_click(lambda _: self.open_replay())
            children += [W.HBox([self.button, self.status]), self.out]
        super().__init__(children)

    def open_replay(self) -> Any:
        """Build the TimelinePanel of the counterexample and show it below the grade."""
        from teachraft.labs.replay import timeline

        self.status.value = "replaying..."
        try:
            panel = timeline(self.grade)
        except Exception as exc:  # shown in the panel, never as a traceback
            self.status.value = f"<span style='color:#b3261e'>{html.escape(str(exc))}</span>"
            return None
        self.status.value = "the timeline opens at the event where the run went wrong"
        self.out.children = (panel,)
        return panel
