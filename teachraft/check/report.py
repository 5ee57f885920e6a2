"""A standalone HTML report of a check: verdict, explanation and history figure.

One file with plotly.js inlined, so it opens offline in any browser: to share
with a class or attach to a bug report. Written by ``teachraft lincheck FILE
--html OUT.html``.
"""

from __future__ import annotations

import html
from pathlib import Path

from teachraft.check.history import History, PathLike
from teachraft.check.linearizability import CheckResult

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}: {verdict}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.3em; }}
.verdict {{ font-weight: bold; color: {colour}; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.85em; }}
</style>
</head>
<body>
<h1>{title}: <span class="verdict">{verdict}</span></h1>
<p>{summary}</p>
<pre>{explanation}</pre>
{figure}
</body>
</html>
"""
_COLOURS = {"linearizable": "#0072B2", "not linearizable": "#D00000", "unknown": "#555555"}


def html_report(history: History, result: CheckResult, title: str = "history") -> str:
    """The report as one self-contained HTML page."""
    from teachraft.viz.history import history_figure

    figure = history_figure(history, result).to_html(full_html=False, include_plotlyjs=True)
    model = result.model.name if result.model is not None else "?"
    summary = (
        f"{len(history)} ops, model {html.escape(model)}, "
        f"checked in {result.elapsed:.3f} s by teachraft lincheck."
    )
    return _PAGE.format(
        title=html.escape(title),
        verdict=html.escape(result.verdict),
        colour=_COLOURS[result.verdict],
        summary=summary,
        explanation=html.escape(result.explain()),
        figure=figure,
    )


def write_html(
    path: PathLike, history: History, result: CheckResult, title: str = "history"
) -> None:
    """Write :func:`html_report` to ``path`` (UTF-8)."""
    Path(path).write_text(html_report(history, result, title), encoding="utf-8")
