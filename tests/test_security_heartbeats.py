"""Finding 5: forged or replayed heartbeat acks neither hide a dead server nor move the timeout."""

from __future__ import annotations

import asyncio
import random
import socket

import msgpack
from test_net_support import run_async, wait_until

from teachraft.net import HeartbeatMonitor, HeartbeatResponder

INTERVAL = 0.02
SECRET = b"the cluster secret"


@run_async
async def test_forged_and_replayed_acks_do_not_keep_a_dead_server_alive() -> None:
    results: list[tuple[str, bool, float]] = []
    loop = asyncio.get_running_loop()
    responder = HeartbeatResponder("server1", secret=SECRET)
    monitor = HeartbeatMonitor(
        "coord",
        lambda target, ok: results.append((target, ok, loop.time())),
        interval=INTERVAL,
        secret=SECRET,
    )
    captured: list[bytes] = []
    received = monitor._received

    def capture(data: bytes, addr: object) -> None:  # record real acks to replay later
        captured.append(data)
        received(data, addr)

    monitor._received = capture  # type: ignore[method-assign]
    await responder.start()
    await monitor.start()
    monitor.watch("server1", responder.address)
    await wait_until(lambda: sum(ok for _, ok, _ in results) >= 20)
    timeout_alive = monitor.timeout("server1")
    host, port = monitor.address.rsplit(":", 1)

    await responder.close()  # the server dies
    await asyncio.sleep(0.05)  # the socket closes on the next loop iteration
    died = loop.time()
    rng = random.Random(5)
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forger.bind((responder.host, responder.port))  # even from the dead server's own port
    try:
        while loop.time() - died < 1.0:
            seq = monitor._seq
            forged = [
                msgpack.packb(["server1", seq + k]) for k in range(-3, 4)
            ]  # the old shape: name and a counter
            forged += [
                msgpack.packb(["server1", monitor.nonce, seq + k, rng.randbytes(16)])
                for k in range(-3, 4)
            ]
            for data in forged + captured[-10:]:
                forger.sendto(data, (host, int(port)))
            await asyncio.sleep(0.003)
    finally:
        forger.close()
    after = [ok for _, ok, t in results if t > died + 0.2]
    assert after and not any(after), "a forged or replayed ack counted as alive"
    assert monitor.timeout("server1") <= max(timeout_alive, monitor.timeout_floor) * 1.5
    assert monitor.ignored > 0
    await monitor.close()


@run_async
async def test_a_responder_answers_only_heartbeats_made_with_the_secret() -> None:
    responder = HeartbeatResponder("server1", secret=SECRET)
    await responder.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        for seq in range(20):
            sock.sendto(msgpack.packb(["coord", seq]), (responder.host, responder.port))
            sock.sendto(
                msgpack.packb(["coord", bytes(16), seq, bytes(16)]),
                (responder.host, responder.port),
            )
        await wait_until(lambda: responder.ignored == 40)
        assert responder.answered == 0
    finally:
        sock.close()
        await responder.close()
