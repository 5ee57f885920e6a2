"""The quickstart notebook in a real browser: JupyterLab plus headless Chromium.

JupyterLab serves a temporary copy of ``notebooks/01_quickstart.ipynb`` on
127.0.0.1 (a free port, a random token). A small node script
(``tests/browser/run_notebook.js``, playwright-core from ``.ci/node_modules``,
Debian's ``/usr/bin/chromium``) runs every cell, clicks the panel's "Fail
leader" button, and waits until the panel's live topology and logs figures
draw term 2 (the header alone could change while a figure stays stale). The
screenshot is kept under the test's tmp_path and copied to ``test-output/``
(git-ignored). Every wait is bounded; only the processes this
test started are stopped, by their pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser_support import (
    BUDGET_S,
    CHROMIUM,
    REPO,
    browse,
    free_port,
    get,
    keep,
    missing,
    stop,
    wait_ready,
)

NOTEBOOK = "01_quickstart.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(BUDGET_S + 120)]


def _start_lab(root: Path, work: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTER_CONFIG_DIR=str(work / "config"),
        IPYTHONDIR=str(work / "ipython"),
    )
    args = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.workspaces_dir={work / 'workspaces'}",
        f"--LabApp.user_settings_dir={work / 'settings'}",
        "--LabApp.news_url=",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # containers and CI often run as root
    log = (work / "jupyterlab.log").open("wb")
    return subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop_lab(base: str, token: str, server: subprocess.Popen[bytes]) -> None:
    """Shut down the kernels this server started, then the server itself (by pid)."""
    raw = get(f"{base}/api/kernels?token={token}")
    for kernel in json.loads(raw) if raw else []:
        request = urllib.request.Request(
            f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE"
        )
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(request, timeout=10).close()
    stop(server)


def test_quickstart_fail_leader_click_shows_a_new_leader(tmp_path: Path) -> None:
    reason = missing("jupyterlab")
    if reason:
        pytest.skip(reason)
    root, work = tmp_path / "lab", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    screenshot = tmp_path / "quickstart-after-fail-leader.png"
    config = {
        "url": f"{base}/lab/tree/{NOTEBOOK}?token={token}",
        "click": "Fail leader",
        "before": "term 1 · leader server1",
        "after": "term 2 · leader server",
        "figureTexts": ["term 2 · leader server", "· term 2 ·"],  # live topology, logs
        "screenshot": str(screenshot),
        "userDataDir": str(work / "chromium-profile"),
        "chromium": str(CHROMIUM),
        "timeoutMs": BUDGET_S * 1000,
    }
    server = _start_lab(root, work, port, token)
    try:
        wait_ready(
            f"{base}/api/status?token={token}", server, work / "jupyterlab.log", "JupyterLab"
        )
        result = browse(config)
    finally:
        _stop_lab(base, token, server)
    keep(screenshot)
    log = (work / "jupyterlab.log").read_text(errors="replace")[-3000:]
    assert result["ok"], f"failed at {result['stage']}: {result['error']}\nJupyterLab log:\n{log}"
    assert "term 1 · leader server1" in result["before"]
    assert "term 2 · leader server" in result["after"] and "1 failed" in result["after"]
    assert "the leader) failed" in result["status"]
    assert screenshot.stat().st_size > 10_000
