"""The quickstart as a Voila dashboard, in a real browser: Voila plus headless Chromium.

Voila serves a temporary copy of ``notebooks/01_quickstart.ipynb`` on
127.0.0.1 (a free port, a random token) and runs it. The node script
``tests/browser/run_notebook.js`` (playwright-core from ``.ci/node_modules``,
Debian's ``/usr/bin/chromium``) clicks the panel's "Fail leader" button and
waits until the panel's live topology figure draws a term-2 leader. No script
on the page may log an error. A second page renders a ``TimelinePanel`` asked
to open at one event, checks that the browser shows that event, clicks
"moment ▶▶" and waits until the figures show the next moment. A third page runs a raft-mode
cluster's panel (election timers, "Time out now" buttons), clicks "Fail leader"
and waits until a term-2 leader is drawn. The
screenshots are kept under the test's tmp_path and copied to ``test-output/``
(git-ignored). Every wait is bounded; only the processes this test started are
stopped, by their pid.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from browser_support import (
    BUDGET_S,
    CHROMIUM,
    REPO,
    browse,
    free_port,
    keep,
    missing,
    stop,
    wait_ready,
)

NOTEBOOK = "01_quickstart.ipynb"
TIMELINE_START = 75

pytestmark = [pytest.mark.browser, pytest.mark.timeout(2 * BUDGET_S + 120)]


def _timeline_notebook(path: Path) -> None:
    """A page with one TimelinePanel over the Go original's leader failure."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from teachraft.data import go_trace\n"
            "from teachraft.viz.notebook import setup_notebook\n"
            "from teachraft.widgets import TimelinePanel\n\n"
            "setup_notebook()\n"
            f'TimelinePanel(go_trace("3Server2ClientLeaderFailure"), start={TIMELINE_START})'
        )
    ]
    nbformat.write(nb, path)


