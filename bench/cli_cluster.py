"""teachraft in command-line mode: one process per node, as the original ran.

The tracing server, coord and servers are the ``teachraft`` commands
themselves (``teachraft tracing-server|coord|server ID --config-dir DIR``),
with configs from ``teachraft.config.write_configs`` on free loopback ports.
The clients are bench clients (``python -m bench.cli_cluster client ID``):
each builds a ``KVClient`` from its client config the way ``teachraft client``
does, then runs the workloads the suite sends it as JSON lines and answers
with JSON samples, so that eight client processes can start a run together.

The ``teachraft`` node commands always trace. For the tracing-off figures,
``python -m bench.cli_cluster node coord|server ID ...`` runs the very same
command code with a tracer that records nothing; a ``--no-trace`` switch on
the node commands would make this shim unnecessary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.procs import PYTHON, Child, ChildError, free_ports, reply, stop_all, wait_listening
from bench.workloads import Sample, WorkloadSpec, drive, merge, put_after, warm_up
from teachraft.config import load_client_config, parse_address, write_configs
from teachraft.core.client import ClientSession
from teachraft.errors import KVError
from teachraft.runtime.client_host import KVClient
from teachraft.tracing.tracer import NullTracer, Tracer

CLIENTS = 8
TICK = 0.05


class ProcTeachraft:
    """A teachraft deployment with one child process per node."""

    def __init__(
        self,
        servers: int,
        tracing: bool,
        log_dir: Path,
        clients: int = CLIENTS,
        max_in_flight: int = 128,
    ) -> None:
        self.servers = servers
        self.tracing = tracing
        self.log_dir = log_dir
        self.num_clients = clients
        self.max_in_flight = max_in_flight
        self.children: list[Child] = []
        self.server_procs: dict[int, Child] = {}
        self.clients: list[Child] = []

    def _node(self, name: str, args: list[str]) -> Child:
        flags = [] if self.tracing else ["--no-tracing"]
        child = Child(name, [PYTHON, "-m", "teachraft", *args, *flags], self.log_dir, talk=False)
        self.children.append(child)
        return child

    def start(self, timeout: float = 90.0) -> None:
        n, c = self.servers, self.num_clients
        cfg = write_configs(
            self.log_dir / "config", n, c, free_ports(3 + 4 * n + 2 * c), ch_capacity=4096
        )
        common = ["--config-dir", str(cfg)]
        if self.tracing:
            self._node("tracing", ["tracing-server", *common, "--out", str(self.log_dir)])
            wait_listening(_config(cfg, "tracing_server_config.json")["ServerBind"], timeout)
        self._node("coord", ["coord", *common])
        wait_listening(_config(cfg, "coord_config.json")["ServerAPIListenAddr"], timeout)
        for i in range(1, n + 1):
            self.server_procs[i] = self._node(f"server{i}", ["server", str(i), *common])
        for i in range(1, c + 1):
            args = [
                PYTHON,
                "-m",
                "bench.cli_cluster",
                "client",
                str(i),
                *common,
                "--max-in-flight",
                str(self.max_in_flight),
            ]
            args += [] if self.tracing else ["--no-trace"]
            child = Child(f"client{i}", args, self.log_dir)
            self.children.append(child)
            self.clients.append(child)
        for child in self.clients:
            child.receive(timeout)

    def run(self, spec: WorkloadSpec) -> Sample:
        """Run ``spec`` split over the client processes, which all start at one instant."""
        parts = min(len(self.clients), spec.in_flight)
        start_at = time.monotonic() + 0.3
        for i, child in enumerate(self.clients[:parts]):
            child.send({"cmd": "run", "spec": spec.share(parts, i).to_json(), "start_at": start_at})
        samples = [
            Sample.from_json(child.receive(spec.max_seconds + 90)["sample"])
            for child in self.clients[:parts]
        ]
        return merge(samples)

    def leader_kill(self) -> float:
        """SIGKILL the leader's process; seconds until client 1's next put commits."""
        first = self.clients[0]
        leader = int(first.ask({"cmd": "leader"}, 30)["leader"])
        if leader not in self.server_procs:  # e.g. just after a "no quorum": one put finds it
            first.ask({"cmd": "put_after", "since": time.monotonic()}, 60)
            leader = int(first.ask({"cmd": "leader"}, 30)["leader"])
        if leader not in self.server_procs:
            raise ChildError(f"client1 knows no leader (it says {leader})")
        since = time.monotonic()
        self.server_procs[leader].kill()
        return float(first.ask({"cmd": "put_after", "since": since}, 60)["seconds"])

    def close(self) -> None:
        for child in self.clients:
            with contextlib.suppress(ChildError):
                child.send({"cmd": "quit"})
        for child in self.clients:
            with contextlib.suppress(Exception):
                child.proc.wait(timeout=15)
        stop_all(self.children)
        self.children, self.clients, self.server_procs = [], [], {}


def _config(folder: Path, name: str) -> dict[str, Any]:
    return json.loads((folder / name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the bench client
async def _make_client(args: argparse.Namespace) -> tuple[KVClient, Any]:
    """A KVClient from client_config{ID}.json, built as ``teachraft client`` builds it."""
    cfg = load_client_config(Path(args.config_dir) / f"client_config{args.id}.json")
    sink = None
    tracer: Any = NullTracer()
    if not args.no_trace:
        from teachraft.tracing.client import TracingClient

        sink = TracingClient(cfg.tracing_server_addr, secret=cfg.secret)
        tracer = Tracer(cfg.tracing_identity, sink)
    core = ClientSession(
        cfg.client_id, tracer, ch_capacity=cfg.ch_capacity, max_in_flight=args.max_in_flight
    )
    client = KVClient(
        core,
        cfg.coord_ip_port,
        tick_interval=TICK,
        call_timeout=1.0,
        port=parse_address(cfg.local_coord_ip_port)[1],
        secret=cfg.secret,  # the configs' cluster secret
    )
    return client, sink


async def _warm(client: KVClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await warm_up([client])
            return
        except KVError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def run_client(args: argparse.Namespace) -> int:
    client, sink = await _make_client(args)
    await client.start()
    await _warm(client)
    reply({"ready": True})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        msg = json.loads(line) if line.startswith("{") else {"cmd": "quit"}
        if msg.get("cmd") == "quit":
            break
        reply(await _answer(client, msg))
    await client.stop()
    if sink is not None:
        await sink.aclose(timeout=10)
    return 0


async def _answer(client: KVClient, msg: dict[str, Any]) -> dict[str, Any]:
    cmd = msg.get("cmd")
    try:
        if cmd == "run":
            spec = WorkloadSpec.from_json(msg["spec"])
            sample = await drive([client], spec, start_at=float(msg["start_at"]))
            return {"sample": sample.to_json()}
        if cmd == "leader":
            return {"leader": client.core.leader}
        if cmd == "put_after":
            return {"seconds": await put_after(client, float(msg["since"]))}
    except (KVError, TimeoutError, asyncio.TimeoutError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"error": f"unknown command {cmd!r}"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m bench.cli_cluster")
    sub = p.add_subparsers(dest="cmd", required=True)
    cl = sub.add_parser("client", help="a bench client answering JSON lines on stdin")
    cl.add_argument("id", type=int)
    cl.add_argument("--config-dir", default="config")
    cl.add_argument("--max-in-flight", type=int, default=128)
    cl.add_argument("--no-trace", action="store_true")
    args = p.parse_args(argv)
    return asyncio.run(run_client(args))


if __name__ == "__main__":
    sys.exit(main())
