"""A prediction and the "Try this" answers in a Voila dashboard, in a real browser.

Voila serves a one-cell-per-widget notebook on 127.0.0.1 (a free port, a
random token); ``tests/browser/run_notebook.js`` (playwright-core and Debian's
chromium, see ``browser_support``) waits for the question, clicks one choice,
and waits until the page says whether it was right. No script on the page may
log an error. Only the processes this test started are stopped, by their pid.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import nbformat
import pytest
from browser_support import BUDGET_S, CHROMIUM, browse, free_port, keep, missing, stop, wait_ready
from test_notebooks_voila import _start_voila

pytestmark = [pytest.mark.browser, pytest.mark.timeout(BUDGET_S + 120)]

QUESTION = "Which server does the coord pick?"


def _quiz_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from teachraft.quiz import predict\n\n"
            f"predict({QUESTION!r}, ['server2 (lowest id)', 'server4 (most up to date)'], 1,\n"
            "        why='Servers 2 and 3 lag behind.')"
        ),
        nbformat.v4.new_code_cell(
            'from teachraft.answers import try_this\n\ntry_this("02_log_replication")'
        ),
    ]
    nbformat.write(nb, path)


def test_voila_prediction_locks_the_click_and_shows_the_verdict(tmp_path: Path) -> None:
    reason = missing("voila")
    if reason:
        pytest.skip(reason)
    root, work = tmp_path / "voila", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    _quiz_notebook(root / "quiz.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    server = _start_voila(root, work, port, token)
    screenshot = tmp_path / "voila-prediction.png"
    try:
        wait_ready(f"{base}/voila/tree?token={token}", server, work / "voila.log", "Voila")
        result = browse(
            {
                "url": f"{base}/voila/render/quiz.ipynb?token={token}",
                "mode": "voila",
                "click": "server4 (most up to date)",
                "before": QUESTION,
                "after": "Servers 2 and 3 lag behind.",
                "screenshot": str(screenshot),
                "userDataDir": str(work / "chromium-profile"),
                "chromium": str(CHROMIUM),
                "timeoutMs": BUDGET_S * 1000,
            }
        )
    finally:
        stop(server)
    keep(screenshot)
    log = (work / "voila.log").read_text(errors="replace")[-3000:]
    assert result["ok"], f"failed at {result['stage']}: {result['error']}\nVoila log:\n{log}"
    assert "Right." in result["status"], result["status"]
    assert result["consoleErrors"] == [], result["consoleErrors"]