def _raft_notebook(path: Path) -> None:
    """A page with one ControlPanel over a raft-mode cluster (its timers figure included)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import time\n"
            "from teachraft.cluster import Cluster\n"
            "from teachraft.viz.notebook import setup_notebook\n"
            "from teachraft.widgets import ControlPanel\n\n"
            "setup_notebook()\n"
            'cluster = Cluster(servers=3, election="raft", seed=1).start()\n'
            "deadline = time.monotonic() + 10\n"
            "while cluster.leader() == 0 and time.monotonic() < deadline:\n"
            "    time.sleep(0.05)\n"
            "ControlPanel(cluster)"
        )
    ]
    nbformat.write(nb, path)


def _start_voila(root: Path, work: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTER_CONFIG_DIR=str(work / "config"),
        IPYTHONDIR=str(work / "ipython"),
    )
    args = [
        sys.executable,
        "-m",
        "voila",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--Voila.root_dir={root}",
    ]
    log = (work / "voila.log").open("wb")
    return subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def voila(tmp_path: Path):
    reason = missing("voila")
    if reason:
        pytest.skip(reason)
    root, work = tmp_path / "voila", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    _timeline_notebook(root / "timeline.ipynb")
    _raft_notebook(root / "raft.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    server = _start_voila(root, work, port, token)
    try:
        wait_ready(f"{base}/voila/tree?token={token}", server, work / "voila.log", "Voila")
        yield base, token, work
    finally:
        stop(server)


def test_voila_quickstart_fail_leader_redraws_the_live_topology(voila, tmp_path: Path) -> None:
    base, token, work = voila
    screenshot = tmp_path / "voila-quickstart-after-fail-leader.png"
    result = browse(
        {
            "url": f"{base}/voila/render/{NOTEBOOK}?token={token}",
            "mode": "voila",
            "click": "Fail leader",
            "before": "term 1 · leader server1",
            "after": "term 2 · leader server",
            "figureTexts": ["term 2 · leader server", "· term 2 ·"],  # topology, logs
            "screenshot": str(screenshot),
            "userDataDir": str(work / "chromium-profile"),
            "chromium": str(CHROMIUM),
            "timeoutMs": BUDGET_S * 1000,
        }
    )
    keep(screenshot)
    log = (work / "voila.log").read_text(errors="replace")[-3000:]
    assert result["ok"], f"failed at {result['stage']}: {result['error']}\nVoila log:\n{log}"
    assert "term 2 · leader server" in result["after"] and "1 failed" in result["after"]
    titles = [f["title"] for f in result["figures"] if f["widget"]]
    assert any("term 2 · leader server" in t for t in titles), titles
    logs = [t for t in titles if t.startswith("Logs per server")]
    assert logs and all("term 2" in t for t in logs), titles
    # every static figure is drawn too (in Voila they are widgets: see teachraft.viz.notebook)
    assert all(f["points"] > 0 for f in result["figures"]), result["figures"]
    assert result["consoleErrors"] == [], result["consoleErrors"]
    assert screenshot.stat().st_size > 10_000


def test_voila_timeline_panel_opens_at_the_requested_event(voila, tmp_path: Path) -> None:
    """It opens where it was asked to (not at play's 0), and "moment ▶▶" redraws it."""
    from teachraft.data import go_trace
    from teachraft.viz.timeline import Timeline

    moment = Timeline(go_trace("3Server2ClientLeaderFailure")).next_moment(TIMELINE_START)
    base, token, work = voila
    screenshot = tmp_path / "voila-timeline-panel.png"
    result = browse(
        {
            "url": f"{base}/voila/render/timeline.ipynb?token={token}",
            "mode": "voila",
            "click": "moment ▶▶",
            "before": f"#{TIMELINE_START} ",
            "beforeFigureTexts": [f"after event #{TIMELINE_START} "] * 2,
            "after": f"#{moment} ",
            "figureTexts": [f"after event #{moment} "] * 2,  # topology and logs
            "screenshot": str(screenshot),
            "userDataDir": str(work / "chromium-profile-timeline"),
            "chromium": str(CHROMIUM),
            "timeoutMs": BUDGET_S * 1000,
        }
    )
    keep(screenshot)
    assert result["ok"], f"failed at {result['stage']}: {result['error']}"
    assert str(TIMELINE_START) in result["sliders"].split("\n"), result["sliders"]
    topology, logs, spacetime = result["figures"]
    assert f"after event #{moment} " in topology["title"] and topology["points"] > 0
    assert f"after event #{moment} " in logs["title"]
    assert spacetime["title"].startswith("Space-time diagram")
    assert result["consoleErrors"] == [], result["consoleErrors"]


def test_voila_raft_mode_panel_redraws_a_new_leader(voila, tmp_path: Path) -> None:
    """A raft-mode panel in Voila: its figures (the timers figure too) draw, and a new
    leader elected after "Fail leader" shows up, with no script error on the page."""
    base, token, work = voila
    screenshot = tmp_path / "voila-raft-panel-after-fail-leader.png"
    result = browse(
        {
            "url": f"{base}/voila/render/raft.ipynb?token={token}",
            "mode": "voila",
            "click": "Fail leader",
            "before": "raft elections · term 1 · leader server",
            "after": "term 2 · leader server",
            "figureTexts": ["term 2 · leader server"],  # the topology
            "screenshot": str(screenshot),
            "userDataDir": str(work / "chromium-profile-raft"),
            "chromium": str(CHROMIUM),
            "timeoutMs": BUDGET_S * 1000,
        }
    )
    keep(screenshot)
    log = (work / "voila.log").read_text(errors="replace")[-3000:]
    assert result["ok"], f"failed at {result['stage']}: {result['error']}\nVoila log:\n{log}"
    assert "1 failed" in result["after"], result["after"]
    assert result["consoleErrors"] == [], result["consoleErrors"]
    titles = [f["title"] for f in result["figures"] if f["widget"]]
    assert any(t.startswith("Election timers (raft mode)") for t in titles), titles
