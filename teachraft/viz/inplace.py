"""Refreshing a live ``FigureWidget`` in place, without flicker or growing memory.

A live panel redraws its figures every fraction of a second. Replacing a
``FigureWidget`` each time would flash the whole output and leak views;
instead the new figure's data is copied into the existing traces inside one
``batch_update`` (plotly sends only the properties that changed), and the
trace list is rebuilt only when its shape changes. teachraft's figures keep
a fixed list of traces for a given cluster, so in practice that never happens
during a run. ``uirevision`` in the figures' layouts keeps a student's zoom
and pan across refreshes.

plotly sends those changes as one-off messages, which only a view that is
already open receives. A view that opens later (a Voila page, which connects
after the notebook has run; a reloaded JupyterLab tab) is built from the
widget's state traits instead, which plotly fills only when the widget is
created or displayed on its own. ``update_in_place`` therefore also stores
the figure in that state, so every view, early or late, shows the current
figure.
"""

from __future__ import annotations

import json
from copy import deepcopy
from typing import Any

import plotly.graph_objects as go


def same_shape(widget: go.FigureWidget, fig: go.Figure) -> bool:
    """True when both have the same number of traces, of the same types, in order."""
    return len(widget.data) == len(fig.data) and all(
        old.type == new.type for old, new in zip(widget.data, fig.data, strict=True)
    )


def update_in_place(widget: go.FigureWidget, fig: go.Figure) -> None:
    """Make ``widget`` show ``fig``, reusing its traces when the shape matches."""
    if not same_shape(widget, fig):
        widget.data = ()
        widget.add_traces(list(fig.data))
        widget.layout = fig.layout
    else:
        with widget.batch_update():
            for old, new in zip(widget.data, fig.data, strict=True):
                old.update(_plain(new), overwrite=True)
            widget.layout.update(fig.layout.to_plotly_json(), overwrite=True)
    sync_state(widget)


def sync_state(widget: go.FigureWidget) -> None:
    """Store the widget's figure as the state a newly opened view is built from.

    The value is stored without a change notification, so nothing is sent to
    the views already open: they follow plotly's own update messages, and a
    state push under them breaks that (their plot stops redrawing). A view
    that opens later asks the kernel for the widget's state and gets this.
    """
    # traitlets' value store: setting the trait the usual way would sync it.
    widget._trait_values["_widget_data"] = deepcopy(widget._data)
    widget._trait_values["_widget_layout"] = deepcopy(widget._layout_obj._props)


def figure_signature(fig: go.Figure, skip: frozenset[str] = frozenset()) -> str:
    """What a student sees of ``fig`` at a glance: all but hover texts and ``skip``ped traces.

    Hover texts (and, in the topology, how thick a link is) follow message
    counts that change with every heartbeat; a figure rebuilt whenever they
    change would never stop redrawing.
    """
    data = fig.to_plotly_json()
    data["data"] = [t for t in data.get("data", ()) if t.get("name") not in skip]
    for trace in data["data"]:
        trace.pop("hovertext", None)
        trace.pop("uid", None)
    return json.dumps(data, sort_keys=True, default=str)


def _plain(trace: Any) -> dict[str, Any]:
    data = trace.to_plotly_json()
    data.pop("type", None)
    data.pop("uid", None)
    return data


def as_widget(fig: go.Figure) -> go.FigureWidget:
    """A ``FigureWidget`` of ``fig`` (needs the ``anywidget`` package, a teachraft dependency)."""
    return go.FigureWidget(fig)
