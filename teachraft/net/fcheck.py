"""A heartbeat failure detector over UDP, like KVRaft's ``fcheck``.

The coord runs a ``HeartbeatMonitor``; every server runs a ``HeartbeatResponder``.
Every ``interval`` the monitor sends each watched server a datagram
``[monitor_name, nonce, seq, mac]`` (msgpack); the responder checks the MAC and
echoes ``[responder_name, nonce, seq, mac]``. The nonce is chosen afresh by
each monitor when it starts, the MACs are HMACs with the cluster secret over
every field and both names (``auth.mac``), and each sequence number counts
once: a forged ack, a replayed one, or one meant for an earlier monitor is
ignored (counted in ``ignored``) and moves neither a result nor the timeout.
The monitor keeps a smoothed round-trip time per target, as TCP does (SRTT with
gain 1/8), and reports each heartbeat exactly once through ``on_result``:

- ``on_result(target, True)`` when the ack arrives before the heartbeat's timeout;
- ``on_result(target, False)`` when it does not. The timeout is
  ``max(timeout_floor, rtt_multiple * srtt)``, at most ``max_timeout``, and
  ``interval`` until a first RTT is measured. It may exceed the interval, so
  heartbeats can overlap: when this process is busy, acks come back late, the
  RTT estimate grows (late acks still count as samples) and the detector waits
  longer instead of declaring a slow but live server dead, as TCP's RTO does.
  While the monitor's own ticks run late (this process is overloaded), expiring
  heartbeats are judged again later rather than reported lost.

Counting consecutive losses against ``LostMsgsThresh`` is the coord's job, not
this module's. Faults apply by node name and direction, at the sender, like the
TCP transport: the monitor asks ``route(monitor, target)`` for each heartbeat
and the responder asks ``route(responder, monitor)`` for each ack. A paused
responder answers nothing. Datagrams that are not a well-formed heartbeat or ack
are ignored and logged at debug level; nothing received is ever evaluated.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from typing import Any

import msgpack

from teachraft.net.address import join_address, split_address
from teachraft.net.auth import NONCE_BYTES, as_key, check, mac, new_nonce
from teachraft.net.errors import BindError, NetError
from teachraft.net.faults import FaultFilter

logger = logging.getLogger(__name__)

_pack = msgpack.Packer(use_bin_type=True).pack
_LATE_MEMORY = 16


def _parse(data: bytes) -> tuple[str, bytes, int, bytes] | None:
    """Return ``(name, nonce, seq, mac)`` of a heartbeat or ack, or None if malformed."""
    if len(data) > 512:
        return None
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception:
        return None
    if (
        type(msg) is list
        and len(msg) == 4
        and type(msg[0]) is str
        and type(msg[1]) is bytes
        and len(msg[1]) == NONCE_BYTES
        and type(msg[2]) is int
        and type(msg[3]) is bytes
    ):
        return msg[0], msg[1], msg[2], msg[3]
    return None


def _heartbeat_mac(key: bytes, monitor: str, nonce: bytes, seq: int) -> bytes:
    return mac(key, "teachraft-heartbeat", monitor, nonce, seq)


def _ack_mac(key: bytes, responder: str, monitor: str, nonce: bytes, seq: int) -> bytes:
    return mac(key, "teachraft-ack", responder, monitor, nonce, seq)


async def _bind(
    protocol: asyncio.DatagramProtocol, host: str, port: int
) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=(host, port)
        )
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise BindError(f"cannot listen on {host}:{port} (udp): {reason or exc}") from exc
    return transport, transport.get_extra_info("sockname")[1]


class _Endpoint(asyncio.DatagramProtocol):
    """Hands datagrams to a callback; swallows ICMP errors (a dead peer is normal)."""

    def __init__(self, on_datagram: Callable[[bytes, Any], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        logger.debug("heartbeat socket error: %s", exc)


class HeartbeatResponder:
    """Runs on each server: echoes every heartbeat unless paused or cut off."""

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultFilter | None = None,
        secret: str | bytes | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.faults = faults
        self.key = as_key(secret)
        self.paused = False
        self.answered = 0
        self.ignored = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Bind the UDP socket (BindError naming the address when in use)."""
        self._loop = asyncio.get_running_loop()
        self._transport, self.port = await _bind(_Endpoint(self._received), self.host, self.port)

    @property
    def address(self) -> str:
        """Where heartbeats must be sent, ``"127.0.0.1:54321"``."""
        return join_address(self.host, self.port)

    def pause(self) -> None:
        """Stop answering (the process looks frozen to the monitor)."""
        self.paused = True

    def resume(self) -> None:
        """Answer heartbeats again."""
        self.paused = False

    async def close(self) -> None:
        """Close the socket; later heartbeats go unanswered."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _received(self, data: bytes, addr: Any) -> None:
        msg = _parse(data)
        if msg is None or not check(_heartbeat_mac(self.key, *msg[:3]), msg[3]):
            self.ignored += 1
            logger.debug("%s: ignoring a malformed or forged heartbeat from %s", self.name, addr)
            return
        if self.paused or self._transport is None:
            return
        monitor, nonce, seq, _ = msg
        delay = 0.0 if self.faults is None else self.faults.route(self.name, monitor)
        if delay is None:
            return
        reply = _pack([self.name, nonce, seq, _ack_mac(self.key, self.name, monitor, nonce, seq)])
        if delay > 0.0:
            assert self._loop is not None
            self._loop.call_later(delay, self._send, reply, addr)
        else:
            self._send(reply, addr)

    def _send(self, reply: bytes, addr: Any) -> None:
        if self._transport is not None:
            self._transport.sendto(reply, addr)
            self.answered += 1


STALL_GRACE = 0.02
"""A timeout that fires this much later than due means the loop itself stalled."""


class _Target:
    """What the monitor knows about one watched server."""

    __slots__ = ("addr", "late", "name", "outstanding", "rttvar", "srtt")

    def __init__(self, name: str, addr: tuple[str, int]) -> None:
        self.name = name
        self.addr = addr
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.outstanding: dict[int, tuple[float, asyncio.TimerHandle]] = {}
        self.late: dict[int, float] = {}

    def observe(self, sample: float) -> None:
        """Fold one round-trip sample into the estimate (RFC 6298 gains)."""
        if self.srtt is None:
            self.srtt = sample
            self.rttvar = sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample

    def forget(self) -> None:
        for _, handle in self.outstanding.values():
            handle.cancel()
        self.outstanding.clear()
        self.late.clear()


class HeartbeatMonitor:
    """Runs on the coord: heartbeats every watched server, reports each outcome."""

    def __init__(
        self,
        name: str,
        on_result: Callable[[str, bool], None],
        *,
        interval: float,
        faults: FaultFilter | None = None,
        host: str = "127.0.0.1",
        timeout_floor: float = 0.05,
        rtt_multiple: float = 4.0,
        max_timeout: float = 1.0,
        secret: str | bytes | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"heartbeat interval must be > 0, not {interval}")
        self.name = name
        self.key = as_key(secret)
        self.nonce = new_nonce()
        self.ignored = 0
        self.on_result = on_result
        self.interval = interval
        self.faults = faults
        self.host = host
        self.timeout_floor = timeout_floor
        self.rtt_multiple = rtt_multiple
        self.max_timeout = max_timeout
        self._overloaded_until = 0.0
        self._targets: dict[str, _Target] = {}
        self._seq = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._next_tick = 0.0

    def watch(self, target: str, address: str) -> None:
        """Start (or, with a new address, restart) heartbeating ``target``."""
        old = self._targets.get(target)
        if old is not None:
            old.forget()
        self._targets[target] = _Target(target, split_address(address))

    def unwatch(self, target: str) -> None:
        """Stop heartbeating ``target``; its pending heartbeats report nothing."""
        old = self._targets.pop(target, None)
        if old is not None:
            old.forget()

    @property
    def address(self) -> str:
        """The monitor's own UDP address (acks come back here)."""
        if self._transport is None:
            raise NetError(f"heartbeat monitor {self.name} is not started")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return join_address(host, port)

    def rtt(self, target: str) -> float | None:
        """The smoothed round-trip time to ``target`` in seconds (None before an ack)."""
        state = self._targets.get(target)
        return None if state is None else state.srtt

    def timeout(self, target: str) -> float:
        """How long the next heartbeat to ``target`` will wait for its ack."""
        state = self._targets.get(target)
        return self.interval if state is None else self._timeout(state)

    async def start(self) -> None:
        """Open the UDP socket and start the heartbeat ticks."""
        if self._transport is not None:
            raise NetError(f"heartbeat monitor {self.name} already started")
        loop = self._loop = asyncio.get_running_loop()
        self.nonce = new_nonce()
        self._transport, _ = await _bind(_Endpoint(self._received), self.host, 0)
        self._next_tick = loop.time()
        self._beat_all()

    async def close(self) -> None:
        """Stop the ticks, forget every pending heartbeat, close the socket."""
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        for state in self._targets.values():
            state.forget()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # -- internals -----------------------------------------------------------

    def _timeout(self, state: _Target) -> float:
        if state.srtt is None:
            return self.interval
        return min(self.max_timeout, max(self.timeout_floor, self.rtt_multiple * state.srtt))

    def _beat_all(self) -> None:
        assert self._loop is not None
        lag = self._loop.time() - self._next_tick
        if lag > self.interval / 2:
            # This process is overloaded: its own loop runs late. Losses seen
            # now say more about us than about the servers (see _expire).
            self._overloaded_until = self._loop.time() + 2 * self.interval + lag
        for state in list(self._targets.values()):
            self._beat(state)
        # A fixed cadence that does not drift, and that skips missed ticks.
        now = self._loop.time()
        self._next_tick = max(self._next_tick + self.interval, now)
        self._tick = self._loop.call_at(self._next_tick, self._beat_all)

    def _beat(self, state: _Target) -> None:
        loop = self._loop
        assert loop is not None
        self._seq += 1
        seq = self._seq
        now = loop.time()
        deadline = now + self._timeout(state)
        handle = loop.call_at(deadline, self._expire, state, seq, deadline)
        state.outstanding[seq] = (now, handle)
        delay = 0.0 if self.faults is None else self.faults.route(self.name, state.name)
        if delay is None:
            return  # lost: it will expire
        nonce = self.nonce
        data = _pack([self.name, nonce, seq, _heartbeat_mac(self.key, self.name, nonce, seq)])
        if delay > 0.0:
            loop.call_later(delay, self._send, data, state.addr)
        else:
            self._send(data, state.addr)

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    def _expire(self, state: _Target, seq: int, deadline: float) -> None:
        assert self._loop is not None
        now = self._loop.time()
        if now - deadline > STALL_GRACE:
            # This timer fired late: this process's own loop stalled (a long
            # callback, a garbage collection, a flood of work). The ack may be
            # waiting in a socket buffer, or the responder on this loop may only
            # now be answering: a loss now would say more about us than about
            # the server.
            self._overloaded_until = max(self._overloaded_until, now + 2 * self.interval)
        if now < self._overloaded_until and seq in state.outstanding:
            sent, _ = state.outstanding[seq]
            again = now + self.interval
            handle = self._loop.call_at(again, self._expire, state, seq, again)
            state.outstanding[seq] = (sent, handle)
            return
        entry = state.outstanding.pop(seq, None)
        if entry is None:
            return
        state.late[seq] = entry[0]
        if len(state.late) > _LATE_MEMORY:
            del state.late[next(iter(state.late))]
        self._report(state.name, False)

    def _received(self, data: bytes, addr: Any) -> None:
        msg = _parse(data)
        if msg is None:
            self.ignored += 1
            logger.debug("%s: ignoring a malformed ack from %s", self.name, addr)
            return
        name, nonce, seq, tag = msg
        state = self._targets.get(name)
        if (
            state is None
            or nonce != self.nonce
            or not check(_ack_mac(self.key, name, self.name, nonce, seq), tag)
        ):
            self.ignored += 1
            logger.debug("%s: ignoring an ack from %s that is forged or not ours", self.name, addr)
            return
        assert self._loop is not None
        now = self._loop.time()
        entry = state.outstanding.pop(seq, None)
        if entry is None:
            sent = state.late.pop(seq, None)
            if sent is not None:  # too late to count, still a valid RTT sample
                state.observe(now - sent)
            return
        sent, handle = entry
        handle.cancel()
        state.observe(now - sent)
        self._report(name, True)

    def _report(self, target: str, ok: bool) -> None:
        try:
            self.on_result(target, ok)
        except Exception:
            logger.exception("%s: heartbeat result handler failed for %s", self.name, target)
