"""The suite's outputs: a table on stdout, ``latest.json`` and a plotly ``latest.html``.

The tables are built from the JSON results alone, so a saved ``latest.json``
can be reported again (``python -m bench --report-only``). The HTML loads
plotly.js from its CDN to keep the committed report small.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.results_model import IN_PROCESS, PEER, TEACHRAFT, WORKLOADS, main_metric

PEER_VARIANTS = ("batched", "unbatched")


def write_json(results: dict[str, Any], path: Path) -> None:
    """Strict JSON: a NaN (a run that measured nothing) is written as null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_clean(results), indent=1, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


# ------------------------------------------------------------------ text tables
def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    x = float(x)
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    rows = [header, *rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _Index:
    """Figures and ratios of a results dict, looked up by their parts."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.figures = {
            (f["system"], f["variant"], f["mode"], f["servers"], f["workload"]): f
            for f in results["figures"]
        }
        self.ratios = {
            (r["teachraft"], r["peer"], r["mode"], r["servers"], r["workload"], r["metric"]): r
            for r in results["ratios"]
        }

    def value(
        self,
        system: str,
        variant: str,
        workload: str,
        metric: str,
        mode: str = IN_PROCESS,
        servers: int = 5,
    ) -> float | None:
        fig = self.figures.get((system, variant, mode, servers, workload))
        return None if fig is None else fig["medians"].get(metric)

    def ratio(
        self,
        variant: str,
        peer: str,
        workload: str,
        metric: str,
        mode: str = IN_PROCESS,
        servers: int = 5,
    ) -> float | None:
        r = self.ratios.get((variant, peer, mode, servers, workload, metric))
        return None if r is None else r["median"]


Rows = tuple[list[str], list[list[str]]]


def target_rows(results: dict[str, Any]) -> Rows:
    """The targets: teachraft, PySyncObj (batched, unbatched), ratios, Go, target, met."""
    idx = _Index(results)
    go = {g["key"]: g for g in results["go_reference"]}
    rows = []
    for t in results["targets"]:
        _, variant, _, _, workload = t["key"].split("|")
        metric = t["metric"]
        peer_variant = "batched" if workload == "rss" else None
        peers = [idx.value(PEER, v, workload, metric) for v in PEER_VARIANTS]
        if peer_variant:
            peers = [idx.value(PEER, peer_variant, workload, metric), None]
        ratios = [idx.ratio(variant, v, workload, metric) for v in PEER_VARIANTS]
        g = go.get(t["key"]) if metric == "ops_s" or workload == "leader_kill" else None
        met = {True: "met", False: "MISSED", None: "no data"}[t["met"]]
        rows.append(
            [
                f"{t['name']} ({t['unit']})",
                _fmt(t["value"]),
                *map(_fmt, peers),
                *map(_fmt, ratios),
                (g.get("range") or _fmt(g["value"])) if g else "",
                t["text"],
                met,
            ]
        )
    for g in results["go_reference"]:
        if g["key"] not in {t["key"] for t in results["targets"]}:
            _, variant, mode, servers, workload = g["key"].split("|")
            ours = idx.value(TEACHRAFT, variant, workload, "ops_s", mode, int(servers))
            rows.append(
                [
                    f"{g['figure']} ({g['unit']})",
                    _fmt(ours),
                    "-",
                    "-",
                    "-",
                    "-",
                    _fmt(g["value"]),
                    "",
                    "",
                ]
            )
    header = [
        "5 servers, in-process",
        "teachraft",
        "PySyncObj b",
        "PySyncObj u",
        "ratio b",
        "ratio u",
        "Go",
        "target",
        "",
    ]
    return header, rows


def figure_rows(results: dict[str, Any]) -> Rows:
    """Every figure: medians of ops/s and latency percentiles (or seconds, MB)."""
    rows = []
    for f in sorted(results["figures"], key=_order):
        m = f["medians"]
        metric = main_metric(f["workload"])
        value = m.get(metric)
        errors = "; ".join(f["errors"])[:60]
        rows.append(
            [
                f["system"],
                f["variant"],
                f["mode"],
                str(f["servers"]),
                WORKLOADS.get(f["workload"], f["workload"]),
                _fmt(value),
                _fmt(m.get("p50_ms")),
                _fmt(m.get("p99_ms")),
                str(len(f["runs"])),
                errors,
            ]
        )
    header = [
        "system",
        "variant",
        "mode",
        "n",
        "workload",
        "value",
        "p50 ms",
        "p99 ms",
        "runs",
        "errors",
    ]
    return header, rows


def ratio_rows(results: dict[str, Any], variant: str | None = None) -> Rows:
    """The pair ratios; only those of one teachraft variant if given."""
    chosen = [r for r in results["ratios"] if variant is None or r["teachraft"] == variant]
    rows = [
        [
            r["workload"],
            r["mode"],
            str(r["servers"]),
            r["teachraft"],
            r["peer"],
            r["metric"],
            _fmt(r["median"]),
            str(len(r["pairs"])),
        ]
        for r in sorted(chosen, key=_ratio_order)
    ]
    header = ["workload", "mode", "n", "teachraft", "PySyncObj", "metric", "ratio", "pairs"]
    return header, rows


def _ratio_order(r: dict[str, Any]) -> tuple[Any, ...]:
    workloads = list(WORKLOADS)
    w = workloads.index(r["workload"]) if r["workload"] in workloads else 99
    return (r["mode"] != IN_PROCESS, -r["servers"], w, r["teachraft"], r["peer"], r["metric"])


def _order(f: dict[str, Any]) -> tuple[Any, ...]:
    workloads = list(WORKLOADS)
    w = workloads.index(f["workload"]) if f["workload"] in workloads else 99
    return (f["mode"] != IN_PROCESS, -f["servers"], w, f["system"] != TEACHRAFT, f["variant"])


def text_report(results: dict[str, Any]) -> str:
    meta = results["meta"]
    parts = [
        f"teachraft bench ({meta['plan']['name']}), {meta['date']}, {meta['cpus']} CPUs, "
        f"Python {meta['python']}, PySyncObj {meta['pysyncobj']}, {meta['seconds']} s",
        "",
        _table(*target_rows(results)),
        "",
        "ratio = teachraft / PySyncObj per pair of alternate runs, median "
        "(ops/s: above 1 is better; ms, s, MB: below 1 is better).",
        "PySyncObj does not trace: in tracing-on rows its columns are its untraced figures.",
        "",
        "teachraft with tracing off over PySyncObj (all pairs, also tracing on: latest.json):",
        _table(*ratio_rows(results, "tracing off")),
        "",
        _table(*figure_rows(results)),
    ]
    if any(f["system"] == "etcd" for f in results["figures"]):
        from bench.peer_etcd import comparison_rows

        parts += ["", "teachraft, PySyncObj and etcd (medians):", _table(*comparison_rows(results))]
    if results.get("skipped"):
        parts += ["", "skipped (time budget): " + ", ".join(results["skipped"])]
    return "\n".join(parts)


# ------------------------------------------------------------------------- HTML
def _label(f: dict[str, Any]) -> str:
    name = {TEACHRAFT: "teachraft", PEER: "PySyncObj"}.get(f["system"], f["system"])
    return f"{name} {f['variant']}"


def _configs(results: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted(
        {(f["mode"], f["servers"]) for f in results["figures"]},
        key=lambda c: (c[0] != IN_PROCESS, -c[1]),
    )


def throughput_figure(results: dict[str, Any]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    configs = _configs(results)
    fig = make_subplots(
        rows=len(configs),
        cols=1,
        shared_xaxes=False,
        subplot_titles=[f"{m}, {n} servers" for m, n in configs],
    )
    loads = ["seq", "inflight64", "mix", "inflight1024"]
    for row, (mode, servers) in enumerate(configs, 1):
        figs = [
            f
            for f in results["figures"]
            if (f["mode"], f["servers"]) == (mode, servers) and f["workload"] in loads
        ]
        for label in sorted({_label(f) for f in figs}):
            by_load = {f["workload"]: f["medians"].get("ops_s") for f in figs if _label(f) == label}
            fig.add_trace(
                go.Bar(
                    name=label,
                    x=[WORKLOADS[w] for w in loads],
                    y=[by_load.get(w) for w in loads],
                    legendgroup=label,
                    showlegend=row == 1,
                    marker_color=_color(label),
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(title_text="ops/s (log)", type="log", row=row, col=1)
    fig.update_layout(
        title="Throughput (median ops/s)", barmode="group", height=320 * len(configs) + 80
    )
    return fig


def latency_figure(results: dict[str, Any], workload: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    figs = [f for f in results["figures"] if f["workload"] == workload]
    figs.sort(key=_order)
    x = [f"{_label(f)}<br>{f['mode']}, {f['servers']} servers" for f in figs]
    for pct in ("p50_ms", "p90_ms", "p99_ms"):
        fig.add_trace(go.Bar(name=pct.split("_")[0], x=x, y=[f["medians"].get(pct) for f in figs]))
    fig.update_layout(
        title=f"Latency percentiles: {WORKLOADS[workload]} (median over runs)",
        barmode="group",
        yaxis={"title": "ms (log)", "type": "log"},
        height=480,
    )
    return fig


def single_figure(results: dict[str, Any], workload: str, unit: str) -> Any:
    import plotly.graph_objects as go

    figs = sorted((f for f in results["figures"] if f["workload"] == workload), key=_order)
    x = [f"{_label(f)}<br>{f['mode']}, {f['servers']} servers" for f in figs]
    fig = go.Figure(
        go.Bar(x=x, y=[f["value"] for f in figs], marker_color=[_color(_label(f)) for f in figs])
    )
    fig.update_layout(
        title=f"{WORKLOADS[workload]} ({unit}, median)", height=420, yaxis={"title": unit}
    )
    return fig


def table_figure(title: str, rows: Rows) -> Any:
    import plotly.graph_objects as go

    header, body = rows
    cols = [list(c) for c in zip(*body, strict=True)] if body else [[] for _ in header]
    widths = [3 if i == 0 else 1 for i in range(len(header))]
    fig = go.Figure(
        go.Table(
            columnwidth=widths,
            header={"values": header, "align": "left"},
            cells={"values": cols, "align": "left"},
        )
    )
    fig.update_layout(title=title, height=160 + 36 * max(1, len(body)))
    return fig


_COLORS = {
    "teachraft tracing off": "#1f77b4",
    "teachraft tracing on": "#aec7e8",
    "PySyncObj batched": "#ff7f0e",
    "PySyncObj unbatched": "#ffbb78",
    "PySyncObj batched, fast timers": "#d62728",
    "etcd fsync": "#2ca02c",
    "etcd no fsync": "#98df8a",
}


def _color(label: str) -> str:
    return _COLORS.get(label, "#7f7f7f")


def write_html(results: dict[str, Any], path: Path) -> None:
    figures = [
        table_figure("Targets (5 servers, in-process)", target_rows(results)),
        throughput_figure(results),
        latency_figure(results, "seq"),
        latency_figure(results, "inflight64"),
        single_figure(results, "leader_kill", "s"),
        single_figure(results, "rss", "MB"),
        table_figure("teachraft / PySyncObj, median of per-pair ratios", ratio_rows(results)),
        table_figure("Every figure (medians)", figure_rows(results)),
    ]
    if any(f["system"] == "etcd" for f in results["figures"]):
        from bench.peer_etcd import comparison_rows

        figures.insert(1, table_figure("teachraft, PySyncObj and etcd", comparison_rows(results)))
    meta = results["meta"]
    head = (
        f"<h1>teachraft bench ({meta['plan']['name']})</h1><p>{meta['date']}, "
        f"{meta['cpus']} CPUs, Python {meta['python']}, PySyncObj {meta['pysyncobj']}</p>"
        "<ul>" + "".join(f"<li>{n}</li>" for n in meta["notes"]) + "</ul>"
    )
    body = [
        f.to_html(full_html=False, include_plotlyjs="cdn" if i == 0 else False)
        for i, f in enumerate(figures)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>teachraft bench</title></head><body>" + head + "".join(body) + "</body></html>\n",
        encoding="utf-8",
    )
