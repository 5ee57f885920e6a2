"""The peer system: PySyncObj running the same replicated key-value workloads.

PySyncObj is a Raft library whose nodes replicate a Python object. Here the
object is ``KVStore``, a ``SyncObj`` with two ``@replicated`` methods, ``put``
and ``get``. Gets go through the log too, as teachraft's do, so both systems
answer the same linearizable operations. Only documented ``SyncObjConf``
options are used: ``appendEntriesUseBatch`` (the batched default, or one
AppendEntries per command), and for the fast-failover variant
``appendEntriesPeriod``, ``raftMinTimeout``, ``raftMaxTimeout`` and
``connectionTimeout``, set to match teachraft's failure detection (about
0.15 s).

PySyncObj has no separate client: a command is submitted to a node, which
forwards it to the leader. The suite submits at the leader itself, which spares
PySyncObj the client hop that every teachraft op makes. Each node ticks in its
own thread (``autoTick``); in-process, the nodes share one interpreter and its
GIL, as PySyncObj's own tests run them; per-process, each node is a
``python -m bench.peer_pysyncobj node`` child that answers JSON lines.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjException, replicated

from bench.procs import PYTHON, Child, free_ports, reply, rss_mb, stop_all
from bench.workloads import Sample, WorkloadSpec

log = logging.getLogger(__name__)
LEADER_STATE = 2
FAIL_NAMES = {v: k for k, v in vars(FAIL_REASON).items() if isinstance(v, int)}


class KVStore(SyncObj):
    """A replicated dict: every put and every get is a log entry."""

    def __init__(self, self_addr: str, others: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_addr, others, conf)
        self._data: dict[str, str] = {}

    @replicated
    def put(self, key: str, value: str) -> None:
        self._data[key] = value

    @replicated
    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def is_leader(self) -> bool:
        return self.getStatus()["state"] == LEADER_STATE and self.isReady()


def peer_conf(batched: bool = True, fast: bool = False) -> SyncObjConf:
    """PySyncObj's defaults, unbatched if asked, with teachraft-like timers if ``fast``."""
    options: dict[str, Any] = {"appendEntriesUseBatch": batched}
    if fast:
        options.update(appendEntriesPeriod=0.05, raftMinTimeout=0.16, raftMaxTimeout=0.32)
    return SyncObjConf(**options)


