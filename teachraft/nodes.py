"""One process per node, as the original ran: ``teachraft coord``, ``teachraft server 3``...

Each command reads its JSON config (the original's keys) from ``config/`` or
``--config-dir``, runs its node until Ctrl-C or SIGTERM, and then flushes its
trace records before it exits. A client runs the original's 20 put/get pairs
and exits 0 only if every get returned the value of its put. Every error a user
can cause (a bad config, a port in use) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from teachraft.cluster.spec import DEFAULT_SNAPSHOT_EVERY, MachineSpec
from teachraft.config import (
    load_client_config,
    load_coord_config,
    load_server_config,
    parse_address,
)
from teachraft.errors import ConfigError, TeachraftError
from teachraft.net.errors import NetError
from teachraft.runtime.client_host import KVClient
from teachraft.runtime.coord_host import CoordHost
from teachraft.runtime.server_host import ServerHost

log = logging.getLogger("teachraft")

HEARTBEAT = 0.05
TICK = 0.05


def _parser(cmd: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"teachraft {cmd}")
    if cmd in ("server", "client"):
        p.add_argument("id", type=int, help=f"the {cmd} id (reads {cmd}_config{{ID}}.json)")
    p.add_argument("--config-dir", default="config", help="folder of the JSON configs")
    p.add_argument("--out", default=".", help="tracing server: folder for the trace files")
    p.add_argument("--pairs", type=int, default=20, help="client: put/get pairs to run")
    p.add_argument(
        "--no-tracing", action="store_true", help="record no trace (no tracing server needed)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.add_argument(  # security: listen beyond loopback only when asked
        "--allow-remote",
        action="store_true",
        help='allow listen addresses off loopback (as "AllowRemote": true does)',
    )
    return p


def _say_warnings(cmd: str, cfg: Any) -> None:  # security: config warnings, one line each
    for line in cfg.warnings:
        print(f"teachraft {cmd}: {line}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    cmd, rest = argv[0], argv[1:]
    args = _parser(cmd).parse_args(rest)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"%(asctime)s [{cmd}] %(message)s",
    )
    runner = {
        "tracing-server": run_tracing_server,
        "coord": run_coord,
        "server": run_server,
        "client": run_client,
    }[cmd]
    try:
        return asyncio.run(runner(args))
    except (ConfigError, NetError, TeachraftError) as exc:
        print(f"teachraft {cmd}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _until_stopped() -> None:
    """Wait for Ctrl-C or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class _NoSink:
    """Stands in for the tracing client when tracing is off: nothing to flush."""

    async def aclose(self, timeout: float = 0.0) -> int:
        return 0


async def _tracer(
    identity: str, address: str, enabled: bool = True, secret: str | None = None
) -> tuple[Any, Any]:
    """A tracer whose records go to the tracing server, continuing a previous life's clock."""
    from teachraft.tracing.client import TracingClient
    from teachraft.tracing.tracer import NullTracer, Tracer

    if not enabled:
        return NullTracer(), _NoSink()

    clock = None
    with contextlib.suppress(Exception):
        clock = await TracingClient.fetch_clock(address, identity, secret=secret)
    sink = TracingClient(address, secret=secret)
    return Tracer(identity, sink, clock=clock), sink


@contextlib.asynccontextmanager
async def _flushing(sink: Any) -> Any:
    """Deliver every trace record on the way out, also when start-up fails."""
    try:
        yield
    finally:
        await sink.aclose(timeout=10)


async def _serve(host: Any, sink: Any, banner: Any) -> None:
    """Start a node, say where it listens, run until stopped, stop it, flush its trace."""
    async with _flushing(sink):
        await host.start()
        print(banner(), flush=True)
        await _until_stopped()
        await host.stop()


