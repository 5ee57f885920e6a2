"""Each lab notebook, run top to bottom with the reference solutions injected, gets full marks.

nbval runs the notebooks as shipped (the skeletons: every grade cell must show
a failure, not a traceback). This runs them the second way CI must: with
``TEACHRAFT_LAB_SOLUTIONS=1`` in the kernel's environment, where every quick
check holds, the live run starts, and ``grade()`` reports full marks. It also
checks that the shipped outputs show a grade of 0 with the skeleton's own
``NotImplementedError``, not a traceback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from teachraft.labs import LABS, SOLUTIONS_ENV

LABS_DIR = Path(__file__).resolve().parents[1] / "notebooks" / "labs"
NOTEBOOKS = sorted(LABS_DIR.glob("lab*.ipynb"))
BUDGET_S = 60

pytestmark = pytest.mark.slow


def lab_number(path: Path) -> int:
    return int(path.name[3])


def streams(nb: nbformat.NotebookNode) -> str:
    return "".join(
        "".join(out.get("text", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


def test_there_is_one_notebook_per_lab() -> None:
    assert sorted(lab_number(p) for p in NOTEBOOKS) == sorted(LABS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_with_the_solutions_injected_the_lab_gets_full_marks(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SOLUTIONS_ENV, "1")  # the kernel inherits the environment
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=BUDGET_S, kernel_name="python3", resources={"metadata": {"path": str(LABS_DIR)}}
    )
    start = time.monotonic()
    client.execute()
    took = time.monotonic() - start
    text = streams(nb)
    lab = LABS[lab_number(path)]
    assert f"Lab {lab.number} ({lab.title}): 100/100 - every check passed." in text, text
    assert "quick checks hold. Now grade it." in text and "✗" not in text and "…" not in text
    assert "skipped" not in text, "the live run must run with the solution"
    assert took < BUDGET_S, f"{path.name} took {took:.0f} s"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_as_shipped_the_grade_shows_the_skeletons_failure_not_a_traceback(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    outputs = [out for cell in nb["cells"] for out in cell.get("outputs", [])]
    assert outputs, f"{path.name} is committed without outputs"
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = "".join("".join(out.get("text", "")) for out in outputs)
    lab = LABS[lab_number(path)]
    assert f"Lab {lab.number} ({lab.title}): 0/100 - " in text
    assert "raised NotImplementedError" in text
    assert "the live run is skipped" in text
