"""Notebook panels: drive a live cluster, or scrub through a finished run.

``ControlPanel(cluster)`` puts a put/get form, fault buttons, a slow-motion
slider, live figures and a ShiViz download in one place. A raft-mode cluster
(``election="raft"``) also gets a "Time out now" button per server, as
RaftScope has, "Transfer leadership", and the timers figure (its election
timers); a coord-mode panel shows the coord's failure detector with
``timers=True``. ``TimelinePanel(run)`` puts a time cursor on a finished run
so a lesson can step through a leader failure event by event.

Rules these panels keep:

- every action goes through the Cluster's public API;
- widgets are touched only on the kernel's thread: inside a kernel, actions run
  as tasks on the kernel's event loop awaiting the cluster's async twins, so a
  slow Put never freezes the page; without a running loop (a script, pytest)
  they run synchronously;
- errors (no quorum, a failed server, a timeout) are shown in the panel, never
  as a traceback;
- live figures are ``FigureWidget``s refreshed in place at a steady cadence,
  with a fixed list of traces, so they neither flicker nor grow, and whose
  state is kept current, so a view that opens late (Voila) shows the present;
- where no JavaScript runs (GitHub, nbviewer), a panel saved with static
  figures on (see :mod:`teachraft.viz.notebook`) shows a PNG of its topology.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from teachraft.cluster.protocol import ClusterLike
from teachraft.errors import ClusterError, KVError, NoQuorumError, OpTimeoutError
from teachraft.problems import describe
from teachraft.viz.download import shiviz_download
from teachraft.viz.inplace import as_widget, figure_signature, sync_state, update_in_place
from teachraft.viz.logs import logs_figure
from teachraft.viz.notebook import in_voila, png_bundle, static_figures
from teachraft.viz.sources import is_running, live_events
from teachraft.viz.spacetime import cursor_trace, spacetime_figure
from teachraft.viz.state import Snapshot, snapshot_of_cluster
from teachraft.viz.timeline import Timeline
from teachraft.viz.timers import TimerHistory, timers_figure
from teachraft.viz.topology import EDGE_NAMES, topology_figure, topology_title

log = logging.getLogger(__name__)

REFRESH = 0.5
RETIRE_AFTER = 30.0
# topology traces that only follow message counts (see ControlPanel._put)
TRAFFIC_TRACES = frozenset(
    [EDGE_NAMES["light"], EDGE_NAMES["medium"], EDGE_NAMES["heavy"], "link counts"]
)
LIVE_EVENTS = 300
_REFRESHING: weakref.WeakSet[ControlPanel] = weakref.WeakSet()
OK_STYLE = "color:#1B5E20"
ERROR_STYLE = "color:#B00020;font-weight:bold"
BUSY_STYLE = "color:#555555"


def error_text(exc: BaseException) -> str:
    """One line a student can act on, for any error an action can raise."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, NoQuorumError):
        return f"No quorum: {text}"
    if isinstance(exc, OpTimeoutError):
        return f"Timed out (the op may or may not have happened): {text}"
    if isinstance(exc, KVError):
        return f"The operation failed: {text}"
    if isinstance(exc, ClusterError):
        return f"Cluster: {text}"
    if isinstance(exc, TimeoutError):
        return "Timed out waiting for the cluster"
    return f"{type(exc).__name__}: {text}"


def problems_html(problems: dict[str, int]) -> str:
    """One line per kind of input the cluster refused or dropped (empty when none)."""
    lines = describe(problems)
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    title = "Refused or dropped so far:"
    return f"<div style='{ERROR_STYLE}'>{title}<ul style='margin:0'>{items}</ul></div>"


def election_of(cluster: Any) -> str:
    """``"raft"`` when the servers elect their leaders, else ``"coord"`` (KVRaft)."""
    return "raft" if getattr(cluster, "election", "coord") == "raft" else "coord"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _button(text: str, style: str = "", tip: str = "") -> W.Button:
    return W.Button(
        description=text,
        button_style=style,
        tooltip=tip or text,
        layout=W.Layout(width="auto"),
    )


