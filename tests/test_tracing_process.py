"""The tracing server in a child process: same files, same events, no orphan, clear failures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teachraft.cluster import Cluster
from teachraft.errors import ClusterError
from teachraft.tracing.bounded import BoundedEventTable
from teachraft.tracing.files import load_trace_output
from teachraft.tracing.process import TracingProcess
from teachraft.tracing.validate import validate_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_traced_cluster_writes_through_a_child_process(tmp_path: Path) -> None:
    with Cluster(servers=3, out_dir=tmp_path, seed=3) as c:
        server = c.tracing_server
        assert isinstance(server, TracingProcess) and server.pid not in (None, os.getpid())
        for i in range(10):
            c.put(f"k{i}", f"v{i}")
        c.flush_traces()
        live = c.events()
        assert isinstance(live, BoundedEventTable)
        assert sum(e.tag == "PutRecvd" for e in live) == 10
        pid = server.pid
    assert pid is not None and not _alive(pid)
    trace, shiviz = c.trace_paths
    on_disk = load_trace_output(trace)  # the whole run: it went on after the look above
    assert len(on_disk) >= len(live)
    seen = [(e.host, e.time, e.tag, e.clock) for e in live]
    assert [(e.host, e.time, e.tag, e.clock) for e in on_disk[: len(live)]] == seen
    assert validate_file(shiviz).ok


def test_the_in_loop_server_writes_the_same_kind_of_run(tmp_path: Path) -> None:
    with Cluster(servers=3, out_dir=tmp_path, seed=3, trace_in_process=False) as c:
        assert not isinstance(c.tracing_server, TracingProcess)
        c.put("k", "v")
        c.flush_traces()
        assert any(e.tag == "PutRecvd" for e in c.events())
    assert validate_file(c.trace_paths[1]).ok


def test_the_child_exits_when_its_parent_dies(tmp_path: Path) -> None:
    script = f"""
import asyncio, os, sys
from teachraft.tracing.process import TracingProcess
async def main():
    p = TracingProcess({str(tmp_path / "t.log")!r}, {str(tmp_path / "s.log")!r})
    await p.start()
    print(p.pid, flush=True)
    os._exit(0)  # no close: the parent just dies
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the tracing child outlived its parent"


def test_a_child_that_cannot_start_gives_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    async def main() -> None:
        p = TracingProcess(blocker / "t.log", blocker / "s.log")
        with pytest.raises(ClusterError, match="tracing server process did not start"):
            await p.start()
        assert not p.running

    asyncio.run(main())


def test_flush_answers_with_what_is_still_held(tmp_path: Path) -> None:
    async def main() -> None:
        p = await TracingProcess(tmp_path / "t.log", tmp_path / "s.log").start()
        try:
            assert await p.aflush() == 0
            assert p.records_written == 0 and p.problems == {}
        finally:
            await p.close()
        assert not p.running
        assert await p.aflush() == 0  # a closed child: nothing held, no hang

    asyncio.run(main())
