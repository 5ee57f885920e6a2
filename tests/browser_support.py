"""What the real-browser tests share: Debian's chromium driven by playwright-core.

The JupyterLab and Voila tests each start a server on 127.0.0.1 with a random
token, wait until it answers, run ``tests/browser/run_notebook.js`` in node
with a JSON config, and keep the screenshot under ``test-output/`` so a person
can look at it. No browser is ever downloaded: ``bash .ci/browser-deps``
installs Debian's chromium and playwright-core.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = REPO / ".ci" / "node_modules"
SCRIPT = REPO / "tests" / "browser" / "run_notebook.js"
BUDGET_S = 240


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def missing(server_module: str) -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (run: bash .ci/browser-deps)"
    if not (NODE_MODULES / "playwright-core").is_dir():
        return "playwright-core is not in .ci/node_modules (run: bash .ci/browser-deps)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not has_module(server_module):
        return f"{server_module} is not installed (it is in the test extra)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except (urllib.error.URLError, OSError):
        return None


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Wait until ``url`` answers; fail with the server's log if it exits first."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{what} exited early ({server.returncode}):\n{tail}")
        if get(url) is not None:
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} did not answer within 90 s")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop a server this test started (by its pid)."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def browse(config: dict[str, object]) -> dict[str, object]:
    """Run the browser script with ``config``; its last line of output is the result."""
    run = subprocess.run(
        ["node", str(SCRIPT), json.dumps(config)],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        timeout=BUDGET_S + 60,
        check=False,
    )
    lines = run.stdout.strip().splitlines()
    assert lines, f"the browser script printed nothing; stderr:\n{run.stderr[-3000:]}"
    return json.loads(lines[-1])


def keep(screenshot: Path) -> None:
    """Copy a screenshot to test-output/, where a person looks at it."""
    if screenshot.exists():
        out = REPO / "test-output"
        out.mkdir(exist_ok=True)
        shutil.copy(screenshot, out / screenshot.name)