async def run_tracing_server(args: argparse.Namespace) -> int:
    from teachraft.tracing.config import load_tracing_server_config
    from teachraft.tracing.server import TracingServer

    cfg = load_tracing_server_config(Path(args.config_dir) / "tracing_server_config.json")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server = TracingServer(
        cfg.ServerBind, out / cfg.OutputFile, out / cfg.ShivizOutputFile, secret=cfg.Secret
    )
    await server.start()
    print(f"tracing server listening on {server.address}", flush=True)
    await _until_stopped()
    await server.close()
    return 0


async def run_coord(args: argparse.Namespace) -> int:
    cfg = load_coord_config(Path(args.config_dir) / "coord_config.json", args.allow_remote)
    _say_warnings("coord", cfg)
    tracer, sink = await _tracer(
        cfg.tracing_identity, cfg.tracing_server_addr, not args.no_tracing, cfg.secret
    )
    spec = MachineSpec(servers=cfg.num_servers, lost_msgs_thresh=cfg.lost_msgs_thresh)
    core = spec.coord(tracer)
    host = CoordHost(
        core,
        tick_interval=TICK,
        heartbeat_interval=HEARTBEAT,
        host=parse_address(cfg.server_api_listen_addr)[0],
        port=parse_address(cfg.server_api_listen_addr)[1],
        client_port=parse_address(cfg.client_api_listen_addr)[1],
        secret=cfg.secret,
    )
    await _serve(
        host,
        sink,
        lambda: (
            f"coord: servers join at {host.address}, clients at {host.client_address}; "
            f"waiting for {cfg.num_servers} servers"
        ),
    )
    return 0


async def run_server(args: argparse.Namespace) -> int:
    cfg = load_server_config(
        Path(args.config_dir) / f"server_config{args.id}.json", args.allow_remote
    )
    _say_warnings("server", cfg)
    if cfg.server_id != args.id:
        raise ConfigError(
            f'{args.config_dir}/server_config{args.id}.json: "ServerID" is {cfg.server_id}, '
            f"not {args.id}"
        )
    tracer, sink = await _tracer(
        cfg.tracing_identity, cfg.tracing_server_addr, not args.no_tracing, cfg.secret
    )
    host_name, port = parse_address(cfg.server_listen_addr)
    host = ServerHost(
        MachineSpec(snapshot_every=DEFAULT_SNAPSHOT_EVERY).server(cfg.server_id, tracer),
        cfg.coord_addr,
        tick_interval=TICK,
        host=host_name,
        port=port,
        client_port=parse_address(cfg.client_listen_addr)[1],
        heartbeat_port=parse_address(cfg.server_addr)[1],
        secret=cfg.secret,
    )
    await _serve(
        host,
        sink,
        lambda: (
            f"server{cfg.server_id}: listening on {host.address}; joining the coord at "
            f"{cfg.coord_addr}"
        ),
    )
    return 0


async def run_client(args: argparse.Namespace) -> int:
    cfg = load_client_config(
        Path(args.config_dir) / f"client_config{args.id}.json", args.allow_remote
    )
    _say_warnings("client", cfg)
    tracer, sink = await _tracer(
        cfg.tracing_identity, cfg.tracing_server_addr, not args.no_tracing, cfg.secret
    )
    core = MachineSpec(ch_capacity=cfg.ch_capacity).session(cfg.client_id, tracer)
    client = KVClient(
        core,
        cfg.coord_ip_port,
        tick_interval=TICK,
        call_timeout=1.0,
        port=parse_address(cfg.local_coord_ip_port)[1],  # where ChangeLeaderNode arrives
        secret=cfg.secret,
    )
    wrong = 0
    async with _flushing(sink):
        await client.start()
        for i in range(args.pairs):
            key, value = f"k{i}", f"val{i}"
            await client.put(key, value)
            got = await client.get(key)
            ok = got == value
            wrong += not ok
            print(
                f"client{cfg.client_id}: Put({key},{value}) ok; Get({key}) = {got}"
                f"{'' if ok else '  <-- WRONG'}",
                flush=True,
            )
        await client.stop()
    return 1 if wrong else 0
