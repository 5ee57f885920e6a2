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

    def scaled(self, factor: float) -> Timing:
        return Timing(*(getattr(self, f) * factor for f in self.__slots__))

    def client_ticks(self, seconds: float) -> int:
        """A duration as a number of client ticks (at least one)."""
        return max(1, round(seconds / self.client_tick))
