"""How the notebooks show plotly figures: live where JavaScript runs, as images elsewhere.

``setup_notebook()`` (the first cell of every lesson) picks plotly's renderer:

- in JupyterLab, a figure is plotly's own JSON output, drawn by the plotly
  extension without embedding plotly.js in the notebook;
- in Voila, a figure is a ``FigureWidget``. Voila hands pre-rendered outputs
  to the plotly extension as plain objects, and the extension's attempt to
  store a snapshot in them fails (``TypeError: r.setData is not a function``
  in the browser console); widgets are drawn by the widget manager instead;
- with ``TEACHRAFT_STATIC_FIGURES=1`` (set by ``python -m
  teachraft.tools.execute_notebooks``) every figure also carries a PNG, so a
  notebook committed to git shows its figures on GitHub and in nbviewer,
  where no JavaScript runs. The PNG is rendered by kaleido with Debian's
  Chromium (see :mod:`teachraft.viz.images`).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import PlotlyRenderer

from teachraft.viz.images import find_chromium

RENDERER = "teachraft"
STATIC_FIGURES_ENV = "TEACHRAFT_STATIC_FIGURES"
PNG_WIDTH = 1000


def in_voila() -> bool:
    """True inside a kernel that Voila started (it names itself in the kernel's environment)."""
    return os.environ.get("SERVER_SOFTWARE", "").startswith("voila/") or (
        "VOILA_KERNEL_ID" in os.environ
    )


def static_figures() -> bool:
    """True when figures should also carry a PNG (for notebooks committed to git)."""
    return os.environ.get(STATIC_FIGURES_ENV, "") == "1"


def png_bundle(fig: go.Figure | dict[str, Any]) -> dict[str, str]:
    """``{"image/png": base64}`` of a figure, at its own width or ``PNG_WIDTH``."""
    chromium = find_chromium()
    if chromium is not None:
        os.environ.setdefault("BROWSER_PATH", chromium)
    layout = (fig.get("layout") if isinstance(fig, dict) else fig.layout.to_plotly_json()) or {}
    width = layout.get("width") or PNG_WIDTH
    image = pio.to_image(fig, format="png", width=width, scale=1, validate=False)
    return {"image/png": base64.b64encode(image).decode("ascii")}


class NotebookRenderer(PlotlyRenderer):
    """plotly's JSON output in JupyterLab, a FigureWidget in Voila, plus a PNG on request."""

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, Any]:
        if in_voila():
            return go.FigureWidget(fig_dict)._repr_mimebundle_()
        bundle = dict(super().to_mimebundle(fig_dict))
        if static_figures():
            bundle.update(png_bundle(fig_dict))
        return bundle


def setup_notebook() -> None:
    """Make every figure in this kernel render the way its front end can show it."""
    pio.renderers[RENDERER] = NotebookRenderer()
    pio.renderers.default = RENDERER
