"""Every runtime dependency is declared, and Binder pins each one.

Binder (repo2docker) installs ``binder/requirements.txt`` and then teachraft
itself without its dependencies (``binder/postBuild``), so a package missing
from the pins is missing on Binder even though pip would install it
everywhere else.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"yaml": "pyyaml", "IPython": "ipython"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement line."""
    return re.split(r"[\s<>=!~\[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _binder_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "binder" / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"binder/requirements.txt: {line!r} is not pinned with =="
            pins[_name(line)] = line.split("==", 1)[1]
    return pins


def _third_party_imports(root: Path) -> set[str]:
    """Top-level names imported by the package's modules, standard library excluded."""
    names: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "teachraft"}


def test_binder_pins_every_runtime_dependency() -> None:
    runtime = {_name(r) for r in _project()["dependencies"]}
    missing = runtime - set(_binder_pins())
    assert not missing, f"binder/requirements.txt does not pin {sorted(missing)}"


def test_binder_pins_what_the_notebooks_and_voila_need() -> None:
    pins = _binder_pins()
    for name in ("jupyterlab", "ipykernel", "voila", "anywidget", "ipywidgets"):
        assert name in pins, f"binder/requirements.txt does not pin {name}"


def test_every_import_of_the_package_is_a_declared_dependency() -> None:
    project = _project()
    declared = {_name(r) for r in project["dependencies"]}
    for extra in ("test", "notebook", "bench"):
        declared |= {_name(r) for r in project["optional-dependencies"][extra]}
    imported = {DISTRIBUTIONS.get(n, n) for n in _third_party_imports(REPO / "teachraft")}
    assert imported <= declared, f"undeclared: {sorted(imported - declared)}"


def test_numpy_is_declared_for_networkx_layouts() -> None:
    """networkx imports numpy lazily inside its layouts, so no import line shows it."""
    assert "numpy" in {_name(r) for r in _project()["dependencies"]}


def test_every_data_file_is_declared_package_data() -> None:
    """A pip install (and Binder) gets the Go traces only if pyproject declares them."""
    from fnmatch import fnmatch

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]["teachraft.data"]
    root = REPO / "teachraft" / "data"
    files = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    ]
    assert len(files) >= 9
    missing = [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)]
    assert not missing, f"not declared as package data: {missing}"
