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
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = REPO / ".ci" / "node_modules"
SCRIPT = REPO / "tests" / "browser" / "run_notebook.js"
NOTEBOOK = "01_quickstart.ipynb"
BUDGET_S = 240

pytestmark = [pytest.mark.browser, pytest.mark.timeout(BUDGET_S + 120)]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (run: bash .ci/browser-deps)"
    if not (NODE_MODULES / "playwright-core").is_dir():
        return "playwright-core is not in .ci/node_modules (run: bash .ci/browser-deps)"
    if shutil.which("node") is None:
        return "node is not installed"
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        return "jupyterlab is not installed"
    return None


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except (urllib.error.URLError, OSError):
        return None


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


def _wait_ready(base: str, token: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"JupyterLab exited early ({server.returncode}):\n{tail}")
        if _get(f"{base}/api/status?token={token}") is not None:
            return
        time.sleep(0.25)
    raise AssertionError("JupyterLab did not answer within 90 s")


def _stop_lab(base: str, token: str, server: subprocess.Popen[bytes]) -> None:
    """Shut down the kernels this server started, then the server itself (by pid)."""
    raw = _get(f"{base}/api/kernels?token={token}")
    for kernel in json.loads(raw) if raw else []:
        request = urllib.request.Request(
            f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE"
        )
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(request, timeout=10).close()
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def test_quickstart_fail_leader_click_shows_a_new_leader(tmp_path: Path) -> None:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    root, work = tmp_path / "lab", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    port, token = _free_port(), secrets.token_hex(16)
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
        _wait_ready(base, token, server, work / "jupyterlab.log")
        run = subprocess.run(
            ["node", str(SCRIPT), json.dumps(config)],
            env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
            capture_output=True,
            text=True,
            timeout=BUDGET_S + 60,
            check=False,
        )
    finally:
        _stop_lab(base, token, server)
    lines = run.stdout.strip().splitlines()
    assert lines, f"the browser script printed nothing; stderr:\n{run.stderr[-3000:]}"
    result = json.loads(lines[-1])
    if screenshot.exists():
        keep = REPO / "test-output"
        keep.mkdir(exist_ok=True)
        shutil.copy(screenshot, keep / screenshot.name)
    log = (work / "jupyterlab.log").read_text(errors="replace")[-3000:]
    assert result["ok"], f"failed at {result['stage']}: {result['error']}\nJupyterLab log:\n{log}"
    assert "term 1 · leader server1" in result["before"]
    assert "term 2 · leader server" in result["after"] and "1 failed" in result["after"]
    assert "the leader) failed" in result["status"]
    assert screenshot.stat().st_size > 10_000
