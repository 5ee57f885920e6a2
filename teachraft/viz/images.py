"""Saving figures as PNG files, with Debian's Chromium and never a downloaded browser.

kaleido (1.x) renders plotly figures with a Chrome it finds on the machine. On
Debian that is ``/usr/bin/chromium``; setting ``BROWSER_PATH`` makes the choice
explicit, so kaleido never tries to fetch a browser of its own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import plotly.graph_objects as go

CHROMIUMS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium() -> str | None:
    """The path of a Chromium on this machine, or None."""
    for path in CHROMIUMS:
        if os.path.exists(path):
            return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


def write_png(
    fig: go.Figure, path: str | Path, width: int | None = None, scale: float = 1.0
) -> Path:
    """Render ``fig`` to a PNG file (needs kaleido and a Chromium).

    Figures that fill the notebook's width have no width of their own; ``width``
    (default 1100 px for those) sets the picture's.
    """
    chromium = find_chromium()
    if chromium is not None:
        os.environ.setdefault("BROWSER_PATH", chromium)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if width is None and fig.layout.width is None:
        width = 1100
    fig.write_image(str(target), format="png", width=width, scale=scale)
    return target