class _Runner:
    """Runs panel actions: as tasks on the kernel's loop, or inline without one."""

    def __init__(self, status: W.HTML, after: Callable[[], None]) -> None:
        self.status = status
        self.after = after
        self.tasks: set[asyncio.Task[Any]] = set()

    def show(self, text: str, style: str = OK_STYLE) -> None:
        self.status.value = f"<span style='{style}'>{html.escape(text)}</span>"

    def run(
        self,
        label: str,
        sync_call: Callable[[], Any],
        async_call: Callable[[], Awaitable[Any]] | None = None,
        done: Callable[[Any], str] | None = None,
    ) -> None:
        """Run one action and report its result (``done(result)``) or its error."""
        loop = _running_loop()
        if loop is None or async_call is None:
            try:
                result = sync_call()
            except Exception as exc:
                self._failed(label, exc)
            else:
                self._succeeded(label, result, done)
            return
        self.show(f"{label}…", BUSY_STYLE)
        task = loop.create_task(self._run_async(label, async_call, done))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_async(
        self,
        label: str,
        async_call: Callable[[], Awaitable[Any]],
        done: Callable[[Any], str] | None,
    ) -> None:
        try:
            result = await async_call()
        except Exception as exc:
            self._failed(label, exc)
        else:
            self._succeeded(label, result, done)

    def _succeeded(self, label: str, result: Any, done: Callable[[Any], str] | None) -> None:
        self.show(done(result) if done else f"{label}: done")
        self._refresh()

    def _failed(self, label: str, exc: BaseException) -> None:
        log.info("%s failed: %s", label, exc)
        self.show(f"{label}: {error_text(exc)}", ERROR_STYLE)
        self._refresh()

    def _refresh(self) -> None:
        try:
            self.after()
        except Exception:
            log.info("refreshing the panel failed", exc_info=True)


