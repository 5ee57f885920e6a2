"""The layer rules that the import graph alone cannot show.

import-linter (``.ci/checks``) keeps the core from importing the other layers
and any I/O module; these tests pin the same rules at run time, and the rule
that the figures and panels act through the cluster's public surface only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "teachraft"

IMPURE = ("asyncio", "socket", "selectors", "ssl", "msgpack", "concurrent.futures")


def test_importing_the_core_loads_no_io_concurrency_or_msgpack() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        "import teachraft.core.server, teachraft.core.coord, teachraft.core.client\n"
        "import teachraft.core.messages, teachraft.core.effects, teachraft.core.machine\n"
        "new = set(sys.modules) - before\n"
        f"print(sorted(m for m in new if m.split('.')[0] in {IMPURE!r} or m in {IMPURE!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", f"the core pulled in: {out}"


def test_core_sources_name_no_clock_or_thread() -> None:
    banned = {"asyncio", "socket", "threading", "time", "random", "logging", "msgpack"}
    for path in sorted((ROOT / "core").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"


LEGACY_PRIVATE = {"_run", "_wait", "_leader", "_apause", "_submit", "_closed", "_status"}
"""Private Cluster members that older code reached for, before the public fault controller."""


def _cluster_private_names() -> set[str]:
    """Every private method or attribute the cluster package defines."""
    names = set(LEGACY_PRIVATE)
    for path in (ROOT / "cluster").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _private_uses(path: Path) -> list[str]:
    """``x._name`` for a private cluster member, where x is not ``self``/``cls``."""
    private = _cluster_private_names()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in private
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


def test_viz_widgets_and_chaos_use_no_private_cluster_member() -> None:
    paths = [ROOT / "widgets.py", ROOT / "chaos.py", *sorted((ROOT / "viz").glob("*.py"))]
    found = [use for p in paths for use in _private_uses(p)]
    assert found == []
