"""How figures reach the page: the notebook renderer and the widget state a late view reads."""

from __future__ import annotations

import base64

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from teachraft.data import go_trace
from teachraft.viz import topology_figure
from teachraft.viz.images import find_chromium
from teachraft.viz.inplace import as_widget, update_in_place
from teachraft.viz.notebook import RENDERER, STATIC_FIGURES_ENV, NotebookRenderer, setup_notebook
from teachraft.widgets import TimelinePanel

RUN = go_trace("3Server2ClientLeaderFailure")


def test_setup_notebook_makes_the_teachraft_renderer_the_default() -> None:
    before = pio.renderers.default
    try:
        setup_notebook()
        assert pio.renderers.default == RENDERER
    finally:
        pio.renderers.default = before


def test_jupyterlab_gets_plotly_json_and_no_image(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SERVER_SOFTWARE", "VOILA_KERNEL_ID", STATIC_FIGURES_ENV):
        monkeypatch.delenv(name, raising=False)
    bundle = NotebookRenderer().to_mimebundle(topology_figure(RUN).to_dict())
    assert set(bundle) == {"application/vnd.plotly.v1+json"}
    assert bundle["application/vnd.plotly.v1+json"]["data"]


def test_voila_gets_a_figure_widget_holding_the_whole_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.13")
    monkeypatch.delenv(STATIC_FIGURES_ENV, raising=False)
    fig = topology_figure(RUN)
    bundle = NotebookRenderer().to_mimebundle(fig.to_dict())
    assert "application/vnd.plotly.v1+json" not in bundle
    model_id = bundle["application/vnd.jupyter.widget-view+json"]["model_id"]
    from ipywidgets.widgets.widget import _instances

    widget = _instances[model_id]
    assert len(widget._widget_data) == len(fig.data)
    assert widget._widget_layout["title"]["text"] == fig.layout.title.text


@pytest.mark.skipif(
    find_chromium() is None, reason="no Chromium for kaleido (bash .ci/browser-deps)"
)
def test_static_figures_add_a_png(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    monkeypatch.delenv("VOILA_KERNEL_ID", raising=False)
    monkeypatch.setenv(STATIC_FIGURES_ENV, "1")
    bundle = NotebookRenderer().to_mimebundle(topology_figure(RUN).to_dict())
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG") and 5_000 < len(png) < 400_000
    assert "application/vnd.plotly.v1+json" in bundle


def test_update_in_place_keeps_the_state_a_late_view_is_built_from() -> None:
    """Voila opens its views after the notebook ran: they must see the latest figure."""
    widget = as_widget(go.Figure())
    update_in_place(widget, topology_figure(RUN, at=10))
    update_in_place(widget, topology_figure(RUN))
    final = topology_figure(RUN)
    assert len(widget._widget_data) == len(final.data) > 0
    assert widget._widget_layout["title"]["text"] == final.layout.title.text
    assert widget._widget_data == widget._data


def test_timeline_panel_opens_at_the_requested_event_and_plays_by_moment() -> None:
    panel = TimelinePanel(RUN, start=40)
    assert panel.slider.value == 40
    assert "#40 " in panel.caption.value
    moments = panel.timeline.moments()
    assert panel.stops == sorted({0, *moments, panel.timeline.last})
    assert panel.stops[panel.play.value] <= 40 < panel.stops[panel.play.value + 1]
    panel.play.value += 1  # what one tick of play does
    assert panel.slider.value == panel.stops[panel.play.value] > 40
    panel.go(panel.timeline.last)
    assert panel.play.value == len(panel.stops) - 1
    assert panel.topology._widget_layout["title"]["text"] == panel.topology.layout.title.text


def test_timeline_panel_can_play_every_event_and_rejects_other_steps() -> None:
    panel = TimelinePanel(RUN, start=5, step="event")
    assert panel.play.value == 5 and len(panel.stops) == panel.timeline.last + 1
    with pytest.raises(ValueError, match="step must be"):
        TimelinePanel(RUN, step="second")
