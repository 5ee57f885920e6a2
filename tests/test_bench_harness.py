"""The benchmark harness runs one tiny round and writes valid JSON and HTML.

Only the harness is tested here: the figures themselves are timings, which
belong in ``python -m bench``, never in a test's assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _has_pysyncobj() -> bool:
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return False
    return True


def test_tiny_round_writes_valid_json_and_html(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "bench", "--tiny", "--out", str(tmp_path)]
    if not _has_pysyncobj():
        args.append("--no-peer")
    run = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]

    results = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert {"meta", "figures", "ratios", "targets", "go_reference"} <= set(results)
    assert results["meta"]["plan"]["name"] == "tiny"
    figures = {
        (f["system"], f["variant"], f["mode"], f["servers"], f["workload"]): f
        for f in results["figures"]
    }
    for workload in ("seq", "inflight64", "mix", "inflight1024", "leader_kill"):
        fig = figures[("teachraft", "tracing off", "in-process", 3, workload)]
        assert len(fig["runs"]) == 1, fig
        assert set(fig["runs"][0]) & {"ops_s", "seconds", "error"}, fig
    seq = figures[("teachraft", "tracing off", "in-process", 3, "seq")]["runs"][0]
    assert seq["ops"] > 0 and seq["p50_ms"] <= seq["p99_ms"], seq
    per_process = figures[("teachraft", "tracing off", "per-process", 3, "seq")]
    assert per_process["runs"][0]["ops"] > 0, per_process
    rss = figures[("teachraft", "tracing off", "in-process", 5, "rss")]["runs"][0]
    assert rss["entries"] >= 2000 and rss["rss_mb"] > rss["base_mb"] > 0

    if _has_pysyncobj():
        peer = figures[("pysyncobj", "unbatched", "in-process", 3, "seq")]
        assert peer["runs"][0]["ops"] > 0, peer
        ratios = {
            (r["teachraft"], r["peer"], r["workload"], r["metric"]) for r in results["ratios"]
        }
        assert ("tracing off", "unbatched", "seq", "ops_s") in ratios
    assert [t["name"] for t in results["targets"]]
    assert all(t["met"] in (True, False, None) for t in results["targets"])

    html = (tmp_path / "latest.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "plotly" in html
    assert "teachraft" in run.stdout and "target" in run.stdout
