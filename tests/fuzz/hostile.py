"""A hostile local process against a running cluster, while a workload checks every answer.

``run_fuzz(duration, seed)`` starts a traced, persistent 3-server cluster and,
for ``duration`` seconds, a workload of puts and gets that remembers every
acknowledged value, while an attacker (on its own thread and loop) hits every
port the cluster listens on:

- TCP (every node's listeners, the tracing server): random bytes, huge length
  prefixes, frames of the wrong shape, 1,000-deep nesting, slowloris
  connections, connect storms, forged HELLOs and forged trace records;
- UDP (the coord's heartbeat monitor, every server's responder): random
  datagrams, forged and replayed-shape acks and heartbeats;
- the data files: a follower is crashed, its file's tail torn or one of its
  bits flipped, and it is restarted (a flip must refuse the restart; the file
  is then moved away and the server catches up from the leader).

The report says whether anything acknowledged was lost or altered, whether a
node stopped, whether file descriptors leaked, and what the cluster counted
in ``status()["problems"]``. Everything is on 127.0.0.1 and bounded in time;
``tests/fuzz/test_fuzz.py`` runs a short version, ``python -m bench --soak``
a long one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

from teachraft.cluster import Cluster
from teachraft.errors import KVError
from teachraft.net.framing import HEADER, encode_frame
from teachraft.runtime.storage import StorageCorrupt
from teachraft.tracing.validate import validate_shiviz

SLOWLORIS = 40
STORM = 100


@dataclass
class FuzzReport:
    """What a fuzz run found; ``ok`` when nothing acknowledged was lost or altered."""

    seconds: float = 0.0
    puts: int = 0
    gets: int = 0
    wrong: list[str] = field(default_factory=list)
    op_errors: int = 0
    attacks: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)
    stopped_nodes: list[str] = field(default_factory=list)
    restarts: int = 0
    refused_restarts: int = 0
    fd_growth: int = 0
    trace_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.wrong
            and not self.stopped_nodes
            and not self.trace_problems
            and self.fd_growth < 50
        )

    def summary(self) -> str:
        return (
            f"{self.seconds:.0f} s: {self.puts} puts, {self.gets} gets, "
            f"{len(self.wrong)} wrong, {self.op_errors} op errors, "
            f"{self.restarts} restarts ({self.refused_restarts} refused on a flipped bit), "
            f"{sum(self.attacks.values())} attacks, problems counted {self.problems}, "
            f"fd growth {self.fd_growth}, "
            f"{'OK' if self.ok else 'FAILED'}"
        )


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


class Attacker:
    """Hits every port of the cluster from its own thread and event loop."""

    def __init__(self, tcp: list[str], udp: list[str], seed: int) -> None:
        self.tcp = tcp
        self.udp = udp
        self.rng = random.Random(seed)
        self.counts: dict[str, int] = {}
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fuzz-attacker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        asyncio.run(self._attack())

    async def _attack(self) -> None:
        held: list[asyncio.StreamWriter] = []
        kinds = [
            self._random_bytes,
            self._huge_prefix,
            self._wrong_shape,
            self._deep_nesting,
            self._forged_hello,
            self._forged_trace,
            self._storm,
            self._udp,
        ]
        try:
            while not self.stop.is_set():
                attack = self.rng.choice(kinds)
                with contextlib.suppress(OSError, asyncio.TimeoutError, EOFError):
                    await asyncio.wait_for(attack(), 5.0)
                self.counts[attack.__name__.strip("_")] = (
                    self.counts.get(attack.__name__.strip("_"), 0) + 1
                )
                if len(held) < SLOWLORIS:
                    with contextlib.suppress(OSError, asyncio.TimeoutError):
                        held.append(await self._slowloris())
                await asyncio.sleep(0.005)
        finally:
            for writer in held:
                writer.close()

    async def _send(self, payload: bytes, read: bool = True) -> None:
        host, port = self.rng.choice(self.tcp).rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(payload)
            await writer.drain()
            if read:
                with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
                    await asyncio.wait_for(reader.read(65536), 0.2)
        finally:
            writer.close()

    async def _random_bytes(self) -> None:
        await self._send(self.rng.randbytes(self.rng.randint(1, 2048)))

    async def _huge_prefix(self) -> None:
        size = self.rng.choice([2**31, 4 * 1024 * 1024 - 1, 4 * 1024 * 1024 + 1, 100_000])
        await self._send(HEADER.pack(size) + b"x" * self.rng.randint(0, 64))

    async def _wrong_shape(self) -> None:
        shape = self.rng.choice(
            [
                {"t": "rec", "seq": 1, "recs": [["server1", 1, "X", {}, {"server1": 10**6}]]},
                [4, "coord"],
                [3, "leader_failover", [2, 1, [], 99, b""]],
                [0, 1, "client_request", {"x": 1}],
                "hello",
                [4, "coord", b"short"],
            ]
        )
        await self._send(encode_frame(shape))

    async def _deep_nesting(self) -> None:
        body = b"\x91" * 1000 + b"\x00"
        await self._send(HEADER.pack(len(body)) + body)

    async def _forged_hello(self) -> None:
        name = self.rng.choice(["coord", "server1", "server2", "client1", "x" * 60])
        hello = encode_frame([4, name, self.rng.randbytes(16)])
        proof = encode_frame([5, self.rng.randbytes(16)])
        forged = encode_frame([3, "leader_failover", [2, 1, [], 99, b""]])
        await self._send(hello + proof + forged)

    async def _forged_trace(self) -> None:
        record = ["server1", 1, "ServerStart", {}, {"server1": 10**6, "ghost": 5}]
        frames = encode_frame({"t": "auth", "nonce": bytes(16), "mac": bytes(16)})
        frames += encode_frame({"t": "rec", "seq": 1, "recs": [record]})
        await self._send(frames)

    async def _storm(self) -> None:
        writers = []
        for _ in range(STORM):
            host, port = self.rng.choice(self.tcp).rsplit(":", 1)
            with contextlib.suppress(OSError):
                writers.append((await asyncio.open_connection(host, int(port)))[1])
        for writer in writers:
            writer.close()

    async def _slowloris(self) -> asyncio.StreamWriter:
        host, port = self.rng.choice(self.tcp).rsplit(":", 1)
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(HEADER.pack(4000)[: self.rng.randint(1, 4)])
        return writer

    async def _udp(self) -> None:
        target = self.rng.choice(self.udp)
        host, port = target.rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for seq in range(50):
                shape = self.rng.choice(
                    [
                        ["server1", seq],
                        ["server1", self.rng.randbytes(16), seq, self.rng.randbytes(16)],
                        ["coord", self.rng.randbytes(16), seq, self.rng.randbytes(16)],
                    ]
                )
                data = (
                    msgpack.packb(shape)
                    if self.rng.random() < 0.8
                    else self.rng.randbytes(self.rng.randint(1, 600))
                )
                sock.sendto(data, (host, int(port)))
        finally:
            sock.close()


def _addresses(cluster: Cluster) -> tuple[list[str], list[str]]:
    tcp = [cluster.tracing_server.address]
    udp = []
    coord = cluster.coord
    assert coord is not None
    tcp += [node.address for node in coord.nodes()]
    udp.append(coord.monitor.address)
    for host in cluster.servers.values():
        tcp += [node.address for node in host.nodes()]
        udp.append(host.heartbeats.address)
    for client in cluster.clients.values():
        tcp += [node.address for node in client.nodes()]
    return sorted(set(tcp)), udp


def _damage(path: Path, rng: random.Random, flip: bool) -> None:
    data = bytearray(path.read_bytes())
    if flip and len(data) > 200:
        at = rng.randrange(40, len(data) // 2)
        data[at] ^= 1 << rng.randrange(8)
    else:
        del data[len(data) - rng.randint(1, min(20, len(data) - 1)) :]
    path.write_bytes(bytes(data))


def _crash_and_damage(cluster: Cluster, report: FuzzReport, rng: random.Random) -> None:
    """Crash a follower, damage its data file, restart it (refused on a flipped bit)."""
    leader = cluster.leader()
    victim = rng.choice([sid for sid in cluster.servers if sid != leader])
    cluster.fail(victim)
    path = cluster.data_dir / f"server{victim}.log"
    flip = rng.random() < 0.5
    _damage(path, rng, flip)
    try:
        cluster.restart(victim)
    except StorageCorrupt:
        report.refused_restarts += 1
        path.rename(path.with_suffix(".corrupt"))  # what the message says to do
        cluster.restart(victim)
    report.restarts += 1


def run_fuzz(duration: float, seed: int = 1, out_dir: Path | None = None) -> FuzzReport:
    """Attack a running cluster for ``duration`` seconds; see the module docstring."""
    rng = random.Random(seed)
    report = FuzzReport()
    acked: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        folder = out_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cluster = stack.enter_context(
            Cluster(servers=3, clients=1, out_dir=folder, persist=True, fsync=False, seed=seed)
        )
        fds_before = _open_fds()
        tcp, udp = _addresses(cluster)
        attacker = Attacker(tcp, udp, seed)
        attacker.start()
        start = time.monotonic()
        next_crash = start + duration / 3
        i = 0
        try:
            while time.monotonic() - start < duration:
                i += 1
                key, value = f"k{i % 50}", f"val{i}-{rng.random():.6f}"
                try:
                    cluster.put(key, value)
                    acked[key] = value
                    report.puts += 1
                    probe = rng.choice(sorted(acked))
                    got = cluster.get(probe)
                    report.gets += 1
                    if got != acked[probe]:
                        report.wrong.append(f"get({probe}) = {got!r}, acked {acked[probe]!r}")
                except KVError:
                    report.op_errors += 1  # an op may time out under attack; it is not lost
                if time.monotonic() >= next_crash:
                    _crash_and_damage(cluster, report, rng)
                    next_crash += duration / 3
        finally:
            attacker.join()
        report.attacks = dict(attacker.counts)
        for key, value in sorted(acked.items()):
            got = cluster.get(key)
            if got != value:
                report.wrong.append(f"final get({key}) = {got!r}, acked {value!r}")
        status = cluster.status()
        report.problems = status["problems"]
        report.stopped_nodes = [
            f"server{sid}" for sid, s in status["servers"].items() if s["role"] == "failed"
        ]
        time.sleep(0.5)  # let the closed attack sockets go
        report.fd_growth = _open_fds() - fds_before
        cluster.flush_traces()
        shiviz = cluster.trace_paths[1].read_text(encoding="utf-8")
        report.trace_problems = validate_shiviz(shiviz)[:5]
        report.seconds = time.monotonic() - start
    return report
