"""The memory soak: a traced cluster at a steady rate for minutes, its RSS sampled.

``python -m bench --soak`` runs it (``--memory-duration`` seconds, 600 by
default; ``python -m bench.soak_memory`` runs it alone). A cluster of 5
servers and 8 clients, traced as in a notebook, takes ``rate`` puts a second
from 64 workers while a viewer does what the ControlPanel does: every
``view_every`` seconds it reads the newest 1,500 events, and now and then it
reads an old event, which the bounded event table parses again from the file.
Every ``sample_every`` seconds the RSS of this process and of the tracing
server's child process is recorded. The target: flat after warm-up, i.e. the
last third's median within ``FLAT_MB`` of the middle third's, and below
``TARGET_MB`` in total.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.procs import rss_mb
from teachraft.cluster import Cluster
from teachraft.errors import KVError
from teachraft.viz.sources import live_events

TARGET_MB = 400.0
FLAT_MB = 25.0
WORKERS = 64


async def _steady_puts(cluster: Cluster, rate: float, until: float, done: list[int]) -> None:
    """``WORKERS`` workers together putting ``rate`` values a second until ``until``."""
    clients = [cluster.client(i) for i in range(1, 9)]
    loop = asyncio.get_running_loop()
    gap = WORKERS / rate

    async def worker(j: int) -> None:
        client = clients[j % len(clients)]
        n = 0
        next_at = loop.time() + gap * j / WORKERS
        while loop.time() < until:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += gap
            n += 1
            try:
                await client.put(f"k{(j * 7919 + n) % 1000}", f"w{j}-{n}")
            except KVError:
                done[1] += 1  # counted, not fatal: the soak measures memory
                continue
            done[0] += 1

    await asyncio.gather(*(worker(j) for j in range(WORKERS)))


def soak_memory(
    duration: float = 600.0,
    rate: float = 500.0,
    sample_every: float = 5.0,
    view_every: float = 2.0,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the soak; the RSS samples and the verdict."""
    samples: list[dict[str, float]] = []
    done = [0, 0]  # ops done, ops failed
    with Cluster(servers=5, clients=8, history=False) as cluster:
        child = getattr(cluster.tracing_server, "pid", None)
        started = time.monotonic()
        until = cluster.run(_now(), timeout=10) + duration
        work = cluster.submit(_steady_puts(cluster, rate, until, done))
        viewer = threading.Thread(target=_view, args=(cluster, work, view_every), daemon=True)
        viewer.start()
        next_sample = 0.0
        while not work.done():
            now = time.monotonic() - started
            if now >= next_sample:
                next_sample = now + sample_every
                own = rss_mb()["rss_mb"]
                kid = rss_mb(child).get("rss_mb", 0.0) if child else 0.0
                samples.append(
                    {
                        "t": round(now, 1),
                        "ops": done[0],
                        "rss_mb": own + kid,
                        "parent_mb": own,
                        "tracing_child_mb": kid,
                    }
                )
                say(f"soak memory: {now:5.0f} s, {done[0]:7d} ops, RSS {own + kid:6.1f} MB")
            time.sleep(0.2)
        work.result()
        viewer.join(30)
    return {**_verdict(samples, duration, rate), "failed_ops": done[1]}


def _view(cluster: Cluster, work: Any, every: float) -> None:
    """What a ControlPanel and a scrubbed timeline read, every ``every`` seconds."""
    while not work.done():
        table = cluster.events()
        live_events(cluster, last=1500)
        if len(table):
            table[len(table) // 3]  # an old moment: parsed again from the file
        time.sleep(every)


async def _now() -> float:
    return asyncio.get_running_loop().time()


def _verdict(samples: list[dict[str, float]], duration: float, rate: float) -> dict[str, Any]:
    third = max(1, len(samples) // 3)
    middle = statistics.median(s["rss_mb"] for s in samples[third : 2 * third] or samples)
    last = statistics.median(s["rss_mb"] for s in samples[-third:])
    peak = max(s["rss_mb"] for s in samples)
    return {
        "duration_s": duration,
        "rate_ops_s": rate,
        "ops": samples[-1]["ops"] if samples else 0,
        "middle_third_mb": round(middle, 1),
        "last_third_mb": round(last, 1),
        "peak_mb": round(peak, 1),
        "flat": last - middle <= FLAT_MB,
        "under_target": peak <= TARGET_MB,
        "samples": samples,
    }


def plot(data: dict[str, Any], path: Path) -> Path:
    """An HTML chart of RSS over time (parent, tracing child, total), and a PNG beside it.

    The PNG (for the README) needs kaleido and a Chromium; without them only the
    HTML is written.
    """
    import plotly.graph_objects as go

    t = [s["t"] for s in data["samples"]]
    fig = go.Figure()
    for key, name in (
        ("rss_mb", "total"),
        ("parent_mb", "cluster"),
        ("tracing_child_mb", "tracing server"),
    ):
        fig.add_scatter(x=t, y=[s[key] for s in data["samples"]], name=name, mode="lines")
    fig.update_layout(
        title=f"Traced soak: RSS at {data['rate_ops_s']:.0f} puts/s, {data['ops']} ops",
        xaxis_title="seconds",
        yaxis_title="MB",
        yaxis_rangemode="tozero",
    )
    fig.write_html(path, include_plotlyjs="cdn")
    try:
        from teachraft.viz.images import write_png

        write_png(fig, path.with_suffix(".png"), width=900)
    except Exception as exc:  # kaleido or Chromium missing: the HTML is the chart
        print(f"soak memory: no PNG ({type(exc).__name__}: {exc})")
    return path


def soak_memory_text(data: dict[str, Any]) -> str:
    flat = "flat" if data["flat"] else "GROWING"
    return (
        f"memory soak: {data['ops']} ops in {data['duration_s']:.0f} s; RSS middle third "
        f"{data['middle_third_mb']} MB, last third {data['last_third_mb']} MB ({flat}), "
        f"peak {data['peak_mb']} MB (target <= {TARGET_MB:.0f} MB: "
        f"{'met' if data['under_target'] else 'MISSED'})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak_memory", description=__doc__)
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = p.parse_args(argv)
    data = soak_memory(args.duration, args.rate)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak_memory.json").write_text(json.dumps(data, indent=1))
    plot(data, args.out / "soak_memory.html")
    print(soak_memory_text(data))
    return 0 if data["flat"] and data["under_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