class ControlPanel(W.VBox):
    """Drive a live cluster from a notebook: ops, faults, speed, live figures, ShiViz.

    >>> panel = ControlPanel(cluster)   # doctest: +SKIP
    >>> panel                           # doctest: +SKIP

    Inside a kernel the figures refresh every ``refresh`` seconds while the
    cluster runs; call :meth:`refresh` to redraw at once, :meth:`stop` to end
    the refreshing. ``spacetime`` adds a live diagram of the last
    ``LIVE_EVENTS`` events; ``timers`` the timers figure (on by default in
    raft mode, where it shows the election timers). In Voila, where a changed
    figure is replaced by a new widget, the timers figure is replaced only when
    its story changes (a timeout, an election, a lost heartbeat), not at every
    heartbeat, so its "now" column is as of the last such moment there.
    """

    def __init__(
        self,
        cluster: ClusterLike,
        refresh: float = REFRESH,
        spacetime: bool = False,
        replace_figures: bool | None = None,
        timers: bool | None = None,
    ) -> None:
        self.cluster = cluster
        self.election = election_of(cluster)
        # Voila's views of a FigureWidget do not reliably apply plotly's update
        # messages, so there a figure that changed is replaced by a new widget.
        self.replace_figures = in_voila() if replace_figures is None else replace_figures
        self._signatures: dict[str, str] = {}
        self._retired: list[tuple[float, go.FigureWidget]] = []
        self.interval = refresh
        self.next_slow_motion = float(cluster.slow_motion)
        self.refreshes = 0
        self._refresh_task: asyncio.Task[None] | None = None
        self.header = W.HTML()
        self.status = W.HTML("<span style='color:#555'>Ready.</span>")
        self.runner = _Runner(self.status, self.refresh)
        self.topology = as_widget(go.Figure())
        self.logs = as_widget(go.Figure())
        traced = bool(cluster.tracing)
        self.spacetime = as_widget(go.Figure()) if spacetime and traced else None
        show_timers = self.election == "raft" if timers is None else timers
        self.timers = as_widget(go.Figure()) if show_timers and traced else None
        self.timer_history = TimerHistory()
        self.shiviz = W.HTML()
        super().__init__(self._build())
        self.refresh()
        self.start()

    # --- building -------------------------------------------------------------------------

    def _build(self) -> list[W.Widget]:
        rows = [
            self.header,
            self._ops_row(),
            self._fault_row(),
            *self._election_rows(),
            self._partition_row(),
            self._speed_row(),
            self.status,
            self.topology,
            self.logs,
        ]
        if self.timers is not None:
            rows.append(self.timers)
        if self.spacetime is not None:
            rows.append(self.spacetime)
        rows.append(self._shiviz_row())
        return rows

    def _ops_row(self) -> W.HBox:
        self.key = W.Text(value="k1", description="key", layout=W.Layout(width="180px"))
        self.value = W.Text(value="v1", description="value", layout=W.Layout(width="180px"))
        clients = list(range(1, int(self.cluster.num_clients) + 1)) or [1]
        self.client_picker = W.Dropdown(
            options=[(f"client{i}", i) for i in clients],
            value=clients[0],
            description="via",
            layout=W.Layout(width="160px"),
        )
        self.put_button = _button("Put", "primary", "Put key=value through the client")
        self.get_button = _button("Get", "info", "Get key through the log")
        self.put_button.on_click(lambda _: self.do_put())
        self.get_button.on_click(lambda _: self.do_get())
        return W.HBox([self.key, self.value, self.client_picker, self.put_button, self.get_button])

    def _fault_row(self) -> W.HBox:
        self.fail_leader_button = _button("Fail leader", "danger", "Fail-stop the current leader")
        self.server_picker = W.Dropdown(
            options=[(f"server{i}", i) for i in self._server_ids()],
            description="server",
            layout=W.Layout(width="170px"),
        )
        self.fail_button = _button("Fail server", "warning", "Fail-stop the picked server")
        self.heal_button = _button("Heal", "success", "Remove every network fault")
        self.fail_leader_button.on_click(lambda _: self.do_fail_leader())
        self.fail_button.on_click(lambda _: self.do_fail())
        self.heal_button.on_click(lambda _: self.do_heal())
        items: list[W.Widget] = [self.fail_leader_button, self.server_picker, self.fail_button]
        self.restart_button: W.Button | None = None
        if callable(getattr(self.cluster, "restart", None)):
            self.restart_button = _button("Restart server", "", "Restart the picked server")
            self.restart_button.on_click(lambda _: self.do_restart())
            items.append(self.restart_button)
        items.append(self.heal_button)
        return W.HBox(items)

    def _election_rows(self) -> list[W.HBox]:
        """Raft mode: a "Time out now" button per server and "Transfer leadership"."""
        self.timeout_buttons: dict[int, W.Button] = {}
        self.transfer_button: W.Button | None = None
        if self.election != "raft":
            return []
        label = W.HTML("<b>Time out now:</b>", layout=W.Layout(width="110px"))
        for sid in self._server_ids():
            button = _button(f"server{sid}", "", f"Make server{sid}'s election timer run out now")
            button.on_click(lambda _, sid=sid: self.do_timeout_now(sid))
            self.timeout_buttons[sid] = button
        self.transfer_button = _button(
            "Transfer leadership",
            "info",
            "Hand leadership to the server picked above (the leader catches it up, "
            "then tells it to time out now)",
        )
        self.transfer_button.on_click(lambda _: self.do_transfer())
        return [W.HBox([label, *self.timeout_buttons.values(), self.transfer_button])]

    def _partition_row(self) -> W.HBox:
        names = [n for n in self.cluster.node_names() if n != "tracing"]
        self.side = W.SelectMultiple(
            options=names,
            rows=min(len(names), 5),
            description="one side",
            layout=W.Layout(width="230px"),
        )
        self.partition_button = _button(
            "Partition", "warning", "Cut the picked nodes off from all the others"
        )
        self.partition_button.on_click(lambda _: self.do_partition())
        hint = W.HTML(
            "<small>Pick the nodes on one side (ctrl/cmd-click for several); every other "
            "node is on the other side.</small>"
        )
        column = W.VBox([self.partition_button, hint], layout=W.Layout(align_items="flex-start"))
        return W.HBox([self.side, column])

    def _speed_row(self) -> W.HBox:
        self.speed = W.FloatLogSlider(
            value=self.next_slow_motion,
            base=10,
            min=-1,
            max=1.3,
            step=0.05,
            description="slow motion",
            readout_format=".2g",
            continuous_update=False,
            layout=W.Layout(width="420px"),
        )
        self.speed_note = W.HTML()
        self.speed.observe(lambda change: self.set_slow_motion(change["new"]), names="value")
        self._speed_help()
        return W.HBox([self.speed, self.speed_note])

    def _shiviz_row(self) -> W.HBox:
        self.shiviz_button = _button("ShiViz log", "", "Make the run's ShiViz log downloadable")
        self.shiviz_button.on_click(lambda _: self.do_shiviz())
        return W.HBox([self.shiviz_button, self.shiviz])

    def _server_ids(self) -> list[int]:
        return list(range(1, int(self.cluster.num_servers) + 1))

    # --- actions ---------------------------------------------------------------------------

    def do_put(self) -> None:
        key, value, client = self.key.value, self.value.value, self.client_picker.value
        c = self.cluster
        self.runner.run(
            f"Put({key},{value})",
            lambda: c.put(key, value, client=client),
            lambda: c.aput(key, value, client=client),
            lambda _: f"Put({key},{value}) committed",
        )

    def do_get(self) -> None:
        key, client = self.key.value, self.client_picker.value
        c = self.cluster

        def said(value: str | None) -> str:
            return f"Get({key}) → {value!r}" if value is not None else f"Get({key}): never put"

        self.runner.run(
            f"Get({key})",
            lambda: c.get(key, client=client),
            lambda: c.aget(key, client=client),
            said,
        )

    def do_fail_leader(self) -> None:
        c = self.cluster
        then = (
            "the others elect a new one when an election timer runs out"
            if self.election == "raft"
            else "the coord picks a new leader"
        )
        self.runner.run(
            "Fail leader",
            c.fail_leader,
            c.afail_leader,
            lambda sid: f"server{sid} (the leader) failed; {then}",
        )

    def do_timeout_now(self, sid: int) -> None:
        """Raft mode: make ``sid``'s election timer run out now (RaftScope's button)."""
        self._call(
            "timeout_now",
            f"Time out server{sid}",
            (sid,),
            f"server{sid} timed out: it campaigns for the next term",
        )

    def do_transfer(self) -> None:
        """Raft mode: hand leadership to the picked server."""
        sid = self.server_picker.value
        if sid is None:
            self.runner.show("Pick a server first.", ERROR_STYLE)
            return
        self._call(
            "transfer_leader",
            f"Transfer leadership to server{sid}",
            (sid,),
            f"server{sid} leads now",
        )

    def _call(self, method: str, label: str, args: tuple[Any, ...], said: str) -> None:
        """Run ``cluster.method(*args)`` (its ``a``-prefixed twin inside a kernel)."""
        sync = getattr(self.cluster, method, None)
        if not callable(sync):
            self.runner.show(f"{label}: this cluster has no {method}()", ERROR_STYLE)
            return
        twin = getattr(self.cluster, "a" + method, None)
        self.runner.run(
            label,
            lambda: sync(*args),
            (lambda: twin(*args)) if callable(twin) else None,
            lambda _: said,
        )

    def do_fail(self) -> None:
        sid = self.server_picker.value
        if sid is None:
            self.runner.show("Pick a server first.", ERROR_STYLE)
            return
        c = self.cluster
        self.runner.run(
            f"Fail server{sid}",
            lambda: c.fail(sid),
            lambda: c.afail(sid),
            lambda _: f"server{sid} failed",
        )

    def do_restart(self) -> None:
        sid = self.server_picker.value
        restart = getattr(self.cluster, "restart", None)
        if sid is None or restart is None:
            self.runner.show("Pick a server first.", ERROR_STYLE)
            return
        arestart = getattr(self.cluster, "arestart", None)
        self.runner.run(
            f"Restart server{sid}",
            lambda: restart(sid),
            (lambda: arestart(sid)) if arestart is not None else None,
            lambda _: f"server{sid} restarted",
        )

    def do_partition(self) -> None:
        side = list(self.side.value)
        rest = [n for n in self.side.options if n not in side]
        if not side or not rest:
            self.runner.show("Pick some nodes, but not all, for one side.", ERROR_STYLE)
            return
        self.runner.run(
            "Partition",
            lambda: self.cluster.partition(side, rest),
            None,
            lambda _: f"Partitioned: {', '.join(side)} | {', '.join(rest)}",
        )

    def do_heal(self) -> None:
        self.runner.run("Heal", self.cluster.heal, None, lambda _: "Every network fault removed")

    def do_shiviz(self) -> None:
        def make() -> str:
            link = shiviz_download(self.cluster)
            self.shiviz.value = link.html()
            return f"ShiViz log ready ({link.events} events)"

        self.runner.run("ShiViz log", make, None, lambda text: text)

    def set_slow_motion(self, factor: float) -> None:
        """Change the speed now if the cluster can, else remember it for the next cluster."""
        self.next_slow_motion = float(factor)
        setter = getattr(self.cluster, "set_slow_motion", None)
        if callable(setter):
            note = f"Slow motion: timers x{factor:.2g}"
            self.runner.run("Slow motion", lambda: setter(factor), None, lambda _: note)
        self._speed_help()

    def _speed_help(self) -> None:
        live = callable(getattr(self.cluster, "set_slow_motion", None))
        factor = f"{self.next_slow_motion:.2g}"
        if live:
            text = f"every timer x{factor} (applies now)"
        else:
            text = (
                f"this cluster keeps its speed; start the next one with "
                f"<code>Cluster(slow_motion={factor})</code> "
                "(or <code>panel.next_slow_motion</code>)"
            )
        self.speed_note.value = f"<small>{text}</small>"

    # --- refreshing ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw the header and figures from the cluster's current state."""
        if not is_running(self.cluster):
            self.header.value = "<b>This cluster is closed.</b> Start a new one to continue."
            self.stop()
            return
        snap = snapshot_of_cluster(self.cluster)
        self._show(snap)
        if self.timers is not None:
            self.timer_history.record(snap, time.monotonic())
            fig = timers_figure(self.cluster, snapshot=snap, history=self.timer_history)
            self._put("timers", fig)
        if self.spacetime is not None:
            table = live_events(self.cluster, last=LIVE_EVENTS)
            fig = spacetime_figure(table, window=None, title=f"The last {len(table)} events")
            self._put("spacetime", fig)
        self.refreshes += 1

    def _show(self, snap: Snapshot) -> None:
        name = "Raft" if self.election == "raft" else "KVRaft"
        self.header.value = f"<h3 style='margin:4px 0'>{name}: {topology_title(snap)}</h3>" + (
            problems_html(snap.problems)
        )
        self._put("topology", topology_figure(snap))
        self._put("logs", logs_figure(snap))

    def _put(self, name: str, fig: go.Figure) -> None:
        """Show ``fig`` in the live figure ``name``: in place, or as a new widget."""
        widget = getattr(self, name)
        if not self.replace_figures:
            update_in_place(widget, fig)
            return
        meta = fig.layout.meta
        if isinstance(meta, dict) and "signature" in meta:  # the figure says what matters
            signature = f"{meta['signature']}|{fig.layout.title.text}"
        else:
            signature = figure_signature(fig, TRAFFIC_TRACES)
        first = name not in self._signatures
        if self._signatures.get(name) == signature:
            return
        self._signatures[name] = signature
        if first:  # no view has opened yet: it will be built from this state
            update_in_place(widget, fig)
            return
        new = as_widget(fig)
        setattr(self, name, new)
        children: tuple[Any, ...] = self.children  # type: ignore[has-type]  # a traitlets trait
        self.children = tuple(new if child is widget else child for child in children)
        self._retire(widget)

    def _retire(self, widget: go.FigureWidget) -> None:
        """Close replaced figures a while later: closing one that a page is still
        opening makes the browser log an error."""
        now = time.monotonic()
        self._retired.append((now, widget))
        while self._retired and now - self._retired[0][0] > RETIRE_AFTER:
            _, old = self._retired.pop(0)
            with contextlib.suppress(Exception):
                old.close()

    def start(self) -> bool:
        """Refresh every ``interval`` seconds on the kernel's loop (False without a loop).

        Only one panel per cluster refreshes itself: re-running the cell that
        made a panel stops the refreshing of the panel it replaces.
        """
        loop = _running_loop()
        if loop is None or self._refresh_task is not None:
            return False
        for other in list(_REFRESHING):
            if other is not self and other.cluster is self.cluster:
                other.stop()
        self._refresh_task = loop.create_task(self._refresh_forever())
        _REFRESHING.add(self)
        return True

    def stop(self) -> None:
        """Stop refreshing (the panel keeps working; call ``refresh`` to redraw)."""
        _REFRESHING.discard(self)
        task, self._refresh_task = self._refresh_task, None
        if task is not None and task is not _current_task():
            task.cancel()

    async def _refresh_forever(self) -> None:
        """Redraw, then rest for the interval plus the redraw's own time (never piles up)."""
        failures, took = 0, 0.0
        while self._refresh_task is not None and is_running(self.cluster):
            await asyncio.sleep(self.interval * (1 + min(failures, 10)) + took)
            start = time.perf_counter()
            try:
                self.refresh()
                failures = 0
            except Exception as exc:
                failures += 1
                log.info("live refresh failed: %s", exc)
                if failures == 1:
                    self.runner.show(f"Refresh: {error_text(exc)}", ERROR_STYLE)
            took = time.perf_counter() - start
        self._refresh_task = None

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return _with_png(super()._repr_mimebundle_(**kwargs), self.topology)

    def close(self) -> None:
        self.stop()
        retired = [widget for _, widget in self._retired]
        for widget in (self.topology, self.logs, self.timers, self.spacetime, *retired):
            if widget is not None:
                with contextlib.suppress(Exception):
                    widget.close()
        super().close()


