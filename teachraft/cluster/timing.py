"""Every timer of a cluster in one place, stretched together by the slow-motion factor."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Timing:
    """Every timer of a cluster, in seconds, before the slow-motion factor.

    The defaults make failover fast: a dead leader is noticed after
    ``lost_msgs_thresh`` lost heartbeats (about 0.15 s), and clients retry
    at once with the same op id instead of sleeping.
    """

    heartbeat_interval: float = 0.05
    server_tick: float = 0.05
    coord_tick: float = 0.05
    client_tick: float = 0.05
    call_timeout: float = 1.0
    op_timeout: float = 10.0
    start_timeout: float = 15.0
    election_tick: float = 0.01
    """Raft mode: one tick of the servers' election timers."""
    election_timeout_min: float = 0.15
    election_timeout_max: float = 0.30
    """Raft mode: election timeouts are drawn from this range (Raft's 150-300 ms)."""

    def election_ticks(self) -> tuple[int, int, int]:
        """Raft mode: (timeout min, timeout max, heartbeat interval), in election ticks."""
        tick = self.election_tick
        low = max(2, round(self.election_timeout_min / tick))
        high = max(low, round(self.election_timeout_max / tick))
        heartbeat = max(1, min(low // 2, round(self.heartbeat_interval / tick)))
        return low, high, heartbeat

    def scaled(self, factor: float) -> Timing:
        return Timing(*(getattr(self, f) * factor for f in self.__slots__))

    def client_ticks(self, seconds: float) -> int:
        """A duration as a number of client ticks (at least one)."""
        return max(1, round(seconds / self.client_tick))