class _Loop:
    """The state of one closed-loop run driven by PySyncObj's result callbacks."""

    def __init__(self, node: KVStore, spec: WorkloadSpec) -> None:
        self.node = node
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sample = Sample(t0=time.monotonic())
        self.left = spec.max_ops
        self.deadline = self.sample.t0 + spec.max_seconds
        self.outstanding = 0
        self.n = 0

    def submit(self) -> None:
        with self.lock:
            if self.left <= 0 or time.monotonic() >= self.deadline:
                if self.outstanding == 0:
                    self.sample.t1 = time.monotonic()
                    self.done.set()
                return
            self.left -= 1
            self.outstanding += 1
            self.n += 1
            key = f"k{self.rng.randrange(self.spec.keys)}"
            is_get = bool(self.spec.get_ratio) and self.rng.random() < self.spec.get_ratio
            n = self.n
        start = time.monotonic()

        def callback(result: Any, error: int) -> None:
            self.finished(start, error)

        if is_get:
            self.node.get(key, callback=callback)
        else:
            self.node.put(key, f"v{n}", callback=callback)

    def finished(self, start: float, error: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.outstanding -= 1
            if error == FAIL_REASON.SUCCESS:
                self.sample.ops += 1
                self.sample.latencies.append(now - start)
            else:
                self.sample.errors += 1
                self.sample.error = FAIL_NAMES.get(error, str(error))
        self.submit()


def drive_threaded(node: KVStore, spec: WorkloadSpec) -> Sample:
    """Run ``spec`` by submitting at ``node``: ``in_flight`` ops outstanding at any time.

    One op in flight is a caller blocked on each commit (``sync=True``), the
    way a PySyncObj user writes it; more use result callbacks, each finished op
    submitting the next.
    """
    if spec.in_flight == 1:
        return _sequential(node, spec)
    loop = _Loop(node, spec)
    for _ in range(spec.in_flight):
        loop.submit()
    if not loop.done.wait(spec.max_seconds + 60):
        loop.sample.t1 = time.monotonic()
        loop.sample.error = "the run did not finish in time"
    return loop.sample


def _sequential(node: KVStore, spec: WorkloadSpec) -> Sample:
    rng = random.Random(spec.seed)
    sample = Sample(t0=time.monotonic())
    deadline = sample.t0 + spec.max_seconds
    for n in range(spec.max_ops):
        if time.monotonic() >= deadline:
            break
        key = f"k{rng.randrange(spec.keys)}"
        start = time.monotonic()
        try:
            if spec.get_ratio and rng.random() < spec.get_ratio:
                node.get(key, sync=True, timeout=10)
            else:
                node.put(key, f"v{n}", sync=True, timeout=10)
        except SyncObjException as exc:
            sample.errors += 1
            sample.error = FAIL_NAMES.get(exc.errorCode, str(exc.errorCode))
            continue
        sample.latencies.append(time.monotonic() - start)
        sample.ops += 1
    sample.t1 = time.monotonic()
    return sample


def put_after(node: KVStore, since: float, timeout: float = 30.0) -> float:
    """Seconds from ``since`` until a put submitted at ``node`` commits (retrying)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            node.put("after-kill", "v", sync=True, timeout=0.5)
            return time.monotonic() - since
        except SyncObjException:
            time.sleep(0.01)
    raise TimeoutError(f"no put committed within {timeout:.0f} s of the leader kill")


def settle(run: Callable[[WorkloadSpec], Sample], timeout: float = 30.0) -> None:
    """Warm up until ten puts in a row succeed: a second election just after the
    first one would otherwise discard the first measured ops."""
    deadline = time.monotonic() + timeout
    while True:
        sample = run(WorkloadSpec("warm-up", 1, max_ops=10, max_seconds=5.0))
        if sample.ops == 10 and not sample.errors:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"PySyncObj did not settle: {sample.error or 'too slow'}")


class _CountWarnings(logging.Handler):
    """Counts PySyncObj's own warnings (it logs, e.g., when it truncates applied entries)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:200])


class LocalPeer:
    """A PySyncObj cluster of ``servers`` KVStore nodes in this process."""

    def __init__(self, servers: int, batched: bool = True, fast: bool = False) -> None:
        self.servers = servers
        self.batched = batched
        self.fast = fast
        self.nodes: list[KVStore] = []
        self.warnings = _CountWarnings()

    def start(self, timeout: float = 30.0) -> None:
        logging.getLogger("pysyncobj").addHandler(self.warnings)
        addrs = [f"127.0.0.1:{p}" for p in free_ports(self.servers)]
        self.nodes = [
            KVStore(a, [b for b in addrs if b != a], peer_conf(self.batched, self.fast))
            for a in addrs
        ]
        deadline = time.monotonic() + timeout
        while not self._leader() or not all(n.getStatus()["leader"] for n in self.nodes):
            if time.monotonic() > deadline:
                raise TimeoutError("PySyncObj elected no leader in time")
            time.sleep(0.01)
        settle(self.run)

    def _leader(self) -> KVStore | None:
        return next((n for n in self.nodes if n.is_leader()), None)

    def leader(self, timeout: float = 30.0) -> KVStore:
        deadline = time.monotonic() + timeout
        while (node := self._leader()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError("PySyncObj has no leader")
            time.sleep(0.01)
        return node

    def run(self, spec: WorkloadSpec) -> Sample:
        return drive_threaded(self.leader(), spec)

    def leader_kill(self) -> float:
        """Destroy the leader; seconds until a put submitted at a survivor commits."""
        leader = self.leader()
        survivor = next(n for n in self.nodes if n is not leader)
        since = time.monotonic()
        leader.destroy()
        self.nodes.remove(leader)
        return put_after(survivor, since)

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.destroy_synchronous()
        self.nodes = []
        logging.getLogger("pysyncobj").removeHandler(self.warnings)


class ProcPeer:
    """A PySyncObj cluster with one child process per node on 127.0.0.1."""

    def __init__(
        self, servers: int, log_dir: Path, batched: bool = True, fast: bool = False
    ) -> None:
        self.servers = servers
        self.log_dir = log_dir
        self.batched = batched
        self.fast = fast
        self.children: list[Child] = []

    def start(self, timeout: float = 60.0) -> None:
        addrs = [f"127.0.0.1:{p}" for p in free_ports(self.servers)]
        for i, addr in enumerate(addrs, 1):
            args = [
                PYTHON,
                "-m",
                "bench.peer_pysyncobj",
                "node",
                "--self",
                addr,
                "--peers",
                ",".join(a for a in addrs if a != addr),
            ]
            args += [] if self.batched else ["--unbatched"]
            args += ["--fast"] if self.fast else []
            self.children.append(Child(f"pysyncobj{i}", args, self.log_dir))
        self.leader(timeout)
        settle(self.run)

    def leader(self, timeout: float = 30.0) -> Child:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.children:
                if child.proc.poll() is None and child.ask({"cmd": "status"}, 30)["leader"]:
                    return child
            time.sleep(0.02)
        raise TimeoutError("PySyncObj elected no leader in time")

    def run(self, spec: WorkloadSpec) -> Sample:
        answer = self.leader().ask({"cmd": "run", "spec": spec.to_json()}, spec.max_seconds + 90)
        return Sample.from_json(answer["sample"])

    def leader_kill(self) -> float:
        leader = self.leader()
        survivor = next(c for c in self.children if c is not leader and c.proc.poll() is None)
        since = time.monotonic()
        leader.kill()
        return float(survivor.ask({"cmd": "put_after", "since": since}, 60)["seconds"])

    def close(self) -> None:
        for child in self.children:
            with contextlib.suppress(Exception):
                if child.proc.poll() is None:
                    child.send({"cmd": "quit"})
        stop_all(self.children)
        self.children = []


# ---------------------------------------------------------------- child processes
def _serve(node: KVStore) -> None:
    """Answer the suite's JSON lines on stdin until ``quit`` or end of input."""
    for line in sys.stdin:
        msg = _parse(line)
        cmd = msg.get("cmd")
        if cmd == "status":
            reply({"leader": node.is_leader()})
        elif cmd == "run":
            reply({"sample": drive_threaded(node, WorkloadSpec.from_json(msg["spec"])).to_json()})
        elif cmd == "put_after":
            try:
                reply({"seconds": put_after(node, float(msg["since"]))})
            except TimeoutError as exc:
                reply({"error": str(exc)})
        elif cmd == "quit":
            break
        else:
            reply({"error": f"unknown command {cmd!r}"})


def _parse(line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def fill(servers: int, entries: int, batched: bool = True) -> dict[str, Any]:
    """Commit ``entries`` puts on an in-process cluster; this process's RSS afterwards."""
    before = rss_mb()["rss_mb"]
    cluster = LocalPeer(servers, batched)
    started = time.monotonic()
    cluster.start()
    try:
        sample = cluster.run(WorkloadSpec("fill", 1024, max_ops=entries, max_seconds=600))
        gc.collect()
        out = rss_mb()
        commit = min(n.getStatus()["commit_idx"] for n in cluster.nodes)
    finally:
        cluster.close()
    return {
        "entries": sample.ops,
        "commit_index": commit,
        "base_mb": before,
        "seconds": time.monotonic() - started,
        **out,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer_pysyncobj")
    sub = p.add_subparsers(dest="cmd", required=True)
    node = sub.add_parser("node", help="one PySyncObj node answering JSON lines on stdin")
    node.add_argument("--self", dest="self_addr", required=True)
    node.add_argument("--peers", required=True)
    node.add_argument("--unbatched", action="store_true")
    node.add_argument("--fast", action="store_true")
    rss = sub.add_parser("rss", help="RSS of an in-process cluster after N committed puts")
    rss.add_argument("--servers", type=int, default=5)
    rss.add_argument("--entries", type=int, default=100_000)
    rss.add_argument("--unbatched", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.cmd == "rss":
        print(json.dumps(fill(args.servers, args.entries, not args.unbatched)), flush=True)
        return 0
    conf = peer_conf(not args.unbatched, args.fast)
    store = KVStore(args.self_addr, args.peers.split(","), conf)
    try:
        _serve(store)
    finally:
        store.destroy_synchronous()
    return 0


if __name__ == "__main__":
    sys.exit(main())