def _with_png(bundle: dict[str, Any] | None, figure: go.FigureWidget) -> dict[str, Any] | None:
    """A panel's output plus a PNG of ``figure``, when static figures are on."""
    if bundle is None or not static_figures():
        return bundle
    try:
        return {**bundle, **png_bundle(go.Figure(figure))}
    except Exception:
        log.info("no PNG for the panel", exc_info=True)
        return bundle


def _current_task() -> asyncio.Task[Any] | None:
    with contextlib.suppress(RuntimeError):
        return asyncio.current_task()
    return None


class TimelinePanel(W.VBox):
    """Scrub through a finished run: a slider moves every figure to one event.

    Buttons step one event at a time, or jump to the next fault or leadership
    change; the caption shows the event at the cursor. **play** steps through
    the run by ``step``: ``"moment"`` (the default) stops at each fault and
    leadership change, ``"event"`` at every event (a long run then takes
    minutes). The panel opens at event ``start`` (the last event by default).
    """

    def __init__(
        self,
        source: Any,
        start: int | None = None,
        window: int = 200,
        step: str = "moment",
        timers: bool | None = None,
    ) -> None:
        if step not in ("moment", "event"):
            raise ValueError(f"step must be 'moment' or 'event', not {step!r}")
        self.timeline = Timeline(source, window=window)
        last = max(self.timeline.last, 0)
        first = last if start is None else max(0, min(int(start), last))
        self.slider = W.IntSlider(
            value=first,
            min=0,
            max=last,
            description="event",
            continuous_update=False,
            layout=W.Layout(width="640px"),
        )
        # play walks a list of stops; the cursor is never linked to it in the
        # browser, so the panel opens where it was asked to, not at play's 0.
        self.stops = self._stops(step, last)
        self.play = W.Play(
            value=self._stop_at(first),
            min=0,
            max=len(self.stops) - 1,
            interval=1200 if step == "moment" else 400,
            description=f"play by {step}",
        )
        self._following = False
        self.play.observe(lambda change: self._played(change["new"]), names="value")
        self.caption = W.HTML()
        topology, logs, spacetime = self.timeline.figures(first)
        self.topology = as_widget(topology)
        self.logs = as_widget(logs)
        self.spacetime = as_widget(spacetime)
        self._cursor = len(self.spacetime.data) - 1
        show_timers = self.timeline.has_timers() if timers is None else timers
        self.timers = as_widget(self.timeline.timers(first)) if show_timers else None
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.shiviz = W.HTML()
        self.shiviz_button = _button("ShiViz log", "", "Make this run's ShiViz log downloadable")
        self.shiviz_button.on_click(lambda _: self.make_shiviz())
        shiviz_row = W.HBox([self.shiviz_button, self.shiviz])
        figures = [self.topology, self.logs, self.timers, self.spacetime]
        super().__init__(
            [self._controls(), self.caption, *(f for f in figures if f is not None), shiviz_row]
        )
        self._caption(first)

    def _stops(self, step: str, last: int) -> list[int]:
        if step == "event":
            return list(range(last + 1))
        return sorted({0, *self.timeline.moments(), last})

    def _stop_at(self, index: int) -> int:
        """The position in ``stops`` of the last stop at or before ``index``."""
        return max((i for i, stop in enumerate(self.stops) if stop <= index), default=0)

    def _played(self, position: int) -> None:
        if not self._following:
            self.go(self.stops[position])

    def _controls(self) -> W.HBox:
        buttons = [
            ("◀◀ moment", lambda: self.timeline.previous_moment(self.slider.value)),
            ("◀ event", lambda: self.slider.value - 1),
            ("event ▶", lambda: self.slider.value + 1),
            ("moment ▶▶", lambda: self.timeline.next_moment(self.slider.value)),
        ]
        widgets: list[W.Widget] = [self.play, self.slider]
        self.buttons: dict[str, W.Button] = {}
        for text, target in buttons:
            button = _button(
                text, "", "Jump to a fault or leader change" if "moment" in text else text
            )
            button.on_click(lambda _, to=target: self.go(to()))
            self.buttons[text] = button
            widgets.append(button)
        return W.HBox(widgets)

    def go(self, index: int) -> None:
        """Move the cursor to event ``index`` (clamped to the run)."""
        self.slider.value = max(self.slider.min, min(int(index), self.slider.max))

    def show(self, index: int) -> None:
        """Redraw every figure at event ``index`` (and keep play's position in step)."""
        snap = self.timeline.snapshot(index)
        update_in_place(self.topology, topology_figure(snap))
        update_in_place(self.logs, logs_figure(snap))
        if self.timers is not None:
            update_in_place(self.timers, self.timeline.timers(index, snap))
        line = cursor_trace(index, len(self.spacetime.layout.yaxis.tickvals or ()))
        with self.spacetime.batch_update():
            self.spacetime.data[self._cursor].x = line.x
            self.spacetime.data[self._cursor].y = line.y
            self.spacetime.data[self._cursor].showlegend = True
            self.spacetime.layout.xaxis.range = self.timeline.spacetime_range(index)
        sync_state(self.spacetime)
        self._caption(index)
        self._following = True
        try:
            self.play.value = self._stop_at(index)
        finally:
            self._following = False

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        return _with_png(super()._repr_mimebundle_(**kwargs), self.topology)

    def make_shiviz(self) -> None:
        """Put a download link for the run's ShiViz log beside the diagram."""
        self.shiviz.value = shiviz_download(self.timeline.table).html()

    def _caption(self, index: int) -> None:
        text = html.escape(self.timeline.describe(index))
        self.caption.value = f"<b>After event</b> <code>{text}</code>"
