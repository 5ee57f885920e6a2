"""Re-execute every lesson notebook and save it with outputs that show everywhere.

``python -m teachraft.tools.execute_notebooks [NOTEBOOK ...]`` runs each
notebook (default: every ``notebooks/*.ipynb``, then ``notebooks/labs/*.ipynb``)
top to bottom in a fresh kernel of this Python, in the notebook's folder, with
``TEACHRAFT_STATIC_FIGURES=1``: every plotly figure then carries a PNG beside
its interactive form (see :mod:`teachraft.viz.notebook`), so GitHub and
nbviewer show the figures. A notebook that raises, or that comes out larger
than ``MAX_BYTES``, fails the command; nothing is written for it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from teachraft.viz.notebook import STATIC_FIGURES_ENV

REPO = Path(__file__).resolve().parents[2]
MAX_BYTES = 2 * 1024 * 1024
CELL_TIMEOUT_S = 180


def execute(path: Path) -> int:
    """Run one notebook in place; return its size in bytes."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        store_widget_state=False,  # a FigureWidget's state is megabytes; the PNG shows it
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    text = nbformat.writes(nb) + "\n"
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise SystemExit(f"{path.name}: {size:,} bytes, more than {MAX_BYTES:,}; not written")
    path.write_text(text, encoding="utf-8")
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    notebooks = REPO / "notebooks"
    paths = args.notebooks or [
        *sorted(notebooks.glob("*.ipynb")),
        *sorted(notebooks.glob("labs/*.ipynb")),
    ]
    os.environ[STATIC_FIGURES_ENV] = "1"  # the kernel inherits it
    for path in paths:
        start = time.monotonic()
        size = execute(path.resolve())
        print(f"{path.name}: {size / 1024:,.0f} KiB in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
