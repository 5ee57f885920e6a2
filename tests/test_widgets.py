"""The notebook panels, clicked in plain pytest against live clusters.

``button.click()`` and setting ``.value`` run the same handlers a browser
triggers, FigureWidgets included, so each test checks that a click changes the
cluster and that the figures show the change. Waits are bounded polls, never
sleeps that hope.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from teachraft.cluster import Cluster
from teachraft.tracing.validate import validate_shiviz
from teachraft.widgets import ControlPanel, TimelinePanel, error_text

MakeCluster = Callable[..., Cluster]  # the conftest fixture: start a traced cluster

pytestmark = pytest.mark.slow


def wait_for(pred: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def roles(panel: ControlPanel) -> dict[str, list[str]]:
    named = ("leader", "follower", "failed (stopped)", "partitioned away", "paused")
    return {
        t.name: [s.split("<br>")[0][3:-4] for s in t.text]
        for t in panel.topology.data
        if t.name in named
    }


def test_put_and_get_show_their_results(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3)
    panel = ControlPanel(c)
    panel.key.value, panel.value.value = "k13", "val13"
    panel.put_button.click()
    assert "Put(k13,val13) committed" in panel.status.value
    panel.get_button.click()
    assert "Get(k13) → &#x27;val13&#x27;" in panel.status.value
    assert c.get("k13") == "val13"
    panel.key.value = "never"
    panel.get_button.click()
    assert "Get(never): never put" in panel.status.value
    committed = panel.logs.data[0]
    assert any("Put(k13,val13)" in cell for row in committed.customdata for cell in row)


def test_fail_leader_changes_the_cluster_and_the_topology(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=5)
    panel = ControlPanel(c)
    old = c.leader()
    assert f"leader server{old}" in panel.topology.layout.title.text
    traces = [id(t) for t in panel.topology.data]
    panel.fail_leader_button.click()
    assert f"server{old} (the leader) failed" in panel.status.value
    wait_for(lambda: c.leader() not in (0, old), "a new leader")
    panel.refresh()
    new = c.leader()
    assert f"term 2 · leader server{new} · 1 failed" in panel.topology.layout.title.text
    assert roles(panel)["leader"] == [f"server{new}"]
    assert roles(panel)["failed (stopped)"] == [f"server{old}"]
    assert f"leader server{new}" in panel.header.value
    assert [id(t) for t in panel.topology.data] == traces, "refreshed in place"


def test_fail_server_partition_and_heal(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=5)
    panel = ControlPanel(c)
    follower = next(i for i in range(1, 6) if i != c.leader())
    panel.server_picker.value = follower
    panel.fail_button.click()
    assert c.status()["servers"][follower]["role"] == "failed"
    assert f"server{follower}" in roles(panel)["failed (stopped)"]
    other = next(i for i in range(1, 6) if i not in (follower, c.leader()))
    panel.side.value = (f"server{other}",)
    panel.partition_button.click()
    assert "Partitioned: server" in panel.status.value
    assert roles(panel)["partitioned away"] == [f"server{other}"]
    assert c.links()[("coord", f"server{other}")]["state"] == "cut"
    panel.heal_button.click()
    assert "Every network fault removed" in panel.status.value
    assert c.links()[("coord", f"server{other}")]["state"] == "up"
    panel.side.value = ()
    panel.partition_button.click()
    assert "Pick some nodes" in panel.status.value


def test_errors_show_in_the_panel_never_as_a_traceback(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3)
    panel = ControlPanel(c)
    for sid in range(1, 4):
        if sid != c.leader():
            panel.server_picker.value = sid
            panel.fail_button.click()
    panel.put_button.click()
    assert "No quorum" in panel.status.value and "Traceback" not in panel.status.value
    assert "no quorum" in panel.header.value


def test_restart_and_live_speed_appear_only_when_the_cluster_has_them(
    make_cluster: MakeCluster,
) -> None:
    c = make_cluster(servers=3)
    plain = ControlPanel(c)
    assert (plain.restart_button is not None) == callable(getattr(c, "restart", None))
    if not callable(getattr(c, "set_slow_motion", None)):
        plain.speed.value = 2.0
        assert plain.next_slow_motion == pytest.approx(2.0)
        assert "Cluster(slow_motion=2)" in plain.speed_note.value
    calls: list[tuple[str, float]] = []
    c.restart = lambda sid: calls.append(("restart", sid))  # type: ignore[attr-defined]
    c.set_slow_motion = lambda f: calls.append(("speed", f))  # type: ignore[attr-defined]
    panel = ControlPanel(c)
    assert panel.restart_button is not None
    panel.server_picker.value = 2
    panel.restart_button.click()
    panel.speed.value = 0.5
    assert calls == [("restart", 2), ("speed", pytest.approx(0.5))]
    assert "applies now" in panel.speed_note.value


def test_shiviz_download_link_holds_a_valid_log(make_cluster: MakeCluster) -> None:
    import base64

    c = make_cluster(servers=3)
    c.put("a", "1")
    panel = ControlPanel(c)
    panel.shiviz_button.click()
    assert "ShiViz log ready" in panel.status.value
    html = panel.shiviz.value
    assert 'download="shiviz_output.log"' in html and "upload" in html
    data = html.split("base64,", 1)[1].split('"', 1)[0]
    assert validate_shiviz(base64.b64decode(data).decode("utf-8")) == []


def test_refreshing_many_times_keeps_a_fixed_set_of_traces(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3)
    panel = ControlPanel(c, spacetime=True)
    shape = [(len(w.data), [id(t) for t in w.data]) for w in (panel.topology, panel.logs)]
    for i in range(15):
        c.put(f"k{i}", str(i))
        panel.refresh()
    assert [(len(w.data), [id(t) for t in w.data]) for w in (panel.topology, panel.logs)] == shape
    assert panel.logs.layout.meta["entries"] == 15
    assert panel.spacetime is not None
    assert panel.spacetime.layout.meta["events"] <= 300


def test_inside_a_running_loop_actions_are_tasks_and_figures_refresh_themselves(
    make_cluster: MakeCluster,
) -> None:
    """What a kernel does: the panel lives on a running loop, clicks become tasks."""
    c = make_cluster(servers=3)

    async def lesson() -> tuple[str, int, str]:
        panel = ControlPanel(c, refresh=0.05)
        assert panel._refresh_task is not None
        panel.key.value, panel.value.value = "a", "1"
        panel.put_button.click()
        assert "Put(a,1)…" in panel.status.value, "the click returns at once"
        for _ in range(400):
            if "committed" in panel.status.value and panel.refreshes >= 3:
                break
            await asyncio.sleep(0.02)
        panel.stop()
        return panel.status.value, panel.refreshes, panel.logs.layout.title.text

    status, refreshes, title = asyncio.run(lesson())
    assert "Put(a,1) committed" in status
    assert refreshes >= 3
    assert "1 entry" in title


def test_a_new_panel_for_the_same_cluster_stops_the_old_ones_refreshing(
    make_cluster: MakeCluster,
) -> None:
    c = make_cluster(servers=3)

    async def rerun_the_cell() -> tuple[bool, bool]:
        first = ControlPanel(c, refresh=0.05)
        second = ControlPanel(c, refresh=0.05)
        await asyncio.sleep(0.2)
        running = (first._refresh_task is not None, second._refresh_task is not None)
        second.stop()
        return running

    assert asyncio.run(rerun_the_cell()) == (False, True)


def test_error_texts_name_the_problem() -> None:
    from teachraft.errors import ClusterError, NoQuorumError, OpTimeoutError

    assert error_text(NoQuorumError("no quorum: 1 of 3")).startswith("No quorum")
    assert error_text(OpTimeoutError("late")).startswith("Timed out")
    assert error_text(ClusterError("no server 9")) == "Cluster: no server 9"


def test_timeline_panel_jumps_between_moments(make_cluster: MakeCluster) -> None:
    c = make_cluster(servers=3)
    c.put("a", "1")
    old = c.fail_leader()
    c.put("b", "2")
    c.close()
    panel = TimelinePanel(c, start=0)
    assert panel.slider.value == 0
    cursor = next(t for t in panel.spacetime.data if t.name == "time cursor")
    before = panel.topology.layout.title.text
    panel.buttons["moment ▶▶"].click()
    first = panel.slider.value
    assert first == panel.timeline.moments()[0]
    assert panel.topology.layout.title.text != before
    fail = panel.timeline.find("ServerFail")
    panel.go(fail - 1)
    assert f"leader server{old}" in panel.topology.layout.title.text
    panel.buttons["event ▶"].click()
    assert panel.slider.value == fail
    assert "no leader" in panel.topology.layout.title.text
    assert "ServerFail" in panel.caption.value
    assert list(cursor.x) == [fail + 0.5, fail + 0.5]
    panel.go(10**6)
    assert panel.slider.value == panel.slider.max
    assert "1 failed" in panel.topology.layout.title.text
    panel.shiviz_button.click()
    assert 'download="shiviz_output.log"' in panel.shiviz.value


def test_where_views_miss_updates_a_changed_figure_is_a_new_widget(
    make_cluster: MakeCluster,
) -> None:
    """Voila's mode: no plotly update messages, a new FigureWidget when the figure changed."""
    c = make_cluster(servers=3)
    panel = ControlPanel(c, replace_figures=True)
    first = panel.topology
    panel.refresh()
    assert panel.topology is first, "an unchanged figure is left alone"
    panel.fail_leader_button.click()
    wait_for(lambda: c.leader() not in (0, 1), "a new leader")
    wait_for(lambda: (panel.refresh(), "term 2" in panel.topology.layout.title.text)[1], "term 2")
    assert panel.topology is not first and panel.topology in panel.children
    assert first not in panel.children and first in [w for _, w in panel._retired]
    assert panel.topology._widget_layout["title"]["text"] == panel.topology.layout.title.text
    panel.close()
